// The emulator's world: machines and alerts with their mutable state, and how they change over time.
import { alertBase, alertId, ByteArena, compileAlert, machineBase, type AlertState, type CompiledAlert, type MachineBase } from './data.js';
import { Rng } from './prng.js';

export interface MachineState {
  base: MachineBase;
  lastSeenMs: number;
  healthStatus: string;
  riskScore: string;
  /** isolation as the emulator's machine actions left it */
  isolated: boolean;
  /** machineTags once POST /api/machines/{id}/tags changed them (else the generated ones) */
  tags?: string[];
}

export interface WorldOptions {
  seed: number;
  tenantId: string;
  startMs: number;
  alerts: number;
  machines: number;
  /** initial alerts are spread over this many hours before startMs */
  historyHours: number;
  /** an update's lastUpdateTime may lag "now" by up to this much (late-arriving versions) */
  lateArrivalMs: number;
  /** cache the serialised immutable part of every alert (built at start): faster pages, ~2.5 KB per alert */
  prebuildAlerts?: boolean;
  /** every alert gets exactly this many evidence items (benchmarks); default: 0–5, ~20% none */
  evidencePerAlert?: number;
}

const analysts = ['analyst1@fabrikam.test', 'analyst2@fabrikam.test', 'soc-automation@fabrikam.test', 'åsa.lindqvist@fabrikam.test'];

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class World {
  readonly machines: MachineState[] = [];
  readonly machineById = new Map<string, MachineState>();
  /** sorted by id: the API's (deliberately) not-by-time order */
  readonly alerts: AlertState[] = [];
  readonly alertById = new Map<string, AlertState>();
  private nextAlertIndex = 0;
  private readonly updates: Rng;
  private readonly baseCache = new Map<number, CompiledAlert>();
  private readonly arena = new ByteArena();
  private readonly phantomMachines = new Map<number, MachineBase>();

  constructor(readonly opts: WorldOptions) {
    this.updates = Rng.for(opts.seed, 'updates');
    const mr = Rng.for(opts.seed, 'machine-state');
    for (let i = 0; i < opts.machines; i++) {
      const base = machineBase(opts.seed, i, opts.startMs);
      const m: MachineState = {
        base,
        lastSeenMs: opts.startMs - mr.int(0, 36 * 3600_000),
        healthStatus: mr.pick(['Active', 'Active', 'Active', 'Inactive', 'ImpairedCommunication', 'NoSensorData']),
        riskScore: mr.pick(['None', 'Informational', 'Low', 'Medium', 'High']),
        isolated: false,
      };
      this.machines.push(m);
      this.machineById.set(base.id, m);
    }
    this.seedAlerts();
    if (opts.prebuildAlerts) for (const s of this.alerts) this.alertBase(s);
  }

  private seedAlerts(): void {
    const { alerts: n, historyHours, startMs, seed } = this.opts;
    const r = Rng.for(seed, 'alert-seed');
    const span = historyHours * 3600_000;
    let prevUpdate = startMs - span;
    for (let i = 0; i < n; i++) {
      const createdMs = Math.round(startMs - span + ((i + r.float()) * span) / Math.max(n, 1));
      // About a quarter of alerts share their lastUpdateTime with the previous one: ties are normal.
      let lastUpdateMs = i > 0 && r.chance(0.25) ? prevUpdate : createdMs + r.int(1000, 120_000);
      if (lastUpdateMs > startMs) lastUpdateMs = startMs;
      if (lastUpdateMs < createdMs) lastUpdateMs = createdMs;
      prevUpdate = lastUpdateMs;
      const roll = r.float();
      const status = roll < 0.6 ? 'New' : roll < 0.85 ? 'InProgress' : 'Resolved';
      const s = this.newState(createdMs, lastUpdateMs);
      if (status !== 'New') this.advanceStatus(s, r, lastUpdateMs, status);
      this.alerts.push(s);
      this.alertById.set(s.id, s);
    }
    // One sort instead of n sorted inserts (which are quadratic for large --alerts).
    this.alerts.sort((a, b) => compareIds(a.id, b.id));
  }

  private newState(createdMs: number, lastUpdateMs: number): AlertState {
    const index = this.nextAlertIndex++;
    return {
      index,
      id: alertId(this.opts.seed, index),
      createdMs,
      lastUpdateMs,
      status: 'New',
      assignedTo: null,
      classification: null,
      determination: null,
      investigationState: 'Running',
      resolvedMs: null,
      comments: [],
      version: 0,
    };
  }

  private advanceStatus(s: AlertState, r: Rng, at: number, to: 'InProgress' | 'Resolved'): void {
    if (to === 'InProgress' || s.assignedTo === null) {
      s.status = 'InProgress';
      s.assignedTo = r.pick(analysts);
    }
    if (to === 'Resolved') {
      s.status = 'Resolved';
      const tp = r.chance(0.6);
      s.classification = tp ? 'TruePositive' : 'FalsePositive';
      s.determination = tp ? r.pick(['Malware', 'UnwantedSoftware', 'MultiStagedAttack']) : 'NotMalicious';
      s.investigationState = tp ? 'SuccessfullyRemediated' : 'Benign';
      s.resolvedMs = at;
    }
  }

  private insert(s: AlertState): void {
    let lo = 0;
    let hi = this.alerts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareIds(this.alerts[mid]!.id, s.id) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.alerts.splice(lo, 0, s);
    this.alertById.set(s.id, s);
  }

  private stamp(nowMs: number, prev: number): number {
    const late = this.opts.lateArrivalMs > 0 ? this.updates.int(0, this.opts.lateArrivalMs) : 0;
    return Math.max(nowMs - late, prev + 1);
  }

  /** Adds `n` new alerts, all stamped `nowMs` (a tie by construction) unless late arrival is on. */
  addAlerts(n: number, nowMs: number): AlertState[] {
    const out: AlertState[] = [];
    for (let i = 0; i < n; i++) {
      const lastUpdateMs = this.stamp(nowMs, -Infinity);
      const s = this.newState(lastUpdateMs - this.updates.int(1000, 60_000), lastUpdateMs);
      this.insert(s);
      out.push(s);
    }
    return out;
  }

  /** Changes `n` existing alerts (New→InProgress→Resolved, or a new comment); lastUpdateTime bumped. */
  updateAlerts(n: number, nowMs: number): AlertState[] {
    const out: AlertState[] = [];
    for (let i = 0; i < n && this.alerts.length; i++) {
      let s = this.updates.pick(this.alerts);
      for (let tries = 0; tries < 8 && s.status === 'Resolved'; tries++) s = this.updates.pick(this.alerts);
      if (s.status !== 'Resolved' && this.updates.chance(0.8)) {
        this.advanceStatus(s, this.updates, nowMs, s.status === 'New' ? 'InProgress' : 'Resolved');
      } else {
        s.comments = [...s.comments, { comment: `Reviewed (update ${s.version + 1}) ✓`, createdBy: this.updates.pick(analysts), createdTime: new Date(nowMs).toISOString().replace('Z', '0000Z') }];
      }
      s.lastUpdateMs = this.stamp(nowMs, s.lastUpdateMs);
      s.version++;
      out.push(s);
    }
    return out;
  }

  /** PATCH /api/alerts/{id}: the fields given, a comment appended; a new version (lastUpdateTime bumped). */
  patchAlert(s: AlertState, patch: { status?: AlertState['status']; assignedTo?: string; classification?: string; determination?: string; comment?: string }, by: string, nowMs: number): void {
    if (patch.status !== undefined) {
      s.status = patch.status;
      s.resolvedMs = patch.status === 'Resolved' ? nowMs : null;
    }
    if (patch.assignedTo !== undefined) s.assignedTo = patch.assignedTo;
    if (patch.classification !== undefined) s.classification = patch.classification;
    if (patch.determination !== undefined) s.determination = patch.determination;
    if (patch.comment !== undefined) s.comments = [...s.comments, { comment: patch.comment, createdBy: by, createdTime: new Date(nowMs).toISOString().replace('Z', '0000Z') }];
    s.lastUpdateMs = this.stamp(nowMs, s.lastUpdateMs);
    s.version++;
  }

  /** The ticker's mix: ~40% new alerts, the rest updates; sometimes a machine checks in. */
  tick(n: number, nowMs: number): { added: number; updated: number } {
    let added = 0;
    for (let i = 0; i < n; i++) if (this.updates.chance(0.4) || !this.alerts.length) added++;
    this.addAlerts(added, nowMs);
    this.updateAlerts(n - added, nowMs);
    if (this.machines.length && this.updates.chance(0.5)) {
      const m = this.updates.pick(this.machines);
      m.lastSeenMs = nowMs;
      m.healthStatus = this.updates.pick(['Active', 'Active', 'Inactive', 'ImpairedCommunication']);
    }
    return { added, updated: n - added };
  }

  machineForAlert(index: number): MachineBase {
    const count = this.machines.length;
    const r = Rng.for(this.opts.seed, 'alert-machine', index);
    if (count) return this.machines[r.int(0, count - 1)]!.base;
    // No machines listed (the 404 case): alerts still name a machine, one that /api/machines won't list.
    const k = r.int(0, 9);
    let m = this.phantomMachines.get(k);
    if (!m) this.phantomMachines.set(k, (m = machineBase(this.opts.seed, 1_000_000 + k, this.opts.startMs)));
    return m;
  }

  /** Immutable alert parts, regenerated on demand; a bounded cache (or all, with prebuildAlerts) keeps pages cheap. */
  alertBase(s: AlertState): CompiledAlert {
    let b = this.baseCache.get(s.index);
    if (!b) {
      b = compileAlert(alertBase(this.opts.seed, s.index, s.createdMs, this.machineForAlert(s.index), this.opts.tenantId, this.opts.evidencePerAlert), this.arena);
      if (!this.opts.prebuildAlerts && this.baseCache.size >= 10_000) this.baseCache.delete(this.baseCache.keys().next().value as number);
      this.baseCache.set(s.index, b);
    }
    return b;
  }
}
