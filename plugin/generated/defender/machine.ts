/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * observed, undocumented
 */
export type MachineVmMetadata = ({
vmId?: (string | null)
cloudProvider?: (string | null)
resourceId?: (string | null)
subscriptionId?: (string | null)
[k: string]: unknown | undefined
} | null)

/**
 * A device (GET /api/machines, docs: defender-endpoint/api/machine.md). Input schema: describes what the API sends. Unknown extra fields are allowed (the API adds fields without notice) and are kept under microsoft_defender.
 */
export interface Machine {
/**
 * 40-hex device id
 */
id: string
computerDnsName?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
firstSeen?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z; time of the last full device report (about every 24 h), not the UI's last seen
 */
lastSeen?: (string | null)
/**
 * e.g. Windows10, Windows11, WindowsServer2019, Ubuntu
 */
osPlatform?: (string | null)
/**
 * observed, undocumented
 */
osVersion?: (string | null)
/**
 * deprecated: use osArchitecture
 */
osProcessor?: (string | null)
/**
 * e.g. 1709, 22H2
 */
version?: (string | null)
osBuild?: (number | null)
lastIpAddress?: (string | null)
lastExternalIpAddress?: (string | null)
/**
 * observed, undocumented
 */
agentVersion?: (string | null)
/**
 * Active, Inactive, ImpairedCommunication, NoSensorData, NoSensorDataImpairedCommunication, Unknown
 */
healthStatus?: (string | null)
/**
 * Normal, Low, High
 */
deviceValue?: (string | null)
/**
 * String in the docs, a number in the examples
 */
rbacGroupId?: (number | string | null)
rbacGroupName?: (string | null)
/**
 * None, Informational, Low, Medium, High
 */
riskScore?: (string | null)
/**
 * None, Low, Medium, High
 */
exposureLevel?: (string | null)
isAadJoined?: (boolean | null)
/**
 * Entra (Azure AD) device id; null for devices that are not Entra joined
 */
aadDeviceId?: (string | null)
machineTags?: string[]
/**
 * onboarded, CanBeOnboarded, Unsupported, InsufficientInfo (observed as Onboarded)
 */
onboardingStatus?: (string | null)
/**
 * 32-bit, 64-bit
 */
osArchitecture?: (string | null)
/**
 * observed, undocumented
 */
mergedIntoMachineId?: (string | null)
/**
 * observed, undocumented
 */
isPotentialDuplication?: (boolean | null)
/**
 * observed, undocumented
 */
isExcluded?: (boolean | null)
/**
 * observed, undocumented
 */
exclusionReason?: (string | null)
/**
 * observed: Intune, MicrosoftDefenderForEndpoint
 */
managedBy?: (string | null)
/**
 * observed, undocumented
 */
managedByStatus?: (string | null)
ipAddresses?: MachineIpAddress[]
vmMetadata?: MachineVmMetadata
[k: string]: unknown | undefined
}
export interface MachineIpAddress {
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
[k: string]: unknown | undefined
}
