import { randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../lib/constant-time';
import { HASH_INFO, makeCredential, type RandomSource, type TpmtPublic } from '../tpm';
import { attestationRejected } from './errors';

/** A MakeCredential challenge; `secret` stays on the server (store it with the enrollment, never send it). */
export interface CredentialChallenge {
  /** TPM2B_ID_OBJECT contents, for the device. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET contents, for the device. */
  readonly encryptedSecret: Buffer;
  /** The secret the device must return after ActivateCredential. */
  readonly secret: Buffer;
}

/**
 * Server side of credential activation (attestation.md §3.1 B.6, go-attestation `Generate`): a fresh 32-byte
 * secret (or one digest of the EK nameAlg if shorter) protected for `ekPublic` and bound to `akName`. The device
 * can recover it only if the AK named `akName` is loaded on the TPM that owns the EK, so a correct answer proves
 * "this AK lives next to this EK". `random` and `presetSecret` are injectable for deterministic tests and
 * benchmarks only; production must use fresh randomness.
 */
export function makeCredentialChallenge(
  ekPublic: TpmtPublic,
  akName: Buffer,
  random: RandomSource = randomBytes,
  presetSecret?: Buffer,
): CredentialChallenge {
  const size = Math.min(32, HASH_INFO[ekPublic.nameAlg]?.size ?? 32);
  const secret = presetSecret ?? random(size);
  const made = makeCredential(ekPublic, akName, secret, random);
  return { ...made, secret };
}

/**
 * Compares the secret returned by the device with the stored one in constant time (step-ca uses
 * `subtle.ConstantTimeCompare`). Throws `CREDENTIAL_SECRET_MISMATCH` (forbidden) on any difference.
 */
export function verifyActivatedSecret(activated: Buffer, expected: Buffer): void {
  if (!constantTimeEqual(activated, expected)) {
    throw attestationRejected('CREDENTIAL_SECRET_MISMATCH', 'The activated credential does not match the challenge');
  }
}
