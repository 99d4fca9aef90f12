/**
 * X.509 building blocks shared by issuance, the hierarchy builder, CRLs and OCSP: OIDs, names, extensions, the
 * generic certificate assembler and a parser for the (trusted) CA certificates the authority loads.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import {
  TAG,
  bitString,
  bitStringBytes,
  children,
  content,
  decodeOid,
  decodeTime,
  derBoolean,
  expectTag,
  explicit,
  integerBytes,
  octetString,
  oid,
  printableString,
  raw,
  readTop,
  seq,
  set,
  tlv,
  utf8String,
  x509Time,
  type DerNode,
} from './der';
import type { Signer } from './signer';

/** Object identifiers used by the CA (dotted form). */
export const OID = {
  commonName: '2.5.4.3',
  countryName: '2.5.4.6',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  ocspAccess: '1.3.6.1.5.5.7.48.1',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
} as const;

/** One attribute of a distinguished name, in the order it appears. */
export interface NameAttribute {
  readonly oid: string;
  readonly value: string;
}

/**
 * Encode a Name with one attribute per RDN. Country is PrintableString (RFC 5280 appendix A); everything else
 * UTF8String, which RFC 5280 §4.1.2.6 says conforming CAs MUST use for DirectoryString.
 */
export function encodeName(attrs: readonly NameAttribute[]): Buffer {
  return seq(
    ...attrs.map((a) =>
      set(seq(oid(a.oid), a.oid === OID.countryName ? printableString(a.value) : utf8String(a.value))),
    ),
  );
}

/** Decode a Name into its attributes (string types only; others are returned as hex). */
export function decodeName(nameDer: Buffer): NameAttribute[] {
  const top = readTop(nameDer);
  expectTag(top, TAG.SEQUENCE, 'Name');
  const out: NameAttribute[] = [];
  for (const rdn of children(top, 64)) {
    expectTag(rdn, TAG.SET, 'RDN');
    for (const atv of children(rdn, 16)) {
      const [t, v] = children(expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue'), 2);
      const type = decodeOid(content(expectTag(t, TAG.OID, 'attribute type')));
      if (v === undefined) throw new Error('attribute without value');
      const isString = [TAG.UTF8_STRING, TAG.PRINTABLE_STRING, TAG.IA5_STRING, 0x14].includes(v.tag);
      out.push({ oid: type, value: isString ? content(v).toString('utf8') : content(v).toString('hex') });
    }
  }
  return out;
}

/** One Extension: `SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`. */
export function extension(extOid: string, critical: boolean, valueDer: Buffer): Buffer {
  return critical ? seq(oid(extOid), derBoolean(true), octetString(valueDer)) : seq(oid(extOid), octetString(valueDer));
}

/** BasicConstraints; `pathLen` only for CAs. */
export function basicConstraintsExt(ca: boolean, pathLen?: number): Buffer {
  const parts: Buffer[] = [];
  if (ca) {
    parts.push(derBoolean(true));
    if (pathLen !== undefined) parts.push(tlv(TAG.INTEGER, Buffer.from([pathLen])));
  }
  return extension(OID.basicConstraints, true, seq(...parts));
}

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KU = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** KeyUsage (always critical here) as a minimal named-bit BIT STRING. */
export function keyUsageExt(bits: readonly number[]): Buffer {
  let v = 0;
  for (const b of bits) v |= 0x80 >> b;
  // DER named bit list: drop trailing zero bits and record how many were unused.
  let unused = 0;
  while (unused < 7 && !(v & (1 << unused))) unused++;
  return extension(OID.keyUsage, true, tlv(TAG.BIT_STRING, Buffer.from([unused, v])));
}

/** ExtendedKeyUsage (non-critical) with exactly `oids`. */
export function extKeyUsageExt(oids: readonly string[]): Buffer {
  return extension(OID.extKeyUsage, false, seq(...oids.map((o) => oid(o))));
}

/** SubjectKeyIdentifier with `keyId`. */
export function subjectKeyIdExt(keyId: Buffer): Buffer {
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

/** AuthorityKeyIdentifier carrying only the keyIdentifier (RFC 5280 §4.2.1.1). */
export function authorityKeyIdExt(keyId: Buffer): Buffer {
  return extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, keyId)));
}

/** SubjectAltName with one uniformResourceIdentifier ([6] IA5String). */
export function sanUriExt(uri: string): Buffer {
  return extension(OID.subjectAltName, false, seq(tlv(0x86, Buffer.from(uri, 'latin1'))));
}

/** CRLDistributionPoints with one fullName URI. */
export function crlDistributionPointExt(uri: string): Buffer {
  // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
  return extension(
    OID.crlDistributionPoints,
    false,
    seq(seq(explicit(0, tlv(0xa0, tlv(0x86, Buffer.from(uri, 'latin1')))))),
  );
}

