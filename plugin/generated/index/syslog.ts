/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * A record of the Syslog index (output of alerts.syslog, host.syslog, vulnerabilities.syslog, machine-actions.syslog and hunting.syslog). Every field outside microsoft_defender is declared here; transforms may only target these.
 */
export interface SyslogRecord {
/**
 * event time, epoch ms: alerts when Defender raised the alert (alertCreationTime, else firstEventTime, else lastUpdateTime); host: lastSeen; vulnerabilities: the change's eventTimestamp, export records the export's time
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
 * 0–100, the security component: alerts from Defender's severity (lookup alert-severity), vulnerabilities from CVSS / severity raised by exploitability
 */
severity?: number
/**
 * 0–100, confidence that the alert is a real threat: classification, determination, investigation state, evidence detectionStatus, detection source (first that is known)
 */
fidelity?: number
/**
 * 0–100, the alert score: rounded geometric mean of severity and fidelity (vulnerabilities: the severity)
 */
event_score?: number
/**
 * label of event_score: critical ≥ 75, major 50–74, minor 25–49, notice < 25
 */
event_score_band?: ("critical" | "major" | "minor" | "notice")
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
 * alerts: lastUpdateTime; machine actions: lastUpdateDateTimeUtc; epoch ms (a status or classification change is a new version, not new activity)
 */
last_update_time?: number
/**
 * alerts: id|lastUpdateTime, the key of this version of the alert (the collector's dedupe key)
 */
alert_version?: string
investigation_state?: string
detector_id?: string
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
 * host name, lower case (computerDnsName / deviceName)
 */
srcip_host?: string
/**
 * the host name's first label
 */
srcip_host_short?: string
/**
 * the host name's DNS domain (after the first label)
 */
srcip_domain?: string
/**
 * host: primary IP (as the Assets ip)
 */
srcip?: string
/**
 * host: MAC of the primary IP's interface
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
 * sha256 of the chosen file (sha1 when it has none); same evidence item as file_name and file_path
 */
file_hash?: string
file_sha1?: string
file_sha256?: string
/**
 * Detected, Blocked or Prevented (the chosen file's detectionStatus)
 */
file_detection_status?: string
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
process_name?: string
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
process_path?: string
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
process_id?: number
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
process_cmdline?: string
/**
 * alerts: the first Process evidence (all fields from that one item), epoch ms
 */
process_creation_time?: number
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
parent_process_id?: number
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
parent_process_name?: string
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
parent_process_path?: string
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
process_sha1?: string
/**
 * alerts: the first Process evidence (all fields from that one item)
 */
process_sha256?: string
/**
 * alerts: the first Ip evidence, public addresses preferred (for geo and reputation)
 */
dstip?: string
/**
 * alerts: dstip is a public (global unicast) address
 */
dstip_public?: boolean
/**
 * alerts: the first Url evidence
 */
url?: string
/**
 * alerts: host of url, lower case
 */
url_domain?: string
/**
 * alerts: the first Registry evidence (all fields from that one item)
 */
registry_key?: string
/**
 * alerts: the first Registry evidence (all fields from that one item)
 */
registry_hive?: string
/**
 * alerts: the first Registry evidence (all fields from that one item)
 */
registry_value_name?: string
/**
 * alerts: the first Registry evidence (all fields from that one item)
 */
registry_value?: string
/**
 * alerts: the first Registry evidence (all fields from that one item)
 */
registry_value_type?: string
/**
 * alerts: every evidence item as one object (fields of one item kept together)
 */
evidence?: EvidenceItem[]
file_name_list?: string[]
/**
 * alerts: every File evidence path; vulnerabilities: diskPaths
 */
file_path_list?: string[]
sha1_list?: string[]
sha256_list?: string[]
process_name_list?: string[]
process_cmdline_list?: string[]
parent_process_name_list?: string[]
/**
 * host: interface addresses without loopback, link-local, multicast and Down interfaces
 */
ip_list?: string[]
/**
 * alerts: every Ip evidence address (IOCs)
 */
evidence_ip_list?: string[]
url_list?: string[]
/**
 * vulnerabilities: registryPaths
 */
registry_key_list?: string[]
/**
 * host: MACs of the interfaces in ip_list
 */
mac_list?: string[]
external_ip?: string
os_platform?: string
/**
 * OS version number (10.0.19045…): host osVersion, vulnerabilities osVersion
 */
os_version?: string
/**
 * host: Defender's version (release such as 22H2 or 1709)
 */
os_release?: string
os_build?: number
/**
 * x64, x86, arm64 (Defender's 64-bit / 32-bit normalised)
 */
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
/**
 * host: as in the Assets index
 */
asset_state?: ("active" | "merged" | "excluded")
/**
 * host: mergedIntoMachineId
 */
merged_into_id?: string
/**
 * host: isPotentialDuplication
 */
potential_duplicate?: boolean
cve?: string
cvss_score?: number
/**
 * low, medium, high, critical (Defender's vulnerabilitySeverityLevel)
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
/**
 * vulnerabilities: remediated for a Fixed change, else open
 */
vuln_status?: ("open" | "remediated")
/**
 * vulnerabilities: Defender's vulnerability id when it is not a CVE (TVM-…)
 */
vuln_id?: string
/**
 * vulnerabilities: the least event_score the exploitability level asks for (an exploit in a kit or verified raises the score)
 */
exploit_score?: number
/**
 * machine actions: the action's id (GUID)
 */
action_id?: string
/**
 * machine actions: RunAntiVirusScan, Offboard, LiveResponse, CollectInvestigationPackage, Isolate, Unisolate, StopAndQuarantineFile, RestrictCodeExecution, UnrestrictCodeExecution
 */
action_type?: string
/**
 * machine actions: Pending, InProgress, Succeeded, Failed, TimeOut, Cancelled (the last four are final)
 */
action_status?: string
/**
 * machine actions: the status is final (Succeeded, Failed, TimeOut, Cancelled)
 */
action_final?: boolean
/**
 * machine actions: Full or Selective for isolation, Quick or Full for an antivirus scan
 */
action_scope?: string
/**
 * machine actions: who asked for it (a user, or an application id for app-only tokens)
 */
action_requestor?: string
/**
 * machine actions: requestorComment
 */
action_comment?: string
/**
 * machine actions: requestSource (e.g. Portal, PublicApi)
 */
action_source?: string
/**
 * machine actions: the caller's correlation id (externalID)
 */
action_external_id?: string
/**
 * machine actions: creationDateTimeUtc, epoch ms
 */
action_creation_time?: number
/**
 * machine actions: errorHResult when not 0
 */
action_error_hresult?: number
action_cancel_requestor?: string
action_cancel_comment?: string
/**
 * machine actions: cancellationDateTimeUtc, epoch ms
 */
action_cancel_time?: number
/**
 * hunting: the name of the scheduled query (hunting/<file>.kql header) that found the row
 */
hunting_query?: string
/**
 * extension fields a transforms directory declares with schema overlays (README: Overlays); not set by the packaged transforms
 */
ext?: {

}
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
 * stable per detection: microsoft_defender-<detectorId>, else a slug of the title
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
 * every MITRE ATT&CK technique of the alert with its tactic (ATT&CK's first tactic of the technique; revoked ids replaced)
 */
ttps?: XdrTtp[]
/**
 * ATT&CK release of the technique and tactic tables
 */
framework_version?: string
}
/**
 * MITRE ATT&CK id and name (tactic from the alert category, technique from the first of mitreTechniques)
 */
export interface XdrIdName {
id?: string
name?: string
}
export interface XdrTtp {
tactic?: XdrIdName
technique?: XdrIdName
}
export interface EvidenceItem {
type?: string
created?: number
file_name?: string
file_path?: string
sha1?: string
sha256?: string
detection_status?: string
process_id?: number
process_cmdline?: string
process_creation_time?: number
parent_process_id?: number
parent_process_name?: string
parent_process_path?: string
ip?: string
url?: string
url_domain?: string
registry_key?: string
registry_hive?: string
registry_value_name?: string
registry_value?: string
registry_value_type?: string
account_name?: string
domain_name?: string
user_sid?: string
aad_user_id?: string
user_principal_name?: string
}
