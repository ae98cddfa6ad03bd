import { type AlertsOptions, WindowedCollector, type WindowedSource } from './alerts.js';

/**
 * Every machine action of the tenant (portal, other tools, this sidecar) by lastUpdateDateTimeUtc:
 * each status change is a new update time, so a new record. The docs list $filter on id, status,
 * machineId, type, requestor and creationDateTimeUtc only; lastUpdateDateTimeUtc is what public
 * integrations filter on (observed, not documented). The list examples spell the field
 * lastUpdateTimeUtc, so either spelling keys the dedupe.
 */
export const machineActionsSource: WindowedSource = {
  content: 'machineActions',
  path: '/api/machineactions',
  filterField: 'lastUpdateDateTimeUtc',
  timeFields: ['lastUpdateDateTimeUtc', 'lastUpdateTimeUtc'],
  noun: 'machine action',
  overlapMinutes: (c) => c.alertOverlapMinutes,
};

export class MachineActionsCollector extends WindowedCollector {
  constructor(opts: Partial<AlertsOptions> = {}) {
    super(machineActionsSource, opts);
  }
}
