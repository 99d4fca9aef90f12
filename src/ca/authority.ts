/**
 * The certificate authority as the rest of devicegate sees it: `loadCa(config.ca, …)` returns one object that
 * issues device certificates, builds CRLs and creates the OCSP responder, from a dev, file or PKCS#11 CA.
 * No persistence here: revocation state, CRL numbers and issued records belong to the caller (services/).
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CaConfig } from '../config/sections/ca';
import { AppError } from '../domain/errors';
import { toPem } from './der';
import { buildCrl, type BuiltCrl, type CrlEntry } from './crl';
import {
  certFromPemText,
  ensureDevCa,
  isDevCertificate,
  type CaLog,
} from './hierarchy';
import { DeviceCertificateIssuer, type IssueRequest, type IssuedCertificate } from './issuer';
import { createOcspResponder, type OcspResponder, type OcspResponderOptions } from './ocsp';
import { Pkcs11Token } from './pkcs11';
import { loadFileSigner, resolvePassphrase, type PassphraseSource, type Signer } from './signer';
import type { ParsedCertificate } from './x509';

/** A ready CA. */
export interface CertificateAuthority {
  readonly source: CaConfig['source'];
  /** True when the CA is a devicegate dev CA (production refuses to load one). */
  readonly isDev: boolean;
  readonly rootCertPem: string;
  readonly issuingCertPem: string;
  readonly ocspCertPem: string;
  /** Issuing CA then root, PEM: what `GET /v1/ca/chain` serves. */
  readonly chainPem: string;
  readonly issuingCert: ParsedCertificate;
  /** Issue one device certificate (see `DeviceCertificateIssuer.issue`). */
  issue(req: IssueRequest): Promise<IssuedCertificate>;
  /**
   * Build a CRL over `entries` with `crlNumber`; thisUpdate = `nowMs`, nextUpdate = `nowMs + ca.crl.validitySeconds`.
   */
  buildCrl(input: { entries: readonly CrlEntry[]; crlNumber: bigint | number; nowMs: number }): Promise<BuiltCrl>;
  /** An OCSP responder for this CA with the configured validity and cache settings. */
  createOcspResponder(opts: Pick<OcspResponderOptions, 'lookup' | 'onError'>): OcspResponder;
  /** Close HSM sessions. Idempotent. */
  close(): Promise<void>;
}

/** Parameters of `loadCa` that do not come from the `ca` config section. */
export interface LoadCaOptions {
  /** `server.publicUrl`: base of the CRL DP and OCSP AIA URLs in device certificates. */
  readonly publicUrl: string;
  readonly nowMs: number;
  /** Environment for `*Env` settings (main.ts passes process.env; src/ca never reads it itself). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Production mode: refuses `source: dev` and any certificate marked as dev (`CA_DEV_IN_PRODUCTION`). */
  readonly production?: boolean;
  /** Base for relative paths (default: the process working directory). */
  readonly baseDir?: string;
  readonly log?: CaLog;
}

const readPem = async (p: string, what: string): Promise<string> =>
  readFile(p, 'utf8').catch((cause: unknown) => {
    throw new AppError('internal', 'CA_CERT_UNREADABLE', `The ${what} certificate file cannot be read: ${p}`, { cause });
  });

async function readSecret(file: string | null, envName: string | null, env: LoadCaOptions['env'], what: string): Promise<string | undefined> {
  const src: PassphraseSource = {
    file,
    value: envName ? (env?.[envName] ?? null) : null,
  };
  if (envName && !file && !src.value) {
    throw new AppError('internal', 'CA_SECRET_MISSING', `The environment variable ${envName} (${what}) is not set.`);
  }
  return resolvePassphrase(src);
}

/**
 * Load the CA described by `config` (the `ca` config section).
 *
 * - `dev`: `ensureDevCa(config.devDir)` then load it like `file`.
 * - `file`: certificates from `files.*Cert`, keys from `files.issuingKey` / `files.ocspKey` (PKCS#8, optionally
 *   encrypted with the passphrase from `files.keyPassphraseFile` or the env var named by `files.keyPassphraseEnv`).
 * - `pkcs11`: certificates from files; the issuing key (and the OCSP key unless `pkcs11.ocspKeyLabel` is null)
 *   from the token, PIN from `pkcs11.pinFile` or the env var named by `pkcs11.pinEnv`.
 *
 * Fails closed with AppError `internal` on any mismatch: key vs certificate, issuing CA not issued by the root,
 * OCSP signer not issued by the issuing CA, issuing CA not valid at `nowMs`, dev material in production.
 */
