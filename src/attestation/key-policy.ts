import { TPM_ALG, TPM_ECC, type TpmtPublic } from '../tpm';

/** Key algorithms an operator can allow for AKs and device keys (`tpm.akAlgorithms`, `tpm.deviceKeyAlgorithms`). */
export const KEY_ALGORITHMS = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecc-p256', 'ecc-p384', 'ecc-p521'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** Default for both AKs and device keys: RSA ≥ 2048 and the NIST curves (attestation.md §3.1 A.8). */
export const DEFAULT_KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecc-p256', 'ecc-p384'];

/** The policy name of a TPM key, or null for anything never acceptable (RSA-1024, BN/SM2 curves). */
export function keyAlgorithmOf(p: TpmtPublic): KeyAlgorithm | null {
  if (p.type === TPM_ALG.RSA) {
    return p.keyBits === 2048 ? 'rsa-2048' : p.keyBits === 3072 ? 'rsa-3072' : p.keyBits === 4096 ? 'rsa-4096' : null;
  }
  switch (p.curveId) {
    case TPM_ECC.NIST_P256:
      return 'ecc-p256';
    case TPM_ECC.NIST_P384:
      return 'ecc-p384';
    case TPM_ECC.NIST_P521:
      return 'ecc-p521';
    default:
      return null;
  }
}

/** Hash algorithms accepted for TPM signatures; SHA-1 only when explicitly allowed. */
export function allowedSignatureHashes(allowSha1: boolean): ReadonlySet<number> {
  const s = new Set<number>([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
  if (allowSha1) s.add(TPM_ALG.SHA1);
  return s;
}
