/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * transforms/overlays/<name>.json: fields added to one of the package's schemas for this transforms directory (validate, preview, docs and run use the overlaid schema); the package's files stay untouched
 */
export interface SchemaOverlay {
$schema?: string
description?: string
/**
 * the schema to extend, relative to schemas/: an input entity schema (defender/…) or an output index schema (index/…)
 */
schema: string
/**
 * dotted path of each new field → its JSON schema. Output fields go under "ext." (ext.acme.cost_center); input fields anywhere the entity has an object, "[]" walking a list (evidence[].newField). A field the schema already has is an error
 */
fields: {
[k: string]: {

} | undefined
}
}
