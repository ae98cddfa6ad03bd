import os from 'node:os';

/** cpu model, cores, memory, node version and load: printed in the table header and README. */
export function machine(): string {
  const cpus = os.cpus();
  const model = (cpus[0]?.model ?? 'unknown cpu').trim();
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${model}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, ${os.platform()} ${os.release()}, node ${process.version}; load average at start ${load}`;
}
