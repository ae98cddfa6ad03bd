/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * Body of POST /v1/actions/update-alert on the response sidecar (Defender's PATCH /api/alerts/{id}). Exactly one of alertId or record (an alert record of the data lake) names the alert, and at least one of status, assignedTo, classification, determination, comment is given (checked in code, so the error can say which).
 */
export interface AlertUpdateRequest {
connector: string
alertId?: string
record?: AlertUpdateLakeRecordRef
status?: ("New" | "InProgress" | "Resolved")
assignedTo?: string
classification?: ("TruePositive" | "InformationalExpectedActivity" | "FalsePositive")
determination?: ("MultiStagedAttack" | "MaliciousUserActivity" | "CompromisedUser" | "Malware" | "Phishing" | "UnwantedSoftware" | "Other" | "SecurityTesting" | "LineOfBusinessApplication" | "ConfirmedActivity" | "NotMalicious" | "InsufficientData")
comment?: string
}
export interface AlertUpdateLakeRecordRef {
msg_class: "microsoft_defender_alerts"
tenant_name: string
engid_name?: string
microsoft_defender: {
id: string
[k: string]: unknown | undefined
}
[k: string]: unknown | undefined
}
