/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */
import type { LakeRecordRef } from './lake-record.js';

/**
 * Body of POST /v1/actions/contain on the response sidecar. Exactly one of machineId or record names the machine (checked in code, so the error can say which).
 */
export interface ContainRequest {
/**
 * name of a connector whose functions include respond
 */
connector: string
/**
 * Defender machine id (40 hex characters); never aadDeviceId or a host name
 */
machineId?: string
record?: LakeRecordRef
/**
 * sent to Defender as Comment and kept in the audit record
 */
comment: string
isolationType?: ("Full" | "Selective")
}
