// Fault harness (issue 7), crash part: the real collector (`defender-fluent run` from source, as a
// child process) against the emulator and a FluentServer in this process, SIGKILLed at 10 seeded
// points and restarted each time, while the source keeps adding and updating alerts. After every
// kill the cursor on disk must not pass an unacknowledged alert; at the end (a clean SIGTERM stop
// after a full catch-up) every version the emulator served, and every current one, was received.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { packageRoot } from '../plugin/paths.js';
import { Harness, seeded } from './helpers/harness.js';
import { sleep, waitFor } from './forward-helpers.js';

const KILLS = 10;
const SEED = 300;

let h: Harness | undefined;
let child: ChildProcess | undefined;
let changer: NodeJS.Timeout | undefined;
let stderr = '';

function startCollector(configFile: string): ChildProcess {
  stderr = '';
  const c = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', 'run', '--config', configFile], { cwd: packageRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return c;
}

function exited(c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));
}

afterEach(async function () {
  if (changer) clearInterval(changer);
  changer = undefined;
  if (this.currentTest?.state === 'failed') console.error(stderr);
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited(child);
  }
  child = undefined;
  await h?.close();
  h = undefined;
});

describe('fault harness: SIGKILL the collector process and restart it', function () {
  this.timeout(110_000);

  it(`${KILLS} SIGKILLs at seeded points while alerts keep arriving and changing: nothing served is lost, no cursor passes an unacknowledged alert`, async () => {
    h = await Harness.start({ emulator: { seed: SEED, alerts: 600 }, connector: { intervalMinutes: 1 }, forward: { maxBatchRecords: 50 } });
    const harness = h;
    const rng = seeded(SEED, 'kills');
    const changes = seeded(SEED, 'changes');
    // The source keeps moving: a few new alerts and an update or none every 100 ms, kills or no kills.
    changer = setInterval(() => harness.change(changes.int(0, 4), changes.int(0, 1)), 100);
    const plan: string[] = [];
    let livesThatCommitted = 0;
    for (let life = 0; life < KILLS; life++) {
      const before = harness.alertRecords;
      const committed = harness.cursor()?.watermark;
      // Kill points cycle through three kinds, their parameters seeded: after k records of this life
      // reached the pipeline (mid-delivery, between acks, before the cursor write); shortly after this
      // life committed a cursor (the write itself, idle, the next poll); at a time from spawn
      // (start-up, token, first page).
      const kind = (['records', 'commit', 'time'] as const)[life % 3]!;
      const k = rng.int(1, 60);
      const delay = rng.int(0, 400);
      const ms = rng.int(500, 4000);
      child = startCollector(harness.configFile);
      const t0 = Date.now();
      let label: () => string;
      if (kind === 'records') {
        await waitFor(() => harness.alertRecords - before >= k || child!.exitCode !== null, 8000);
        label = () => `after ${harness.alertRecords - before} records (k=${k})`;
      } else if (kind === 'commit') {
        await waitFor(() => harness.cursor()?.watermark !== committed || child!.exitCode !== null, 8000);
        await sleep(delay);
        label = () => `${delay} ms after a commit${harness.cursor()?.watermark === committed ? ' (none came)' : ''}`;
      } else {
        await sleep(ms);
        label = () => `at ${ms} ms`;
      }
      assert.equal(child.exitCode, null, `life ${life}: the collector exited on its own: ${stderr}`);
      child.kill('SIGKILL');
      const { signal } = await exited(child);
      assert.equal(signal, 'SIGKILL');
      plan.push(`${label()} (${Date.now() - t0} ms)`);
      if (harness.cursor()?.watermark !== committed) livesThatCommitted++;
      await sleep(50); // the last bytes of the dead connection reach the server
      assert.deepEqual(harness.cursorViolations(), [], `after kill ${life + 1} (${plan.at(-1)}): the cursor passed unacknowledged alerts`);
    }
    // Otherwise the per-kill cursor checks above had nothing to check.
    assert.ok(livesThatCommitted >= 3, `only ${livesThatCommitted} of ${KILLS} lives committed a cursor: ${plan.join('; ')}`);
    clearInterval(changer);
    changer = undefined;
    await sleep(5);

    // A last life catches up completely, then stops cleanly on SIGTERM.
    const newest = harness.newestUpdate();
    child = startCollector(harness.configFile);
    const caughtUp = await waitFor(() => {
      const c = harness.cursor();
      return !!c && Date.parse(c.watermark) > newest;
    }, 30_000);
    assert.ok(caughtUp, `the final run caught up past the newest update: ${stderr}`);
    child.kill('SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null }, 'SIGTERM: a clean exit');

    assert.deepEqual(harness.cursorViolations(), []);
    assert.deepEqual(harness.lost(), [], 'served alert versions that never reached the pipeline');
    assert.deepEqual(harness.missingCurrent(), [], 'current alert versions that never reached the pipeline');
    // One CLI page is 10 000 alerts: a kill may re-deliver at most the unacknowledged rest of a window.
    const dups = harness.duplicates();
    assert.ok(dups <= KILLS * 10_000, `${dups} duplicates`);
    console.log(`      ${JSON.stringify({ kills: plan, livesThatCommitted, served: harness.emu.served.alertVersionCount, supersededBeforeDelivery: harness.servedKeys().filter((k) => harness.superseded.has(k)).length, received: harness.alertRecords, duplicates: dups })}`);
  });
});
