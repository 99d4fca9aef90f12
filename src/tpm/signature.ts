import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { HASH_INFO, TPM_ALG } from './constants';
import { guardTpm, tpmMalformed, tpmUnsupported } from './errors';
import { TpmReader, TpmWriter } from './marshal';

/** A decoded TPMT_SIGNATURE (Part 2 §11.3.4) of the kinds devicegate verifies. */
export type TpmtSignature =
  | { readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; readonly hashAlg: number; readonly sig: Buffer }
  | { readonly sigAlg: typeof TPM_ALG.ECDSA; readonly hashAlg: number; readonly r: Buffer; readonly s: Buffer }
  | { readonly sigAlg: typeof TPM_ALG.NULL };

const MAX_RSA_KEY_BYTES = 512;
const MAX_ECC_KEY_BYTES = 66;

/**
 * Decodes a TPMT_SIGNATURE: RSASSA, RSAPSS, ECDSA or NULL. Guarantees exact consumption and spec size limits;
 * other schemes (ECDAA, SM2, ECSCHNORR, HMAC) give `TPM_ALG_UNSUPPORTED`, broken input `TPM_STRUCTURE_MALFORMED`.
 */
export function parseSignature(buf: Buffer): TpmtSignature {
  const r = new TpmReader(buf, 'TPMT_SIGNATURE');
  const sigAlg = r.u16('sigAlg');
  let out: TpmtSignature;
  if (sigAlg === TPM_ALG.NULL) {
    out = { sigAlg };
  } else if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS || sigAlg === TPM_ALG.ECDSA) {
    const hashAlg = r.u16('hash');
    if (HASH_INFO[hashAlg] === undefined) throw tpmUnsupported('TPMT_SIGNATURE', 'hash algorithm', hashAlg);
    if (sigAlg === TPM_ALG.ECDSA) {
      const rr = r.tpm2b('signatureR', MAX_ECC_KEY_BYTES);
      const ss = r.tpm2b('signatureS', MAX_ECC_KEY_BYTES);
      if (rr.length === 0 || ss.length === 0) throw tpmMalformed('TPMT_SIGNATURE', 'empty ECDSA component');
      out = { sigAlg, hashAlg, r: rr, s: ss };
    } else {
      const sig = r.tpm2b('sig', MAX_RSA_KEY_BYTES);
      if (sig.length === 0) throw tpmMalformed('TPMT_SIGNATURE', 'empty RSA signature');
      out = { sigAlg, hashAlg, sig };
    }
  } else {
    throw tpmUnsupported('TPMT_SIGNATURE', 'signature scheme', sigAlg);
  }
  r.end();
  return out;
}

/** Encodes a TPMT_SIGNATURE; inverse of `parseSignature`. */
export function marshalSignature(s: TpmtSignature): Buffer {
  const w = new TpmWriter().u16(s.sigAlg);
  if (s.sigAlg === TPM_ALG.NULL) return w.toBuffer();
  w.u16(s.hashAlg);
  if (s.sigAlg === TPM_ALG.ECDSA) return w.tpm2b(s.r).tpm2b(s.s).toBuffer();
  return w.tpm2b(s.sig).toBuffer();
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function derInteger(b: Buffer): Buffer {
  let v = stripLeadingZeros(b);
  if ((v[0]! & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return Buffer.concat([Buffer.from([0x02, v.length]), v]);
}

/** DER ECDSA-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }) from the TPM's r and s, as X.509/PKCS#10 carry it. */
export function ecdsaRsToDer(r: Buffer, s: Buffer): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  return Buffer.concat([Buffer.from([0x30]), len, body]);
}

/**
 * Verifies a TPMT_SIGNATURE over `data` with `key`. The hash named inside the signature is used, but only if it is
 * in `allowedHashes` (TPM alg ids) and the scheme fits the key type; anything else is `false`, never a throw on
 * bad key/signature bytes. RSAPSS accepts any salt length because TPMs differ (older specs use the maximum).
 */
export function verifyTpmSignature(
  key: KeyObject,
  data: Buffer,
  sig: TpmtSignature,
  allowedHashes: ReadonlySet<number>,
): boolean {
  if (sig.sigAlg === TPM_ALG.NULL) return false;
  if (!allowedHashes.has(sig.hashAlg)) return false;
  const hash = HASH_INFO[sig.hashAlg]!.name;
  const keyType = key.asymmetricKeyType;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      if (keyType !== 'ec') return false;
      return cryptoVerify(hash, data, { key, dsaEncoding: 'der' }, ecdsaRsToDer(sig.r, sig.s));
    }
    if (keyType !== 'rsa') return false;
    if (sig.sigAlg === TPM_ALG.RSAPSS) {
      return cryptoVerify(
        hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
        sig.sig,
      );
    }
    return cryptoVerify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig.sig);
  } catch {
    return false;
  }
}

/** Converts a DER ECDSA signature (as in a CSR) back to the TPM's r/s, for tests. */
export function ecdsaDerToRs(der: Buffer): { r: Buffer; s: Buffer } {
  return guardTpm('ECDSA-Sig-Value', 'invalid DER', () => {
    const r = new TpmReader(der, 'ECDSA-Sig-Value');
    if (r.u8('tag') !== 0x30) throw new Error('not a sequence');
    let len = r.u8('len');
    if (len === 0x81) len = r.u8('len');
    const ri = readInt(r);
    const si = readInt(r);
    r.end();
    return { r: ri, s: si };
  });
}

function readInt(r: TpmReader): Buffer {
  if (r.u8('tag') !== 0x02) throw new Error('not an integer');
  const n = r.u8('len');
  return stripLeadingZeros(Buffer.from(r.bytes(n, 'int')));
}
