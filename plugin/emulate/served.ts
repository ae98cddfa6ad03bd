// What the emulator has served, counted only for responses that were sent completely (a truncated,
// reset or malformed response delivered nothing), so a test can prove what arrived.

export interface RequestLogEntry {
  method: string;
  /** path without the query string */
  path: string;
  /** the query string ("?$top=…"), or "" */
  query: string;
  api: string;
  status: number;
  /** the fault applied, if any */
  fault?: string;
  /** false when the body was cut, the socket reset or the client went away */
  complete: boolean;
  /** id of the bearer token used (API calls): one per client, so per replica of a collector */
  token?: string;
  /** when the request arrived (ms since the epoch, this machine's clock) */
  at: number;
}

export class Served {
  /** alert id → every lastUpdateTime served for it (one entry per alert version) */
  readonly alertVersions = new Map<string, Set<string>>();
  /** alert records sent, repeats included */
  alertRecords = 0;
  /** machine id → times served */
  readonly machines = new Map<string, number>();
  machineRecords = 0;
  /** ids of snapshot vulnerability records served (null when recording ids is off) */
  readonly vulnerabilityIds: Set<string> | null;
  vulnerabilityRecords = 0;
  /** `${id}|${status}|${eventTimestamp}` of delta records served (null when recording ids is off) */
  readonly vulnerabilityChangeKeys: Set<string> | null;
  vulnerabilityChangeRecords = 0;
  /** machine action id → every lastUpdateDateTimeUtc served for it (one entry per status change) */
  readonly machineActionVersions = new Map<string, Set<string>>();
  readonly pages = { alerts: 0, machines: 0, vulnerabilities: 0, vulnerabilityChanges: 0, machineActions: 0 };
  /** rows of complete runHuntingQuery answers */
  huntingRows = 0;
  /** every API and token call, in order (capped at 100 000 entries) */
  readonly requests: RequestLogEntry[] = [];

  constructor(recordVulnerabilityIds: boolean) {
    this.vulnerabilityIds = recordVulnerabilityIds ? new Set() : null;
    this.vulnerabilityChangeKeys = recordVulnerabilityIds ? new Set() : null;
  }

  /** Alert versions as `${id}|${lastUpdateTime}` strings. */
  alertVersionKeys(): string[] {
    return versionKeys(this.alertVersions);
  }

  get alertVersionCount(): number {
    let n = 0;
    for (const times of this.alertVersions.values()) n += times.size;
    return n;
  }

  addAlerts(versions: Array<[string, string]>): void {
    addVersions(this.alertVersions, versions);
    this.alertRecords += versions.length;
    this.pages.alerts++;
  }

  /** `${id}|${lastUpdateDateTimeUtc}` of every machine action version served. */
  machineActionVersionKeys(): string[] {
    return versionKeys(this.machineActionVersions);
  }

  addMachineActions(versions: Array<[string, string]>): void {
    addVersions(this.machineActionVersions, versions);
    this.pages.machineActions++;
  }

  addMachines(ids: string[]): void {
    for (const id of ids) this.machines.set(id, (this.machines.get(id) ?? 0) + 1);
    this.machineRecords += ids.length;
    this.pages.machines++;
  }

  addVulnerabilities(ids: string[], count: number): void {
    if (this.vulnerabilityIds) for (const id of ids) this.vulnerabilityIds.add(id);
    this.vulnerabilityRecords += count;
    this.pages.vulnerabilities++;
  }

  addVulnerabilityChanges(keys: string[], count: number): void {
    if (this.vulnerabilityChangeKeys) for (const k of keys) this.vulnerabilityChangeKeys.add(k);
    this.vulnerabilityChangeRecords += count;
    this.pages.vulnerabilityChanges++;
  }

  log(entry: RequestLogEntry): void {
    if (this.requests.length < 100_000) this.requests.push(entry);
  }

  /** Number of logged calls by status code (e.g. how many 429s a client provoked). */
  statusCounts(api?: string): Record<number, number> {
    const out: Record<number, number> = {};
    for (const r of this.requests) if (!api || r.api === api) out[r.status] = (out[r.status] ?? 0) + 1;
    return out;
  }
}

/** id → update times served: one entry per version of an alert or a machine action. */
function addVersions(into: Map<string, Set<string>>, versions: Array<[string, string]>): void {
  for (const [id, t] of versions) {
    let set = into.get(id);
    if (!set) into.set(id, (set = new Set()));
    set.add(t);
  }
}

function versionKeys(of: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  for (const [id, times] of of) for (const t of times) out.push(`${id}|${t}`);
  return out;
}
