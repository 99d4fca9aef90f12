import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { badRequest } from '../domain/errors';
import { attestationRejected } from './errors';
import { decodeOid, derChildren, pemBlocks, readDer } from './der';
import { canonicalSpki, spkiEqual } from './spki';

/** A PKCS#10 request whose self-signature (proof of possession) verified. */
export interface VerifiedCsr {
  readonly der: Buffer;
  /** Canonical SPKI DER of the requested key. */
  readonly spki: Buffer;
  /** Subject Name DER as sent (the CA sets its own subject; kept for audit). */
  readonly subjectDer: Buffer;
  readonly signatureAlgorithm: string;
}

const SIG_HASH: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

const C = 'CSR_MALFORMED';

/**
 * Decodes a PKCS#10 CertificationRequest (PEM or DER) and verifies its signature over the exact
 * CertificationRequestInfo bytes received (no re-encoding). `expected` (optional) is a key the caller already holds;
 * when the CSR carries byte-identical SPKI, that KeyObject is used for the check. Accepts ECDSA and RSA PKCS#1 v1.5 with SHA-256/384/512.
 * Throws `CSR_MALFORMED` (bad_request) or `CSR_SIGNATURE_INVALID` (forbidden: the sender does not hold the key).
 */
export function verifyCsr(csr: string | Buffer, expected?: { readonly spki: Buffer; readonly key: () => KeyObject }): VerifiedCsr {
  let der: Buffer;
  if (typeof csr === 'string') {
    const blocks = pemBlocks(csr, 'CERTIFICATE REQUEST');
    if (blocks.length !== 1) throw badRequest(C, 'Expected exactly one PEM CERTIFICATE REQUEST');
    der = blocks[0]!;
  } else {
    der = csr;
  }
  const outer = readDer(der, 0, C);
  if (outer.tag !== 0x30 || outer.raw.length !== der.length) throw badRequest(C, 'CSR is not one DER SEQUENCE');
  const parts = derChildren(outer, C);
  if (parts.length !== 3) throw badRequest(C, 'CSR must have info, algorithm and signature');
  const [info, alg, sig] = parts as [typeof outer, typeof outer, typeof outer];
  if (info.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03) throw badRequest(C, 'CSR structure is wrong');
  const infoParts = derChildren(info, C);
  if (infoParts.length < 3 || infoParts[0]!.tag !== 0x02 || infoParts[1]!.tag !== 0x30 || infoParts[2]!.tag !== 0x30) {
    throw badRequest(C, 'CertificationRequestInfo structure is wrong');
  }
  if (!infoParts[0]!.content.equals(Buffer.from([0]))) throw badRequest(C, 'Unsupported CSR version');
  const algParts = derChildren(alg, C);
  if (algParts.length < 1 || algParts[0]!.tag !== 0x06) throw badRequest(C, 'Signature algorithm is wrong');
  const oid = decodeOid(algParts[0]!.content);
  const hash = SIG_HASH[oid];
  if (!hash) throw badRequest(C, 'Unsupported CSR signature algorithm', { details: { oid } });
  if (sig.content.length < 2 || sig.content[0] !== 0) throw badRequest(C, 'Signature BIT STRING is wrong');
  const rawSpki = Buffer.from(infoParts[2]!.raw);
  let key: KeyObject;
  let spki: Buffer;
  if (expected && rawSpki.equals(expected.spki)) {
    // Same bytes as the key the caller already trusts (the TPM-certified key): reuse its KeyObject, saving an
    // OpenSSL decode (~0.3 ms) per enrollment.
    key = expected.key();
    spki = expected.spki;
  } else {
    try {
      key = createPublicKey({ key: rawSpki, format: 'der', type: 'spki' });
    } catch (e) {
      throw badRequest(C, 'CSR public key cannot be decoded', { cause: e });
    }
    // Canonical form, so comparisons with the certified key do not depend on the client's encoding.
    spki = canonicalSpki(rawSpki);
  }
  let ok = false;
  try {
    const ecdsa = oid.startsWith('1.2.840.10045.');
    if (ecdsa !== (key.asymmetricKeyType === 'ec')) throw new Error('algorithm does not fit the key');
    ok = cryptoVerify(hash, info.raw, key, sig.content.subarray(1));
  } catch {
    ok = false;
  }
  if (!ok) throw attestationRejected('CSR_SIGNATURE_INVALID', 'The CSR signature does not verify (no proof of possession)');
  return { der: Buffer.from(der), spki, subjectDer: Buffer.from(infoParts[1]!.raw), signatureAlgorithm: oid };
}

/** Throws `CSR_KEY_MISMATCH` (forbidden) unless the CSR requests exactly the TPM-certified key. */
export function assertCsrKeyMatches(csrSpki: Buffer, certifiedSpki: Buffer): void {
  if (!spkiEqual(csrSpki, certifiedSpki)) {
    throw attestationRejected('CSR_KEY_MISMATCH', 'The CSR key is not the key the TPM certified');
  }
}
