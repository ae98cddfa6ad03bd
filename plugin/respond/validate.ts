import type { ValidateFunction } from 'ajv';
import type { AutoContainAlertRecord } from '../generated/respond/alert-record.js';
import type { ContainRequest } from '../generated/respond/contain-request.js';
import type { ReleaseRequest } from '../generated/respond/release-request.js';
import type { ResponseActionRequest } from '../generated/respond/response-action-request.js';
import type { AlertUpdateRequest } from '../generated/respond/alert-update-request.js';
import type { TagRequest } from '../generated/respond/tag-request.js';
import type { IndicatorRequest } from '../generated/respond/indicator-request.js';
import { indicatorValueProblem } from '../defender/indicators.js';
import { ajvProblems, compileSchema } from '../schema-check.js';
import { RequestError } from './body.js';

// Request bodies are checked against schemas/respond/*.schema.json (the types come from the same
// files via `npm run gen`). useDefaults fills isolationType: Full.
const containRequest = compileSchema<ContainRequest>('respond/contain-request.schema.json', { useDefaults: true });
const releaseRequest = compileSchema<ReleaseRequest>('respond/release-request.schema.json', { useDefaults: true });
const alertRecord = compileSchema<AutoContainAlertRecord>('respond/alert-record.schema.json');
const responseActionRequest = compileSchema<ResponseActionRequest>('respond/response-action-request.schema.json');
const alertUpdateRequest = compileSchema<AlertUpdateRequest>('respond/alert-update-request.schema.json');
const tagRequest = compileSchema<TagRequest>('respond/tag-request.schema.json');
const indicatorRequest = compileSchema<IndicatorRequest>('respond/indicator-request.schema.json');

/** The body against its schema: a 400 naming every pointer otherwise. */
function schemaCheck<T>(validate: ValidateFunction<T>, body: unknown, what: string): T {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RequestError(400, 'invalid_request', `${what}: expected a JSON object`);
  if (!validate(body)) {
    const details = ajvProblems(what, validate.errors).map((p) => ({ pointer: p.pointer || '/', message: p.message }));
    throw new RequestError(400, 'invalid_request', `${what}: ${details.map((d) => `${d.pointer}: ${d.message}`).join('; ')}`, details);
  }
  return body as T;
}

function check<T>(validate: ValidateFunction<T>, body: unknown, what: string): T {
  schemaCheck(validate, body, what);
  const b = body as { machineId?: unknown; record?: unknown };
  if ('machineId' in b === 'record' in b) {
    const message = 'record' in b ? 'give either machineId or record, not both' : 'machineId or record is required';
    throw new RequestError(400, 'invalid_request', `${what}: /: ${message}`, [{ pointer: '/', message }]);
  }
  return body as T;
}

export function checkContainRequest(body: unknown): ContainRequest {
  return check(containRequest, body, 'contain request');
}

export function checkReleaseRequest(body: unknown): ReleaseRequest {
  return check(releaseRequest, body, 'release request');
}

/** A scan / quarantine / restrict / unrestrict / collect-package body; `sha1` belongs to quarantine, `scanType` to scan. */
export function checkResponseActionRequest(body: unknown, action: string): ResponseActionRequest {
  const what = `${action} request`;
  const b = check(responseActionRequest, body, what);
  const own: Record<string, string> = { sha1: 'quarantine', scanType: 'scan' };
  for (const [key, owner] of Object.entries(own)) {
    const message = action === owner ? (key === 'sha1' && b.sha1 === undefined ? 'is required (the SHA-1 of the file to stop and quarantine)' : undefined) : key in b ? `only a ${owner} request takes ${key}` : undefined;
    if (message) throw new RequestError(400, 'invalid_request', `${what}: /${key}: ${message}`, [{ pointer: `/${key}`, message }]);
  }
  return b;
}

export function checkTagRequest(body: unknown): TagRequest {
  return check(tagRequest, body, 'tag request');
}

/** An indicator: its value parses as its type; the expiration lies ahead (or may be left out: `mayOmitExpiration`); Audit comes with an alert. */
export function checkIndicatorRequest(body: unknown, opts: { now: number; mayOmitExpiration: boolean }): IndicatorRequest {
  const what = 'indicator request';
  const b = schemaCheck(indicatorRequest, body, what);
  const valueProblem = indicatorValueProblem(b.type, b.value);
  const problem: [string, string] | undefined = valueProblem
    ? ['/value', `does not parse as ${b.type}: ${valueProblem}`]
    : b.expiration !== undefined && Date.parse(b.expiration) <= opts.now
      ? ['/expiration', `${b.expiration} is in the past`]
      : b.expiration === undefined && !opts.mayOmitExpiration
        ? ['/expiration', 'is required: an indicator without expiration stays until deleted, and this token may not submit one (respond.tokens[].indicatorsWithoutExpiration)']
        : b.action === 'Audit' && b.generateAlert === false
          ? ['/generateAlert', 'must be true for the Audit action (Defender requires it)']
          : undefined;
  if (problem) throw new RequestError(400, 'invalid_request', `${what}: ${problem[0]}: ${problem[1]}`, [{ pointer: problem[0], message: problem[1] }]);
  return b;
}

/** An alert update: one of alertId / record, and something to change. */
export function checkAlertUpdateRequest(body: unknown): AlertUpdateRequest {
  const what = 'update-alert request';
  const b = schemaCheck(alertUpdateRequest, body, what);
  const problem = 'alertId' in b === 'record' in b ? ('record' in b ? 'give either alertId or record, not both' : 'alertId or record is required') : !['status', 'assignedTo', 'classification', 'determination', 'comment'].some((k) => k in b) ? 'nothing to update: give status, assignedTo, classification, determination and/or comment' : undefined;
  if (problem) throw new RequestError(400, 'invalid_request', `${what}: /: ${problem}`, [{ pointer: '/', message: problem }]);
  return b;
}

/** Problems of one /v1/fluent/contain record (empty: it has the fields automation reads). */
export function alertRecordProblems(record: unknown): { pointer: string; message: string }[] {
  if (!record || typeof record !== 'object' || Array.isArray(record)) return [{ pointer: '/', message: 'expected an alert record (JSON object)' }];
  if (alertRecord(record)) return [];
  return ajvProblems('record', alertRecord.errors).map((p) => ({ pointer: p.pointer || '/', message: p.message }));
}
