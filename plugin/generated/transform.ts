/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * a value, or an object (e.g. {id, name}) to set an object field in one step
 */
export type LookupValue = (string | number | boolean | {

})
/**
 * dotted path into the input entity; a segment ending in [] walks an array (evidence[].sha1); $tenant, $connector and $writeTime are the mapping context; @name.field reads a field of the item picked by the transform's "items"; inside objects, "." is the element itself
 */
export type Path = string
/**
 * conversion(s) applied in order to the value (to each item for collect)
 */
export type Converts = (Conversion | [Conversion, ...(Conversion)[]])
/**
 * epochMs: ISO-8601 (up to 7 fractional digits) or the export API's YYYY-MM-DD HH:MM:SS[.fffffff] to epoch ms (UTC); number: numeric value; string; lower/upper case; ip: normalised IPv4/IPv6 text; mac: aa:bb:cc:dd:ee:ff (all-zero dropped); slug: lower-case words joined by -, at most 80 characters; urlHost: the host of a URL (lower case); integer: rounded number; hostLabel: a host name's first label; dnsDomain: what follows it (lower case)
 */
export type Conversion = ("epochMs" | "number" | "string" | "lower" | "upper" | "ip" | "mac" | "slug" | "urlHost" | "integer" | "hostLabel" | "dnsDomain")
/**
 * lookup table(s) applied after the conversions, in order; a key that is not in a table (and no default) sets nothing
 */
export type Lookups = (string | [string, ...(string)[]])
/**
 * one condition, or a list that must all hold
 */
export type Conditions = (Condition | [Condition, ...(Condition)[]])
/**
 * a path relative to the element ("." = the element), or {from, convert, lookup, maxLength}
 */
export type ObjectField = (Path | {
from: (Path | [(Path | FromAlternative), ...((Path | FromAlternative))[]])
convert?: Converts
lookup?: Lookups
maxLength?: number
})

/**
 * A declarative mapping from one Defender entity to one index record (transforms/<content>.<index>.json). Data only: no code. Checked at load time against this schema, the input entity schema and the output index schema.
 */
export interface TransformFile {
$schema?: string
description?: string
/**
 * content type whose entities this transform maps
 */
content: ("alerts" | "host" | "vulnerabilities" | "machineActions" | "hunting")
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
tag: ("alerts" | "hostSyslog" | "hostAssets" | "vulnerabilities" | "machineActions" | "hunting")
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
/**
 * named evidence items: each picks ONE element of an array (the first matching the first preference, else the first matching the second, …); rules read several fields of that same element as @name.field, so nothing is stitched from different elements
 */
items?: {
[k: string]: ItemPick | undefined
}
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
 * sets one output field; exactly one of const / from / template / collect / objects / score / raw
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
 * copy from a path, or the first non-empty of several paths (each a path or {path, convert, lookup})
 */
from?: (Path | [(Path | FromAlternative), ...((Path | FromAlternative))[]])
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
convert?: Converts
lookup?: Lookups
/**
 * value used when the result is empty
 */
default?: (string | number | boolean | {

} | unknown[])
when?: Conditions
objects?: ObjectsSource
score?: ScoreSource
/**
 * strings longer than this are cut to it (long descriptions); applies to from and template results
 */
maxLength?: number
}
/**
 * one alternative of from with its own conversions and lookups (applied before the rule's)
 */
export interface FromAlternative {
path: Path
convert?: Converts
lookup?: Lookups
}
/**
 * values at path (relative to each element of the array at each), for the elements where the condition holds
 */
export interface CollectSource {
each: Path
where?: Conditions
path: Path
}
/**
 * holds when the value at path equals a value, is one of a list, exists (non-empty), equals the value at another path (equalsPath, read from the entity's root), or is an IP address of one of the classes (ip); exactly one of equals / in / exists / equalsPath / ip / startsWith; not: true negates it
 */
export interface Condition {
path: Path
equals?: (string | number | boolean)
/**
 * @minItems 1
 */
in?: [(string | number | boolean), ...((string | number | boolean))[]]
exists?: boolean
equalsPath?: Path
/**
 * IP address classes (ipaddr.js ranges; public = global unicast); a value that is not an IP address matches none
 * 
 * @minItems 1
 */
ip?: [("public" | "private" | "loopback" | "linkLocal" | "multicast" | "unspecified" | "broadcast" | "carrierGradeNat" | "uniqueLocal" | "reserved"), ...(("public" | "private" | "loopback" | "linkLocal" | "multicast" | "unspecified" | "broadcast" | "carrierGradeNat" | "uniqueLocal" | "reserved"))[]]
/**
 * negate the condition (not-equals, not-in, missing, not of these IP classes)
 */
not?: boolean
/**
 * the value is a string starting with this (case-insensitive)
 */
startsWith?: string
}
/**
 * a list of objects, one per element of the array at each (where the condition holds); every field of one object comes from that same element
 */
export interface ObjectsSource {
each: Path
where?: Conditions
/**
 * drop an object equal to one already in the list (ATT&CK ids that revoked ids collapse onto); off by default: it costs a comparison per object
 */
distinct?: boolean
fields: {
[k: string]: ObjectField | undefined
}
}
/**
 * an integer 0–100 computed from numeric output fields set by earlier rules (those not set are left out)
 */
export interface ScoreSource {
/**
 * geometricMean: rounded geometric mean (a low confidence pulls a high severity down); max: the largest
 */
method: ("geometricMean" | "max")
/**
 * output fields (dotted)
 * 
 * @minItems 1
 */
of: [string, ...(string)[]]
}
/**
 * picks one element of the array at each
 */
export interface ItemPick {
each: Path
/**
 * conditions (or lists of conditions that must all hold) tried in order; the first element matching the earliest one is picked
 * 
 * @minItems 1
 */
prefer: [Conditions, ...(Conditions)[]]
}
