/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * One row of a scheduled hunting query (Microsoft Graph runHuntingQuery: huntingQueryResults.results[i]) as the hunting collector hands it to the transforms: the query's name and title from its header, the row's time (the header's timeColumn), the row itself, and `fields`: the header's output mapping applied to the row (Syslog field name → the column's value). Input schema: describes what the collector builds.
 */
export interface HuntingRow {
/**
 * the query's name (header `name`)
 */
query: string
/**
 * header `title`
 */
title?: (string | null)
/**
 * the .kql file's name
 */
queryFile?: (string | null)
/**
 * the row's timeColumn value (ISO-8601)
 */
time?: (string | null)
/**
 * header `severity`
 */
severity?: (number | null)
/**
 * the result row: column → value, as Graph returned it
 */
row: {
[k: string]: unknown | undefined
}
/**
 * the header's output mapping applied: only these Syslog fields can be mapped
 */
fields?: {
/**
 * Defender machine id (DeviceId)
 */
host_id?: (string | null)
/**
 * device name (DeviceName)
 */
srcip_host?: (string | null)
/**
 * the device's IP address
 */
srcip?: (string | null)
/**
 * account name
 */
user_name?: (string | null)
/**
 * account domain
 */
user_domain?: (string | null)
file_name?: (string | null)
file_path?: (string | null)
file_sha1?: (string | null)
file_sha256?: (string | null)
process_name?: (string | null)
process_cmdline?: (string | null)
process_id?: (string | number | null)
parent_process_name?: (string | null)
/**
 * remote IP address
 */
dstip?: (string | null)
url?: (string | null)
registry_key?: (string | null)
threat_name?: (string | null)
/**
 * an alert the row refers to
 */
alert_id?: (string | null)
}
}