export async function loadCa(config: CaConfig, opts: LoadCaOptions): Promise<CertificateAuthority> {
  const base = opts.baseDir ?? process.cwd();
  const abs = (p: string): string => path.resolve(base, p);
  if (opts.production && config.source === 'dev') {
    throw new AppError('internal', 'CA_DEV_IN_PRODUCTION', 'The dev CA cannot be used in production; configure ca.source file or pkcs11.');
  }

  let rootPath: string;
  let issuingPath: string;
  let ocspPath: string;
  let issuingKeyPath: string | null = null;
  let ocspKeyPath: string | null = null;
  if (config.source === 'dev') {
    const { paths } = await ensureDevCa(abs(config.devDir), { nowMs: opts.nowMs, ...(opts.log ? { log: opts.log } : {}) });
    rootPath = paths.rootCert;
    issuingPath = paths.issuingCert;
    ocspPath = paths.ocspCert;
    issuingKeyPath = paths.issuingKey;
    ocspKeyPath = paths.ocspKey;
  } else {
    const f = config.files;
    if (!f.rootCert || !f.issuingCert || !f.ocspCert) {
      throw new AppError('internal', 'CA_CONFIG_INCOMPLETE', 'ca.files.rootCert, issuingCert and ocspCert are required.');
    }
    rootPath = abs(f.rootCert);
    issuingPath = abs(f.issuingCert);
    ocspPath = abs(f.ocspCert);
    issuingKeyPath = f.issuingKey ? abs(f.issuingKey) : null;
    ocspKeyPath = f.ocspKey ? abs(f.ocspKey) : null;
  }

  const root = certFromPemText(await readPem(rootPath, 'root CA'), rootPath);
  const issuing = certFromPemText(await readPem(issuingPath, 'issuing CA'), issuingPath);
  const ocspCert = certFromPemText(await readPem(ocspPath, 'OCSP signer'), ocspPath);

  const isDev = [root, issuing, ocspCert].some((c) => isDevCertificate(c.der));
  if (opts.production && isDev) {
    throw new AppError('internal', 'CA_DEV_IN_PRODUCTION', 'A devicegate DEV ONLY certificate was configured in production.');
  }
  checkChain(root, issuing, ocspCert, opts.nowMs);

  const passphrase = async (): Promise<PassphraseSource> => {
    const value = await readSecret(config.files.keyPassphraseFile ? abs(config.files.keyPassphraseFile) : null, config.files.keyPassphraseEnv, opts.env, 'CA key passphrase');
    return { value: value ?? null };
  };

  let token: Pkcs11Token | null = null;
  let issuingSigner: Signer;
  let ocspSigner: Signer;
  try {
    if (config.source === 'pkcs11') {
      const p = config.pkcs11;
      const pin = await readSecret(p.pinFile ? abs(p.pinFile) : null, p.pinEnv, opts.env, 'PKCS#11 PIN');
      if (!pin) throw new AppError('internal', 'CA_SECRET_MISSING', 'No PKCS#11 PIN configured.');
      token = Pkcs11Token.open({ modulePath: p.module, tokenLabel: p.tokenLabel, slot: p.slot, pin, sessions: p.sessions });
      issuingSigner = await token.signer(p.issuingKeyLabel, { certificateSpki: issuing.spki });
      if (p.ocspKeyLabel) ocspSigner = await token.signer(p.ocspKeyLabel, { certificateSpki: ocspCert.spki });
      else {
        if (!ocspKeyPath) throw new AppError('internal', 'CA_CONFIG_INCOMPLETE', 'ca.files.ocspKey is required when pkcs11.ocspKeyLabel is null.');
        ocspSigner = await loadFileSigner(ocspKeyPath, await passphrase());
      }
    } else {
      if (!issuingKeyPath || !ocspKeyPath) {
        throw new AppError('internal', 'CA_CONFIG_INCOMPLETE', 'ca.files.issuingKey and ocspKey are required.');
      }
      const pass = config.source === 'dev' ? {} : await passphrase();
      issuingSigner = await loadFileSigner(issuingKeyPath, pass);
      ocspSigner = await loadFileSigner(ocspKeyPath, pass);
    }
    if (!issuingSigner.spki.equals(issuing.spki)) {
      throw new AppError('internal', 'CA_KEY_MISMATCH', 'The issuing CA key does not match the issuing CA certificate.');
    }
    if (!ocspSigner.spki.equals(ocspCert.spki)) {
      throw new AppError('internal', 'CA_KEY_MISMATCH', 'The OCSP signer key does not match the OCSP signer certificate.');
    }
  } catch (e) {
    await token?.close();
    throw e;
  }

  opts.log?.info(
    { source: config.source, isDev, issuingKey: issuingSigner.description, ocspKey: ocspSigner.description },
    'certificate authority loaded',
  );
  return assembleAuthority({
    source: config.source,
    isDev,
    root: { cert: root },
    issuing: { cert: issuing, signer: issuingSigner },
    ocsp: { cert: ocspCert, signer: ocspSigner },
    config,
    publicUrl: opts.publicUrl,
    close: async () => {
      await token?.close();
    },
  });
}

