import { constants, createHash, createPublicKey, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import { AppError, badRequest } from '../domain/errors';
import { attestationRejected } from './errors';
import { decodeOid, derChildren, pemBlocks, readDer, type DerNode } from './der';

/** OIDs used by the TPM certificate profiles. */
export const OID = {
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  certificatePolicies: '2.5.29.32',
  subjectDirectoryAttributes: '2.5.29.9',
  authorityKeyIdentifier: '2.5.29.35',
  subjectKeyIdentifier: '2.5.29.14',
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  ekCertificateEku: '2.23.133.8.1',
  aikCertificateEku: '2.23.133.8.3',
  fidoAaguid: '1.3.6.1.4.1.45724.1.1.4',
} as const;

/** One attribute of a distinguished name. */
export interface NameAttribute {
  readonly type: string;
  readonly value: string;
}

/** A decoded certificate with the fields path validation and the TPM profiles need. */
export interface ParsedCertificate {
  readonly der: Buffer;
  /** X.509 version number as encoded (2 = v3). */
  readonly version: number;
  /** The exact TBSCertificate bytes the signature covers. */
  readonly tbs: Buffer;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
  readonly serialHex: string;
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  /** RDNs of the subject, each a list of attributes (empty for the AIK profile's empty subject). */
  readonly subject: readonly (readonly NameAttribute[])[];
  readonly issuer: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly extensions: ReadonlyMap<string, { readonly critical: boolean; readonly value: Buffer }>;
  readonly basicConstraints: { readonly ca: boolean; readonly pathLen?: number } | null;
  readonly keyUsage: readonly string[] | null;
  readonly extKeyUsage: readonly string[] | null;
  /** SHA-256 of the DER, lower-case hex. */
  readonly sha256: string;
}

const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;

const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
};

class CertError extends Error {}
const need = (cond: boolean, why: string): void => {
  if (!cond) throw new CertError(why);
};

