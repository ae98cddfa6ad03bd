/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * `defender-fluent test --json`: the result of the connectivity and permission check. It validates authentication and connectivity only, not data flow.
 */
export interface CheckOutput {
command: "test"
/**
 * defender-fluent version that ran the check
 */
version: string
/**
 * what the check covers (authentication and connectivity) and what it does not (data flow)
 */
scope: string
configFile: string
/**
 * true when every check of every tested connector passed (warnings allowed)
 */
ok: boolean
/**
 * 0 every check passed, 1 a check failed, 2 the configuration is invalid
 */
exitCode: (0 | 1 | 2)
/**
 * configuration problems outside any connector (unreadable file, YAML syntax, output, respond, unknown --connector)
 */
problems: CheckConfigProblem[]
connectors: ConnectorCheckReport[]
}
export interface CheckConfigProblem {
file: string
/**
 * JSON pointer into the config ('' = the whole file)
 */
pointer: string
line?: number
message: string
/**
 * the problem as `validate` prints it (file:line: pointer: message)
 */
text: string
}
export interface ConnectorCheckReport {
name: string
/**
 * no check failed
 */
ok: boolean
/**
 * https://host of the Defender API that was called
 */
apiEndpoint?: string
functions?: ("collect" | "respond")[]
contentTypes?: ("alerts" | "host" | "vulnerabilities" | "machineActions" | "hunting")[]
/**
 * the connector's red status was cleared because every check passed
 */
statusCleared?: boolean
checks: CheckItem[]
}
export interface CheckItem {
id: ("lock" | "config" | "token" | "permissions" | "api:alerts" | "api:host" | "api:vulnerabilities" | "api:machineActions" | "api:hunting" | "api:respond" | "status")
title: string
/**
 * warn does not fail the run; skip = not run because an earlier check failed or it does not apply
 */
result: ("pass" | "fail" | "warn" | "skip")
/**
 * what was found
 */
detail: string
/**
 * what to change, naming the config key or the Entra / Defender setting
 */
fix?: string
/**
 * JSON pointers of the config values the fix is about
 */
configKeys?: string[]
/**
 * for the config check: the problems of this connector, as `validate` reports them
 */
problems?: CheckConfigProblem[]
request?: CheckRequest
defenderError?: CheckDefenderError
entraError?: CheckEntraError
retryAfterSeconds?: number
permissions?: CheckPermissions
}
export interface CheckRequest {
method: string
url: string
status?: number
}
/**
 * Defender's error envelope, quoted for Microsoft support (secrets redacted)
 */
export interface CheckDefenderError {
code?: string
message?: string
/**
 * correlation id
 */
target?: string
}
export interface CheckEntraError {
aadsts?: string
errorClass?: string
code?: string
message?: string
}
export interface CheckPermissions {
granted: string[]
/**
 * one entry per need; alternatives joined with ' or '
 */
missing: string[]
}
