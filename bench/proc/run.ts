// Child process: the `run` command itself (scheduler, status, metrics, stdout sink), as a user runs
// it, for bench/tenants.ts. Records go to stdout (the parent counts the lines); every 250 ms the
// CPU time since start (after the imports) and the RSS go to the parent over the IPC channel.
//   argv[2]: defender.yaml; argv[3]: --once (optional)
import { runCommand } from '../../plugin/collect/run-command.js';

const cpu0 = process.cpuUsage();
const report = (then: () => void = () => undefined) => {
  const c = process.cpuUsage(cpu0);
  process.send!({ cpuMs: (c.user + c.system) / 1000, rssMB: process.memoryUsage.rss() / 1024 / 1024 }, then);
};
const timer = setInterval(() => report(), 250);
const code = await runCommand({ config: process.argv[2]!, once: process.argv[3] === '--once', output: 'stdout' });
clearInterval(timer);
// stdout may still hold records for the pipe, and the last report must reach the parent: exit after both
report(() => process.stdout.write('', () => process.exit(code)));
