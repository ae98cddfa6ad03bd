// Machine actions (isolate / unisolate) with the documented life cycle Pending → InProgress →
// Succeeded (or Failed / TimeOut / Cancelled). Status is computed from the emulator clock, so
// advancing time moves actions along without timers.
import { randomUUID } from 'node:crypto';
import { iso7 } from './time.js';

export type ActionType = 'Isolate' | 'Unisolate' | 'RunAntiVirusScan' | 'CollectInvestigationPackage' | 'StopAndQuarantineFile' | 'RestrictCodeExecution' | 'UnrestrictCodeExecution';
/** what other tools and the portal did before the emulator started (seeded history) */
export const historyTypes: ActionType[] = ['RunAntiVirusScan', 'CollectInvestigationPackage', 'StopAndQuarantineFile', 'RestrictCodeExecution', 'UnrestrictCodeExecution', 'Isolate', 'Unisolate'];
export type ActionStatus = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed' | 'TimeOut' | 'Cancelled';
export type ActionOutcome = 'Succeeded' | 'Failed' | 'TimeOut';
const finalStatuses: ActionStatus[] = ['Succeeded', 'Failed', 'TimeOut', 'Cancelled'];

export interface MachineAction {
  id: string;
  type: ActionType;
  scope: string | null;
  requestor: string;
  requestorComment: string;
  machineId: string;
  computerDnsName: string;
  createdMs: number;
  outcome: ActionOutcome;
  cancelled: { ms: number; comment: string; requestor: string } | null;
  /** StopAndQuarantineFile: the file's SHA-1 */
  file?: string;
}

export class ActionBook {
  readonly all: MachineAction[] = [];
  private readonly byId = new Map<string, MachineAction>();
  private readonly nextOutcomes: ActionOutcome[] = [];

  constructor(
    public pendingMs: number,
    public inProgressMs: number,
  ) {}

  /** The next created actions end with these outcomes (default Succeeded). */
  queueOutcomes(...outcomes: ActionOutcome[]): void {
    this.nextOutcomes.push(...outcomes);
  }

  status(a: MachineAction, nowMs: number): { status: ActionStatus; lastUpdateMs: number } {
    const started = a.createdMs + this.pendingMs;
    const done = started + this.inProgressMs;
    if (a.cancelled && a.cancelled.ms < done) return { status: 'Cancelled', lastUpdateMs: a.cancelled.ms };
    if (nowMs < started) return { status: 'Pending', lastUpdateMs: a.createdMs };
    if (nowMs < done) return { status: 'InProgress', lastUpdateMs: started };
    return { status: a.outcome, lastUpdateMs: done };
  }

  isFinal(a: MachineAction, nowMs: number): boolean {
    return finalStatuses.includes(this.status(a, nowMs).status);
  }

  /**
   * The action still running on this machine that a new one of `type` conflicts with: isolate and
   * unisolate block each other; the other types one of their own type.
   */
  active(machineId: string, nowMs: number, type: ActionType = 'Isolate'): MachineAction | undefined {
    const isolation = (t: ActionType) => t === 'Isolate' || t === 'Unisolate';
    return this.all.find((a) => a.machineId === machineId && (isolation(type) ? isolation(a.type) : a.type === type) && !this.isFinal(a, nowMs));
  }

  create(init: Omit<MachineAction, 'id' | 'outcome' | 'cancelled'>): MachineAction {
    const a: MachineAction = { ...init, id: randomUUID(), outcome: this.nextOutcomes.shift() ?? 'Succeeded', cancelled: null };
    this.all.push(a);
    this.byId.set(a.id, a);
    return a;
  }

  get(id: string): MachineAction | undefined {
    return this.byId.get(id.toLowerCase()) ?? this.byId.get(id);
  }

  /** Isolation as the finished actions left it at `nowMs`. */
  isIsolated(machineId: string, nowMs: number): boolean {
    let state = false;
    let at = -Infinity;
    for (const a of this.all) {
      if (a.machineId !== machineId) continue;
      const s = this.status(a, nowMs);
      if (s.status === 'Succeeded' && s.lastUpdateMs >= at) {
        at = s.lastUpdateMs;
        state = a.type === 'Isolate';
      }
    }
    return state;
  }

  entity(a: MachineAction, nowMs: number): Record<string, unknown> {
    const s = this.status(a, nowMs);
    return {
      id: a.id,
      type: a.type,
      title: null,
      requestor: a.requestor,
      requestorComment: a.requestorComment,
      status: s.status,
      machineId: a.machineId,
      computerDnsName: a.computerDnsName,
      creationDateTimeUtc: iso7(a.createdMs),
      lastUpdateDateTimeUtc: iso7(s.lastUpdateMs),
      cancellationRequestor: a.cancelled?.requestor ?? null,
      cancellationComment: a.cancelled?.comment ?? null,
      cancellationDateTimeUtc: a.cancelled ? iso7(a.cancelled.ms) : null,
      errorHResult: s.status === 'Failed' ? -2147467259 : 0,
      scope: a.scope,
      externalId: null,
      requestSource: 'PublicApi',
      relatedFileInfo: a.file ? { fileIdentifier: a.file, fileIdentifierType: 'Sha1' } : null,
      commands: [],
      troubleshootInfo: null,
    };
  }
}
