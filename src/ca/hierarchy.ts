/**
 * CA hierarchy: root → issuing CA → delegated OCSP signer, for the dev CA and for a production `ca init` (keys in
 * files or generated inside a PKCS#11 token).
 */
import { X509Certificate, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../domain/errors';
import { fromPemStrict, pemBlocks, toPem } from './der';
import type { Pkcs11Token } from './pkcs11';
import { createKeyObjectSigner, type CaKeyAlgorithm, type Signer } from './signer';
import {
  KU,
  OID,
  authorityKeyIdExt,
  basicConstraintsExt,
  decodeName,
  encodeName,
  extKeyUsageExt,
  keyIdentifier,
  keyUsageExt,
  ocspNoCheckExt,
  parseCertificate,
  signCertificate,
  subjectKeyIdExt,
  type ParsedCertificate,
} from './x509';

/** The organisation every dev CA certificate carries; production refuses certificates that show it. */
export const DEV_ORGANIZATION = 'devicegate DEV ONLY';

/** The three keys of a hierarchy. */
export type CaRole = 'root' | 'issuing' | 'ocsp';

/** A freshly generated CA key: its signer, and the private key when it lives in this process (file CAs). */
export interface GeneratedCaKey {
  readonly signer: Signer;
  readonly privateKey?: KeyObject;
}

/** Where `createCaHierarchy` gets its keys. */
export interface CaKeyProvider {
  generate(role: CaRole, algorithm: CaKeyAlgorithm): Promise<GeneratedCaKey>;
}

/** Keys generated in this process with node:crypto (dev CA, `ca init` into files). */
export function memoryKeyProvider(): CaKeyProvider {
  return {
    async generate(_role, algorithm) {
      const { privateKey } =
        algorithm === 'ec-p256' || algorithm === 'ec-p384'
          ? generateKeyPairSync('ec', { namedCurve: algorithm === 'ec-p256' ? 'P-256' : 'P-384' })
          : generateKeyPairSync('rsa', { modulusLength: Number(algorithm.slice(4)), publicExponent: 0x10001 });
      return { signer: createKeyObjectSigner(privateKey), privateKey };
    },
  };
}

/** Default CKA_LABELs of the three key pairs in a token. */
export const DEFAULT_PKCS11_LABELS: Readonly<Record<CaRole, string>> = {
  root: 'devicegate-root',
  issuing: 'devicegate-issuing',
  ocsp: 'devicegate-ocsp',
};

/** Keys generated inside a PKCS#11 token (non-extractable); refuses labels that already exist. */
export function pkcs11KeyProvider(token: Pkcs11Token, labels: Readonly<Record<CaRole, string>> = DEFAULT_PKCS11_LABELS): CaKeyProvider {
  return {
    async generate(role, algorithm) {
      return { signer: await token.generateKeyPair(labels[role], algorithm) };
    },
  };
}

/** One certificate of the hierarchy with its signer. */
export interface CaMember {
  readonly der: Buffer;
  readonly pem: string;
  readonly cert: ParsedCertificate;
  readonly signer: Signer;
  /** Present for in-process keys only. */
  readonly privateKey?: KeyObject;
}

/** Root, issuing CA and delegated OCSP signer as created by `createCaHierarchy`. */
export interface CaHierarchy {
  readonly root: CaMember;
  readonly issuing: CaMember;
  readonly ocsp: CaMember;
}

/** Options of `createCaHierarchy`. */
export interface CaHierarchyOptions {
  readonly nowMs: number;
  readonly keys: CaKeyProvider;
  /** One algorithm for all three keys, or one per role (default ECDSA P-256). */
  readonly algorithm?: CaKeyAlgorithm | Readonly<Record<CaRole, CaKeyAlgorithm>>;
  /** Subject organisation (default `devicegate`); ignored for dev, which always uses `DEV_ORGANIZATION`. */
  readonly organization?: string;
  /** Mark every certificate as a dev certificate. */
  readonly dev?: boolean;
  readonly rootValidityDays?: number;
  readonly issuingValidityDays?: number;
  /**
   * The OCSP signer carries id-pkix-ocsp-nocheck, so clients never check its revocation: RFC 6960 §4.2.2.2.1 says
   * such a certificate should be short-lived. Default 365 days; renew it with `issueOcspSigner`.
   */
  readonly ocspValidityDays?: number;
}

const DAY = 24 * 3600 * 1000;

function randomSerial(): Buffer {
  const s = randomBytes(16);
  s[0] = ((s[0] as number) & 0x7f) | 0x01;
  return s;
}

function names(dev: boolean, organization: string): Record<CaRole, Buffer> {
  const o = dev ? DEV_ORGANIZATION : organization;
  const suffix = dev ? ' (DEV ONLY, not for production)' : '';
  const n = (cn: string): Buffer => encodeName([
    { oid: OID.organizationName, value: o },
    { oid: OID.commonName, value: cn + suffix },
  ]);
  return { root: n('devicegate Root CA'), issuing: n('devicegate Issuing CA'), ocsp: n('devicegate OCSP Responder') };
}

/**
 * Issue a delegated OCSP signing certificate for `issuing` (EKU OCSPSigning, KU digitalSignature, CA:false,
 * id-pkix-ocsp-nocheck), e.g. to renew an expiring one.
 */
export async function issueOcspSigner(
  issuing: { cert: ParsedCertificate; signer: Signer },
  key: GeneratedCaKey,
  opts: { nowMs: number; validityDays?: number; subjectName?: Buffer },
): Promise<CaMember> {
  const notBefore = Math.floor(opts.nowMs / 1000) * 1000 - 300_000;
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuerName: issuing.cert.subjectName,
      subjectName: opts.subjectName ?? ocspNameFor(issuing.cert),
      notBeforeMs: notBefore,
      notAfterMs: Math.min(notBefore + (opts.validityDays ?? 365) * DAY, issuing.cert.notAfterMs),
      spki: key.signer.spki,
      extensions: [
        basicConstraintsExt(false),
        keyUsageExt([KU.digitalSignature]),
        extKeyUsageExt([OID.ocspSigning]),
        ocspNoCheckExt(),
        subjectKeyIdExt(keyIdentifier(key.signer.spki)),
        authorityKeyIdExt(issuing.cert.keyId),
      ],
    },
    issuing.signer,
  );
  return member(der, key);
}