function decodeString(node: DerNode): string {
  switch (node.tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString (treated as Latin-1 below only if not UTF-8)
    case 0x12: // NumericString
      return node.content.toString(node.tag === 0x14 ? 'latin1' : 'utf8');
    case 0x1e: {
      // BMPString: UTF-16BE
      need(node.content.length % 2 === 0, 'odd BMPString');
      const swapped = Buffer.from(node.content);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    default:
      return node.content.toString('hex');
  }
}

function parseName(node: DerNode, code: string): NameAttribute[][] {
  need(node.tag === 0x30, 'Name is not a SEQUENCE');
  return derChildren(node, code).map((rdn) => {
    need(rdn.tag === 0x31, 'RDN is not a SET');
    const atvs = derChildren(rdn, code);
    need(atvs.length > 0, 'empty RDN');
    return atvs.map((atv) => {
      need(atv.tag === 0x30, 'AttributeTypeAndValue is not a SEQUENCE');
      const [t, v, ...rest] = derChildren(atv, code);
      need(t !== undefined && v !== undefined && rest.length === 0 && t.tag === 0x06, 'bad AttributeTypeAndValue');
      return { type: decodeOid(t!.content), value: decodeString(v!) };
    });
  });
}

function nameString(rdns: NameAttribute[][]): string {
  return rdns.map((rdn) => rdn.map((a) => `${SHORT_NAMES[a.type] ?? a.type}=${a.value}`).join('+')).join(', ');
}

function parseTime(node: DerNode): number {
  const s = node.content.toString('latin1');
  let m: RegExpExecArray | null;
  if (node.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    return Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  if (node.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s))) {
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  throw new CertError('invalid time');
}

function parseBoolean(node: DerNode): boolean {
  need(node.tag === 0x01 && node.content.length === 1, 'invalid BOOLEAN');
  return node.content[0] !== 0;
}

function parseSmallInt(node: DerNode): number {
  need(node.tag === 0x02 && node.content.length >= 1 && node.content.length <= 4 && (node.content[0]! & 0x80) === 0, 'invalid INTEGER');
  return node.content.readUIntBE(0, node.content.length);
}

function parseExtensions(node: DerNode, code: string): Map<string, { critical: boolean; value: Buffer }> {
  const out = new Map<string, { critical: boolean; value: Buffer }>();
  const [seq, ...rest] = derChildren(node, code);
  need(seq !== undefined && rest.length === 0 && seq.tag === 0x30, 'extensions wrapper');
  for (const ext of derChildren(seq!, code)) {
    need(ext.tag === 0x30, 'Extension is not a SEQUENCE');
    const parts = derChildren(ext, code);
    need(parts.length === 2 || parts.length === 3, 'Extension arity');
    need(parts[0]!.tag === 0x06, 'extnID');
    const oid = decodeOid(parts[0]!.content);
    const critical = parts.length === 3 ? parseBoolean(parts[1]!) : false;
    const value = parts[parts.length - 1]!;
    need(value.tag === 0x04, 'extnValue is not an OCTET STRING');
    need(!out.has(oid), `duplicate extension ${oid}`);
    out.set(oid, { critical, value: Buffer.from(value.content) });
  }
  return out;
}

/**
 * Decodes one DER certificate with a strict DER walker (fields are read from the exact TBSCertificate bytes the
 * signature covers). Anything malformed, or duplicate extensions, is `code` (bad_request). ~10x faster than a
 * schema-driven ASN.1 library, which matters for enrollment throughput.
 */
export function parseCertificate(der: Buffer, code = 'CERTIFICATE_MALFORMED'): ParsedCertificate {
  try {
    const outer = readDer(der, 0, code);
    need(outer.tag === 0x30 && outer.raw.length === der.length, 'not one SEQUENCE');
    const [tbsNode, algNode, sigNode, ...extra] = derChildren(outer, code);
    need(tbsNode !== undefined && algNode !== undefined && sigNode !== undefined && extra.length === 0, 'certificate arity');
    need(tbsNode!.tag === 0x30 && algNode!.tag === 0x30 && sigNode!.tag === 0x03, 'certificate structure');
    need(sigNode!.content.length > 1 && sigNode!.content[0] === 0, 'signature BIT STRING');
    const alg = derChildren(algNode!, code);
    need(alg.length >= 1 && alg[0]!.tag === 0x06, 'signatureAlgorithm');
    const fields = derChildren(tbsNode!, code);
    let i = 0;
    let version = 0;
    if (fields[0]?.tag === 0xa0) {
      const [v] = derChildren(fields[0], code);
      version = parseSmallInt(v!);
      i++;
    }
    const [serial, innerAlg, issuer, validity, subject, spki] = fields.slice(i, i + 6);
    need(serial?.tag === 0x02 && innerAlg?.tag === 0x30 && issuer !== undefined && validity?.tag === 0x30 && subject !== undefined && spki?.tag === 0x30, 'TBSCertificate structure');
    // RFC 5280 §4.1.1.2: the signature field inside TBSCertificate must equal the outer signatureAlgorithm.
    need(innerAlg!.raw.equals(algNode!.raw), 'inner and outer signature algorithms differ');
    const [nb, na, ...vx] = derChildren(validity!, code);
    need(nb !== undefined && na !== undefined && vx.length === 0, 'validity');
    let extensions = new Map<string, { critical: boolean; value: Buffer }>();
    for (const f of fields.slice(i + 6)) {
      if (f.tag === 0xa3) extensions = parseExtensions(f, code);
      else need(f.tag === 0x81 || f.tag === 0x82, 'unexpected TBSCertificate field');
    }
    const issuerRdns = parseName(issuer!, code);
    const subjectRdns = parseName(subject!, code);

    const bcExt = extensions.get(OID.basicConstraints);
    let basicConstraints: ParsedCertificate['basicConstraints'] = null;
    if (bcExt) {
      const seq = readDer(bcExt.value, 0, code);
      need(seq.tag === 0x30 && seq.raw.length === bcExt.value.length, 'basicConstraints');
      let ca = false;
      let pathLen: number | undefined;
      for (const c of derChildren(seq, code)) {
        if (c.tag === 0x01) ca = parseBoolean(c);
        else pathLen = parseSmallInt(c);
      }
      basicConstraints = pathLen === undefined ? { ca } : { ca, pathLen };
    }
    const kuExt = extensions.get(OID.keyUsage);
    let keyUsage: string[] | null = null;
    if (kuExt) {
      const bits = readDer(kuExt.value, 0, code);
      need(bits.tag === 0x03 && bits.content.length >= 1 && bits.raw.length === kuExt.value.length, 'keyUsage');
      keyUsage = KEY_USAGE_BITS.filter((_n, b) => {
        const byte = bits.content[1 + (b >> 3)];
        return byte !== undefined && (byte & (0x80 >> (b & 7))) !== 0;
      });
    }
    const ekuExt = extensions.get(OID.extKeyUsage);
    let extKeyUsage: string[] | null = null;
    if (ekuExt) {
      const seq = readDer(ekuExt.value, 0, code);
      need(seq.tag === 0x30 && seq.raw.length === ekuExt.value.length, 'extKeyUsage');
      extKeyUsage = derChildren(seq, code).map((o) => {
        need(o.tag === 0x06, 'EKU entry');
        return decodeOid(o.content);
      });
    }
    const spkiRaw = Buffer.from(spki!.raw);
    let key: KeyObject | null = null;
    return {
      der: Buffer.from(der),
      version,
      tbs: Buffer.from(tbsNode!.raw),
      signatureAlgorithm: decodeOid(alg[0]!.content),
      signature: Buffer.from(sigNode!.content.subarray(1)),
      serialHex: serial!.content.toString('hex'),
      subjectDer: Buffer.from(subject!.raw),
      issuerDer: Buffer.from(issuer!.raw),
      subject: subjectRdns,
      issuer: nameString(issuerRdns),
      notBefore: parseTime(nb!),
      notAfter: parseTime(na!),
      spki: spkiRaw,
      get publicKey(): KeyObject {
        key ??= createPublicKey({ key: spkiRaw, format: 'der', type: 'spki' });
        return key;
      },
      extensions,
      basicConstraints,
      keyUsage,
      extKeyUsage,
      sha256: createHash('sha256').update(der).digest('hex'),
    };
  } catch (e) {
    if (e instanceof AppError && e.code === code) throw e;
    throw badRequest(code, 'Certificate cannot be decoded', { cause: e, details: { format: 'tpm' } });
  }
}

const SIG_ALGS: Readonly<Record<string, { hash: string; rsa: boolean }>> = {
  '1.2.840.113549.1.1.5': { hash: 'sha1', rsa: true },
  '1.2.840.113549.1.1.11': { hash: 'sha256', rsa: true },
  '1.2.840.113549.1.1.12': { hash: 'sha384', rsa: true },
  '1.2.840.113549.1.1.13': { hash: 'sha512', rsa: true },
  '1.2.840.10045.4.1': { hash: 'sha1', rsa: false },
  '1.2.840.10045.4.3.2': { hash: 'sha256', rsa: false },
  '1.2.840.10045.4.3.3': { hash: 'sha384', rsa: false },
  '1.2.840.10045.4.3.4': { hash: 'sha512', rsa: false },
};

/**
 * True when `child` is signed by `issuer`'s key over its exact TBSCertificate. PKCS#1 v1.5 and ECDSA are verified
 * directly; other algorithms (RSASSA-PSS with parameters) go through OpenSSL's X509_verify.
 */
export function verifyCertificateSignature(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    const alg = SIG_ALGS[child.signatureAlgorithm];
    if (!alg) return new X509Certificate(child.der).verify(issuer.publicKey);
    const keyType = issuer.publicKey.asymmetricKeyType;
    if (alg.rsa ? keyType !== 'rsa' : keyType !== 'ec') return false;
    return cryptoVerify(alg.hash, child.tbs, alg.rsa ? { key: issuer.publicKey, padding: constants.RSA_PKCS1_PADDING } : issuer.publicKey, child.signature);
  } catch {
    return false;
  }
}

