import { z } from 'zod';

/**
 * `enrollment` and `tpm`: device enrollment with TPM attestation (src/attestation, src/services/enrollment).
 * Every key has `.describe()`; `config/README.md` is generated from these descriptions.
 */

const path = () => z.string().min(1);

/** Key algorithms a policy may allow (mirrors `KEY_ALGORITHMS` in src/attestation/key-policy.ts). */
const keyAlgorithm = z.enum(['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecc-p256', 'ecc-p384', 'ecc-p521']);
const DEFAULT_ALGS: Array<z.infer<typeof keyAlgorithm>> = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecc-p256', 'ecc-p384'];

export const enrollmentConfigSchema = z
  .object({
    tokenTtlSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .default(3600)
      .describe('Lifetime of a one-time enrollment token.'),
    challengeTtlSeconds: z
      .number()
      .int()
      .min(30)
      .max(3600)
      .default(300)
      .describe(
        'How long an enrollment id from `start` (its MakeCredential secret and nonce) stays valid for `finish`; also the lifetime of a renewal nonce.',
      ),
    renewalEnabled: z
      .boolean()
      .default(true)
      .describe('Allow active devices to renew their certificate with a fresh TPM2_Certify by the AK recorded at enrollment (no token).'),
    maxRequestBytes: z
      .number()
      .int()
      .min(4096)
      .max(1024 * 1024)
      .default(64 * 1024)
      .describe('Largest accepted JSON body of the enrollment endpoints.'),
    requestsPerMinutePerAddress: z
      .number()
      .int()
      .min(1)
      .default(120)
      .describe('Enrollment requests accepted per client address and minute (all gateway instances together); more get 429.'),
  })
  .prefault({})
  .describe('Enrollment of registered devices.');

export const tpmConfigSchema = z
  .object({
    trustedRootsFile: path()
      .nullable()
      .default(null)
      .describe(
        'PEM bundle of TPM manufacturer CA certificates that EK certificates must chain to (e.g. the tpm-ca-certificates mirror of Infineon, STMicro, Nuvoton, Intel, AMD, Microsoft roots). Every certificate in it is a trust anchor. Without it no EK certificate verifies, so only `allowEkPublicOnly` devices could enroll.',
      ),
    trustedIntermediatesFile: path()
      .nullable()
      .default(null)
      .describe('Optional PEM bundle of manufacturer intermediate CAs used to build EK certificate chains (vendors publish them separately); never trust anchors.'),
    allowEkPublicOnly: z
      .boolean()
      .default(false)
      .describe(
        'Accept devices that present only an EK public key without an EK certificate chaining to a trusted TPM manufacturer. Weakens the "official hardware only" guarantee; refused in production.',
      ),
    nonceTtlSeconds: z
      .number()
      .int()
      .min(30)
      .max(3600)
      .default(300)
      .describe('Lifetime of an attestation nonce (TPM2_Certify qualifyingData). Nonces are single use and store-backed across gateway instances.'),
    akAlgorithms: z
      .array(keyAlgorithm)
      .min(1)
      .default(DEFAULT_ALGS)
      .describe('Accepted attestation key (AK) algorithms. The AK must also be a restricted signing key with fixedTPM, fixedParent and sensitiveDataOrigin.'),
    deviceKeyAlgorithms: z
      .array(keyAlgorithm)
      .min(1)
      .default(DEFAULT_ALGS)
      .describe('Accepted device (VPN client) key algorithms. The key must be certified by the AK as fixedTPM, fixedParent, sensitiveDataOrigin, sign and not restricted.'),
    allowSha1Signatures: z
      .boolean()
      .default(false)
      .describe('Accept SHA-1 TPM signatures over Certify attestations. Off: the devicegate agent signs with SHA-256. (WebAuthn `tpm` statements allow RS1 separately, as Windows Hello AIKs need it.)'),
  })
  .prefault({})
  .describe('TPM 2.0 attestation.');

export type EnrollmentConfig = z.infer<typeof enrollmentConfigSchema>;
export type TpmConfig = z.infer<typeof tpmConfigSchema>;