/** AuthorityInfoAccess with one id-ad-ocsp URI. */
export function ocspAiaExt(uri: string): Buffer {
  return extension(OID.authorityInfoAccess, false, seq(seq(oid(OID.ocspAccess), tlv(0x86, Buffer.from(uri, 'latin1')))));
}

/** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): value NULL. */
export function ocspNoCheckExt(): Buffer {
  return extension(OID.ocspNoCheck, false, Buffer.from([0x05, 0x00]));
}

/**
 * RFC 5280 §4.2.1.2 method (1): "The keyIdentifier is composed of the 160-bit SHA-1 hash of the value of the BIT
 * STRING subjectPublicKey (excluding the tag, length, and number of unused bits)."
 */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(spkiDer)).digest();
}

/** The subjectPublicKey BIT STRING content (without the unused-bits byte) of an SPKI. */
export function subjectPublicKeyBits(spkiDer: Buffer): Buffer {
  const [, key] = children(expectTag(readTop(spkiDer), TAG.SEQUENCE, 'SubjectPublicKeyInfo'), 2);
  return bitStringBytes(expectTag(key, TAG.BIT_STRING, 'subjectPublicKey'));
}

/** Everything needed to assemble and sign one certificate. */
export interface CertificateFields {
  /** Serial INTEGER content bytes (positive, minimal). */
  readonly serial: Buffer;
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly spki: Buffer;
  /** Complete Extension elements in order. */
  readonly extensions: readonly Buffer[];
}

/** DER TBSCertificate (v3) for `fields`, signed with `sigAlg`. */
export function encodeTbsCertificate(fields: CertificateFields, sigAlg: Buffer): Buffer {
  return seq(
    VERSION_V3,
    tlv(TAG.INTEGER, fields.serial),
    sigAlg,
    fields.issuerName,
    seq(x509Time(fields.notBeforeMs), x509Time(fields.notAfterMs)),
    fields.subjectName,
    fields.spki,
    explicit(3, seq(...fields.extensions)),
  );
}

/** `[0] EXPLICIT INTEGER 2` (v3). */
export const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/** Wrap a TBS structure and its signature into a signed object (Certificate or CertificateList share this shape). */
export function wrapSigned(tbs: Buffer, sigAlg: Buffer, signature: Buffer): Buffer {
  return seq(tbs, sigAlg, bitString(signature));
}

/** Assemble, sign and return the DER certificate. */
export async function signCertificate(fields: CertificateFields, signer: Signer): Promise<Buffer> {
  const tbs = encodeTbsCertificate(fields, signer.algorithm.identifier);
  return wrapSigned(tbs, signer.algorithm.identifier, await signer.sign(tbs));
}

/** A parsed certificate: raw slices of the DER plus decoded basics. */
export interface ParsedCertificate {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly serial: Buffer;
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  /** Extension values by OID. */
  readonly extensions: ReadonlyMap<string, { readonly critical: boolean; readonly value: Buffer }>;
  /** SubjectKeyIdentifier if present, else the RFC 5280 method-1 identifier of the key. */
  readonly keyId: Buffer;
}

/** Parse a DER certificate (v3). Throws on anything structurally wrong; meant for the CA's own certificates. */
export function parseCertificate(der: Buffer): ParsedCertificate {
  const top = expectTag(readTop(der), TAG.SEQUENCE, 'Certificate');
  const [tbsNode] = children(top, 3);
  const tbs = expectTag(tbsNode, TAG.SEQUENCE, 'TBSCertificate');
  const f = children(tbs, 10);
  let i = 0;
  if (f[0]?.tag === 0xa0) i++;
  const serial = integerBytes(f[i++] as DerNode);
  i++; // signature algorithm
  const issuer = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  const validity = children(expectTag(f[i++], TAG.SEQUENCE, 'validity'), 2);
  const subject = expectTag(f[i++], TAG.SEQUENCE, 'subject');
  const spki = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  for (; i < f.length; i++) {
    const n = f[i] as DerNode;
    if (n.tag !== 0xa3) continue;
    const [list] = children(n, 1);
    for (const e of children(expectTag(list, TAG.SEQUENCE, 'Extensions'), 64)) {
      const parts = children(e, 3);
      const id = decodeOid(content(expectTag(parts[0], TAG.OID, 'extnID')));
      const critical = parts.length === 3 && content(parts[1] as DerNode)[0] === 0xff;
      extensions.set(id, { critical, value: content(expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue')) });
    }
  }
  const spkiDer = raw(spki);
  const ski = extensions.get(OID.subjectKeyIdentifier);
  return {
    der,
    tbs: raw(tbs),
    serial,
    issuerName: raw(issuer),
    subjectName: raw(subject),
    notBeforeMs: decodeTime(validity[0]!.tag, content(validity[0]!)),
    notAfterMs: decodeTime(validity[1]!.tag, content(validity[1]!)),
    spki: spkiDer,
    publicKey: createPublicKey({ key: spkiDer, format: 'der', type: 'spki' }),
    extensions,
    keyId: ski ? content(readTop(ski.value)) : keyIdentifier(spkiDer),
  };
}
