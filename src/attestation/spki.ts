import { createHash, createPublicKey, timingSafeEqual } from 'node:crypto';
import { AppError } from '../domain/errors';
import { ecSpki, rsaSpki } from '../tpm';
import { attestationMalformed } from './errors';
import { decodeOid, derChildren, readDer } from './der';

const CURVE_BY_OID: Readonly<Record<string, number>> = {
  '1.2.840.10045.3.1.7': 0x0003,
  '1.3.132.0.34': 0x0004,
  '1.3.132.0.35': 0x0005,
};
const CURVE_BY_JWK: Readonly<Record<string, number>> = { 'P-256': 0x0003, 'P-384': 0x0004, 'P-521': 0x0005 };
const SIZE: Readonly<Record<number, number>> = { 0x0003: 32, 0x0004: 48, 0x0005: 66 };

/** Re-encodes RSA and uncompressed NIST EC SPKIs without OpenSSL; null for anything else. */
function rebuild(spki: Buffer): Buffer | null {
  const C = 'SPKI_MALFORMED';
  const outer = readDer(spki, 0, C);
  if (outer.tag !== 0x30 || outer.raw.length !== spki.length) return null;
  const [alg, bits, ...rest] = derChildren(outer, C);
  if (!alg || !bits || rest.length || alg.tag !== 0x30 || bits.tag !== 0x03 || bits.content[0] !== 0) return null;
  const [oid, params, ...more] = derChildren(alg, C);
  if (!oid || oid.tag !== 0x06 || more.length) return null;
  const algOid = decodeOid(oid.content);
  const key = bits.content.subarray(1);
  if (algOid === '1.2.840.113549.1.1.1') {
    if (params && !(params.tag === 0x05 && params.content.length === 0)) return null;
    const seq = readDer(key, 0, C);
    if (seq.tag !== 0x30 || seq.raw.length !== key.length) return null;
    const [n, e, ...x] = derChildren(seq, C);
    if (!n || !e || x.length || n.tag !== 0x02 || e.tag !== 0x02 || e.content.length > 4) return null;
    if ((n.content[0]! & 0x80) !== 0 || (e.content[0]! & 0x80) !== 0) return null;
    return rsaSpki(n.content, e.content.readUIntBE(0, e.content.length));
  }
  if (algOid === '1.2.840.10045.2.1' && params?.tag === 0x06) {
    const curve = CURVE_BY_OID[decodeOid(params.content)];
    if (curve === undefined) return null;
    const size = SIZE[curve]!;
    if (key.length !== 1 + 2 * size || key[0] !== 0x04) return null;
    return ecSpki(curve, key.subarray(1, 1 + size), key.subarray(1 + size));
  }
  return null;
}

/**
 * Canonical SubjectPublicKeyInfo DER: the same key always gives the same bytes (EC points uncompressed, RSA with
 * NULL parameters and minimal integers), so hashes and comparisons do not depend on how a client encoded it. RSA
 * and NIST EC keys are re-encoded directly; anything else goes through OpenSSL. Throws `SPKI_MALFORMED`.
 */
export function canonicalSpki(spki: Buffer): Buffer {
  try {
    const fast = rebuild(spki);
    if (fast) return fast;
    // Slow path (e.g. a compressed EC point): OpenSSL decodes, but its export keeps the input's point format, so
    // re-encode from the JWK coordinates instead.
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const jwk = key.export({ format: 'jwk' });
    const curve = jwk.kty === 'EC' ? CURVE_BY_JWK[jwk.crv ?? ''] : undefined;
    if (curve !== undefined && jwk.x && jwk.y) return ecSpki(curve, Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url'));
    if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
      const e = Buffer.from(jwk.e, 'base64url');
      if (e.length <= 4) return rsaSpki(Buffer.from(jwk.n, 'base64url'), e.readUIntBE(0, e.length));
    }
    return key.export({ type: 'spki', format: 'der' });
  } catch (e) {
    if (e instanceof AppError && e.code === 'SPKI_MALFORMED') throw e;
    throw attestationMalformed('SPKI_MALFORMED', 'Public key cannot be decoded', e);
  }
}

/** Lower-case hex SHA-256 of the canonical SPKI: the inventory's hardware identity (`Device.tpm.ekPublicSha256`). */
export function spkiSha256Hex(spki: Buffer): string {
  return createHash('sha256').update(canonicalSpki(spki)).digest('hex');
}

/**
 * True when both SPKIs encode the same public key. Use it to compare the CSR key with the TPM-certified key
 * (`verifyCertify(...).keySpki`) and the EK certificate key with the EK public the device sent.
 */
export function spkiEqual(a: Buffer, b: Buffer): boolean {
  if (a.length === b.length && timingSafeEqual(a, b)) return true;
  const ca = canonicalSpki(a);
  const cb = canonicalSpki(b);
  return ca.length === cb.length && timingSafeEqual(ca, cb);
}