/** A configured trust anchor: any certificate in the bundle, self-signed or not (partial-chain semantics). */
export type TrustAnchor = ParsedCertificate;

/**
 * Parses a PEM bundle of trust anchors (comment lines allowed, as in the tpm-ca-certificates mirror). Every
 * certificate becomes an anchor, so a vendor ICA that is not self-signed still terminates a chain. An empty or
 * undecodable bundle is `TRUST_ROOTS_INVALID` (bad_request): a configuration error that must stop start-up.
 */
export function parseTrustAnchors(pem: string | Buffer): TrustAnchor[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const blocks = pemBlocks(text, 'CERTIFICATE');
  if (blocks.length === 0) throw badRequest('TRUST_ROOTS_INVALID', 'The trust-anchor bundle contains no certificate');
  return blocks.map((b, i) => {
    try {
      return parseCertificate(b, 'TRUST_ROOTS_INVALID');
    } catch (e) {
      throw badRequest('TRUST_ROOTS_INVALID', `Certificate #${i + 1} of the trust-anchor bundle cannot be decoded`, { cause: e });
    }
  });
}

/** Extensions the path validator understands; a critical extension outside this set fails validation (RFC 5280 §4.2). */
const HANDLED_CRITICAL = new Set<string>([
  OID.subjectAltName,
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  // Microsoft AIK certificates mark certificatePolicies critical; the policy is informational for us.
  OID.certificatePolicies,
  OID.subjectDirectoryAttributes,
]);

