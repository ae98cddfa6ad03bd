import type { Connector } from '../config/load.js';
import { isMachineId } from '../defender/machine-actions.js';
import { RequestError } from './body.js';

/**
 * The machine a contain/release names: `machineId`, or the record's own Defender machine id
 * (host record: microsoft_defender.id; alert record: microsoft_defender.machineId). Nothing else:
 * aadDeviceId is null for non-Entra devices and a host name is ambiguous (peers isolated the wrong
 * machine that way), so neither is ever used.
 */
export function machineIdFrom(body: { machineId?: string; record?: Record<string, unknown> }): string {
  if (body.machineId !== undefined) {
    if (!isMachineId(body.machineId)) throw new RequestError(400, 'invalid_machine_id', '/machineId: must be 40 hex characters (a Defender machine id)');
    return body.machineId.toLowerCase();
  }
  const record = body.record ?? {};
  const md = (record.microsoft_defender ?? {}) as Record<string, unknown>;
  const [field, value] = record.msg_class === 'microsoft_defender_host' ? ['id', md.id] : ['machineId', md.machineId];
  if (!isMachineId(value)) {
    throw new RequestError(
      400,
      'invalid_machine_id',
      `/record/microsoft_defender/${field}: must be a Defender machine id (40 hex characters) for a ${String(record.msg_class)} record; got ${value === undefined ? 'nothing' : JSON.stringify(String(value).slice(0, 64))} (aadDeviceId and host names are never used)`,
    );
  }
  return value.toLowerCase();
}

/** A record may only be acted on through the connector of its own tenant (and engid_name when present). */
export function checkRecordOwner(record: Record<string, unknown> | undefined, connector: Connector, pointer = '/record'): void {
  if (!record) return;
  if (record.tenant_name !== connector.tenant) {
    throw new RequestError(403, 'tenant_mismatch', `${pointer}/tenant_name: the record belongs to tenant ${JSON.stringify(record.tenant_name)}, not to connector ${connector.name}'s tenant`);
  }
  if (record.engid_name !== undefined && record.engid_name !== `microsoft_defender_${connector.name}`) {
    throw new RequestError(403, 'connector_mismatch', `${pointer}/engid_name: the record was collected by ${JSON.stringify(record.engid_name)}, not by connector ${connector.name}`);
  }
}
