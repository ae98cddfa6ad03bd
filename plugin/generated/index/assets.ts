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
 * computer DNS name
 */
name?: string
/**
 * last IP address
 */
ip?: string
/**
 * every interface IP address
 */
iplist?: string[]
/**
 * first non-loopback MAC, aa:bb:cc:dd:ee:ff
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
version?: string
build?: number
architecture?: string
}
