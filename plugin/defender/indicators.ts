// Custom indicators (Ti.ReadWrite): submit, delete and list the ones this product created.
// Facts: post-ti-indicator.md (POST /api/indicators, 200 with the indicator, 100 calls/min and
// 1 500/h, 15 000 active indicators per tenant, CIDR not supported), delete-ti-indicator-by-id.md
// (DELETE /api/indicators/{id}, 204), get-ti-indicators-collection.md (GET /api/indicators with
// $filter), ti-indicator.md (the entity).
import ipaddr from 'ipaddr.js';
import { MachineActionError, translate, type ActionClient } from './machine-actions.js';

/** `application` of every indicator this product submits: how it finds its own again. */
export const indicatorApplication = 'defender-fluent';

export const indicatorTypes = {
  sha1: 'FileSha1',
  sha256: 'FileSha256',
  md5: 'FileMd5',
  certificate: 'CertificateThumbprint',
  ip: 'IpAddress',
  url: 'Url',
  domain: 'DomainName',
} as const;
export type IndicatorKind = keyof typeof indicatorTypes;

/** Why `value` is not an indicator of `kind` (undefined: it is), so a bad value is refused before Defender is called. */
export function indicatorValueProblem(kind: IndicatorKind, value: string): string | undefined {
  const hex = (n: number) => (new RegExp(`^[0-9a-fA-F]{${n}}$`).test(value) ? undefined : `a ${kind} is ${n} hex characters`);
  switch (kind) {
    case 'sha1':
    case 'certificate':
      return hex(40);
    case 'sha256':
      return hex(64);
    case 'md5':
      return hex(32);
    case 'ip':
      // one address: Defender takes no CIDR ranges
      return ipaddr.isValid(value) && !value.includes('/') ? undefined : 'not an IPv4 or IPv6 address (ranges and CIDR are not supported)';
    case 'url': {
      try {
        const u = new URL(value);
        return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : 'a URL starts with http:// or https://';
      } catch {
        return 'not a URL';
      }
    }
    case 'domain':
      return /^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$/i.test(value) ? undefined : 'not a domain name (e.g. bad.example.com)';
  }
}

export interface Indicator {
  id: string;
  indicatorValue: string;
  indicatorType: string;
  action: string;
  [k: string]: unknown;
}

export class Indicators {
  constructor(private readonly client: ActionClient) {}

  /** Submits (or updates: Defender keeps one per value and type) an indicator tagged with this product's application. */
  async submit(body: Record<string, unknown>): Promise<Indicator> {
    const what = `submitting indicator ${String(body.indicatorType)} ${String(body.indicatorValue)}`;
    try {
      const res = await this.client.request<Indicator>({ method: 'POST', path: '/api/indicators', body: { ...body, application: indicatorApplication } });
      if (!res.body || typeof res.body.id !== 'string') throw new MachineActionError(`Defender: ${what}: the answer is not an indicator`, { code: 'malformed', httpStatus: 502 });
      return res.body;
    } catch (e) {
      throw translate(e, 'Ti.ReadWrite', what);
    }
  }

  /**
   * Deletes one of this product's indicators. Ti.ReadWrite.All sees (and may delete) every
   * indicator of the tenant, and Defender's list has no $filter on id, so the id is looked up among
   * this product's own first: another tool's indicator is refused, never deleted.
   */
  async remove(id: string): Promise<void> {
    if (!/^[0-9A-Za-z-]{1,64}$/.test(id)) throw new MachineActionError(`indicator id must be letters, digits or -, got ${JSON.stringify(id.slice(0, 64))}`, { code: 'invalid_action_id', httpStatus: 400 });
    if (!(await this.ours()).some((i) => String(i.id) === id)) {
      throw new MachineActionError(`indicator ${id} was not submitted by ${indicatorApplication} (no active indicator with application '${indicatorApplication}' has this id): delete another tool's indicator in the portal or with that tool`, { code: 'not_ours', httpStatus: 403 });
    }
    try {
      await this.client.request({ method: 'DELETE', path: `/api/indicators/${id}` });
    } catch (e) {
      throw translate(e, 'Ti.ReadWrite', `deleting indicator ${id}`);
    }
  }

  /** The indicators this product submitted (application eq 'defender-fluent'). */
  async ours(): Promise<Indicator[]> {
    try {
      // $top at its documented maximum: a delete looks its id up in this list
      const res = await this.client.request<{ value?: unknown }>({ path: '/api/indicators', query: { $filter: `application eq '${indicatorApplication}'`, $top: 10_000 } });
      if (!Array.isArray(res.body?.value)) throw new MachineActionError('Defender: GET /api/indicators: the answer has no value array', { code: 'malformed', httpStatus: 502 });
      // the filter is Defender's; the check again here keeps another tool's indicator out even if it were ignored
      return (res.body.value as Indicator[]).filter((i) => i?.application === indicatorApplication);
    } catch (e) {
      throw translate(e, 'Ti.ReadWrite', 'listing indicators');
    }
  }
}
