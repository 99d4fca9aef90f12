import { createPublicKey } from 'node:crypto';
import { attestationMalformed } from './errors';
import type { CborValue } from './cbor';

const CURVES: Readonly<Record<number, { crv: string; size: number }>> = {
  1: { crv: 'P-256', size: 32 },
  2: { crv: 'P-384', size: 48 },
  3: { crv: 'P-521', size: 66 },
};

/**
 * Converts a COSE_Key (RFC 9053: kty 2 EC2 with crv/x/y, kty 3 RSA with n/e) to SPKI DER, so a WebAuthn
 * credential key can be compared with a TPM pubArea via `spkiEqual`. Throws `COSE_KEY_MALFORMED` (bad_request).
 */
export function coseKeyToSpki(key: CborValue): Buffer {
  if (!(key instanceof Map)) throw attestationMalformed('COSE_KEY_MALFORMED', 'COSE key is not a map');
  const get = (k: number): CborValue | undefined => key.get(k);
  const bytes = (v: CborValue | undefined): Buffer => {
    if (!Buffer.isBuffer(v) || v.length === 0) throw attestationMalformed('COSE_KEY_MALFORMED', 'COSE key parameter missing');
    return v;
  };
  try {
    const kty = get(1);
    if (kty === 2) {
      const curve = CURVES[get(-1) as number];
      if (!curve) throw attestationMalformed('COSE_KEY_MALFORMED', 'Unsupported COSE curve');
      const x = bytes(get(-2));
      const y = bytes(get(-3));
      if (x.length !== curve.size || y.length !== curve.size) throw attestationMalformed('COSE_KEY_MALFORMED', 'Wrong coordinate size');
      return createPublicKey({
        key: { kty: 'EC', crv: curve.crv, x: x.toString('base64url'), y: y.toString('base64url') },
        format: 'jwk',
      }).export({ type: 'spki', format: 'der' });
    }
    if (kty === 3) {
      return createPublicKey({
        key: { kty: 'RSA', n: bytes(get(-1)).toString('base64url'), e: bytes(get(-2)).toString('base64url') },
        format: 'jwk',
      }).export({ type: 'spki', format: 'der' });
    }
  } catch (e) {
    if (e instanceof Error && e.name === 'AppError') throw e;
    throw attestationMalformed('COSE_KEY_MALFORMED', 'COSE key cannot be decoded', e);
  }
  throw attestationMalformed('COSE_KEY_MALFORMED', 'Unsupported COSE key type');
}
