/**
 * Which device keys the CA certifies. Applied to every key, whether it arrives in a CSR or as a bare SPKI from an
 * attestation (the TPM/Secure Enclave keys devicegate cares about are P-256, some are RSA-2048).
 *
 * Why we parse the SPKI ourselves: OpenSSL 3's DER key decoder costs ~0.2 ms per call on this machine class, more
 * than signing a certificate. The SPKI is decoded strictly here and the key imported from its components (JWK),
 * which OpenSSL still validates (EC points must lie on the curve). The certificate then carries an SPKI re-encoded
 * from those components, never the caller's bytes.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { badRequest } from '../domain/errors';
import { DerError, TAG, bitString, bitStringBytes, children, content, decodeOid, derNull, expectTag, integerBytes, integerFromUnsigned, oid, readTop, seq } from './der';

/** Smallest RSA modulus accepted (NIST SP 800-57: 2048 bits is the floor through 2030). */
export const RSA_MIN_BITS = 2048;
/**
 * Largest RSA modulus accepted. Why a ceiling: verifying a CSR signature costs O(n^2) in the modulus and a
 * 16 kbit key buys a caller ~50x the CPU of a 2048-bit one; no managed-device key store produces more than 4096.
 */
export const RSA_MAX_BITS = 8192;

/** A device key that passed the policy. */
export interface AcceptedKey {
  readonly kind: 'ec-p256' | 'ec-p384' | 'rsa';
  /** Bits of the RSA modulus or of the curve order. */
  readonly bits: number;
  readonly publicKey: KeyObject;
  /** Canonical DER SubjectPublicKeyInfo (named curve, uncompressed point; or RSA n and e minimally encoded). */
  readonly spki: Buffer;
}

const CODES = {
  CSR: { malformed: 'CSR_MALFORMED', weak: 'CSR_KEY_TOO_WEAK', unsupported: 'CSR_UNSUPPORTED_KEY' },
  KEY: { malformed: 'KEY_MALFORMED', weak: 'KEY_TOO_WEAK', unsupported: 'KEY_UNSUPPORTED' },
} as const;

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const CURVES: ReadonlyMap<string, { kind: 'ec-p256' | 'ec-p384'; crv: string; size: number; prefix: Buffer }> = new Map(
  (
    [
      ['1.2.840.10045.3.1.7', 'ec-p256', 'P-256', 32],
      ['1.3.132.0.34', 'ec-p384', 'P-384', 48],
    ] as const
  ).map(([curveOid, kind, crv, size]) => {
    // SPKI up to and including the BIT STRING's unused-bits octet; the uncompressed point follows.
    const full = seq(seq(oid(EC_PUBLIC_KEY), oid(curveOid)), bitString(Buffer.alloc(1 + 2 * size)));
    return [curveOid, { kind, crv, size, prefix: full.subarray(0, full.length - (1 + 2 * size)) }];
  }),
);

/**
 * Check a DER SubjectPublicKeyInfo against the policy: ECDSA on P-256 or P-384 (named curve), or RSA with a modulus
 * of 2048..8192 bits and an odd public exponent ≥ 3. `source` names the error family, all `bad_request`:
 * `CSR_MALFORMED` / `CSR_KEY_TOO_WEAK` / `CSR_UNSUPPORTED_KEY` for keys from a CSR, and `KEY_MALFORMED` /
 * `KEY_TOO_WEAK` / `KEY_UNSUPPORTED` for bare public keys.
 */
