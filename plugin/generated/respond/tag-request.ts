/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */
import type { LakeRecordRef } from './lake-record.js';

/**
 * Body of POST /v1/actions/tag on the response sidecar (Defender's POST /api/machines/{id}/tags). Exactly one of machineId or record names the machine (checked in code, so the error can say which).
 */
export interface TagRequest {
connector: string
machineId?: string
record?: LakeRecordRef
/**
 * the machine tag
 */
tag: string
action: ("add" | "remove")
}
