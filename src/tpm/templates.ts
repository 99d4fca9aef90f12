import { TPMA_OBJECT, TPM_ALG, TPM_ECC } from './constants';
import { marshalPublic, type TpmtPublic } from './public-area';

const A = TPMA_OBJECT;
const NONE = Buffer.alloc(0);

/** PolicyA_SHA256 of the TCG EK Credential Profile: PolicySecret(TPM_RH_ENDORSEMENT). */
export const EK_POLICY_SHA256 = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

/**
 * The TCG "L-1" RSA-2048 EK template (EK Credential Profile 2.5 §B.3.3): recreating the EK with CreatePrimary from
 * this template yields the key the manufacturer certified. The unique field is 256 zero bytes, as the profile says.
 */
export function ekRsaTemplate(): Buffer {
  const t: TpmtPublic = {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt,
    authPolicy: EK_POLICY_SHA256,
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
    keyBits: 2048,
    exponent: 0,
    modulus: Buffer.alloc(256),
  };
  return marshalPublic(t);
}

/**
 * An ECC P-256 storage root key (restricted decrypt, AES-128-CFB) in the owner hierarchy, as the TCG provisioning
 * guidance describes. Only used transiently as the parent of the AK and the device key.
 */
export function srkTemplate(): Buffer {
  const t: TpmtPublic = {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes:
      A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.decrypt,
    authPolicy: NONE,
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
    curveId: TPM_ECC.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
    x: NONE,
    y: NONE,
  };
  return marshalPublic(t);
}

/** Attributes of an attestation key: a restricted signing key that never leaves this TPM. */
export const AK_ATTRIBUTES =
  A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.sign;

/**
 * Attestation key template: RSA-2048 RSASSA-SHA256 (what go-attestation/step-ca expect) or ECC P-256 ECDSA-SHA256.
 * noDA is set because the key's authValue is empty: dictionary-attack protection would guard nothing and would
 * lock the key after a few unclean shutdowns.
 */
export function akTemplate(alg: 'rsa' | 'ecc' = 'rsa'): Buffer {
  const base = { nameAlg: TPM_ALG.SHA256, objectAttributes: AK_ATTRIBUTES, authPolicy: NONE, symmetric: { algorithm: TPM_ALG.NULL } };
  const t: TpmtPublic =
    alg === 'rsa'
      ? { ...base, type: TPM_ALG.RSA, scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: NONE }
      : {
          ...base,
          type: TPM_ALG.ECC,
          scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
          curveId: TPM_ECC.NIST_P256,
          kdf: { scheme: TPM_ALG.NULL },
          x: NONE,
          y: NONE,
        };
  return marshalPublic(t);
}

/** Attributes of the device (VPN client) key: an unrestricted signing key generated in and bound to this TPM. */
export const DEVICE_KEY_ATTRIBUTES = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.sign;

/**
 * The device key template: ECC P-256, scheme NULL so any ECDSA hash can be chosen per signature (TLS 1.2 and 1.3
 * through tpm2-openssl need that), non-exportable (fixedTPM, fixedParent, sensitiveDataOrigin).
 */
export function deviceKeyTemplate(attributes: number = DEVICE_KEY_ATTRIBUTES): Buffer {
  const t: TpmtPublic = {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy: NONE,
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.NULL },
    curveId: TPM_ECC.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
    x: NONE,
    y: NONE,
  };
  return marshalPublic(t);
}
