/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

export type AlertRelatedUser = ({
userName?: (string | null)
domainName?: (string | null)
[k: string]: unknown | undefined
} | null)

/**
 * A Microsoft Defender for Endpoint alert (GET /api/alerts, docs: defender-endpoint/api/alerts.md). Input schema: describes what the API sends. Unknown extra fields are allowed (the API adds fields without notice) and are kept under microsoft_defender.
 */
export interface Alert {
/**
 * alert id, e.g. da637472900382838869_1364969609
 */
id: string
incidentId?: (number | null)
investigationId?: (number | null)
/**
 * owner of the alert; observed "Automation"
 */
assignedTo?: (string | null)
/**
 * UnSpecified, Informational, Low, Medium, High
 */
severity?: string
/**
 * Unknown, New, InProgress, Resolved
 */
status?: string
/**
 * TruePositive, InformationalExpectedActivity, FalsePositive
 */
classification?: (string | null)
/**
 * MultiStagedAttack, MaliciousUserActivity, CompromisedUser, Malware, Phishing, UnwantedSoftware, SecurityTesting, LineOfBusinessApplication, ConfirmedActivity, NotMalicious/Clean, InsufficientData, Other
 */
determination?: (string | null)
/**
 * Unknown, Terminated, SuccessfullyRemediated, Benign, Failed, PartiallyRemediated, Running, PendingApproval, PendingResource, PartiallyInvestigated, TerminatedByUser, TerminatedBySystem, Queued, InnerFailure, PreexistingAlert, UnsupportedOs, UnsupportedAlertType, SuppressedAlert
 */
investigationState?: (string | null)
/**
 * e.g. WindowsDefenderAtp, WindowsDefenderAv; no full list is documented
 */
detectionSource?: string
/**
 * GUID of the detector
 */
detectorId?: (string | null)
/**
 * e.g. Execution, SuspiciousActivity, Malware, DefenseEvasion; no full list is documented
 */
category?: string
threatFamilyName?: (string | null)
threatName?: (string | null)
title?: string
description?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
alertCreationTime?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
firstEventTime?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
lastEventTime?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z; the collector's watermark and the record's event time
 */
lastUpdateTime?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
resolvedTime?: (string | null)
/**
 * 40-hex device id (what Contain Host isolates)
 */
machineId?: (string | null)
computerDnsName?: (string | null)
rbacGroupName?: (string | null)
aadTenantId?: (string | null)
/**
 * MITRE ATT&CK technique ids, e.g. ["T1059.001"]
 */
mitreTechniques?: string[]
relatedUser?: AlertRelatedUser
comments?: AlertComment[]
/**
 * only filled with $expand=evidence; may be empty or missing
 */
evidence?: AlertEvidence[]
_machine?: InventoryMachine
[k: string]: unknown | undefined
}
export interface AlertComment {
comment?: (string | null)
createdBy?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
createdTime?: (string | null)
[k: string]: unknown | undefined
}
/**
 * One evidence item of an alert (GET /api/alerts?$expand=evidence). Fields that do not apply to the entity type are null.
 */
export interface AlertEvidence {
/**
 * User, Process, File, Ip, Url, Registry..., no full list is documented
 */
entityType?: string
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
evidenceCreationTime?: (string | null)
sha1?: (string | null)
sha256?: (string | null)
fileName?: (string | null)
filePath?: (string | null)
processId?: (number | null)
processCommandLine?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
processCreationTime?: (string | null)
parentProcessId?: (number | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
parentProcessCreationTime?: (string | null)
parentProcessFileName?: (string | null)
parentProcessFilePath?: (string | null)
ipAddress?: (string | null)
url?: (string | null)
registryKey?: (string | null)
registryHive?: (string | null)
registryValueType?: (string | null)
registryValue?: (string | null)
accountName?: (string | null)
domainName?: (string | null)
userSid?: (string | null)
aadUserId?: (string | null)
userPrincipalName?: (string | null)
/**
 * "Detected" or null in the examples
 */
detectionStatus?: (string | null)
/**
 * registry evidence: the value's name
 */
registryValueName?: (string | null)
[k: string]: unknown | undefined
}
/**
 * Not from the API: the alert's machine as the host collector last read it (GET /api/machines), attached by machineId from the connector's machine inventory (plugin/collect/inventory.ts); absent while the machine is unknown. Only the fields declared here are kept in the inventory. Fields starting with _ are never part of the raw copy (microsoft_defender).
 */
export interface InventoryMachine {
lastIpAddress?: (string | null)
ipAddresses?: InventoryIpAddress[]
/**
 * e.g. Windows10, Windows11, WindowsServer2019, Ubuntu
 */
osPlatform?: (string | null)
/**
 * 32-bit, 64-bit
 */
osArchitecture?: (string | null)
/**
 * deprecated: use osArchitecture
 */
osProcessor?: (string | null)
/**
 * Normal, Low, High
 */
deviceValue?: (string | null)
/**
 * None, Low, Medium, High
 */
exposureLevel?: (string | null)
/**
 * None, Informational, Low, Medium, High
 */
riskScore?: (string | null)
machineTags?: string[]
rbacGroupName?: (string | null)
/**
 * String in the docs, a number in the examples
 */
rbacGroupId?: (number | string | null)
}
export interface InventoryIpAddress {
ipAddress?: (string | null)
/**
 * 12 hex digits without separators in the examples
 */
macAddress?: (string | null)
/**
 * observed: Ethernet, SoftwareLoopback, Other
 */
type?: (string | null)
/**
 * e.g. Up
 */
operationalStatus?: (string | null)
}