/** Options for `validateChain`. */
export interface ChainOptions {
  /** Code for every rejection (e.g. `EK_CERT_UNTRUSTED`). */
  readonly code: string;
  /** Maximum number of certificates above the leaf. */
  readonly maxDepth?: number;
}

function isAnchor(c: ParsedCertificate, anchors: readonly TrustAnchor[]): boolean {
  return anchors.some((a) => a.der.equals(c.der) || (a.subjectDer.equals(c.subjectDer) && a.spki.equals(c.spki)));
}

function signedBy(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  if (!child.issuerDer.equals(issuer.subjectDer)) return false;
  return verifyCertificateSignature(child, issuer);
}

/**
 * RFC 5280-style path validation that node:crypto does not do (X509Certificate.verify checks one signature only):
 *
 * - builds a path leaf → intermediates → a configured anchor by issuer name and signature;
 * - every certificate on the path, the anchor included, is within its validity period at `nowMs`;
 * - every issuing certificate is a CA (basicConstraints cA=TRUE), has keyCertSign when keyUsage is present, and
 *   respects pathLenConstraint;
 * - leaf and intermediates carry no critical extension we do not process (the TPM SAN is processed).
 *
 * Anchors are trusted as configured: any anchor terminates the path (partial chain), as `openssl -partial_chain`.
 * Returns the path from leaf to anchor; throws `forbidden(code)` otherwise.
 */
