/**
 * PKCS#10 (RFC 2986) intake. The CSR only supplies a public key and proves possession of its private half; the
 * subject, requested extensions (SANs, EKUs) and every other attribute are deliberately ignored, because identity
 * and lifetime come from devicegate's own records, not from the requester.
 */
import { verify as cryptoVerify } from 'node:crypto';
import { badRequest } from '../domain/errors';
import {
  DerError,
  TAG,
  bitStringBytes,
  children,
  content,
  decodeOid,
  expectTag,
  fromPemStrict,
  raw,
  readTop,
} from './der';
import { checkDeviceKey, type AcceptedKey } from './key-policy';
import { OID } from './x509';

/** Default cap on a CSR's size (PEM text or DER). A P-256 CSR is ~400 bytes, an RSA-4096 one ~1.7 KB. */
export const DEFAULT_CSR_MAX_BYTES = 16 * 1024;

/** A CSR that passed intake. */
export interface AcceptedCsr {
  readonly key: AcceptedKey;
  /** The CSR's DER as received (after PEM decoding); for audit records only. */
  readonly der: Buffer;
  /** The signature algorithm the requester used for proof of possession. */
  readonly signatureAlgorithm: string;
}

const SIG_ALGS: ReadonlyMap<string, { hash: string; key: 'ec' | 'rsa' }> = new Map([
  [OID.ecdsaWithSha256, { hash: 'sha256', key: 'ec' }],
  [OID.ecdsaWithSha384, { hash: 'sha384', key: 'ec' }],
  [OID.ecdsaWithSha512, { hash: 'sha512', key: 'ec' }],
  [OID.sha256WithRsa, { hash: 'sha256', key: 'rsa' }],
  [OID.sha384WithRsa, { hash: 'sha384', key: 'rsa' }],
  [OID.sha512WithRsa, { hash: 'sha512', key: 'rsa' }],
]);

const malformed = (why: string, cause?: unknown): never => {
  throw badRequest('CSR_MALFORMED', `The certificate signing request is malformed: ${why}.`, cause ? { cause } : {});
};

/**
 * Decode, size-check, key-check and verify a CSR.
 *
 * Accepts DER bytes or PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) as a string or Buffer. Throws
 * AppError `bad_request` with `CSR_TOO_LARGE`, `CSR_MALFORMED`, `CSR_UNSUPPORTED_KEY`, `CSR_KEY_TOO_WEAK`,
 * `CSR_UNSUPPORTED_SIGNATURE_ALGORITHM` or `CSR_SIGNATURE_INVALID`; never anything else for bad input.
 */
export function acceptCsr(input: Buffer | string, opts: { maxBytes?: number } = {}): AcceptedCsr {
  const maxBytes = opts.maxBytes ?? DEFAULT_CSR_MAX_BYTES;
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  // Checked before any parsing so an oversized body costs nothing but this comparison.
  if (size > maxBytes) {
    throw badRequest('CSR_TOO_LARGE', `The certificate signing request exceeds ${maxBytes} bytes.`, {
      details: { maxBytes },
    });
  }
  if (size === 0) malformed('empty input');
  const der = toDer(input);

  let cri: Buffer;
  let spki: Buffer;
  let algOid: string;
  let algParams: Buffer | undefined;
  let signature: Buffer;
  try {
    const top = expectTag(readTop(der), TAG.SEQUENCE, 'CertificationRequest');
    const parts = children(top, 4);
    if (parts.length !== 3) throw new DerError('CertificationRequest must have 3 fields');
    const [criNode, algNode, sigNode] = parts as [typeof top, typeof top, typeof top];
    const criFields = children(expectTag(criNode, TAG.SEQUENCE, 'CertificationRequestInfo'), 8);
    if (criFields.length !== 4) throw new DerError('CertificationRequestInfo must have 4 fields');
    const [version, subject, spkiNode, attrs] = criFields as [typeof top, typeof top, typeof top, typeof top];
    const v = content(expectTag(version, TAG.INTEGER, 'version'));
    if (v.length !== 1 || v[0] !== 0) throw new DerError('version must be v1(0)');
    expectTag(subject, TAG.SEQUENCE, 'subject');
    expectTag(spkiNode, TAG.SEQUENCE, 'subjectPKInfo');
    expectTag(attrs, 0xa0, 'attributes');
    const alg = children(expectTag(algNode, TAG.SEQUENCE, 'signatureAlgorithm'), 2);
    algOid = decodeOid(content(expectTag(alg[0], TAG.OID, 'algorithm')));
    algParams = alg[1] ? raw(alg[1]) : undefined;
    signature = bitStringBytes(sigNode);
    cri = raw(criNode);
    spki = raw(spkiNode);
  } catch (e) {
    if (e instanceof DerError) return malformed(e.message, e);
    throw e;
  }

  // Key policy first: a weak or foreign key is refused before we spend a signature verification on it.
  const key = checkDeviceKey(spki, 'CSR');

  const alg = SIG_ALGS.get(algOid);
  if (!alg) {
    throw badRequest(
      'CSR_UNSUPPORTED_SIGNATURE_ALGORITHM',
      'The CSR must be signed with ECDSA or RSASSA-PKCS1-v1_5 using SHA-256, SHA-384 or SHA-512.',
      { details: { algorithm: algOid } },
    );
  }
  const keyFamily = key.kind === 'rsa' ? 'rsa' : 'ec';
  // RFC 5758 §3.2: ecdsa-with-SHA* "the encoding MUST omit the parameters field"; RFC 4055: RSA ones carry NULL
  // (absent is tolerated, as many encoders omit it).
  const paramsOk = alg.key === 'ec' ? algParams === undefined : algParams === undefined || algParams.equals(NULL_DER);
  if (alg.key !== keyFamily || !paramsOk) {
    throw badRequest('CSR_SIGNATURE_INVALID', 'The CSR signature algorithm does not match its key.');
  }

  // RFC 2986 §3: "The signature process consists of two steps: 1. The value of the certificationRequestInfo
  // component is DER encoded, yielding an octet string. 2. The result of step 1 is signed with the certification
  // request subject's private key" — so verify over the exact CRI bytes received.
  let ok = false;
  try {
    ok = cryptoVerify(alg.hash, cri, key.publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw badRequest('CSR_SIGNATURE_INVALID', 'The CSR signature does not verify (no proof of possession).');
  }
  return { key, der, signatureAlgorithm: algOid };
}

const NULL_DER = Buffer.from([0x05, 0x00]);

function toDer(input: Buffer | string): Buffer {
  const looksPem =
    typeof input === 'string' || /^\s*-----BEGIN /.test(input.subarray(0, 64).toString('latin1'));
  if (!looksPem) return input;
  const text = typeof input === 'string' ? input : input.toString('utf8');
  const block = fromPemStrict(text, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  if (!block) return malformed('expected exactly one PEM block labelled CERTIFICATE REQUEST');
  return block.der;
}
