import { createHash, createPublicKey } from 'node:crypto';
import { TPMA_OBJECT, TPM_ALG, TPM_ECC, type TpmtPublic, parsePublicTpm2b, publicToSpki } from '../tpm';
import { attestationMalformed, attestationRejected } from './errors';
import { readDer } from './der';
import { canonicalSpki, spkiEqual, spkiSha256Hex } from './spki';
import {
  OID,
  parseCertificate,
  parseTrustAnchors,
  readTpmSan,
  validateChain,
  type ParsedCertificate,
  type TpmSanAttributes,
  type TrustAnchor,
} from './x509';

/** What a verified EK certificate tells the server. */
export interface VerifiedEkCertificate {
  /** Canonical SPKI DER of the EK. */
  readonly ekPublicSpki: Buffer;
  /** Lower-case hex SHA-256 of `ekPublicSpki`: compare with `Device.tpm.ekPublicSha256`. */
  readonly ekPublicSha256: string;
  /** The certificate as the TPM stored it, normalised (NV header and padding removed). */
  readonly certificateDer: Buffer;
  readonly serialHex: string;
  readonly issuer: string;
  /** tcg-at-tpmManufacturer/Model/Version from the SAN, when present. */
  readonly tpm: TpmSanAttributes | null;
  /** SHA-256 (hex) of each certificate from the EK certificate up to the anchor. */
  readonly chainSha256: readonly string[];
}

/**
 * Undoes two storage quirks of EK certificates read from NV (go-attestation `ParseEKCertificate`): a 4-byte
 * header `10 01 <u16 length>` written by some vendors, and zero/0xff padding after the DER. Anything after the
 * DER that is not padding is `EK_CERT_MALFORMED`.
 */
export function normalizeEkCertificate(raw: Buffer): Buffer {
  let buf = raw;
  if (buf.length > 4 && buf[0] === 0x10 && buf[1] === 0x01) {
    const len = buf.readUInt16BE(2);
    if (len + 4 > buf.length) throw attestationMalformed('EK_CERT_MALFORMED', 'EK certificate NV header length is wrong');
    buf = buf.subarray(4, 4 + len);
  }
  const outer = readDer(buf, 0, 'EK_CERT_MALFORMED');
  if (outer.tag !== 0x30) throw attestationMalformed('EK_CERT_MALFORMED', 'EK certificate is not a DER SEQUENCE');
  const tail = buf.subarray(outer.raw.length);
  if (!tail.every((b) => b === 0x00) && !tail.every((b) => b === 0xff)) {
    throw attestationMalformed('EK_CERT_MALFORMED', 'EK certificate has trailing data');
  }
  return Buffer.from(outer.raw);
}

/** Options of `verifyEkCertificate`. */
export interface EkCertificateOptions {
  /** Intermediate CA certificates (DER or parsed); vendors publish them separately from their roots. */
  readonly intermediates?: ReadonlyArray<Buffer | ParsedCertificate>;
}

/**
 * Verifies an EK certificate against the configured TPM manufacturer roots (attestation.md §3.1 B.2–B.4).
 *
 * Steps, each failing closed:
 * 1. "Parse the EKCert, allowing for the NV header" → `normalizeEkCertificate`, then decode (`EK_CERT_MALFORMED`).
 * 2. "Verify the EKCert chain against a vendor allow-list" → path validation with dates, CA flags, keyUsage and
 *    path length, which node:crypto's `X509Certificate.verify` does not do (`EK_CERT_UNTRUSTED`).
 * 3. The EK certificate profile: not a CA; if an EKU is present it contains tcg-kp-EKCertificate 2.23.133.8.1;
 *    the critical TPM SAN (directoryName with TCG attributes) is processed rather than rejected as unknown
 *    (`EK_CERT_PROFILE`).
 * 4. "Derive identity: EKPubHash = sha256(PKIX)" → returned for the inventory comparison.
 *
 * `roots` may be the PEM text of the bundle or anchors parsed once with `parseTrustAnchors` (faster).
 */
export function verifyEkCertificate(
  ekCertDer: Buffer,
  roots: string | readonly TrustAnchor[],
  nowMs: number,
  options: EkCertificateOptions = {},
): VerifiedEkCertificate {
  const der = normalizeEkCertificate(ekCertDer);
  const leaf = parseCertificate(der, 'EK_CERT_MALFORMED');
  const anchors = typeof roots === 'string' ? parseTrustAnchors(roots) : roots;
  const intermediates = (options.intermediates ?? []).map((c) =>
    Buffer.isBuffer(c) ? parseCertificate(c, 'EK_CERT_MALFORMED') : c,
  );
  const path = validateChain(leaf, intermediates, anchors, nowMs, { code: 'EK_CERT_UNTRUSTED' });
  if (leaf.basicConstraints?.ca) throw attestationRejected('EK_CERT_PROFILE', 'The EK certificate is a CA certificate');
  if (leaf.extKeyUsage && !leaf.extKeyUsage.includes(OID.ekCertificateEku)) {
    throw attestationRejected('EK_CERT_PROFILE', 'The EK certificate lacks the TCG EK certificate EKU');
  }
  const tpm = readTpmSan(leaf, 'EK_CERT_MALFORMED');
  const ekPublicSpki = canonicalSpki(leaf.spki);
  return {
    ekPublicSpki,
    ekPublicSha256: createHash('sha256').update(ekPublicSpki).digest('hex'),
    certificateDer: der,
    serialHex: leaf.serialHex,
    issuer: leaf.issuer,
    tpm,
    chainSha256: path.map((c) => c.sha256),
  };
}

