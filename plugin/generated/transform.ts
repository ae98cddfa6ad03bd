/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

export type LookupValue = (string | number | boolean)
/**
 * dotted path into the input entity; a segment ending in [] walks an array (evidence[].sha1); $tenant, $connector and $writeTime are the mapping context
 */
export type Path = string
/**
 * epochMs: ISO-8601 (up to 7 fractional digits) or the export API's YYYY-MM-DD HH:MM:SS[.fffffff] to epoch ms (UTC); number: numeric value; string; lower/upper case; ip: normalised IPv4/IPv6 text; mac: aa:bb:cc:dd:ee:ff (all-zero dropped)
 */
export type Conversion = ("epochMs" | "number" | "string" | "lower" | "upper" | "ip" | "mac")

/**
 * A declarative mapping from one Defender entity to one index record (transforms/<content>.<index>.json). Data only: no code. Checked at load time against this schema, the input entity schema and the output index schema.
 */
export interface TransformFile {
$schema?: string
description?: string
/**
 * content type whose entities this transform maps
 */
content: ("alerts" | "host" | "vulnerabilities")
/**
 * input entity schema, relative to schemas/ (e.g. defender/alert.schema.json); every source path is checked against it
 */
input: string
/**
 * output index schema, relative to schemas/ (e.g. index/syslog.schema.json); every target is checked against it
 */
output: string
/**
 * Fluent tag suffix (key of tagSuffix): the record is emitted as <tagPrefix>.<suffix>
 */
tag: ("alerts" | "hostSyslog" | "hostAssets" | "vulnerabilities")
/**
 * lookup tables local to this file; shared tables live in transforms/lookups/<name>.json
 */
lookups?: {
[k: string]: LookupTable | undefined
}
/**
 * applied in order; a rule whose value is empty (missing, null, "" or []) sets nothing
 * 
 * @minItems 1
 */
fields: [FieldRule, ...(FieldRule)[]]
}
/**
 * either entries (exact key → value) or bands (first band whose min ≤ the number)
 */
export interface LookupTable {
$schema?: string
description?: string
/**
 * entries only: keys match regardless of case
 */
caseInsensitive?: boolean
entries?: {
[k: string]: LookupValue | undefined
}
/**
 * @minItems 1
 */
bands?: [LookupBand, ...(LookupBand)[]]
default?: LookupValue
}
export interface LookupBand {
min: number
value: LookupValue
}
/**
 * sets one output field; exactly one of const / from / template / collect / raw
 */
export interface FieldRule {
/**
 * dotted path in the output record (checked against the index schema)
 */
target: string
description?: string
/**
 * a constant value
 */
const?: (string | number | boolean | {

} | unknown[])
/**
 * copy from a path, or the first non-empty of several paths
 */
from?: (Path | [Path, ...(Path)[]])
/**
 * string template: {path} or {path|conversion|lookup:table} placeholders; a missing value renders as nothing; {{ and }} are literal braces
 */
template?: string
/**
 * deduplicated list of every non-empty value at these paths
 * 
 * @minItems 1
 */
collect?: [(Path | CollectSource), ...((Path | CollectSource))[]]
/**
 * the whole entity, with nulls and empty strings removed
 */
raw?: true
/**
 * conversion(s) applied in order to the value (to each item for collect)
 */
convert?: (Conversion | [Conversion, ...(Conversion)[]])
/**
 * lookup table(s) applied after the conversions, in order; a key that is not in a table (and no default) sets nothing
 */
lookup?: (string | [string, ...(string)[]])
/**
 * value used when the result is empty
 */
default?: (string | number | boolean | {

} | unknown[])
when?: Condition
}
/**
 * values at path (relative to each element of the array at each), for the elements where the condition holds
 */
export interface CollectSource {
each: Path
where?: Condition
path: Path
}
/**
 * holds when the value at path equals a value, is one of a list, or exists (non-empty); exactly one of equals / in / exists
 */
export interface Condition {
path: Path
equals?: (string | number | boolean)
/**
 * @minItems 1
 */
in?: [(string | number | boolean), ...((string | number | boolean))[]]
exists?: boolean
}
