/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * a column of the query's result
 */
export type Column = string

/**
 * The header of a scheduled hunting query (hunting/<name>.kql): the leading `//` comment lines of the file, as YAML. The KQL below it runs through Microsoft Graph runHuntingQuery; each row becomes a Syslog record (msg_class microsoft_defender_hunting).
 */
export interface HuntingQueryHeader {
/**
 * stable id of the query: lower-case words joined by -, unique in the folder; the cursor and xdr_event.name use it
 */
name: string
/**
 * what the query finds (xdr_event.display_name); default: the name
 */
title?: string
/**
 * how often it runs (never more often than the connector's intervalMinutes)
 */
interval: string
/**
 * how far back the first run reaches (default 1h; at most 30d: advanced hunting keeps 30 days)
 */
lookback?: string
/**
 * how far each run reaches back behind the last one, for rows indexed late (default 5m); rows already delivered there are skipped
 */
overlap?: string
/**
 * the result column holding each row's time (a datetime): the windows and the cursor use it
 */
timeColumn: string
/**
 * columns that identify a row (with the time column) for the dedupe in the overlap; default: every column
 * 
 * @minItems 1
 */
key?: [Column, ...(Column)[]]
/**
 * severity and event_score of its records (0–100, as other sources)
 */
severity?: number
/**
 * Syslog field ← result column; the fields the hunting transform (transforms/hunting.syslog.json) takes from `fields`
 */
output?: {
[k: string]: Column | undefined
}
}
