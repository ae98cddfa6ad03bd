/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */

/**
 * Body of POST /v1/indicators on the response sidecar (Defender's POST /api/indicators, Ti.ReadWrite). The value must parse as its type and the expiration lie in the future (checked in code, so the error can say why); an indicator without expiration needs respond.tokens[].indicatorsWithoutExpiration.
 */
export interface IndicatorRequest {
connector: string
/**
 * FileSha1, FileSha256, FileMd5, CertificateThumbprint, IpAddress, Url, DomainName
 */
type: ("sha1" | "sha256" | "md5" | "certificate" | "ip" | "url" | "domain")
value: string
action: ("Alert" | "Warn" | "Block" | "Audit" | "BlockAndRemediate" | "AlertAndBlock" | "Allowed")
severity?: ("Informational" | "Low" | "Medium" | "High")
title: string
/**
 * default: the title
 */
description?: string
recommendedActions?: string
/**
 * ISO 8601, in the future
 */
expiration?: string
/**
 * default: true for Audit (which requires it), else Defender's default
 */
generateAlert?: boolean
}
