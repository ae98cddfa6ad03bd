import nock from 'nock';
import { apiOrigin } from './connector.js';

export interface ServedPage {
  filter?: string;
  top: number;
  skip: number;
  count: number;
}

/**
 * A tiny in-memory /api/alerts for nock: evaluates the collector's `lastUpdateTime ge X and
 * lastUpdateTime lt Y` filter, $top and $skip over `alerts` (in the given order), and records each
 * page it served. `mutate` runs before each page (to simulate alerts changing while paging);
 * pages at `$skip` ≥ `failFromSkip` answer 403 (a poll failing part-way through a window).
 */
export function nockAlertsApi(alerts: Array<Record<string, unknown>>, opts: { mutate?: (page: number) => void; times?: number; failFromSkip?: number } = {}): ServedPage[] {
  const served: ServedPage[] = [];
  nock(apiOrigin)
    .get('/api/alerts')
    .query(true)
    .times(opts.times ?? 1000)
    .reply(function (uri) {
      opts.mutate?.(served.length);
      const q = new URL(uri, apiOrigin).searchParams;
      const filter = q.get('$filter') ?? undefined;
      const top = Number(q.get('$top') ?? 10000);
      const skip = Number(q.get('$skip') ?? 0);
      if (skip >= (opts.failFromSkip ?? Infinity)) return [403, { error: { code: 'Forbidden', message: 'no', target: 'x' } }];
      let rows = alerts;
      if (filter) {
        const m = /^lastUpdateTime ge (\S+) and lastUpdateTime lt (\S+)$/.exec(filter);
        if (!m) return [400, { error: { code: 'ODataError', message: `unsupported filter ${filter}`, target: 't' } }];
        const ge = Date.parse(m[1]!);
        const lt = Date.parse(m[2]!);
        rows = alerts.filter((a) => {
          const t = Date.parse(String(a.lastUpdateTime));
          return t >= ge && t < lt;
        });
      }
      const page = rows.slice(skip, skip + top);
      served.push({ filter, top, skip, count: page.length });
      return [200, { '@odata.context': `${apiOrigin}/api/$metadata#Alerts`, value: page }];
    });
  return served;
}

let seq = 0;
export function alert(lastUpdateTime: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  seq++;
  return {
    id: `da6388539174026${String(seq).padStart(5, '0')}_-1187734598`,
    title: `Alert ${seq}`,
    severity: 'Medium',
    status: 'New',
    category: 'Execution',
    machineId: '4a7e1c9b2d3f40516273849a5b6c7d8e9f0a1b2c',
    computerDnsName: 'wks-0142.corp.fabrikam.test',
    lastUpdateTime,
    evidence: [],
    ...extra,
  };
}
