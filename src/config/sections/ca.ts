import { z } from 'zod';

/**
 * `ca`: the certificate authority that issues device certificates (src/ca). Owned by the CA module.
 * Every key has `.describe()`; `config/README.md` is generated from these descriptions.
 *
 * Secrets (key passphrase, HSM PIN) are never values here: they are a file path or the *name* of an environment
 * variable; `loadCa` is handed the environment by main.ts and reads the named variable.
 */
const path = () => z.string().min(1);

const filesSchema = z
  .object({
    rootCert: path().nullable().default(null).describe('Root CA certificate (PEM). Served in the chain; never used to sign at run time.'),
    issuingCert: path().nullable().default(null).describe('Issuing CA certificate (PEM) that signs device certificates and CRLs.'),
    issuingKey: path()
      .nullable()
      .default(null)
      .describe('Issuing CA private key, PKCS#8 PEM or DER, optionally encrypted (`source: file` only).'),
    ocspCert: path()
      .nullable()
      .default(null)
      .describe('Delegated OCSP signing certificate (PEM; EKU OCSPSigning, id-pkix-ocsp-nocheck), issued by the issuing CA.'),
    ocspKey: path()
      .nullable()
      .default(null)
      .describe('OCSP signer private key, PKCS#8 PEM or DER, optionally encrypted. With `source: pkcs11` only when `pkcs11.ocspKeyLabel` is null.'),
    keyPassphraseFile: path()
      .nullable()
      .default(null)
      .describe('File whose first line is the passphrase of encrypted key files. Wins over `keyPassphraseEnv`.'),
    keyPassphraseEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .nullable()
      .default(null)
      .describe('Name of the environment variable holding the passphrase of encrypted key files (e.g. `DEVICEGATE_CA_KEY_PASSPHRASE`).'),
  })
  .prefault({})
  .describe('Certificate and key files for `source: file` (certificates also for `source: pkcs11`).');

const pkcs11Schema = z
  .object({
    module: path().default('/usr/lib/softhsm/libsofthsm2.so').describe('Path of the PKCS#11 module (shared library).'),
    tokenLabel: z.string().min(1).max(32).nullable().default(null).describe('Label of the token holding the CA keys (preferred over `slot`).'),
    slot: z.number().int().min(0).nullable().default(null).describe('Numeric slot id, used only when `tokenLabel` is null.'),
    pinFile: path().nullable().default(null).describe('File whose first line is the token user PIN.'),
    pinEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .nullable()
      .default(null)
      .describe('Name of the environment variable holding the token user PIN (used when `pinFile` is null).'),
    issuingKeyLabel: z.string().min(1).default('devicegate-issuing').describe('CKA_LABEL of the issuing CA key pair in the token.'),
    ocspKeyLabel: z
      .string()
      .min(1)
      .nullable()
      .default('devicegate-ocsp')
      .describe('CKA_LABEL of the OCSP signer key pair in the token; null takes the OCSP key from `files.ocspKey`.'),
    sessions: z.number().int().min(1).max(32).default(4).describe('Sessions in the signing pool (parallel HSM operations).'),
  })
  .prefault({})
  .describe('PKCS#11 token for `source: pkcs11`.');

const deviceCertSchema = z
  .object({
    defaultValiditySeconds: z
      .number()
      .int()
      .min(300)
      .default(24 * 3600)
      .describe('Lifetime of a device certificate when the caller asks for none (default 24 h: short-lived certificates are the primary revocation control).'),
    maxValiditySeconds: z
      .number()
      .int()
      .min(300)
      .max(397 * 24 * 3600)
      .default(7 * 24 * 3600)
      .describe('Upper bound on a device certificate lifetime; longer requests are capped to it.'),
    backdateSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(300)
      .describe('`notBefore` is set this far before issuance so devices with a slow clock accept the certificate at once.'),
    csrMaxBytes: z.number().int().min(1024).max(256 * 1024).default(16 * 1024).describe('Largest accepted CSR (PEM or DER), in bytes.'),
  })
  .prefault({})
  .describe('Device certificate profile.');

