/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

export type MachineActionRelatedFileInfo = ({
fileIdentifier?: (string | null)
/**
 * Sha1, Sha256, Md5
 */
fileIdentifierType?: (string | null)
[k: string]: unknown | undefined
} | null)

/**
 * A response action (POST /api/machines/{id}/isolate, GET /api/machineactions/{id}, GET /api/machineactions for the machineActions content type; docs: defender-endpoint/api/machineaction.md). Input schema: describes what the API sends. Unknown extra fields are allowed (the API adds fields without notice) and are kept under microsoft_defender.
 */
export interface MachineAction {
/**
 * GUID
 */
id: string
/**
 * RunAntiVirusScan, Offboard, LiveResponse, CollectInvestigationPackage, Isolate, Unisolate, StopAndQuarantineFile, RestrictCodeExecution, UnrestrictCodeExecution
 */
type: string
/**
 * Full or Selective for isolation; Quick or Full for AV scan; null otherwise
 */
scope?: (string | null)
title?: (string | null)
/**
 * opaque (an app GUID for app-only tokens, not documented)
 */
requestor?: (string | null)
requestorComment?: (string | null)
/**
 * Pending, InProgress, Succeeded, Failed, TimeOut, Cancelled (the last four are final)
 */
status: string
machineId?: (string | null)
computerDnsName?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
creationDateTimeUtc?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
lastUpdateDateTimeUtc?: (string | null)
/**
 * spelling used by the list examples; ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
lastUpdateTimeUtc?: (string | null)
cancellationRequestor?: (string | null)
cancellationComment?: (string | null)
/**
 * ISO-8601 UTC with up to 7 fractional digits, e.g. 2021-01-26T20:33:59.2Z
 */
cancellationDateTimeUtc?: (string | null)
errorHResult?: (number | null)
externalID?: (string | null)
/**
 * spelling observed in real payloads
 */
externalId?: (string | null)
/**
 * observed: Portal, PublicApi
 */
requestSource?: (string | null)
/**
 * live response only
 */
commands?: (unknown[] | null)
/**
 * observed, undocumented
 */
troubleshootInfo?: {
[k: string]: unknown | undefined
}
relatedFileInfo?: MachineActionRelatedFileInfo
[k: string]: unknown | undefined
}
