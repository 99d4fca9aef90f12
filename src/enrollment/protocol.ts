/**
 * Wire format of TPM enrollment and renewal between `devicegate-agent` and the gateway (JSON over HTTPS).
 *
 * Encoding rules:
 * - every binary field is **standard base64** (RFC 4648 §4, with padding); base64url is refused so one value has
 *   one spelling (`b64` below);
 * - TPM structures are sent exactly as the TPM produced them, without re-encoding:
 *   `akPublic`, `keyPublic` = TPMT_PUBLIC (no size prefix); `ekPublic` = **TPM2B_PUBLIC** (u16 size + TPMT_PUBLIC,
 *   what `tpm2_createek -u`/`tpm2_readpublic -o` write) so IT tooling output can be sent unchanged;
 *   `certifyInfo` = TPMS_ATTEST (no size prefix); `certifySignature` = TPMT_SIGNATURE;
 *   `credentialBlob` = contents of TPM2B_ID_OBJECT; `encryptedSecret` = contents of TPM2B_ENCRYPTED_SECRET;
 *   `akName` = TPM2B_NAME contents (nameAlg ‖ digest); `ekCertificate` = DER as stored in NV (an NV header or
 *   padding is tolerated by the server);
 * - certificates and CSRs are PEM; times are ISO 8601 UTC.
 *
 * Flow: `POST start` → device runs ActivateCredential + Certify(nonce) + TPM-signed CSR → `POST finish`.
 * Renewal (no token): `POST renewStart` → Certify(nonce) by the recorded AK → `POST renewFinish`.
 * Each request schema is `.strict()`: unknown fields are rejected, so a client cannot rely on ignored input.
 */
import { z } from 'zod';

/** Paths the gateway mounts (the lead's HTTP routes) and the agent calls, relative to the server URL. */
export const ENROLLMENT_PATHS = {
  start: '/v1/enrollment/tpm/start',
  finish: '/v1/enrollment/tpm/finish',
  renewStart: '/v1/enrollment/tpm/renew/start',
  renewFinish: '/v1/enrollment/tpm/renew/finish',
} as const;

/** Largest accepted request body; the biggest field is an EK certificate (< 2 KiB) plus a chain. */
export const ENROLLMENT_MAX_BODY_BYTES = 64 * 1024;

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A standard-base64 string of 1..`maxBytes` decoded bytes. */
export const b64 = (maxBytes: number, what: string) =>
  z
    .string()
    .min(1)
    .max(Math.ceil(maxBytes / 3) * 4)
    .regex(B64, `${what} must be standard base64`)
    .describe(`${what}, base64`);

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'must be a lower-case UUID');
const pemCsr = z
  .string()
  .max(16 * 1024)
  .regex(/^-----BEGIN CERTIFICATE REQUEST-----[\s\S]+-----END CERTIFICATE REQUEST-----\s*$/, 'csr must be one PEM CERTIFICATE REQUEST')
  .describe('PKCS#10 CSR (PEM) signed by the TPM-held device key');

/** `POST start` request: proves which TPM is asking and which AK it will use. */
export const startRequestSchema = z
  .object({
    /** Inventory id of the device (UUID). */
    deviceId: uuid,
    /** The one-time enrollment token IT issued for this device. */
    token: z.string().min(16).max(256),
    /** EK certificate DER (RSA 2048: NV 0x01c00002). Required unless `tpm.allowEkPublicOnly`. */
    ekCertificate: b64(8192, 'ekCertificate').optional(),
    /** Intermediate CA certificates (DER) for the EK certificate, if the device has them. */
    ekCertificateChain: z.array(b64(8192, 'ekCertificateChain[]')).max(4).optional(),
    /** EK public area as TPM2B_PUBLIC. Lets the server use the exact EK parameters for MakeCredential. */
    ekPublic: b64(1024, 'ekPublic').optional(),
    /** AK public area as TPMT_PUBLIC. */
    akPublic: b64(1024, 'akPublic'),
  })
  .strict()
  .refine((v) => v.ekCertificate !== undefined || v.ekPublic !== undefined, {
    message: 'ekCertificate or ekPublic is required',
  });

