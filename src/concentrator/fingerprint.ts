import { createHash, X509Certificate } from 'node:crypto';
import { badRequest } from '../domain/errors';

const COLON_HEX_RE = /^(?:[0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/;

/**
 * Normalises a SHA-256 certificate fingerprint to 64 lower-case hex digits.
 *
 * Accepted forms (what concentrators and humans paste): OpenVPN `tls_digest_sha256_0` (`7f:9b:…`, lower case, colon
 * separated), OpenSSL `SHA256 Fingerprint=7F:9B:…`, bare hex in any case, hex separated by spaces or dashes, an
 * optional `sha256:` / `sha256=` prefix, and base64 / base64url of the 32 digest bytes.
 *
 * Guarantees: the result is exactly 64 lower-case hex digits; any other input (wrong length, a SHA-1 fingerprint,
 * mixed separators, garbage) is an AppError `bad_request` / `FINGERPRINT_INVALID`.
 */
export function normalizeSha256Fingerprint(input: string): string {
  if (typeof input !== 'string' || input.length > 200) {
    throw badRequest('FINGERPRINT_INVALID', 'The certificate fingerprint is not a SHA-256 fingerprint.');
  }
  // OpenVPN's tls_digest_sha256 form, the one every OpenVPN connect sends.
  if (COLON_HEX_RE.test(input)) return input.replace(/:/g, '').toLowerCase();
  let s = input.trim();
  const prefix = /^(sha-?256)(\s*fingerprint)?\s*[:=]\s*/i.exec(s);
  if (prefix) s = s.slice(prefix[0].length);
  if (/^[0-9a-fA-F]{64}$/.test(s)) return s.toLowerCase();
  for (const sep of [':', ' ', '-']) {
    const groups = s.split(sep);
    if (groups.length === 32 && groups.every((g) => /^[0-9a-fA-F]{2}$/.test(g))) return groups.join('').toLowerCase();
  }
  if (/^[A-Za-z0-9+/]{43}=?$/.test(s) || /^[A-Za-z0-9_-]{43}$/.test(s)) {
    const bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes.toString('hex');
  }
  throw badRequest('FINGERPRINT_INVALID', 'The certificate fingerprint is not a SHA-256 fingerprint.');
}

/** What devicegate reads out of a PEM certificate a concentrator forwarded (OpenVPN `--tls-export-cert`). */
export interface PemCertificateFacts {
  readonly sha256: string;
  /** Lower-case hex without leading zeros. */
  readonly serialCanonical: string;
  readonly issuer: string;
  readonly subject: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly sanUris: readonly string[];
}

/**
 * Parses one PEM certificate. Guarantees: the fingerprint is computed here over the DER, never taken from the
 * caller; a PEM that does not parse is an AppError `bad_request` / `CERT_PEM_INVALID`.
 */
export function readPemCertificate(pem: string): PemCertificateFacts {
  let cert: X509Certificate;
  try {
    if (typeof pem !== 'string' || pem.length > 16384 || !pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('not a PEM certificate');
    cert = new X509Certificate(pem);
  } catch (cause) {
    throw badRequest('CERT_PEM_INVALID', 'The forwarded certificate could not be parsed.', { cause });
  }
  const sanUris = (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
  return {
    sha256: createHash('sha256').update(cert.raw).digest('hex'),
    serialCanonical: BigInt(`0x${cert.serialNumber}`).toString(16),
    issuer: cert.issuer,
    subject: cert.subject,
    notBeforeMs: Date.parse(cert.validFrom),
    notAfterMs: Date.parse(cert.validTo),
    sanUris,
  };
}