export function validateChain(
  leaf: ParsedCertificate,
  intermediates: readonly ParsedCertificate[],
  anchors: readonly TrustAnchor[],
  nowMs: number,
  options: ChainOptions,
): ParsedCertificate[] {
  const { code } = options;
  const maxDepth = options.maxDepth ?? 6;
  const reject = (msg: string, details: Record<string, unknown> = {}): never => {
    throw attestationRejected(code, msg, details);
  };
  const checkTime = (c: ParsedCertificate, role: string): void => {
    // RFC 5280 §6.1.3 (a)(2): the certificate validity period includes the current time.
    if (nowMs < c.notBefore) reject(`The ${role} certificate is not yet valid`, { notBefore: new Date(c.notBefore).toISOString() });
    if (nowMs > c.notAfter) reject(`The ${role} certificate has expired`, { notAfter: new Date(c.notAfter).toISOString() });
  };
  const checkCritical = (c: ParsedCertificate, role: string): void => {
    for (const [oid, ext] of c.extensions) {
      if (ext.critical && !HANDLED_CRITICAL.has(oid)) reject(`The ${role} certificate has an unsupported critical extension`, { oid });
    }
  };
  const checkIssuer = (c: ParsedCertificate, below: number): string | null => {
    // RFC 5280 §6.1.4 (k), (l), (n): issuers are CAs, within pathLen, allowed to sign certificates.
    // `below` = intermediates between this issuer and the leaf; pathLen caps exactly that number.
    if (!c.basicConstraints?.ca) return 'is not a CA';
    if (c.basicConstraints.pathLen !== undefined && below > c.basicConstraints.pathLen) return 'exceeds its path length';
    if (c.keyUsage && !c.keyUsage.includes('keyCertSign')) return 'may not sign certificates';
    return null;
  };

  checkTime(leaf, 'leaf');
  checkCritical(leaf, 'leaf');
  if (isAnchor(leaf, anchors)) return [leaf];

  const path: ParsedCertificate[] = [leaf];
  const search = (current: ParsedCertificate): boolean => {
    if (path.length > maxDepth + 1) return false;
    // Anchors first, so a configured root wins over an intermediate of the same name sent by the caller.
    for (const cand of [...anchors, ...intermediates]) {
      if (path.includes(cand) || !signedBy(current, cand)) continue;
      const problem = checkIssuer(cand, path.length - 1);
      if (problem) continue;
      path.push(cand);
      if (isAnchor(cand, anchors)) return true;
      if (search(cand)) return true;
      path.pop();
    }
    return false;
  };
  if (!search(leaf)) reject('The certificate does not chain to a trusted root', { issuer: leaf.issuer });
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    const anchor = i === path.length - 1;
    checkTime(c, anchor ? 'root' : 'intermediate');
    if (!anchor) checkCritical(c, 'intermediate');
  }
  return path;
}

/** TCG TPM attributes from a directoryName SAN (TCG EK Credential Profile §3.2.9). */
export interface TpmSanAttributes {
  readonly manufacturer?: string;
  readonly model?: string;
  readonly version?: string;
}

/**
 * Reads tcg-at-tpmManufacturer/Model/Version from the SAN's directoryName. Accepts both the spec layout (one
 * attribute per RDN) and the one-RDN multi-valued layout of some Nuvoton AIK certificates (SimpleWebAuthn's
 * `getTcgAtTpmValues`). Returns `null` when there is no SAN; throws `code` when it cannot be decoded.
 */
export function readTpmSan(c: ParsedCertificate, code: string): TpmSanAttributes | null {
  const ext = c.extensions.get(OID.subjectAltName);
  if (!ext) return null;
  const out: { manufacturer?: string; model?: string; version?: string } = {};
  try {
    const seq = readDer(ext.value, 0, code);
    need(seq.tag === 0x30 && seq.raw.length === ext.value.length, 'GeneralNames');
    for (const gn of derChildren(seq, code)) {
      if (gn.tag !== 0xa4) continue; // directoryName [4] EXPLICIT Name
      const [name, ...rest] = derChildren(gn, code);
      need(name !== undefined && rest.length === 0, 'directoryName');
      for (const rdn of parseName(name!, code)) {
        for (const atv of rdn) {
          if (atv.type === OID.tpmManufacturer) out.manufacturer = atv.value;
          else if (atv.type === OID.tpmModel) out.model = atv.value;
          else if (atv.type === OID.tpmVersion) out.version = atv.value;
        }
      }
    }
  } catch (e) {
    throw badRequest(code, 'The subjectAltName cannot be decoded', { cause: e });
  }
  return out;
}

/** True when the subject Name has no RDN (the AIK profile requires an empty subject). */
export function hasEmptySubject(c: ParsedCertificate): boolean {
  return c.subject.length === 0;
}
