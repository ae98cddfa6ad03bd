/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */
import type { LakeRecordRef } from './lake-record.js';

/**
 * Body of POST /v1/actions/release on the response sidecar. Exactly one of machineId or record names the machine (checked in code, so the error can say which).
 */
export interface ReleaseRequest {
connector: string
machineId?: string
record?: LakeRecordRef
comment: string
}
