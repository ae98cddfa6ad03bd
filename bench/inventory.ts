// Machine inventory benchmark: what one connector's inventory costs for a large tenant. The host
// task writes it after each machine list read; an alerts poll loads it on its first alert with a
// machine id and holds it until the poll ends. With --postgres, the replicas' store (a throw-away
// PostgreSQL as the tests start it): the writer upserts changed rows, a reader asks per slice.
//   node --expose-gc --import tsx bench/inventory.ts [--machines 100000] [--postgres]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileMachineInventory, type MachineInventory } from '../plugin/collect/inventory.js';
import { PgMachineInventory } from '../plugin/state/pg-inventory.js';
import { openPool } from '../plugin/state/postgres.js';
import { freshDatabase, holdLease } from '../test/helpers/postgres.js';

const arg = (name: string, dflt: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || dflt;
const n = arg('--machines', 100_000);
const dir = mkdtempSync(join(tmpdir(), 'df-inventory-bench-'));
const pool = process.argv.includes('--postgres') ? await openPool(await freshDatabase()) : undefined;
if (pool) await holdLease(pool, 'bench', 'bench', 'host');
const inv: MachineInventory = pool ? new PgMachineInventory(pool, 'bench') : new FileMachineInventory(dir);
const stored = async () =>
  pool ? `table ${(Number((await pool.query("SELECT pg_total_relation_size('defender_fluent_machines') AS b")).rows[0].b) / 1e6).toFixed(1)} MB` : `file ${(statSync((inv as FileMachineInventory).file('bench')).size / 1e6).toFixed(1)} MB`;
const id = (i: number) => i.toString(16).padStart(40, '0');
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const heap = () => process.memoryUsage().heapUsed / 1e6;

// A machine as GET /api/machines returns it, with three interfaces (a loopback among them).
function machine(i: number): Record<string, unknown> {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return {
    id: id(i), computerDnsName: `host${i}.corp.contoso.com`, firstSeen: '2025-01-10T08:00:00Z', lastSeen: '2026-03-01T05:12:44Z', osPlatform: 'Windows11', osVersion: '10.0.22631', osProcessor: 'x64', version: '23H2', osBuild: 22631,
    lastIpAddress: ip, lastExternalIpAddress: '203.0.113.7', healthStatus: 'Active', onboardingStatus: 'Onboarded', rbacGroupId: 4, rbacGroupName: 'Workstations', riskScore: 'Low', exposureLevel: 'Medium', deviceValue: 'Normal',
    isAadJoined: true, aadDeviceId: '80fe8ff8-2624-418e-9591-41f0491218f9', machineTags: ['finance'], osArchitecture: '64-bit',
    ipAddresses: [{ ipAddress: ip, macAddress: '00155D0A1B2C', type: 'Ethernet', operationalStatus: 'Up' }, { ipAddress: 'fe80::1c2d:3e4f', macAddress: '00155D0A1B2C', type: 'Ethernet', operationalStatus: 'Up' }, { ipAddress: '127.0.0.1', type: 'SoftwareLoopback', operationalStatus: 'Up' }],
  };
}

/** One host poll's write: every machine, `changed` of them with another risk score than the last write. */
async function write(label: string, changed: number, risk: string): Promise<void> {
  const t = performance.now();
  const w = inv.writer('bench');
  for (let i = 0; i < n; i++) w.add(i < changed ? { ...machine(i), riskScore: risk } : machine(i));
  await w.commit();
  console.log(`write ${n.toLocaleString('en-US')} machines, ${label}: ${Math.round(performance.now() - t)} ms, ${await stored()}`);
}
await write('first', 0, 'Low');
await write('none changed', 0, 'Low');
await write('1 % changed', n / 100, 'High');
let t: number;

gc();
const before = heap();
t = performance.now();
const reader = inv.reader('bench');
await reader.get([id(1)]);
console.log(`load (first alert of a poll): ${Math.round(performance.now() - t)} ms`);
gc();
console.log(`held by the poll's reader: ${(heap() - before).toFixed(1)} MB`);
t = performance.now();
const slices = Math.ceil(n / 250);
for (let s = 0; s < slices; s++) await reader.get(Array.from({ length: 250 }, (_, j) => id((s * 250 + j) % n)));
console.log(`${n.toLocaleString('en-US')} alerts on distinct machines, slices of 250: ${Math.round(performance.now() - t)} ms`);
gc();
console.log(`held after every entry was parsed once: ${(heap() - before).toFixed(1)} MB`);
rmSync(dir, { recursive: true, force: true });
await pool?.end();
