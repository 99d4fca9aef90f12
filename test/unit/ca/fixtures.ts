/**
 * Shared fixtures for the CA unit tests: a throwaway hierarchy per suite (step-ca `minica` style) and a tiny PKCS#10
 * builder for crafting CSRs that no honest tool would produce (forged proof of possession, odd algorithms).
 */
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { assembleAuthority, createCaHierarchy, memoryKeyProvider, type CaHierarchy, type CaKeyAlgorithm, type CertificateAuthority } from '../../../src/ca';
import { bitString, derNull, explicit, oid, seq, set, utf8String } from '../../../src/ca/der';
import { caConfigSchema, type CaConfig } from '../../../src/config/sections/ca';

/** Frozen "now" for unit tests (2026-11-26T12:00:00Z, the ManualClock default). */
export const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
export const DEVICE_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
export const OTHER_DEVICE_ID = '9b2e6d1c-7a4f-4e3b-8c5d-2f1a0e9d8c7b';
export const PUBLIC_URL = 'https://devicegate.example.de';

export async function testCa(
  opts: { algorithm?: CaKeyAlgorithm; config?: Partial<Record<keyof CaConfig, unknown>>; nowMs?: number } = {},
): Promise<{ ca: CertificateAuthority; h: CaHierarchy; config: CaConfig }> {
  const config = caConfigSchema.parse(opts.config ?? {});
  const h = await createCaHierarchy({ nowMs: opts.nowMs ?? NOW, keys: memoryKeyProvider(), algorithm: opts.algorithm ?? 'ec-p256' });
  const ca = assembleAuthority({ source: 'file', isDev: false, root: h.root, issuing: h.issuing, ocsp: h.ocsp, config, publicUrl: PUBLIC_URL });
  return { ca, h, config };
}

export const SIG_OIDS = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha1: '1.2.840.10045.4.1',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha1: '1.2.840.113549.1.1.5',
} as const;

/**
 * Build a PKCS#10 CSR by hand. `spki` defaults to the signing key's; `sigOid` and `hash` default to ECDSA/SHA-256
 * or RSA/SHA-256 by key type; `extensionRequest` adds a raw Extensions SEQUENCE as a requested-extensions attribute.
 */
export function craftCsr(opts: {
  signingKey: KeyObject;
  spki?: Buffer;
  subjectCn?: string;
  sigOid?: string;
  hash?: string;
  extensionRequest?: Buffer;
  mutateCri?: (cri: Buffer) => Buffer;
}): Buffer {
  const pub = createPublicKey(opts.signingKey);
  const spki = opts.spki ?? pub.export({ type: 'spki', format: 'der' });
  const isRsa = opts.signingKey.asymmetricKeyType === 'rsa';
  const attrs = opts.extensionRequest
    ? explicit(0, seq(oid('1.2.840.113549.1.9.14'), set(opts.extensionRequest)))
    : Buffer.from([0xa0, 0x00]);
  let cri = seq(
    Buffer.from([0x02, 0x01, 0x00]),
    seq(set(seq(oid('2.5.4.3'), utf8String(opts.subjectCn ?? 'device')))),
    spki,
    attrs,
  );
  const sigOid = opts.sigOid ?? (isRsa ? SIG_OIDS.rsaSha256 : SIG_OIDS.ecdsaSha256);
  const hash = opts.hash ?? 'sha256';
  const signature = sign(hash, cri, opts.signingKey);
  if (opts.mutateCri) cri = opts.mutateCri(cri);
  const alg = isRsa || sigOid.startsWith('1.2.840.113549') ? seq(oid(sigOid), derNull()) : seq(oid(sigOid));
  return seq(cri, alg, bitString(signature));
}

export const ecKey = (curve: string): KeyObject => generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
export const rsaKey = (bits: number): KeyObject => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;

/** Copy into a fresh ArrayBuffer-backed view: @peculiar/x509 and pkijs type their input as BufferSource, which a Node
 * Buffer (possibly over a SharedArrayBuffer-typed pool) does not satisfy under TypeScript 5.9. */
export const bs = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);
