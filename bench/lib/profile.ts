// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, the hot spots.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../plugin/paths.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

export function hotSpots(dir: string, top = 15): { totalMs: number; spots: HotSpot[]; byArea: Record<string, number> } {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  const agg = new Map<string, { name: string; where: string; ms: number }>();
  const byArea: Record<string, number> = {};
  let total = 0;
  for (const n of p.nodes) {
    const ms = self.get(n.id) ?? 0;
    if (!ms) continue;
    total += ms;
    const url = n.callFrame.url.replace(/^file:\/\//, '');
    const where = url ? `${url.startsWith(packageRoot) ? relative(packageRoot, url) : url.replace(/^.*node_modules\//, 'node_modules/')}:${n.callFrame.lineNumber + 1}` : '(native)';
    const name = n.callFrame.functionName || '(anonymous)';
    const key = `${name}@${where}`;
    const a = agg.get(key) ?? { name, where, ms: 0 };
    a.ms += ms;
    agg.set(key, a);
    const area = name === '(garbage collector)' ? 'garbage collector' : name === '(idle)' ? 'idle' : name === '(program)' ? 'program (V8/native)' : !url ? 'native / builtins' : url.includes('node_modules/') ? `node_modules/${url.split('node_modules/').pop()!.split('/')[0]!.startsWith('@') ? url.split('node_modules/').pop()!.split('/').slice(0, 2).join('/') : url.split('node_modules/').pop()!.split('/')[0]}` : url.startsWith('node:') ? 'node core' : relative(packageRoot, url).split('/').slice(0, 2).join('/');
    byArea[area] = (byArea[area] ?? 0) + ms;
  }
  const spots = [...agg.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((a) => ({ name: a.name, where: a.where, selfMs: a.ms, share: a.ms / total }));
  return { totalMs: total, spots, byArea };
}
