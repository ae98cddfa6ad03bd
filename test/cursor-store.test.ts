import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CursorError, CursorStore } from '../plugin/collect/cursor-store.js';
import { FileMachineInventory } from '../plugin/collect/inventory.js';
import type { ContentType } from '../plugin/config/load.js';
import { DigestTable } from '../plugin/state/digest-table.js';
import { openPool, PgStateStore } from '../plugin/state/postgres.js';
import { LeaseLostError, type StateStore } from '../plugin/state/store.js';
import { freshDatabase, holdLease } from './helpers/postgres.js';

const atomicModule = fileURLToPath(new URL('../plugin/atomic-file.ts', import.meta.url));
const storeModule = fileURLToPath(new URL('../plugin/collect/cursor-store.ts', import.meta.url));

interface AlertsCursor {
  watermark: string;
  seen: string[];
}
const isAlertsCursor = (v: unknown): v is AlertsCursor =>
  !!v && typeof v === 'object' && typeof (v as AlertsCursor).watermark === 'string' && Array.isArray((v as AlertsCursor).seen);
const isAnything = (v: unknown): v is unknown => v !== undefined;

/** Runs an ES module snippet in a child node (with tsx); resolves with its exit code/signal and stdout. */
function child(code: string, opts: { killAfterLine?: number; killDelayMs?: number } = {}): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      stdout += d;
      if (opts.killAfterLine !== undefined && stdout.split('\n').length > opts.killAfterLine) {
        opts.killAfterLine = undefined;
        setTimeout(() => p.kill('SIGKILL'), opts.killDelayMs ?? 0);
      }
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ code, signal, stdout }));
  });
}


/** What the shared suite needs of a store: the store, and a way to give it the task's lease (PostgreSQL fences every write by it). */
interface Subject {
  store: StateStore;
  hold(connector: string, content: ContentType): Promise<void>;
  close(): Promise<void>;
}

