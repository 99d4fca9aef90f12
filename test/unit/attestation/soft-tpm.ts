/**
 * Software stand-ins for TPM output in unit tests: key pairs with their TPMT_PUBLIC, and TPMS_ATTEST/TPMT_SIGNATURE
 * signed in software. Real TPM behaviour is covered by test/integration/tpm with swtpm; these exist to reach every
 * verifier branch (e.g. a wrong magic) that a genuine TPM never produces.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  TPMA_OBJECT,
  TPM_ALG,
  TPM_ECC,
  TPM_GENERATED_VALUE,
  TPM_ST,
  computeName,
  marshalCertifyAttest,
  marshalPublic,
  marshalSignature,
  parsePublic,
  type TpmtPublic,
} from '../../../src/tpm';

export interface SoftKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly pub: TpmtPublic;
  readonly raw: Buffer;
  readonly name: Buffer;
}

const A = TPMA_OBJECT;
export const SOFT_AK_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign;
export const SOFT_KEY_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;

export function softEcKey(attrs: number, curve: 'P-256' | 'P-384' = 'P-256'): SoftKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const pub: TpmtPublic = {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attrs,
    authPolicy: Buffer.alloc(0),
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: attrs & A.restricted ? { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } : { scheme: TPM_ALG.NULL },
    curveId: curve === 'P-256' ? TPM_ECC.NIST_P256 : TPM_ECC.NIST_P384,
    kdf: { scheme: TPM_ALG.NULL },
    x: Buffer.from(jwk.x, 'base64url'),
    y: Buffer.from(jwk.y, 'base64url'),
  };
  const raw = marshalPublic(pub);
  return { privateKey, publicKey, pub, raw, name: computeName(parsePublic(raw)) };
}

export function softRsaKey(attrs: number, bits = 2048): SoftKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const jwk = publicKey.export({ format: 'jwk' }) as { n: string };
  const pub: TpmtPublic = {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attrs,
    authPolicy: Buffer.alloc(0),
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: bits,
    exponent: 0,
    modulus: Buffer.from(jwk.n, 'base64url'),
  };
  const raw = marshalPublic(pub);
  return { privateKey, publicKey, pub, raw, name: computeName(parsePublic(raw)) };
}

/** A TPMS_ATTEST of type certify for `certified`, with overridable fields. */
export function softAttest(certified: SoftKey, extraData: Buffer, over: { magic?: number; type?: number; name?: Buffer } = {}): Buffer {
  return marshalCertifyAttest({
    magic: over.magic ?? TPM_GENERATED_VALUE,
    type: over.type ?? TPM_ST.ATTEST_CERTIFY,
    qualifiedSigner: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 0xaa)]),
    extraData,
    clockInfo: { clock: 123456n, resetCount: 1, restartCount: 0, safe: true },
    firmwareVersion: 0x2019102300160000n,
    certify: { name: over.name ?? certified.name, qualifiedName: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 0xbb)]) },
  });
}

/** TPMT_SIGNATURE by `signer` over `data` (ECDSA or RSASSA). */
export function softSign(signer: SoftKey, data: Buffer, hash: 'sha256' | 'sha1' = 'sha256'): Buffer {
  const hashAlg = hash === 'sha1' ? TPM_ALG.SHA1 : TPM_ALG.SHA256;
  if (signer.pub.type === TPM_ALG.ECC) {
    const raw = sign(hash, data, { key: signer.privateKey, dsaEncoding: 'ieee-p1363' });
    return marshalSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg, r: raw.subarray(0, raw.length / 2), s: raw.subarray(raw.length / 2) });
  }
  return marshalSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg, sig: sign(hash, data, signer.privateKey) });
}
