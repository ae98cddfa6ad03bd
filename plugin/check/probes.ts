import type { Connector } from '../config/load.js';
import type { ApiFamily } from '../defender/client.js';
import { permissionNeeds, type PermissionNeed, type ProbeId } from './permissions.js';

/**
 * One minimal, read-only call per enabled content type (and for respond): the smallest page each
 * API allows, so the test costs one call of the connector's quota per probe and moves no data.
 */
export interface Probe {
  id: ProbeId;
  checkId: `api:${ProbeId}`;
  title: string;
  path: string;
  query: Record<string, string | number>;
  family: ApiFamily;
  needs: PermissionNeed[];
  /** 404 means "reachable, nothing there" (GET /api/machines answers 404 when there are no machines) */
  notFoundIsEmpty: boolean;
}

const table: Record<ProbeId, Omit<Probe, 'needs' | 'id'>> = {
  alerts: { checkId: 'api:alerts', title: 'alerts API', path: '/api/alerts', query: { $top: 1 }, family: 'standard', notFoundIsEmpty: false },
  host: { checkId: 'api:host', title: 'machines API', path: '/api/machines', query: { $top: 1 }, family: 'standard', notFoundIsEmpty: true },
  // Export assessment: pageSize 1 is the smallest page (default 50 000, max 200 000); 30 calls/min.
  vulnerabilities: {
    checkId: 'api:vulnerabilities',
    title: 'vulnerability export API',
    path: '/api/machines/SoftwareVulnerabilitiesByMachine',
    query: { pageSize: 1 },
    family: 'export',
    notFoundIsEmpty: false,
  },
  machineActions: { checkId: 'api:machineActions', title: 'machine actions API', path: '/api/machineactions', query: { $top: 1 }, family: 'standard', notFoundIsEmpty: false },
  // Harmless: lists at most one machine action; nothing is isolated or released.
  respond: { checkId: 'api:respond', title: 'machine actions API', path: '/api/machineactions', query: { $top: 1 }, family: 'standard', notFoundIsEmpty: false },
};

export function probesFor(connector: Pick<Connector, 'functions' | 'contentTypes'>): Probe[] {
  const needs = permissionNeeds(connector);
  const ids: ProbeId[] = [];
  if (connector.functions.includes('collect')) ids.push(...connector.contentTypes.filter((ct) => ct !== 'hunting'));
  if (connector.functions.includes('respond')) ids.push('respond');
  return ids.map((id) => ({
    id,
    ...table[id],
    // GET /api/machineactions needs a machine read permission, even when the host probe owns it.
    needs: needs.filter((n) => n.probe === id || (id === 'respond' && n.anyOf.includes('Machine.Read.All'))),
  }));
}

export function probeUrl(base: string, p: Probe): string {
  const u = new URL(p.path, base);
  for (const [k, v] of Object.entries(p.query)) u.searchParams.set(k, String(v));
  return decodeURIComponent(u.toString());
}