const subjects: Record<string, () => Promise<Subject>> = {
  files: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-cursor-'));
    return { store: new CursorStore(dir), hold: async () => undefined, close: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  PostgreSQL: async () => {
    const pool = await openPool(await freshDatabase());
    return { store: new PgStateStore(pool, 'suite-owner'), hold: (connector, content) => holdLease(pool, 'suite-owner', connector, content), close: () => pool.end() };
  },
};

for (const [kind, open] of Object.entries(subjects)) {
  describe(`state store: ${kind} (one suite for every store)`, function () {
    this.timeout(30_000);
    let s: Subject;
    let store: StateStore;
    beforeEach(async () => {
      s = await open();
      store = s.store;
      for (const connector of ['acme-mde', 'acme-mde-2', 'acme', 'acme.eu', 'acme.alerts']) for (const content of ['alerts', 'host', 'vulnerabilities', 'hunting'] as const) await s.hold(connector, content);
    });
    afterEach(() => s.close());

    it('save then load round-trips the cursor; no cursor yet is undefined', async () => {
      assert.equal(await store.load('acme-mde', 'alerts', isAlertsCursor), undefined);
      const cursor = { watermark: '2026-11-28T05:00:00.000Z', seen: ['da1|2026-11-28T04:59:00Z', 'da2|x'] };
      await store.save('acme-mde', 'alerts', cursor);
      assert.deepEqual(await store.load('acme-mde', 'alerts', isAlertsCursor), cursor);
      await store.save('acme-mde', 'alerts', { ...cursor, watermark: '2026-11-28T06:00:00.000Z' });
      assert.equal((await store.load('acme-mde', 'alerts', isAlertsCursor))?.watermark, '2026-11-28T06:00:00.000Z');
      assert.equal(await store.load('acme-mde', 'host', isAnything), undefined, 'one cursor per connector × content type');
    });

    it('a cursor of the wrong shape is a CursorError naming where it is and the reset command, not a silent restart', async () => {
      await store.save('acme-mde', 'alerts', { watermark: 12, seen: 'no' });
      await assert.rejects(
        () => store.load('acme-mde', 'alerts', isAlertsCursor),
        (e: unknown) => e instanceof CursorError && e.message.includes('not a cursor of this content type') && e.message.includes(e.where) && e.message.includes('--reset-cursor acme-mde:alerts'),
      );
    });

    it('a cursor time ahead of the clock is a CursorError; minutes of skew pass', () => {
      const now = Date.parse('2026-11-28T05:00:00Z');
      assert.doesNotThrow(() => store.assertNotAhead('acme-mde', 'alerts', { watermark: '2026-11-28T05:04:00Z', none: undefined }, now));
      assert.throws(() => store.assertNotAhead('acme-mde', 'alerts', { watermark: '2026-11-28T06:00:00Z' }, now), (e: unknown) => e instanceof CursorError && /watermark .* 60 min ahead/.test(e.message));
    });

    it('window journal: started, appended, loaded in order, removed; none is empty', async () => {
      const journal = store.journal('acme-mde', 'alerts');
      assert.deepEqual(await journal.load(), []);
      await journal.start(['a|1', 'b|1']);
      await journal.append(['c|1']);
      await journal.append([]);
      assert.deepEqual(await store.journal('acme-mde', 'alerts').load(), ['a|1', 'b|1', 'c|1']);
      await journal.start(['d|2']);
      assert.deepEqual(await journal.load(), ['d|2'], 'start replaces a finished window’s keys');
      assert.deepEqual(await store.journal('acme-mde-2', 'alerts').load(), [], 'one journal per cursor');
      await journal.remove();
      assert.deepEqual(await journal.load(), []);
    });

    it('host digests: saved bytes come back as they were; none is undefined', async () => {
      assert.equal(await store.loadDigests('acme-mde'), undefined);
      const table = new DigestTable();
      for (let i = 0; i < 3000; i++) table.put(`m${i}`, DigestTable.digest({ i }));
      await store.saveDigests('acme-mde', table.entries());
      const back = DigestTable.fromEntries((await store.loadDigests('acme-mde'))!);
      assert.equal(back.size, 3000);
      assert.ok(back.matches('m42', DigestTable.digest({ i: 42 })));
      assert.ok(!back.matches('m42', DigestTable.digest({ i: 43 })));
      assert.ok(back.has('m2999') && !back.has('m3000'));
      assert.equal(await store.loadDigests('acme-mde-2'), undefined);
    });

    it('reset of one content type removes only that cursor, with its journal or digests', async () => {
      await store.save('acme-mde', 'alerts', { watermark: 'a', seen: [] });
      await store.journal('acme-mde', 'alerts').start(['a|1']);
      await store.save('acme-mde', 'host', { n: 1 });
      await store.saveDigests('acme-mde', new DigestTable().entries());
      assert.ok((await store.reset('acme-mde', 'alerts')).length > 0, 'what was removed is told');
      assert.equal(await store.load('acme-mde', 'alerts', isAlertsCursor), undefined);
      assert.deepEqual(await store.journal('acme-mde', 'alerts').load(), []);
      assert.deepEqual(await store.load('acme-mde', 'host', isAnything), { n: 1 });
      assert.notEqual(await store.loadDigests('acme-mde'), undefined);
      await store.reset('acme-mde', 'host');
      assert.equal(await store.loadDigests('acme-mde'), undefined);
    });

    it('hunting budget: saved text comes back as it was, per connector; none is no text; a reset leaves it (a reset gives no quota back)', async () => {
      assert.equal((await store.loadBudget('acme')).text, undefined);
      await store.saveBudget('acme', '{"v":1,"runs":[[1,2]]}');
      await store.saveBudget('acme-mde', '{"v":1,"runs":[]}');
      const { text, where } = await store.loadBudget('acme');
      assert.equal(text, '{"v":1,"runs":[[1,2]]}');
      assert.match(where, /acme/);
      await store.reset('acme');
      assert.equal((await store.loadBudget('acme')).text, '{"v":1,"runs":[[1,2]]}');
    });

    // Connector names may contain "." (printable ASCII): "acme" must not match "acme.eu"'s state.
    it('reset of a whole connector removes all its cursors and no other connector’s ("acme" leaves "acme.eu" and "acme.alerts" alone)', async () => {
      for (const c of ['alerts', 'host', 'vulnerabilities'] as const) await store.save('acme', c, { c });
      for (const other of ['acme-mde-2', 'acme.eu', 'acme.alerts']) await store.save(other, 'alerts', { other });
      await store.journal('acme.alerts', 'alerts').start(['c|d']);
      assert.equal((await store.reset('acme')).length, 3);
      for (const c of ['alerts', 'host', 'vulnerabilities'] as const) assert.equal(await store.load('acme', c, isAnything), undefined);
      for (const other of ['acme-mde-2', 'acme.eu', 'acme.alerts']) assert.deepEqual(await store.load(other, 'alerts', isAnything), { other });
      assert.deepEqual(await store.journal('acme.alerts', 'alerts').load(), ['c|d']);
      assert.deepEqual(await store.reset('nobody'), []);
    });
  });
}

describe('state store: PostgreSQL writes are fenced by the lease', function () {
  this.timeout(30_000);
  let pool: pg.Pool;
  beforeEach(async () => {
    pool = await openPool(await freshDatabase());
  });
  afterEach(() => pool.end());

  it('a stale writer (its lease taken over, or expired) cannot move the cursor, journal or digests; the holder can', async () => {
    const stale = new PgStateStore(pool, 'replica-a');
    const holder = new PgStateStore(pool, 'replica-b');
    await holdLease(pool, 'replica-a', 'acme', 'alerts');
    await stale.save('acme', 'alerts', { watermark: 'w1', seen: [] });
    await stale.journal('acme', 'alerts').start(['a|1']);
    // replica-b takes the task over (replica-a's lease ran out)
    await holdLease(pool, 'replica-b', 'acme', 'alerts');
    await assert.rejects(() => stale.save('acme', 'alerts', { watermark: 'w0', seen: [] }), LeaseLostError);
    await assert.rejects(() => stale.journal('acme', 'alerts').append(['b|1']), LeaseLostError);
    await assert.rejects(() => stale.journal('acme', 'alerts').remove(), LeaseLostError);
    assert.deepEqual(await holder.load('acme', 'alerts', isAlertsCursor), { watermark: 'w1', seen: [] });
    assert.deepEqual(await holder.journal('acme', 'alerts').load(), ['a|1']);
    await holder.save('acme', 'alerts', { watermark: 'w2', seen: [] });
    assert.equal((await stale.load('acme', 'alerts', isAlertsCursor))?.watermark, 'w2');
    // an expired lease fences its owner too, even when nobody took the task yet
    await holdLease(pool, 'replica-b', 'acme', 'host', -1);
    await assert.rejects(() => holder.saveDigests('acme', new DigestTable().entries()), LeaseLostError);
    await assert.rejects(() => holder.save('acme', 'host', { v: 2 }), LeaseLostError);
    assert.equal(await holder.loadDigests('acme'), undefined);
  });

  it('the hunting budget is shared: a replica taking the task over reads what the last holder used; a stale one cannot overwrite it', async () => {
    const a = new PgStateStore(pool, 'replica-a');
    const b = new PgStateStore(pool, 'replica-b');
    await holdLease(pool, 'replica-a', 'acme', 'hunting');
    await a.saveBudget('acme', '{"v":1,"runs":[[1000,60000]]}');
    await holdLease(pool, 'replica-b', 'acme', 'hunting');
    assert.equal((await b.loadBudget('acme')).text, '{"v":1,"runs":[[1000,60000]]}');
    await assert.rejects(() => a.saveBudget('acme', '{"v":1,"runs":[]}'), LeaseLostError);
    await b.saveBudget('acme', '{"v":1,"runs":[[1000,60000],[2000,1000]]}');
    assert.equal((await a.loadBudget('acme')).text, '{"v":1,"runs":[[1000,60000],[2000,1000]]}');
  });
});

describe('CursorStore (files under stateDir)', function () {
  // child processes start node + tsx: slow on a busy machine
  this.timeout(30_000);
  let stateDir: string;
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'df-cursor-'));
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  it('one file per connector × content type, under stateDir/cursors', async () => {
    const store = new CursorStore(stateDir);
    await store.save('acme-mde', 'alerts', { watermark: '2026-11-28T05:00:00.000Z', seen: [] });
    assert.deepEqual(readdirSync(join(stateDir, 'cursors')), ['acme-mde.alerts.json']);
  });

  it('an unchanged cursor, digests or machine inventory is not written again (each write is an fsync); a changed one is, and so is one removed (a reset, or anyone else)', async () => {
    const store = new CursorStore(stateDir);
    const inode = (file: string) => statSync(file).ino; // an atomic write replaces the file
    const cursor = store.file('acme', 'host');
    await store.save('acme', 'host', { v: 2, machines: 1 });
    const first = inode(cursor);
    await store.save('acme', 'host', { v: 2, machines: 1 });
    assert.equal(inode(cursor), first, 'same cursor: not written');
    await store.save('acme', 'host', { v: 2, machines: 2 });
    assert.notEqual(inode(cursor), first, 'a changed cursor is written');
    await store.saveDigests('acme', Buffer.from('digests'));
    const digests = inode(store.sideFile('acme', 'host', 'digests'));
    await store.saveDigests('acme', Buffer.from('digests'));
    assert.equal(inode(store.sideFile('acme', 'host', 'digests')), digests);
    rmSync(store.sideFile('acme', 'host', 'digests')); // removed by someone else: written again
    await store.saveDigests('acme', Buffer.from('digests'));
    assert.ok(existsSync(store.sideFile('acme', 'host', 'digests')), 'a file removed behind its back is written again');
    await store.reset('acme', 'host');
    await store.save('acme', 'host', { v: 2, machines: 2 });
    assert.ok(existsSync(cursor), 'after a reset the same cursor is written again');
    const inventory = new FileMachineInventory(stateDir);
    const commit = async () => {
      const w = inventory.writer('acme');
      w.add({ id: 'm1', computerDnsName: 'a.example' });
      await w.commit();
    };
    await commit();
    const inv = inode(inventory.file('acme'));
    await commit();
    assert.equal(inode(inventory.file('acme')), inv, 'same machines: the inventory is not written');
    await inventory.reset('acme');
    await commit();
    assert.ok(existsSync(inventory.file('acme')), 'after a reset the same inventory is written again');
  });

  it('a corrupt cursor file is a CursorError naming the file and the reset command', async () => {
    const store = new CursorStore(stateDir);
    const file = store.file('acme-mde', 'host');
    mkdirSync(join(stateDir, 'cursors'), { recursive: true });
    writeFileSync(file, '{"watermark": "2026-11-28T0');
    await assert.rejects(
      () => store.load('acme-mde', 'host', isAnything),
      (e: unknown) =>
        e instanceof CursorError &&
        e.where === `file ${file}` &&
        e.message.includes(file) &&
        e.message.includes('not JSON') &&
        e.message.includes('defender-fluent run --config <file> --reset-cursor acme-mde:host'),
    );
  });

  it('reset of a whole connector removes all its cursors and no other connector’s', async () => {
    const store = new CursorStore(stateDir);
    for (const c of ['alerts', 'host', 'vulnerabilities'] as const) await store.save('acme-mde', c, { c });
    await store.save('acme-mde-2', 'alerts', { other: true });
    await store.save('acme', 'alerts', { other: true });
    const removed = await store.reset('acme-mde');
    assert.deepEqual(removed.sort(), ['alerts', 'host', 'vulnerabilities'].map((c) => store.file('acme-mde', c as 'alerts')).sort());
    assert.deepEqual(readdirSync(join(stateDir, 'cursors')).sort(), ['acme-mde-2.alerts.json', 'acme.alerts.json']);
    assert.deepEqual(await store.reset('nobody'), []);
  });

  // Connector names may contain "." (printable ASCII): "acme" must not match "acme.eu"'s files.
  it('reset removes the alerts window journal with the cursor, and nothing of a connector named like "acme.alerts"', async () => {
    const store = new CursorStore(mkdtempSync(join(tmpdir(), 'df-cur-')));
    await store.save('acme', 'alerts', { v: 1 });
    await store.save('acme.alerts', 'alerts', { v: 1 });
    mkdirSync(store.dir, { recursive: true });
    writeFileSync(store.sideFile('acme', 'alerts', 'window'), 'a|b\n');
    writeFileSync(store.sideFile('acme.alerts', 'alerts', 'window'), 'c|d\n');
    assert.deepEqual((await store.reset('acme', 'alerts')).sort(), [store.file('acme', 'alerts'), store.sideFile('acme', 'alerts', 'window')].sort());
    assert.ok(existsSync(store.file('acme.alerts', 'alerts')) && existsSync(store.sideFile('acme.alerts', 'alerts', 'window')));
  });

  it('a crash between writing the temp file and the rename keeps the old cursor', async () => {
    const store = new CursorStore(stateDir);
    const old = { watermark: 'old', seen: ['x'] };
    await store.save('acme-mde', 'alerts', old);
    // The child replaces fs.renameSync with "die right here" (SIGKILL, no cleanup), then saves a
    // new cursor through the public interface: the process dies after write+fsync, before the rename.
    const r = await child(`
      import { createRequire, syncBuiltinESMExports } from 'node:module';
      const fs = createRequire(import.meta.url)('node:fs');
      fs.renameSync = () => { process.kill(process.pid, 'SIGKILL'); for (;;) {} };
      syncBuiltinESMExports();
      const { CursorStore } = await import(${JSON.stringify(storeModule)});
      await new CursorStore(${JSON.stringify(stateDir)}).save('acme-mde', 'alerts', { watermark: 'new', seen: [] });
      console.log('rename was not reached');
    `);
    assert.equal(r.signal, 'SIGKILL', `child was not killed at the rename (stdout: ${r.stdout})`);
    assert.deepEqual(await store.load('acme-mde', 'alerts', isAlertsCursor), old);
    // the new content did reach the disk, in a temp file beside the target
    const temps = readdirSync(join(stateDir, 'cursors')).filter((n) => n.endsWith('.tmp'));
    assert.equal(temps.length, 1);
    assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'cursors', temps[0]!), 'utf8')), { watermark: 'new', seen: [] });
  });

  it('SIGKILL at random points of a write loop always leaves the old or a newer complete file', async () => {
    const target = join(stateDir, 'cursors', 'acme-mde.vulnerabilities.json');
    const pad = 'v'.repeat(200_000);
    for (let round = 0; round < 2; round++) {
      const r = await child(
        `
        const { writeFileAtomic } = await import(${JSON.stringify(atomicModule)});
        const pad = 'v'.repeat(200000);
        for (let seq = ${round * 1_000_000}; ; seq++) {
          await writeFileAtomic(${JSON.stringify(target)}, JSON.stringify({ seq, pad }));
          console.log(seq);
        }
      `,
        { killAfterLine: 1, killDelayMs: Math.floor(Math.random() * 150) },
      );
      assert.equal(r.signal, 'SIGKILL');
      const written = r.stdout.trim().split('\n').map(Number);
      const last = written[written.length - 1]!;
      const now = JSON.parse(readFileSync(target, 'utf8')) as { seq: number; pad: string };
      assert.equal(now.pad, pad, 'the file holds a complete cursor');
      // at least the last write the child finished; at most one more that it finished but did not print
      assert.ok(now.seq === last || now.seq === last + 1, `seq ${now.seq} after the child finished ${last}`);
    }
  });
});
