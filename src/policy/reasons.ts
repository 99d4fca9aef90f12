/**
 * Reason codes of a connection decision. Stable strings: they appear in API responses, audit entries, concentrator
 * logs (`client-deny … "<reason> <decision_id>"`) and dashboards, so a code is never renamed or reused.
 */
export const REASON_CODES = [
  'OK',
  'IDENTITY_MISSING',
  'IDENTITY_MISMATCH',
  'CERT_NOT_OURS',
  'CERT_UNKNOWN',
  'CERT_REVOKED',
  'CERT_NOT_YET_VALID',
  'CERT_EXPIRED',
  'CERT_TOO_OLD',
  'DEVICE_NOT_REGISTERED',
  'DEVICE_NOT_ENROLLED',
  'DEVICE_SUSPENDED',
  'DEVICE_REVOKED',
  'DEVICE_RETIRED',
  'PLATFORM_NOT_ALLOWED',
  'USER_NOT_ALLOWED',
  'INTERNAL_ERROR',
] as const;

/** A reason code `decide()` can return. */
export type ReasonCode = (typeof REASON_CODES)[number];

/**
 * Codes only adapters produce, locally, when devicegate gave no usable answer within the deadline. They are denies
 * too (fail closed) and never come out of `decide()`.
 */
export const ADAPTER_REASON_CODES = ['GATEWAY_UNAVAILABLE', 'GATEWAY_RESPONSE_INVALID'] as const;
export type AdapterReasonCode = (typeof ADAPTER_REASON_CODES)[number];

/** True for a string that is one of the policy reason codes. */
export function isReasonCode(s: unknown): s is ReasonCode {
  return typeof s === 'string' && (REASON_CODES as readonly string[]).includes(s);
}
