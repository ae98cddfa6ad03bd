/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * Where cursors, window journals and host digests live: files under stateDir (one collector process), or a PostgreSQL database shared by any number of `run` replicas, which then share the connector tasks through leases in that database.
 */
export type StateConfig = (FileStateConfig | PostgresStateConfig)
export type OutputConfig = (StdoutOutputConfig | ForwardOutputConfig)
export type Guid = string

/**
 * defender.yaml: the one configuration file of the collector, the response sidecar and the checks.
 */
export interface DefenderFluentConfig {
/**
 * Folder for cursors, the collector lock, status and the audit log. Relative paths are resolved against the config file's folder.
 */
stateDir?: string
state?: StateConfig
logLevel?: ("trace" | "debug" | "info" | "warn" | "error")
/**
 * On SIGTERM/SIGINT, how long to wait for in-flight acknowledgements before exiting.
 */
shutdownTimeoutSeconds?: number
/**
 * At most this many polls (connector × content type) run at once; the others wait their turn, oldest due first. Default: 4 × the CPU cores (at least 4).
 */
maxConcurrentPolls?: number
/**
 * Collector processes: above 1, `run` starts this many worker processes, each running a disjoint share of the connectors, and keeps the lock, status.json and the metrics snapshot for all of them; a worker that dies is restarted.
 */
workers?: number
/**
 * How often the collector emits a connector status record.
 */
statusIntervalMinutes?: number
output?: OutputConfig
/**
 * @minItems 1
 */
connectors: [ConnectorConfig, ...(ConnectorConfig)[]]
respond?: RespondConfig
health?: HealthConfig
}
export interface FileStateConfig {
/**
 * Files under stateDir; one collector per stateDir (a lock file).
 */
type: "file"
}
export interface PostgresStateConfig {
type: "postgres"
/**
 * postgres://user:password@host:port/database; use ${env:NAME} or ${file:path}: it holds a password (never logged).
 */
url: string
/**
 * How long a replica's lease on a task lasts without renewal (renewed every third of it): a killed replica's tasks are taken over within about this long.
 */
leaseSeconds?: number
/**
 * Connections this process keeps to the database.
 */
poolSize?: number
}
export interface StdoutOutputConfig {
type: "stdout"
tagPrefix?: string
}
export interface ForwardOutputConfig {
type: "forward"
host?: string
port?: number
tagPrefix?: string
ackTimeoutSeconds?: number
maxBatchRecords?: number
maxBatchBytes?: number
tls?: ForwardTlsConfig
sharedKey?: string
username?: string
password?: string
clientHostname?: string
reconnectMaxSeconds?: number
}
export interface ForwardTlsConfig {
/**
 * PEM file of the CA that signed the server's certificate
 */
ca?: string
/**
 * client certificate PEM file (mutual TLS)
 */
cert?: string
/**
 * client key PEM file (mutual TLS)
 */
key?: string
/**
 * skip server certificate verification (testing only)
 */
insecure?: boolean
}
export interface ConnectorConfig {
/**
 * Unique; printable ASCII without spaces. Part of engid_name and of cursor file names.
 */
name: string
/**
 * tenant_name stamped on every record
 */
tenant: string
/**
 * @minItems 1
 */
functions?: [("collect" | "respond"), ...(("collect" | "respond"))[]]
/**
 * Defender API host or https:// URL
 */
apiEndpoint?: string
/**
 * Microsoft Graph host or https:// URL for the hunting content type (runHuntingQuery): graph.microsoft.com, or the national clouds graph.microsoft.us / dod-graph.microsoft.us
 */
graphEndpoint?: string
/**
 * Folder of the scheduled hunting queries (*.kql) the hunting content type runs; default: the packaged hunting/ folder. Relative paths are resolved against the config file's folder.
 */
huntingDir?: string
authorityHost?: string
clientId: Guid
directoryId: Guid
clientSecret: string
intervalMinutes?: number
lookbackHours?: number
/**
 * @minItems 1
 */
contentTypes?: [("alerts" | "host" | "vulnerabilities" | "machineActions" | "hunting"), ...(("alerts" | "host" | "vulnerabilities" | "machineActions" | "hunting"))[]]
allowCustomEndpoint?: boolean
caFile?: string
/**
 * HTTP(S) proxy URL; defaults to HTTPS_PROXY from the environment
 */
proxy?: string
/**
 * a plain call (and a token request) must be answered whole within this; a streamed page may not fall silent for longer
 */
requestTimeoutSeconds?: number
/**
 * the most time the server may take to send one streamed page (alerts, machines, export pages), not counting the time the pipeline holds the collector back
 */
pageTimeoutSeconds?: number
alertOverlapMinutes?: number
hostFullRefreshHours?: number
vulnerabilityBaselineDays?: number
vulnerabilityPageSize?: number
/**
 * @maxItems 100
 */
logFilters?: LogFilter[]
}
export interface LogFilter {
name: string
/**
 * @minItems 1
 */
contentTypes?: [("alerts" | "host" | "vulnerabilities" | "machineActions" | "hunting"), ...(("alerts" | "host" | "vulnerabilities" | "machineActions" | "hunting"))[]]
/**
 * @minItems 1
 * @maxItems 10
 */
conditions: [FilterCondition]|[FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition]|[FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition, FilterCondition]
}
export interface FilterCondition {
/**
 * dotted path on the output record
 */
field: string
/**
 * lt / lte / gt / gte compare numbers (severity, fidelity, event_score are 0-100)
 */
op: ("eq" | "ne" | "in" | "contains" | "startsWith" | "regex" | "exists" | "lt" | "lte" | "gt" | "gte")
value?: unknown
}
export interface RespondConfig {
listen?: string
tls?: RespondTlsConfig
maxBodyBytes?: number
tokens?: RespondToken[]
auto?: AutoResponsePolicy
}
export interface RespondTlsConfig {
cert: string
key: string
}
export interface RespondToken {
name: string
token: string
/**
 * @minItems 1
 */
connectors: [string, ...(string)[]]
/**
 * the /v1/actions/* (and, with indicators, /v1/indicators) this token may call (default contain and release: the other response actions are opt-in per token)
 * 
 * @minItems 1
 */
actions?: [("contain" | "release" | "scan" | "quarantine" | "restrict" | "unrestrict" | "collect-package" | "update-alert" | "tag" | "indicators"), ...(("contain" | "release" | "scan" | "quarantine" | "restrict" | "unrestrict" | "collect-package" | "update-alert" | "tag" | "indicators"))[]]
/**
 * may submit an indicator without expiration (it stays until deleted)
 */
indicatorsWithoutExpiration?: boolean
}
export interface AutoResponsePolicy {
enabled?: boolean
dryRun?: boolean
minSeverity?: ("Informational" | "Low" | "Medium" | "High")
detectionSources?: string[]
categories?: string[]
maxPerHourPerConnector?: number
maxPerHour?: number
excludeTag?: string
isolationType?: ("Full" | "Selective")
}
/**
 * Optional HTTP listener of `run`: GET /healthz (liveness), /readyz (readiness: every connector green or within its first interval), /metrics (Prometheus). No token and no secrets: bind it to 127.0.0.1 or a pod-internal address.
 */
export interface HealthConfig {
/**
 * host:port, e.g. 127.0.0.1:9464
 */
listen: string
}
