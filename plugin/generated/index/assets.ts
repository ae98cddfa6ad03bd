/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * A record of the Assets index: one machine (output of host.assets).
 */
export interface AssetRecord {
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
/**
 * Defender machine id
 */
id: string
/**
 * host name (computerDnsName), lower case; the original spelling stays in microsoft_defender
 */
name?: string
/**
 * the host name's first label, lower case
 */
hostname?: string
/**
 * the host name's DNS domain, lower case
 */
domain?: string
/**
 * primary IP: the interface of lastIpAddress, else the first usable interface that is Up with a MAC
 */
ip?: string
/**
 * interface addresses, without loopback, link-local (APIPA), multicast, unspecified and Down interfaces
 */
iplist?: string[]
/**
 * MAC of the same interface as ip
 */
mac?: string
maclist?: string[]
external_ip?: string
os?: AssetOs
/**
 * firstSeen, epoch milliseconds
 */
first_seen?: number
/**
 * lastSeen, epoch milliseconds
 */
last_seen?: number
health_status?: string
risk_score?: string
exposure_level?: string
device_value?: string
tags?: string[]
/**
 * Entra device id
 */
aad_device_id?: string
rbac_group_name?: string
onboarding_status?: string
agent_version?: string
managed_by?: string
/**
 * merged: Defender merged this machine into merged_into_id (the survivor); excluded: excluded from Defender's views; else active
 */
asset_state?: ("active" | "merged" | "excluded")
/**
 * mergedIntoMachineId: the machine this one was merged into
 */
merged_into_id?: string
potential_duplicate?: boolean
exclusion_reason?: string
cloud?: AssetCloud
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
export interface AssetOs {
platform?: string
/**
 * OS version number (osVersion)
 */
version?: string
build?: number
/**
 * x64, x86, arm64
 */
architecture?: string
/**
 * Defender's version (22H2, 1709)
 */
release?: string
}
export interface AssetCloud {
provider?: string
vm_id?: string
resource_id?: string
subscription_id?: string
}
