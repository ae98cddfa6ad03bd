/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */
import type { LakeRecordRef } from './lake-record.js';

/**
 * Body of POST /v1/actions/scan, /quarantine, /restrict, /unrestrict and /collect-package on the response sidecar. Exactly one of machineId or record names the machine; sha1 is required by quarantine and allowed only there, scanType only by scan (checked in code, so the error can say which).
 */
export interface ResponseActionRequest {
connector: string
machineId?: string
record?: LakeRecordRef
comment: string
/**
 * scan: Quick (default) or Full
 */
scanType?: ("Quick" | "Full")
/**
 * quarantine: the file's SHA-1 (40 hex characters)
 */
sha1?: string
}
