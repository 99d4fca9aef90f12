/** A throwaway X.509 PKI for unit tests (@peculiar/x509 over node's WebCrypto), with raw extensions when needed. */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export type Keys = webcrypto.CryptoKeyPair;

export async function keys(): Promise<Keys> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
}

export interface Issued {
  readonly cert: x509.X509Certificate;
  readonly keys: Keys;
  readonly der: Buffer;
  readonly pem: string;
}

export interface CertSpec {
  subject: string;
  issuer?: Issued;
  keys?: Keys;
  /** Public key to certify instead of `keys.publicKey` (e.g. an EK). */
  publicKey?: webcrypto.CryptoKey;
  notBefore?: Date;
  notAfter?: Date;
  ca?: boolean;
  pathLen?: number;
  keyUsage?: number;
  extensions?: x509.Extension[];
  noBasicConstraints?: boolean;
}

export async function issue(spec: CertSpec): Promise<Issued> {
  const k = spec.keys ?? (await keys());
  const exts: x509.Extension[] = [];
  if (!spec.noBasicConstraints) exts.push(new x509.BasicConstraintsExtension(spec.ca ?? false, spec.pathLen, true));
  if (spec.keyUsage !== undefined) exts.push(new x509.KeyUsagesExtension(spec.keyUsage, true));
  exts.push(...(spec.extensions ?? []));
  const common = {
    serialNumber: Math.floor(Math.random() * 1e9).toString(16).padStart(8, '0'),
    notBefore: spec.notBefore ?? new Date('2020-01-01T00:00:00Z'),
    notAfter: spec.notAfter ?? new Date('2040-01-01T00:00:00Z'),
    signingAlgorithm: ALG,
    extensions: exts,
  };
  const cert = spec.issuer
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject: spec.subject,
        issuer: spec.issuer.cert.subject,
        publicKey: spec.publicKey ?? k.publicKey,
        signingKey: spec.issuer.keys.privateKey,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: spec.subject, keys: k });
  const der = Buffer.from(cert.rawData);
  return { cert, keys: k, der, pem: cert.toString('pem') + '\n' };
}

/** DER of a SAN extension value holding one directoryName (raw Name DER). */
export function sanDirectoryName(nameDer: Buffer): Buffer {
  const len = (n: number) => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
  const dn = Buffer.concat([Buffer.from([0xa4]), len(nameDer.length), nameDer]);
  return Buffer.concat([Buffer.from([0x30]), len(dn.length), dn]);
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function oid(dotted: string): Buffer {
  const p = dotted.split('.').map(Number);
  const out = [40 * p[0]! + p[1]!];
  for (const v of p.slice(2)) {
    const s = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) s.unshift((x & 0x7f) | 0x80);
    out.push(...s);
  }
  return tlv(0x06, Buffer.from(out));
}

/** TCG TPM attributes as a Name: 'spec' = one attribute per RDN, 'single' = all in one multi-valued RDN. */
export function tpmName(attrs: { manufacturer?: string; model?: string; version?: string }, layout: 'spec' | 'single' = 'spec'): Buffer {
  const atvs: Buffer[] = [];
  if (attrs.manufacturer) atvs.push(tlv(0x30, Buffer.concat([oid('2.23.133.2.1'), tlv(0x0c, Buffer.from(attrs.manufacturer))])));
  if (attrs.model) atvs.push(tlv(0x30, Buffer.concat([oid('2.23.133.2.2'), tlv(0x0c, Buffer.from(attrs.model))])));
  if (attrs.version) atvs.push(tlv(0x30, Buffer.concat([oid('2.23.133.2.3'), tlv(0x0c, Buffer.from(attrs.version))])));
  const rdns = layout === 'spec' ? atvs.map((a) => tlv(0x31, a)) : [tlv(0x31, Buffer.concat(atvs))];
  return tlv(0x30, Buffer.concat(rdns));
}

export function ekuExtension(...oids: string[]): x509.Extension {
  return new x509.ExtendedKeyUsageExtension(oids, false);
}

export function rawExtension(oidStr: string, critical: boolean, value: Buffer): x509.Extension {
  return new x509.Extension(oidStr, critical, new Uint8Array(value));
}

/** An OCTET STRING-wrapped AAGUID extension value. */
export function aaguidExtension(aaguid: Buffer): x509.Extension {
  return new x509.Extension('1.3.6.1.4.1.45724.1.1.4', false, new Uint8Array(tlv(0x04, aaguid)));
}
