import { isUuid } from '../lib/ids';

const URN_UUID = /^urn:uuid:([0-9a-fA-F-]{36})$/i;

/**
 * Extracts the device id from a SAN URI `urn:uuid:<device-id>` (RFC 4122 §3), the identifier devicegate puts into
 * every device certificate so that every concentrator can pass it on.
 *
 * Guarantees: returns the lower-case UUID only for a well-formed `urn:uuid:` URI carrying an RFC 4122 UUID; null for
 * anything else (other URIs, malformed UUIDs, surrounding whitespace inside the URI).
 */
export function deviceIdFromSanUri(uri: string): string | null {
  if (typeof uri !== 'string') return null;
  const m = URN_UUID.exec(uri.trim());
  if (!m) return null;
  const id = m[1]!.toLowerCase();
  return isUuid(id) ? id : null;
}

/**
 * The device id when a certificate CN is itself a device id (devicegate issues CN = device id). Null otherwise.
 * A CN is a claim for lookup and cross-checking only: the certificate record, not the CN, binds a device.
 */
export function deviceIdFromCn(cn: string | null | undefined): string | null {
  if (typeof cn !== 'string') return null;
  const id = cn.trim().toLowerCase();
  return isUuid(id) ? id : null;
}