function ocspNameFor(issuing: ParsedCertificate): Buffer {
  const attrs = decodeName(issuing.subjectName);
  const o = attrs.find((a) => a.oid === OID.organizationName)?.value ?? 'devicegate';
  const dev = o === DEV_ORGANIZATION;
  return names(dev, o).ocsp;
}

function member(der: Buffer, key: GeneratedCaKey): CaMember {
  return {
    der,
    pem: toPem(der, 'CERTIFICATE'),
    cert: parseCertificate(der),
    signer: key.signer,
    ...(key.privateKey ? { privateKey: key.privateKey } : {}),
  };
}

/**
 * Create root, issuing CA and OCSP signer.
 *
 * Guarantees: root is self-signed (CA:true, pathLen 1, KU keyCertSign+cRLSign, critical); the issuing CA is signed by
 * the root (CA:true, pathLen 0, KU keyCertSign+cRLSign); the OCSP signer is signed by the issuing CA (see
 * `issueOcspSigner`). All carry SKI; the lower two AKI. Child validity never exceeds the parent's.
 */
export async function createCaHierarchy(opts: CaHierarchyOptions): Promise<CaHierarchy> {
  const alg = (role: CaRole): CaKeyAlgorithm =>
    typeof opts.algorithm === 'string' ? opts.algorithm : (opts.algorithm?.[role] ?? 'ec-p256');
  const dev = opts.dev === true;
  const n = names(dev, opts.organization ?? 'devicegate');
  const notBefore = Math.floor(opts.nowMs / 1000) * 1000 - 3600_000;

  const rootKey = await opts.keys.generate('root', alg('root'));
  const rootNotAfter = notBefore + (opts.rootValidityDays ?? 20 * 365) * DAY;
  const rootKeyId = keyIdentifier(rootKey.signer.spki);
  const rootDer = await signCertificate(
    {
      serial: randomSerial(),
      issuerName: n.root,
      subjectName: n.root,
      notBeforeMs: notBefore,
      notAfterMs: rootNotAfter,
      spki: rootKey.signer.spki,
      extensions: [basicConstraintsExt(true, 1), keyUsageExt([KU.keyCertSign, KU.cRLSign]), subjectKeyIdExt(rootKeyId)],
    },
    rootKey.signer,
  );
  const root = member(rootDer, rootKey);

  const issuingKey = await opts.keys.generate('issuing', alg('issuing'));
  const issuingDer = await signCertificate(
    {
      serial: randomSerial(),
      issuerName: n.root,
      subjectName: n.issuing,
      notBeforeMs: notBefore,
      notAfterMs: Math.min(notBefore + (opts.issuingValidityDays ?? 5 * 365) * DAY, rootNotAfter),
      spki: issuingKey.signer.spki,
      extensions: [
        basicConstraintsExt(true, 0),
        keyUsageExt([KU.keyCertSign, KU.cRLSign]),
        subjectKeyIdExt(keyIdentifier(issuingKey.signer.spki)),
        authorityKeyIdExt(rootKeyId),
      ],
    },
    rootKey.signer,
  );
  const issuing = member(issuingDer, issuingKey);

  const ocspKey = await opts.keys.generate('ocsp', alg('ocsp'));
  const ocsp = await issueOcspSigner(issuing, ocspKey, {
    nowMs: opts.nowMs,
    subjectName: n.ocsp,
    ...(opts.ocspValidityDays !== undefined ? { validityDays: opts.ocspValidityDays } : {}),
  });
  return { root, issuing, ocsp };
}

