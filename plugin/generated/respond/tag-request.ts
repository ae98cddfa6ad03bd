/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

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
/**
 * A host record (msg_class microsoft_defender_host: machine id at microsoft_defender.id) or an alert record (microsoft_defender_alerts: microsoft_defender.machineId), exactly as the data lake holds it. Other fields are kept as they are.
 */
export interface LakeRecordRef {
msg_class: ("microsoft_defender_host" | "microsoft_defender_alerts")
tenant_name: string
engid_name?: string
microsoft_defender: {
[k: string]: unknown | undefined
}
[k: string]: unknown | undefined
}