/** `POST start` response: the credential-activation challenge and the nonce for Certify. */
export const startResponseSchema = z
  .object({
    enrollmentId: z.string().min(1).max(128),
    /** TPM2B_ID_OBJECT contents for TPM2_ActivateCredential. */
    credentialBlob: b64(1024, 'credentialBlob'),
    /** TPM2B_ENCRYPTED_SECRET contents for TPM2_ActivateCredential. */
    encryptedSecret: b64(1024, 'encryptedSecret'),
    /** The AK name the credential is bound to; the agent checks it equals its own AK's name. */
    akName: b64(66, 'akName'),
    /** 32-byte nonce: the qualifyingData of TPM2_Certify in `finish`. Single use. */
    nonce: b64(64, 'nonce'),
    /** When the enrollment id and nonce stop being accepted. */
    expiresAt: z.string().datetime(),
  })
  .strict();

/** `POST finish` request. */
export const finishRequestSchema = z
  .object({
    enrollmentId: z.string().min(1).max(128),
    /** The secret TPM2_ActivateCredential returned. */
    activatedSecret: b64(64, 'activatedSecret'),
    csr: pemCsr,
    /** TPMS_ATTEST of TPM2_Certify(device key, AK, qualifyingData = nonce). */
    certifyInfo: b64(1024, 'certifyInfo'),
    /** TPMT_SIGNATURE of that Certify. */
    certifySignature: b64(1024, 'certifySignature'),
    /** TPMT_PUBLIC of the device key. */
    keyPublic: b64(1024, 'keyPublic'),
  })
  .strict();

/** Response of `finish` and `renewFinish`. */
export const certificateResponseSchema = z
  .object({
    deviceId: uuid,
    /** The device certificate (PEM). */
    certificate: z.string().min(1),
    /** Issuing CA chain (PEM, leaf's issuer first), without the leaf. */
    chain: z.string(),
    /** notAfter of `certificate`. */
    notAfter: z.string().datetime(),
  })
  .strict();

/** `POST renewStart` request: no token; the AK recorded at enrollment is the credential. */
export const renewStartRequestSchema = z.object({ deviceId: uuid }).strict();

/** `POST renewStart` response. */
export const renewStartResponseSchema = z
  .object({
    renewalId: z.string().min(1).max(128),
    nonce: b64(64, 'nonce'),
    expiresAt: z.string().datetime(),
  })
  .strict();

/** `POST renewFinish` request: a fresh Certify by the recorded AK and a CSR for the certified key. */
export const renewFinishRequestSchema = z
  .object({
    renewalId: z.string().min(1).max(128),
    csr: pemCsr,
    certifyInfo: b64(1024, 'certifyInfo'),
    certifySignature: b64(1024, 'certifySignature'),
    keyPublic: b64(1024, 'keyPublic'),
  })
  .strict();

/** Error body the agent understands (the lead's error middleware; `code` is the AppError code). */
export const errorResponseSchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }).passthrough(),
});

export type StartRequest = z.infer<typeof startRequestSchema>;
export type StartResponse = z.infer<typeof startResponseSchema>;
export type FinishRequest = z.infer<typeof finishRequestSchema>;
export type CertificateResponse = z.infer<typeof certificateResponseSchema>;
export type RenewStartRequest = z.infer<typeof renewStartRequestSchema>;
export type RenewStartResponse = z.infer<typeof renewStartResponseSchema>;
export type RenewFinishRequest = z.infer<typeof renewFinishRequestSchema>;

/** Decodes a field validated by `b64`. */
export function fromB64(s: string): Buffer {
  return Buffer.from(s, 'base64');
}

/** Encodes bytes for the wire. */
export function toB64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}
