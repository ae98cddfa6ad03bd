/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * A record of the Syslog index (output of alerts.syslog, host.syslog and vulnerabilities.syslog). Every field outside microsoft_defender is declared here; transforms may only target these.
 */
export interface SyslogRecord {
/**
 * event time (alerts: lastUpdateTime; host: lastSeen; vulnerabilities: eventTimestamp or lastSeenTimestamp), epoch milliseconds
 */
timestamp: number
/**
 * time the collector emitted the record, epoch milliseconds
 */
write_time: number
/**
 * microsoft_defender_alerts | _host | _vulnerabilities | _status | _action
 */
msg_class: string
msg_origin: MsgOrigin
/**
 * tenant of the connector (config connectors[].tenant)
 */
tenant_name: string
/**
 * microsoft_defender_<connector name>
 */
engid_name: string
microsoft_defender: RawDefenderEntity
/**
 * set when the record failed its index schema check in run: the record is still delivered, and counted
 */
transform_error?: string
xdr_event?: XdrEvent
/**
 * critical (score ≥ 75), major (50–74), minor (25–49), notice (< 25)
 */
severity?: ("critical" | "major" | "minor" | "notice")
/**
 * 0–100
 */
event_score?: number
/**
 * alerts: New, In Progress, Closed, Unknown
 */
event_status?: string
alert_id?: string
incident_id?: number
alert_category?: string
detection_source?: string
threat_name?: string
classification?: string
determination?: string
assigned_to?: string
/**
 * alerts, epoch milliseconds
 */
alert_creation_time?: number
/**
 * alerts, epoch milliseconds
 */
first_event_time?: number
/**
 * alerts, epoch milliseconds
 */
last_event_time?: number
/**
 * alerts, epoch milliseconds
 */
resolved_time?: number
/**
 * host name (computerDnsName / deviceName)
 */
srcip_host?: string
/**
 * host IP address
 */
srcip?: string
/**
 * host MAC address, aa:bb:cc:dd:ee:ff
 */
srcmac?: string
/**
 * Defender machine id
 */
host_id?: string
user_name?: string
user_domain?: string
/**
 * every user name of the alert (related user, evidence accounts and UPNs)
 */
user_list?: string[]
user_sid_list?: string[]
/**
 * first file name of the evidence
 */
file_name?: string
file_path?: string
/**
 * sha256 of the first file evidence (sha1 when no sha256)
 */
file_hash?: string
file_name_list?: string[]
file_path_list?: string[]
sha1_list?: string[]
sha256_list?: string[]
process_name_list?: string[]
process_cmdline_list?: string[]
parent_process_name_list?: string[]
/**
 * IP addresses (alert evidence; host interfaces)
 */
ip_list?: string[]
url_list?: string[]
registry_key_list?: string[]
mac_list?: string[]
external_ip?: string
os_platform?: string
os_version?: string
os_build?: number
os_architecture?: string
/**
 * host: firstSeen; vulnerabilities: firstSeenTimestamp, epoch milliseconds
 */
first_seen?: number
/**
 * host: lastSeen; vulnerabilities: lastSeenTimestamp, epoch milliseconds
 */
last_seen?: number
health_status?: string
risk_score?: string
exposure_level?: string
device_value?: string
tags?: string[]
aad_device_id?: string
rbac_group_name?: string
onboarding_status?: string
agent_version?: string
cve?: string
cvss_score?: number
/**
 * low, medium, high, critical
 */
vuln_severity?: string
exploitability?: string
software_vendor?: string
software_name?: string
software_version?: string
recommended_update?: string
recommended_update_id?: string
security_update_available?: boolean
/**
 * vulnerability delta export: New, Fixed, Updated
 */
delta_status?: string
}
export interface MsgOrigin {
source: "microsoft_defender"
vendor: "microsoft"
category: "endpoint"
processor: MsgOriginProcessor
}
export interface MsgOriginProcessor {
name: "microsoft_defender"
type: "log_collector"
}
/**
 * the raw API entity, API field names kept, nulls and empty strings removed
 */
export interface RawDefenderEntity {
[k: string]: unknown | undefined
}
/**
 * alerts: the third-party native alert
 */
export interface XdrEvent {
/**
 * microsoft_defender-<category>-<tactic> style id
 */
name?: string
/**
 * alert title
 */
display_name?: string
description?: string
tactic?: XdrIdName
technique?: XdrIdName
/**
 * MITRE technique ids
 */
ttps?: string[]
}
/**
 * MITRE ATT&CK id and name (tactic from the alert category, technique from the first of mitreTechniques)
 */
export interface XdrIdName {
id?: string
name?: string
}