const crlSchema = z
  .object({
    refreshSeconds: z
      .number()
      .int()
      .min(10)
      .default(3600)
      .describe('The CRL is regenerated on every revocation and at least this often.'),
    validitySeconds: z
      .number()
      .int()
      .min(60)
      .default(2 * 3600)
      .describe('`nextUpdate − thisUpdate` of each CRL; must exceed `refreshSeconds` so a CRL never lapses between regenerations.'),
  })
  .prefault({})
  .describe('Certificate revocation list served at `GET /v1/crl`.');

const ocspSchema = z
  .object({
    responseValiditySeconds: z
      .number()
      .int()
      .min(60)
      .default(3600)
      .describe('`nextUpdate − thisUpdate` of each OCSP answer (how long a client may cache it).'),
    cacheSeconds: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe('How long a signed answer is reused while no revocation happened; must be below `responseValiditySeconds`.'),
    cacheMaxEntries: z.number().int().min(0).default(100_000).describe('Upper bound on cached per-certificate answers.'),
    maxRequestBytes: z.number().int().min(256).max(65536).default(8192).describe('Larger OCSP requests get `malformedRequest`.'),
  })
  .prefault({})
  .describe('OCSP responder at `POST /v1/ocsp` and `GET /v1/ocsp/<base64>`.');

export const caConfigSchema = z
  .object({
    source: z
      .enum(['dev', 'file', 'pkcs11'])
      .default('dev')
      .describe(
        'Where the issuing CA comes from: `dev` generates a throwaway root and issuing CA under `devDir` (refused in production), `file` loads PEM files, `pkcs11` uses keys held in an HSM token.',
      ),
    devDir: path()
      .default('certs-dev/generated/ca')
      .describe('Directory of the generated dev CA (`source: dev`); created on first start, reused afterwards.'),
    files: filesSchema,
    pkcs11: pkcs11Schema,
    deviceCert: deviceCertSchema,
    crl: crlSchema,
    ocsp: ocspSchema,
  })
  .superRefine((ca, ctx) => {
    if (ca.deviceCert.defaultValiditySeconds > ca.deviceCert.maxValiditySeconds) {
      ctx.addIssue({ code: 'custom', path: ['deviceCert', 'defaultValiditySeconds'], message: 'must not exceed maxValiditySeconds' });
    }
    if (ca.crl.validitySeconds <= ca.crl.refreshSeconds) {
      ctx.addIssue({ code: 'custom', path: ['crl', 'validitySeconds'], message: 'must exceed crl.refreshSeconds' });
    }
    if (ca.ocsp.cacheSeconds >= ca.ocsp.responseValiditySeconds) {
      ctx.addIssue({ code: 'custom', path: ['ocsp', 'cacheSeconds'], message: 'must be below ocsp.responseValiditySeconds' });
    }
    const need = (key: keyof typeof ca.files, why: string): void => {
      if (ca.files[key] === null) ctx.addIssue({ code: 'custom', path: ['files', key], message: `required ${why}` });
    };
    if (ca.source === 'file' || ca.source === 'pkcs11') {
      need('rootCert', `with source: ${ca.source}`);
      need('issuingCert', `with source: ${ca.source}`);
      need('ocspCert', `with source: ${ca.source}`);
    }
    if (ca.source === 'file') {
      need('issuingKey', 'with source: file');
      need('ocspKey', 'with source: file');
    }
    if (ca.source === 'pkcs11') {
      if (ca.pkcs11.tokenLabel === null && ca.pkcs11.slot === null) {
        ctx.addIssue({ code: 'custom', path: ['pkcs11', 'tokenLabel'], message: 'tokenLabel or slot is required with source: pkcs11' });
      }
      if (ca.pkcs11.pinFile === null && ca.pkcs11.pinEnv === null) {
        ctx.addIssue({ code: 'custom', path: ['pkcs11', 'pinFile'], message: 'pinFile or pinEnv is required with source: pkcs11' });
      }
      if (ca.pkcs11.ocspKeyLabel === null) need('ocspKey', 'when pkcs11.ocspKeyLabel is null');
    }
  })
  .prefault({})
  .describe('Certificate authority for device certificates.');

export type CaConfig = z.infer<typeof caConfigSchema>;
