import { randomBytes } from 'node:crypto';
import { publicKeyOf, type RandomSource } from '../tpm';
import { checkAkPublic, type CheckedAk } from './ak-public';
import { verifyCertify, type CertifiedKey } from './certify';
import { makeCredentialChallenge, verifyActivatedSecret, type CredentialChallenge } from './credential';
import { assertCsrKeyMatches, verifyCsr, type VerifiedCsr } from './csr';
import { resolveEk, type ResolvedEk } from './ek-certificate';
import { DEFAULT_KEY_ALGORITHMS, type KeyAlgorithm } from './key-policy';
import type { ParsedCertificate, TrustAnchor } from './x509';

/** Size of enrollment and renewal nonces (the Certify qualifyingData). */
export const NONCE_BYTES = 32;

/** The TPM slice of configuration the verifiers need (from `tpm.*`). */
export interface TpmVerifierPolicy {
  /** Parsed `tpm.trustedRootsFile` (use `parseTrustAnchors` once at start-up). */
  readonly roots: readonly TrustAnchor[];
  /** Parsed `tpm.trustedIntermediatesFile`, if any. */
  readonly intermediates?: readonly ParsedCertificate[];
  readonly allowEkPublicOnly: boolean;
  readonly akAlgorithms?: readonly KeyAlgorithm[];
  readonly deviceKeyAlgorithms?: readonly KeyAlgorithm[];
  readonly allowSha1?: boolean;
}

/** Decoded binary fields of a `start` request. */
export interface StartEvidence {
  readonly ekCertificate?: Buffer | undefined;
  readonly ekPublic?: Buffer | undefined;
  readonly akPublic: Buffer;
}

/** Everything `start` must store (server side) and send back (challenge parts and nonce). */
export interface StartResult {
  readonly ek: ResolvedEk;
  readonly ak: CheckedAk;
  /** Keep `challenge.secret` server-side; send credentialBlob and encryptedSecret. */
  readonly challenge: CredentialChallenge;
  /** Certify qualifyingData for `finish`; single use. */
  readonly nonce: Buffer;
}

/**
 * Where `start` gets its randomness. Production uses the defaults (node:crypto). A benchmark injects
 * `challenge` to hand out pre-agreed (secret, nonce) pairs so pre-generated TPM artefacts match.
 */
export interface StartRandomness {
  /** OAEP seed / ephemeral ECDH key material. */
  readonly random?: RandomSource;
  /** The credential secret and the Certify nonce of one enrollment, drawn together. */
  readonly challenge?: () => { readonly secret: Buffer; readonly nonce: Buffer };
}

/**
 * `start` of TPM enrollment (attestation.md §3.1 B.1–B.6), pure: verifies the EK (certificate chain or, if
 * allowed, EK public only), checks the AK, then creates a MakeCredential challenge for EK+AK and a nonce.
 * The caller must still compare `ek.ekPublicSha256` with the device's inventory record and check the token.
 */
export function verifyEnrollmentStart(
  evidence: StartEvidence,
  policy: TpmVerifierPolicy,
  nowMs: number,
  randomness: StartRandomness = {},
): StartResult {
  const random = randomness.random ?? randomBytes;
  const ek = resolveEk({
    ekCertificate: evidence.ekCertificate,
    ekPublicTpm2b: evidence.ekPublic,
    roots: policy.roots,
    ...(policy.intermediates ? { intermediates: policy.intermediates } : {}),
    nowMs,
    allowEkPublicOnly: policy.allowEkPublicOnly,
  });
  const ak = checkAkPublic(evidence.akPublic, policy.akAlgorithms ?? DEFAULT_KEY_ALGORITHMS);
  const drawn = randomness.challenge?.();
  const challenge = makeCredentialChallenge(ek.ekPublic, ak.name, random, drawn?.secret);
  return { ek, ak, challenge, nonce: drawn?.nonce ?? random(NONCE_BYTES) };
}

/** Decoded binary fields of `finish`/`renew` plus what the server stored. */
export interface CertifyEvidence {
  readonly csr: string | Buffer;
  readonly certifyInfo: Buffer;
  readonly certifySignature: Buffer;
  readonly keyPublic: Buffer;
  /** The AK TPMT_PUBLIC checked at `start` (enrollment) or recorded on the device (renewal). */
  readonly akPublic: Buffer;
  /** The nonce issued by `start` / renewal start. */
  readonly nonce: Buffer;
}

/** Proof that the CSR key is a non-exportable key of the attested TPM. */
export interface CertifyResult {
  readonly csr: VerifiedCsr;
  readonly key: CertifiedKey;
}

/**
 * Shared by `finish` and `renew`: Certify verified by the AK with the nonce (`verifyCertify`), the CSR's own
 * signature verified, and the CSR key equal to the certified key (`CSR_KEY_MISMATCH`).
 */
export function verifyCertifiedCsr(evidence: CertifyEvidence, policy: Omit<TpmVerifierPolicy, 'roots' | 'allowEkPublicOnly'>): CertifyResult {
  const key = verifyCertify({
    attest: evidence.certifyInfo,
    signature: evidence.certifySignature,
    certifiedPubArea: evidence.keyPublic,
    akPubArea: evidence.akPublic,
    nonce: evidence.nonce,
    ...(policy.deviceKeyAlgorithms ? { keyAlgorithms: policy.deviceKeyAlgorithms } : {}),
    ...(policy.akAlgorithms ? { akAlgorithms: policy.akAlgorithms } : {}),
    allowSha1: policy.allowSha1 ?? false,
  });
  const csr = verifyCsr(evidence.csr, { spki: key.keySpki, key: () => publicKeyOf(key.keyPublic) });
  assertCsrKeyMatches(csr.spki, key.keySpki);
  return { csr, key };
}

/**
 * `finish` of TPM enrollment: the activated secret (constant time, `CREDENTIAL_SECRET_MISMATCH`) and then
 * `verifyCertifiedCsr`. The secret is checked first: without it the AK is not proven to share a TPM with the EK.
 */
export function verifyEnrollmentFinish(
  evidence: CertifyEvidence & { readonly activatedSecret: Buffer; readonly expectedSecret: Buffer },
  policy: Omit<TpmVerifierPolicy, 'roots' | 'allowEkPublicOnly'>,
): CertifyResult {
  verifyActivatedSecret(evidence.activatedSecret, evidence.expectedSecret);
  return verifyCertifiedCsr(evidence, policy);
}
