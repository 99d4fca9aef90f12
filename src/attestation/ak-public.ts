import type { KeyObject } from 'node:crypto';
import { TPMA_OBJECT, TPM_ALG, computeName, describeAttributes, parsePublic, publicKeyOf, type ParsedPublic } from '../tpm';
import { attestationRejected } from './errors';
import { DEFAULT_KEY_ALGORITHMS, keyAlgorithmOf, type KeyAlgorithm } from './key-policy';

/** Result of `checkAkPublic`. */
export interface CheckedAk {
  readonly parsed: ParsedPublic;
  /** nameAlg ‖ H(TPMT_PUBLIC): the name MakeCredential binds the secret to. Computed here, never taken from the client. */
  readonly name: Buffer;
  readonly algorithm: KeyAlgorithm;
  /** The AK as a node:crypto key (imported once; reuse it for signature checks). */
  readonly key: KeyObject;
}

const REQUIRED =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.sign;

/**
 * Checks that a TPMT_PUBLIC is an acceptable attestation key (attestation.md §3.1 B.5, go-attestation
 * `CheckAKParameters`):
 * - "restricted signing key": restricted + sign set and decrypt clear. Restricted matters most: a restricted key
 *   refuses to sign data that starts with TPM_GENERATED_VALUE unless the TPM produced it, so TPMS_ATTEST signed by
 *   it cannot be forged by software on the device;
 * - fixedTPM, fixedParent, sensitiveDataOrigin: generated in and bound to this TPM;
 * - userWithAuth: usable with its (empty) auth value, as the protocol needs;
 * - nameAlg SHA-256 or stronger, algorithm in `allowed` (`AK_ALG_NOT_ALLOWED`), the key decodes.
 * Malformed input is bad_request; a well-formed but unacceptable AK is `AK_ATTRIBUTES_INVALID` (forbidden).
 */
export function checkAkPublic(pubArea: Buffer, allowed: readonly KeyAlgorithm[] = DEFAULT_KEY_ALGORITHMS): CheckedAk {
  const parsed = parsePublic(pubArea, 'AK TPMT_PUBLIC');
  const p = parsed.public;
  const missing = describeAttributes(REQUIRED & ~p.objectAttributes);
  if (missing.length > 0) {
    throw attestationRejected('AK_ATTRIBUTES_INVALID', `The AK lacks ${missing.join(', ')}`, { missing });
  }
  if ((p.objectAttributes & TPMA_OBJECT.decrypt) !== 0) {
    throw attestationRejected('AK_ATTRIBUTES_INVALID', 'The AK is also a decryption key', { forbidden: ['decrypt'] });
  }
  if (p.nameAlg === TPM_ALG.SHA1) throw attestationRejected('AK_ALG_NOT_ALLOWED', 'The AK uses SHA-1 as nameAlg');
  const algorithm = keyAlgorithmOf(p);
  if (algorithm === null || !allowed.includes(algorithm)) {
    throw attestationRejected('AK_ALG_NOT_ALLOWED', `AK algorithm ${algorithm ?? 'unknown'} is not allowed`, { algorithm });
  }
  const key = publicKeyOf(p);
  return { parsed, name: computeName(parsed), algorithm, key };
}
