// `npm run demo`: the emulator and the collector, as two processes of the real binary, with the
// collector's records written to .demo/records.ndjson and a progress line per content type.
// Ctrl-C stops both cleanly (the terminal sends SIGINT to the whole process group).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseStdoutLine } from '../plugin/output/stdout.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'plugin', 'cli.js');
const demoDir = join(root, '.demo');
mkdirSync(demoDir, { recursive: true });

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

const emulator = start(['emulate', '--port', '18443', '--state-dir', join(demoDir, 'emulator'), '--alerts', '500', '--machines', '100', '--vulns', '20000', '--updates-per-minute', '120']);
emulator.stderr!.pipe(process.stderr);

const secret = await new Promise<string>((resolve, reject) => {
  let text = '';
  emulator.stdout!.on('data', (d: Buffer) => {
    text += d.toString();
    const m = /export DEFENDER_EMULATOR_SECRET='([^']+)'/.exec(text);
    if (m && text.includes('Ctrl-C')) {
      process.stderr.write(text.split('\n').slice(0, 6).join('\n') + '\n\n');
      resolve(m[1]!);
    }
  });
  emulator.on('exit', (code) => reject(new Error(`the emulator exited (${code}) before it was ready`)));
});

const recordsFile = join(demoDir, 'records.ndjson');
// appended: a second run resumes from the cursors, so the file keeps what the first one collected
const records = createWriteStream(recordsFile, { flags: 'a' });
const collector = start(['run', '--config', join(root, 'examples', 'demo.yaml'), '--progress'], { DEFENDER_EMULATOR_SECRET: secret });
collector.stderr!.pipe(process.stderr);
const counts = new Map<string, number>();
let shown = false;
createInterface({ input: collector.stdout! }).on('line', (line) => {
  records.write(line + '\n');
  const { tag, record } = parseStdoutLine(line);
  counts.set(tag, (counts.get(tag) ?? 0) + 1);
  if (!shown && tag.endsWith('.syslog.alerts')) {
    shown = true;
    process.stderr.write(`first alert record (all records go to ${recordsFile}):\n${JSON.stringify(record, null, 2).slice(0, 1500)}\n…\n\n`);
  }
});
const tally = setInterval(() => {
  const parts = [...counts].map(([tag, n]) => `${tag} ${n.toLocaleString('en-US')}`);
  if (parts.length) process.stderr.write(`records so far: ${parts.join(', ')}\n`);
}, 10_000);

// Ctrl-C reaches both children directly; the demo waits for them to finish cleanly.
process.on('SIGINT', () => process.stderr.write('\nstopping: the collector commits what was acknowledged, the emulator shuts down…\n'));
process.on('SIGTERM', () => {
  collector.kill('SIGTERM');
  emulator.kill('SIGTERM');
});
const [collectorCode] = await Promise.all([
  new Promise<number | null>((r) => collector.on('exit', (code) => r(code))),
  new Promise<number | null>((r) => emulator.on('exit', (code) => r(code))),
]);
clearInterval(tally);
records.end();
process.stderr.write(`collector exited ${collectorCode}; records in ${recordsFile}; cursors in ${join(demoDir, 'state')} (run the demo again: it resumes from them)\n`);
process.exitCode = collectorCode ?? 0;