/** Output paths for `writeCaFiles`; a key path may be omitted (token keys, or a root key kept nowhere). */
export interface CaFilePaths {
  readonly rootCert: string;
  readonly rootKey?: string;
  readonly issuingCert: string;
  readonly issuingKey?: string;
  readonly ocspCert: string;
  readonly ocspKey?: string;
  /** Issuing + root PEM bundle, as served at `GET /v1/ca/chain`. */
  readonly chain?: string;
}

/**
 * Write certificates (0644) and in-process private keys (PKCS#8 PEM, mode 0600, AES-256-CBC encrypted when a
 * passphrase is given). Refuses to overwrite any existing file (`CA_FILE_EXISTS`) so a second `ca init` cannot
 * destroy a CA.
 */
export function writeCaFiles(h: CaHierarchy, paths: CaFilePaths, opts: { passphrase?: string } = {}): void {
  const certs: Array<[string, string]> = [
    [paths.rootCert, h.root.pem],
    [paths.issuingCert, h.issuing.pem],
    [paths.ocspCert, h.ocsp.pem],
  ];
  if (paths.chain) certs.push([paths.chain, h.issuing.pem + h.root.pem]);
  const keys: Array<[string, KeyObject]> = [];
  for (const [p, m] of [
    [paths.rootKey, h.root],
    [paths.issuingKey, h.issuing],
    [paths.ocspKey, h.ocsp],
  ] as const) {
    if (p && m.privateKey) keys.push([p, m.privateKey]);
  }
  for (const [p] of [...certs, ...keys]) {
    if (existsSync(p)) throw new AppError('conflict', 'CA_FILE_EXISTS', `Refusing to overwrite ${p}.`);
  }
  for (const [p, pem] of certs) {
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, pem, { mode: 0o644, flag: 'wx' });
  }
  for (const [p, key] of keys) {
    mkdirSync(path.dirname(p), { recursive: true });
    const pem = opts.passphrase
      ? key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: opts.passphrase })
      : key.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(p, pem, { mode: 0o600, flag: 'wx' });
  }
}

/** True when the certificate (DER or PEM) is a devicegate dev certificate (subject or issuer O = DEV_ORGANIZATION). */
export function isDevCertificate(cert: Buffer | string): boolean {
  let der: Buffer;
  if (typeof cert === 'string' || /^\s*-----BEGIN/.test(cert.subarray(0, 32).toString('latin1'))) {
    const b = fromPemStrict(typeof cert === 'string' ? cert : cert.toString('utf8'), ['CERTIFICATE']);
    if (!b) return false;
    der = b.der;
  } else der = cert;
  try {
    const p = parseCertificate(der);
    return [p.subjectName, p.issuerName].some((n) =>
      decodeName(n).some((a) => a.oid === OID.organizationName && a.value === DEV_ORGANIZATION),
    );
  } catch {
    return false;
  }
}