/**
 * The EK as a TPMT_PUBLIC for MakeCredential when only its certificate is known: the TCG EK Credential Profile
 * templates fix nameAlg and the symmetric algorithm per key type (L-1 RSA-2048 / L-2 P-256: SHA-256 + AES-128;
 * H-templates for larger keys: SHA-384/512 + AES-256). A TPM whose EK deviates fails ActivateCredential, which
 * fails closed; the agent avoids the guess by also sending `ekPublic`.
 */
export function ekPublicFromSpki(spki: Buffer): TpmtPublic {
  let jwk: { kty?: string; n?: string; e?: string; crv?: string; x?: string; y?: string };
  try {
    jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  } catch (e) {
    throw attestationMalformed('EK_PUBLIC_MALFORMED', 'EK public key cannot be decoded', e);
  }
  const attrs =
    TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy |
    TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    const modulus = Buffer.from(jwk.n, 'base64url');
    const keyBits = modulus.length * 8;
    if (keyBits !== 2048 && keyBits !== 3072 && keyBits !== 4096) {
      throw attestationRejected('EK_KEY_UNSUPPORTED', `RSA-${keyBits} EKs are not supported`);
    }
    const exponent = Buffer.from(jwk.e, 'base64url').readUIntBE(0, Buffer.from(jwk.e, 'base64url').length);
    const big = keyBits > 2048;
    return {
      type: TPM_ALG.RSA,
      nameAlg: big ? TPM_ALG.SHA384 : TPM_ALG.SHA256,
      objectAttributes: attrs,
      authPolicy: Buffer.alloc(0),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: big ? 256 : 128, mode: TPM_ALG.CFB },
      scheme: { scheme: TPM_ALG.NULL },
      keyBits,
      exponent: exponent === 65537 ? 0 : exponent,
      modulus,
    };
  }
  const curves: Record<string, [number, number, number]> = {
    'P-256': [TPM_ECC.NIST_P256, TPM_ALG.SHA256, 128],
    'P-384': [TPM_ECC.NIST_P384, TPM_ALG.SHA384, 256],
    'P-521': [TPM_ECC.NIST_P521, TPM_ALG.SHA512, 256],
  };
  const c = jwk.kty === 'EC' && jwk.crv ? curves[jwk.crv] : undefined;
  if (!c || !jwk.x || !jwk.y) throw attestationRejected('EK_KEY_UNSUPPORTED', 'Unsupported EK key type');
  return {
    type: TPM_ALG.ECC,
    nameAlg: c[1],
    objectAttributes: attrs,
    authPolicy: Buffer.alloc(0),
    symmetric: { algorithm: TPM_ALG.AES, keyBits: c[2], mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
    curveId: c[0],
    kdf: { scheme: TPM_ALG.NULL },
    x: Buffer.from(jwk.x, 'base64url'),
    y: Buffer.from(jwk.y, 'base64url'),
  };
}

/** Result of resolving the EK from a `start` request. */
export interface ResolvedEk {
  /** The EK as MakeCredential needs it. */
  readonly ekPublic: TpmtPublic;
  readonly ekPublicSpki: Buffer;
  readonly ekPublicSha256: string;
  /** Set when an EK certificate was verified; null on the EK-public-only path. */
  readonly certificate: VerifiedEkCertificate | null;
}

/**
 * Decides which EK the server challenges (attestation.md §3.1 B.1–B.4):
 * - with an EK certificate: it must verify (`verifyEkCertificate`); if `ekPublicTpm2b` is also sent, its key must
 *   be the certificate's key (`EK_PUBLIC_MISMATCH`) and its exact parameters are used for MakeCredential;
 * - without a certificate: rejected (`EK_CERT_REQUIRED`) unless `allowEkPublicOnly`, because then nothing proves
 *   the key belongs to genuine TPM hardware rather than a software emulator;
 * - the EK must be a restricted decryption key (`EK_KEY_UNSUITABLE`), otherwise ActivateCredential proves nothing.
 */
export function resolveEk(input: {
  readonly ekCertificate?: Buffer | undefined;
  readonly ekPublicTpm2b?: Buffer | undefined;
  readonly roots: string | readonly TrustAnchor[];
  readonly intermediates?: ReadonlyArray<Buffer | ParsedCertificate>;
  readonly nowMs: number;
  readonly allowEkPublicOnly: boolean;
}): ResolvedEk {
  const sent = input.ekPublicTpm2b ? parsePublicTpm2b(input.ekPublicTpm2b).public : null;
  if (sent) {
    const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent;
    if ((sent.objectAttributes & need) !== need || (sent.objectAttributes & TPMA_OBJECT.sign) !== 0) {
      throw attestationRejected('EK_KEY_UNSUITABLE', 'The EK is not a fixed, restricted decryption key');
    }
  }
  if (input.ekCertificate) {
    const certificate = verifyEkCertificate(input.ekCertificate, input.roots, input.nowMs, {
      ...(input.intermediates ? { intermediates: input.intermediates } : {}),
    });
    if (sent && !spkiEqual(publicToSpki(sent), certificate.ekPublicSpki)) {
      throw attestationRejected('EK_PUBLIC_MISMATCH', 'The EK public key does not match the EK certificate');
    }
    return {
      ekPublic: sent ?? ekPublicFromSpki(certificate.ekPublicSpki),
      ekPublicSpki: certificate.ekPublicSpki,
      ekPublicSha256: certificate.ekPublicSha256,
      certificate,
    };
  }
  if (!sent) throw attestationMalformed('EK_MISSING', 'Neither an EK certificate nor an EK public key was sent');
  if (!input.allowEkPublicOnly) {
    throw attestationRejected('EK_CERT_REQUIRED', 'An EK certificate from a trusted TPM manufacturer is required');
  }
  const spki = canonicalSpki(publicToSpki(sent));
  return { ekPublic: sent, ekPublicSpki: spki, ekPublicSha256: spkiSha256Hex(spki), certificate: null };
}