export function checkDeviceKey(spkiDer: Buffer, source: 'CSR' | 'KEY'): AcceptedKey {
  const codes = CODES[source];
  let algOid: string;
  let params: ReturnType<typeof readTop> | undefined;
  let keyBits: Buffer;
  try {
    const top = expectTag(readTop(spkiDer), TAG.SEQUENCE, 'SubjectPublicKeyInfo');
    const parts = children(top, 3);
    if (parts.length !== 2) throw new DerError('SubjectPublicKeyInfo must have 2 fields');
    const alg = children(expectTag(parts[0], TAG.SEQUENCE, 'AlgorithmIdentifier'), 3);
    if (alg.length > 2) throw new DerError('AlgorithmIdentifier fields');
    algOid = decodeOid(content(expectTag(alg[0], TAG.OID, 'algorithm')));
    params = alg[1];
    keyBits = bitStringBytes(parts[1] as ReturnType<typeof readTop>);
  } catch (cause) {
    if (cause instanceof DerError) throw badRequest(codes.malformed, 'The public key cannot be parsed.', { cause });
    throw cause;
  }

  if (algOid === EC_PUBLIC_KEY) {
    // RFC 5480 §2.1.1: "namedCurve" is the only form PKIX implementations MUST support; explicit parameters are
    // a known source of curve-substitution bugs, so they are refused.
    if (!params || params.tag !== TAG.OID) {
      throw badRequest(codes.unsupported, 'Only named elliptic curves are accepted.', { details: { curve: 'explicit parameters' } });
    }
    const curveOid = decodeOidSafe(content(params), codes.malformed);
    const curve = CURVES.get(curveOid);
    if (!curve) {
      throw badRequest(codes.unsupported, 'Only the elliptic curves P-256 and P-384 are accepted.', { details: { curve: curveOid } });
    }
    if (keyBits.length !== 1 + 2 * curve.size || keyBits[0] !== 0x04) {
      // Compressed or hybrid points: legal but never produced by TPMs or Secure Enclaves; let OpenSSL decide.
      return viaOpenssl(spkiDer, codes, curve.kind, curve.size * 8);
    }
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({
        key: {
          kty: 'EC',
          crv: curve.crv,
          x: keyBits.subarray(1, 1 + curve.size).toString('base64url'),
          y: keyBits.subarray(1 + curve.size).toString('base64url'),
        },
        format: 'jwk',
      });
    } catch (cause) {
      // OpenSSL refuses points that are not on the curve (invalid-curve attacks).
      throw badRequest(codes.malformed, 'The elliptic curve point is not valid.', { cause });
    }
    return { kind: curve.kind, bits: curve.size * 8, publicKey, spki: Buffer.concat([curve.prefix, keyBits]) };
  }

  if (algOid === RSA_ENCRYPTION) {
    // RFC 3279 §2.3.1: "the parameters component of that type SHALL be the ASN.1 type NULL".
    if (params && params.tag !== TAG.NULL) throw badRequest(codes.malformed, 'RSA key parameters must be NULL.');
    let n: Buffer;
    let e: Buffer;
    try {
      const fields = children(expectTag(readTop(keyBits), TAG.SEQUENCE, 'RSAPublicKey'), 3);
      if (fields.length !== 2) throw new DerError('RSAPublicKey must have 2 fields');
      n = integerBytes(fields[0] as ReturnType<typeof readTop>);
      e = integerBytes(fields[1] as ReturnType<typeof readTop>);
    } catch (cause) {
      throw badRequest(codes.malformed, 'The RSA public key cannot be parsed.', { cause });
    }
    if (((n[0] as number) & 0x80) !== 0 || ((e[0] as number) & 0x80) !== 0) {
      throw badRequest(codes.malformed, 'The RSA modulus and exponent must be positive.');
    }
    const nMag = n[0] === 0 ? n.subarray(1) : n;
    const eMag = e[0] === 0 ? e.subarray(1) : e;
    const bits = nMag.length === 0 ? 0 : (nMag.length - 1) * 8 + (32 - Math.clz32(nMag[0] as number));
    if (bits < RSA_MIN_BITS) {
      throw badRequest(codes.weak, `RSA keys must have at least ${RSA_MIN_BITS} bits.`, { details: { bits } });
    }
    if (bits > RSA_MAX_BITS) {
      throw badRequest(codes.unsupported, `RSA keys may have at most ${RSA_MAX_BITS} bits.`, { details: { bits } });
    }
    const eLast = eMag[eMag.length - 1] ?? 0;
    if ((eLast & 1) === 0 || (eMag.length === 1 && eLast < 3) || eMag.length > 8) {
      throw badRequest(codes.unsupported, 'The RSA public exponent must be odd and at least 3.');
    }
    if (((nMag[nMag.length - 1] as number) & 1) === 0) throw badRequest(codes.malformed, 'The RSA modulus must be odd.');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: { kty: 'RSA', n: nMag.toString('base64url'), e: eMag.toString('base64url') }, format: 'jwk' });
    } catch (cause) {
      throw badRequest(codes.malformed, 'The RSA public key is not valid.', { cause });
    }
    const spki = seq(seq(oid(RSA_ENCRYPTION), derNull()), bitString(seq(integerFromUnsigned(nMag), integerFromUnsigned(eMag))));
    return { kind: 'rsa', bits, publicKey, spki };
  }

  throw badRequest(codes.unsupported, 'Only ECDSA P-256, P-384 and RSA keys are accepted.', { details: { algorithm: algOid } });
}

function decodeOidSafe(bytes: Buffer, malformedCode: string): string {
  try {
    return decodeOid(bytes);
  } catch (cause) {
    throw badRequest(malformedCode, 'The public key cannot be parsed.', { cause });
  }
}

/** Slow path for unusual but valid EC encodings: OpenSSL parses and validates, we keep its canonical export. */
function viaOpenssl(spkiDer: Buffer, codes: (typeof CODES)[keyof typeof CODES], kind: 'ec-p256' | 'ec-p384', bits: number): AcceptedKey {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    throw badRequest(codes.malformed, 'The public key cannot be parsed.', { cause });
  }
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (publicKey.asymmetricKeyType !== 'ec' || curve !== (kind === 'ec-p256' ? 'prime256v1' : 'secp384r1')) {
    throw badRequest(codes.malformed, 'The public key cannot be parsed.');
  }
  return { kind, bits, publicKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
}