/** Build a CertificateAuthority from already-loaded parts (used by `loadCa`, tests and the benchmark). */
export function assembleAuthority(parts: {
  source: CaConfig['source'];
  isDev: boolean;
  root: { cert: ParsedCertificate };
  issuing: { cert: ParsedCertificate; signer: Signer };
  ocsp: { cert: ParsedCertificate; signer: Signer };
  config: Pick<CaConfig, 'deviceCert' | 'crl' | 'ocsp'>;
  publicUrl: string;
  close?: () => Promise<void>;
}): CertificateAuthority {
  const { config } = parts;
  const issuer = new DeviceCertificateIssuer(
    { cert: parts.issuing.cert, signer: parts.issuing.signer },
    {
      publicUrl: parts.publicUrl,
      defaultValiditySeconds: config.deviceCert.defaultValiditySeconds,
      maxValiditySeconds: config.deviceCert.maxValiditySeconds,
      backdateSeconds: config.deviceCert.backdateSeconds,
      csrMaxBytes: config.deviceCert.csrMaxBytes,
    },
  );
  // Re-armoured from the parsed DER so served PEM never carries comments or extra blocks from the source files.
  const pemOf = (c: { cert: ParsedCertificate }): string => toPem(c.cert.der, 'CERTIFICATE');
  const rootPem = pemOf(parts.root);
  const issuingPem = pemOf(parts.issuing);
  let closed = false;
  return {
    source: parts.source,
    isDev: parts.isDev,
    rootCertPem: rootPem,
    issuingCertPem: issuingPem,
    ocspCertPem: pemOf(parts.ocsp),
    chainPem: issuingPem + rootPem,
    issuingCert: parts.issuing.cert,
    issue: (req) => issuer.issue(req),
    buildCrl: ({ entries, crlNumber, nowMs }) =>
      buildCrl(
        { cert: parts.issuing.cert, signer: parts.issuing.signer },
        { entries, crlNumber, thisUpdateMs: nowMs, nextUpdateMs: nowMs + config.crl.validitySeconds * 1000 },
      ),
    createOcspResponder: ({ lookup, onError }) =>
      createOcspResponder({
        issuerCertDer: parts.issuing.cert.der,
        signerCertDer: parts.ocsp.cert.der,
        signer: parts.ocsp.signer,
        lookup,
        ...(onError ? { onError } : {}),
        responseValiditySeconds: config.ocsp.responseValiditySeconds,
        cacheSeconds: config.ocsp.cacheSeconds,
        maxCacheEntries: config.ocsp.cacheMaxEntries,
        maxRequestBytes: config.ocsp.maxRequestBytes,
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      await parts.issuing.signer.close();
      await parts.ocsp.signer.close();
      await parts.close?.();
    },
  };
}

/** Structural chain checks done once at load time (signatures via node:crypto X509Certificate). */
function checkChain(root: ParsedCertificate, issuing: ParsedCertificate, ocsp: ParsedCertificate, nowMs: number): void {
  const r = new X509Certificate(root.der);
  const i = new X509Certificate(issuing.der);
  const o = new X509Certificate(ocsp.der);
  if (!i.verify(r.publicKey) || !issuing.issuerName.equals(root.subjectName)) {
    throw new AppError('internal', 'CA_CHAIN_INVALID', 'The issuing CA certificate is not signed by the configured root.');
  }
  if (!i.ca) throw new AppError('internal', 'CA_CHAIN_INVALID', 'The issuing CA certificate is not a CA certificate.');
  if (!o.verify(i.publicKey) || !ocsp.issuerName.equals(issuing.subjectName)) {
    throw new AppError('internal', 'CA_CHAIN_INVALID', 'The OCSP signer certificate is not issued by the issuing CA.');
  }
  if (!(o.keyUsage ?? []).includes('1.3.6.1.5.5.7.3.9')) {
    throw new AppError('internal', 'CA_CHAIN_INVALID', 'The OCSP signer certificate lacks the OCSPSigning EKU.');
  }
  if (nowMs < issuing.notBeforeMs || nowMs >= issuing.notAfterMs) {
    throw new AppError('internal', 'CA_NOT_VALID', 'The issuing CA certificate is expired or not yet valid.');
  }
  if (nowMs >= ocsp.notAfterMs) {
    throw new AppError('internal', 'CA_NOT_VALID', 'The OCSP signer certificate has expired; issue a new one.');
  }
}

