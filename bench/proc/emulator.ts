// Child process: the Defender emulator for a benchmark (its CPU and memory are not the collector's).
//   argv[2]: EmulatorOptions as JSON
import { startEmulator, type EmulatorOptions } from '../../plugin/emulate/index.js';
import { serve } from '../lib/ipc.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as EmulatorOptions;
const t0 = Date.now();
const emu = await startEmulator(opts);
const startMs = Date.now() - t0;

serve(
  { connector: emu.connectorConfig('bench'), url: emu.url, startMs },
  {
    /** what was served: per-API status counts from the request log, records and pages */
    stats: () => {
      const s = emu.served;
      const byApi: Record<string, Record<number, number>> = {};
      for (const r of s.requests) (byApi[r.api] ??= {})[r.status] = ((byApi[r.api] ??= {})[r.status] ?? 0) + 1;
      return {
        requests: s.requests.length,
        byApi,
        alertRecords: s.alertRecords,
        machineRecords: s.machineRecords,
        vulnerabilityRecords: s.vulnerabilityRecords,
        pages: s.pages,
        tokensIssued: emu.tokensIssued(),
        maxRssMB: process.resourceUsage().maxRSS / 1024,
        cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      };
    },
    /** request log lines (method, path, query, status) for the report */
    requests: () => emu.served.requests.map((r) => ({ api: r.api, status: r.status, query: r.query })),
  },
  () => emu.close(),
);