/** File names of the dev CA inside its directory (keys end in `.key.pem`, covered by .gitignore). */
export const DEV_CA_FILES = {
  rootCert: 'root.cert.pem',
  rootKey: 'root.key.pem',
  issuingCert: 'issuing.cert.pem',
  issuingKey: 'issuing.key.pem',
  ocspCert: 'ocsp.cert.pem',
  ocspKey: 'ocsp.key.pem',
  chain: 'chain.pem',
} as const;

/** Absolute paths of the dev CA files. */
export type DevCaPaths = { readonly [K in keyof typeof DEV_CA_FILES]: string };

/** Minimal logger shape (pino's `info(obj, msg)` fits). */
export interface CaLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

function devPaths(dir: string): DevCaPaths {
  const out: Record<string, string> = {};
  for (const [k, f] of Object.entries(DEV_CA_FILES)) out[k] = path.join(dir, f);
  return out as DevCaPaths;
}

function devCaUsable(p: DevCaPaths, nowMs: number): string | null {
  for (const f of Object.values(p)) if (!existsSync(f)) return `missing ${path.basename(f)}`;
  try {
    for (const f of [p.rootCert, p.issuingCert, p.ocspCert]) {
      const [der] = pemBlocks(readFileSync(f, 'utf8'), 'CERTIFICATE');
      if (!der) return `no certificate in ${path.basename(f)}`;
      if (!isDevCertificate(der)) return `${path.basename(f)} is not a dev certificate`;
      const x = new X509Certificate(der);
      // Regenerate a day early so a long-running dev gateway does not hit the expiry mid-session.
      if (Date.parse(x.validTo) - DAY <= nowMs || Date.parse(x.validFrom) > nowMs) return `${path.basename(f)} is expired or not yet valid`;
    }
  } catch {
    return 'unreadable certificate';
  }
  return null;
}

/**
 * Make sure a dev CA (ECDSA P-256 root, issuing CA and OCSP signer, all with O=devicegate DEV ONLY) exists under
 * `dir`; generate it if absent, incomplete or expired, otherwise reuse it. Generation writes into a temporary
 * sibling directory and renames it into place, so two gateways starting at once end up sharing one CA.
 */
export async function ensureDevCa(
  dir: string,
  opts: { nowMs: number; log?: CaLog },
): Promise<{ paths: DevCaPaths; generated: boolean }> {
  const paths = devPaths(dir);
  const problem = existsSync(dir) ? devCaUsable(paths, opts.nowMs) : 'absent';
  if (problem === null) return { paths, generated: false };

  if (existsSync(dir) && readdirSync(dir).length > 0) {
    // Only ever move aside a directory that holds nothing but dev CA files: a misconfigured devDir pointing at a
    // folder with other content must not be renamed away.
    const known = new Set<string>(Object.values(DEV_CA_FILES));
    const foreign = readdirSync(dir).filter((f) => !known.has(f));
    if (foreign.length > 0) {
      throw new AppError('internal', 'DEV_CA_DIR_FOREIGN_FILES', `The dev CA directory ${dir} holds other files; refusing to replace it.`, {
        details: { problem },
      });
    }
    const aside = `${dir}.replaced-${opts.nowMs}`;
    opts.log?.warn({ dir, aside, problem }, 'dev CA unusable; moving it aside and generating a new one');
    renameSync(dir, aside);
  }
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(path.dirname(dir), { recursive: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    const h = await createCaHierarchy({ nowMs: opts.nowMs, keys: memoryKeyProvider(), algorithm: 'ec-p256', dev: true, ocspValidityDays: 365 });
    writeCaFiles(h, devPaths(tmp));
    try {
      renameSync(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && devCaUsable(paths, opts.nowMs) === null) {
        // Another process won the race; use its CA.
        return { paths, generated: false };
      }
      throw e;
    }
    opts.log?.info({ dir, reason: problem }, 'generated a dev CA (DEV ONLY, never for production)');
    return { paths, generated: true };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Parse the first CERTIFICATE block of a PEM file's text (trusted CA files). */
export function certFromPemText(text: string, what: string): ParsedCertificate {
  const [der] = pemBlocks(text, 'CERTIFICATE');
  if (!der) throw new AppError('internal', 'CA_CERT_UNREADABLE', `No certificate found in ${what}.`);
  try {
    return parseCertificate(der);
  } catch (cause) {
    throw new AppError('internal', 'CA_CERT_UNREADABLE', `The certificate in ${what} cannot be parsed.`, { cause });
  }
}
