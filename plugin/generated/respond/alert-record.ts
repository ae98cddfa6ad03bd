/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * One record of a POST /v1/fluent/contain payload (Fluentd out_http: JSON array or NDJSON): an alert record as the collector emits it. Only the fields below are read; the rest is ignored.
 */
export interface AutoContainAlertRecord {
msg_class: "microsoft_defender_alerts"
tenant_name: string
/**
 * microsoft_defender_<connector name>
 */
engid_name: string
microsoft_defender: AutoContainAlert
[k: string]: unknown | undefined
}
export interface AutoContainAlert {
id: string
machineId: string
severity: string
detectionSource?: string
category?: string
machineTags?: string[]
[k: string]: unknown | undefined
}
