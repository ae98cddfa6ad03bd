// Custom indicators (POST / GET / DELETE /api/indicators): kept in memory, one per value and type
// (a second POST updates it), with the documented checks: required fields, enums, Audit needing
// generateAlert, a value that parses as its type (400 InvalidHashValue / InvalidIpAddress /
// InvalidUrl / InvalidDomainName), 15 000 active indicators per tenant.
import { indicatorTypes, indicatorValueProblem, type IndicatorKind } from '../defender/indicators.js';
import { readBody, sendError, sendJson, type Exchange } from './http-util.js';
import { matches, ODataError, parseFilter } from './odata.js';
import { iso7 } from './time.js';

const actions = ['Alert', 'Warn', 'Block', 'Audit', 'BlockAndRemediate', 'AlertAndBlock', 'Allowed'];
const severities = ['Informational', 'Low', 'Medium', 'High'];
const errorCodes: Record<IndicatorKind, string> = { sha1: 'InvalidHashValue', sha256: 'InvalidHashValue', md5: 'InvalidHashValue', certificate: 'InvalidHashValue', ip: 'InvalidIpAddress', url: 'InvalidUrl', domain: 'InvalidDomainName' };
const MAX_ACTIVE = 15_000;

export class IndicatorStore {
  private readonly byId = new Map<string, Record<string, unknown>>();
  private next = 1;

  all(): Record<string, unknown>[] {
    return [...this.byId.values()];
  }

  /** An indicator another tool (the portal, another app) submitted: no application of this product. */
  addForeign(fields: { indicatorValue: string; indicatorType: string; action: string; application?: string | null; createdBy: string }, nowMs: number): string {
    const id = String(this.next++);
    this.byId.set(id, { id, title: 'submitted elsewhere', description: 'submitted elsewhere', severity: 'Informational', expirationTime: null, application: null, creationTimeDateTimeUtc: iso7(nowMs), ...fields });
    return id;
  }

  async post(x: Exchange, origin: string, nowMs: number, requestor: string): Promise<boolean> {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(x.req)) as Record<string, unknown>;
    } catch {
      return sendError(x, 400, 'InvalidRequestBody', 'Request body must be a JSON object');
    }
    for (const key of ['indicatorValue', 'indicatorType', 'action', 'title', 'description']) {
      if (typeof body?.[key] !== 'string' || !(body[key] as string).trim()) return sendError(x, 400, 'MissingRequiredParameter', `Parameter '${key}' is missing or empty`);
    }
    const kind = (Object.keys(indicatorTypes) as IndicatorKind[]).find((k) => indicatorTypes[k] === body.indicatorType);
    if (!kind) return sendError(x, 400, 'InvalidInput', `indicatorType must be one of ${Object.values(indicatorTypes).join(', ')}`);
    const problem = indicatorValueProblem(kind, body.indicatorValue as string);
    if (problem) return sendError(x, 400, errorCodes[kind], `${body.indicatorValue as string}: ${problem}`);
    if (!actions.includes(body.action as string)) return sendError(x, 400, 'InvalidInput', `action must be one of ${actions.join(', ')}`);
    if (body.action === 'Audit' && body.generateAlert !== true) return sendError(x, 400, 'InvalidInput', 'generateAlert must be true for the Audit action');
    if (body.severity !== undefined && !severities.includes(body.severity as string)) return sendError(x, 400, 'InvalidInput', `severity must be one of ${severities.join(', ')}`);
    if (body.expirationTime !== undefined && Number.isNaN(Date.parse(body.expirationTime as string))) return sendError(x, 400, 'InvalidInput', 'expirationTime is not a DateTimeOffset');
    const existing = this.all().find((i) => i.indicatorType === body.indicatorType && String(i.indicatorValue).toLowerCase() === (body.indicatorValue as string).toLowerCase());
    const active = this.all().filter((i) => i.expirationTime === null || Date.parse(i.expirationTime as string) > nowMs).length;
    if (!existing && active >= MAX_ACTIVE) return sendError(x, 400, 'InvalidInput', `The tenant has ${MAX_ACTIVE} active indicators (the limit)`);
    const id = (existing?.id as string | undefined) ?? String(this.next++);
    const indicator: Record<string, unknown> = {
      id,
      indicatorValue: body.indicatorValue,
      indicatorType: body.indicatorType,
      action: body.action,
      // the application is kept from the first submission (post-ti-indicator.md)
      application: existing?.application ?? body.application ?? null,
      source: requestor,
      sourceType: 'AadApp',
      createdBy: existing?.createdBy ?? requestor,
      creationTimeDateTimeUtc: existing?.creationTimeDateTimeUtc ?? iso7(nowMs),
      lastUpdateTime: iso7(nowMs),
      lastUpdatedBy: requestor,
      expirationTime: body.expirationTime ?? null,
      severity: body.severity ?? 'Informational',
      title: body.title,
      description: body.description,
      recommendedActions: body.recommendedActions ?? null,
      generateAlert: body.generateAlert ?? false,
      rbacGroupNames: body.rbacGroupNames ?? [],
    };
    this.byId.set(id, indicator);
    return sendJson(x, 200, { '@odata.context': `${origin}/api/$metadata#Indicators/$entity`, ...indicator });
  }

  list(x: Exchange, origin: string): Promise<boolean> {
    let clauses;
    try {
      const filter = x.url.searchParams.get('$filter');
      clauses = filter ? parseFilter(filter, { application: 'string', indicatorType: 'string', indicatorValue: 'string', action: 'string', severity: 'string', createdBy: 'string', title: 'string' }) : [];
    } catch (e) {
      if (e instanceof ODataError) return sendError(x, 400, 'ODataError', e.message);
      throw e;
    }
    const value = this.all().filter((i) => matches(clauses, (f) => (typeof i[f] === 'string' ? (i[f] as string) : null)));
    return sendJson(x, 200, { '@odata.context': `${origin}/api/$metadata#Indicators`, value });
  }

  async remove(x: Exchange, id: string): Promise<boolean> {
    if (!this.byId.delete(id)) return sendError(x, 404, 'ResourceNotFound', `Indicator ${id} was not found`);
    x.res.writeHead(204);
    x.res.end();
    return true;
  }
}
