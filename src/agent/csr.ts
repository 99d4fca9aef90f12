import { createHash } from 'node:crypto';
import { toPem } from '../attestation/der';

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER TLV. */
export function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return der(0x06, Buffer.from(out));
}

/** DER CertificationRequestInfo (PKCS#10 §4.1) with subject CN=`commonName` and no attributes. */
export function certificationRequestInfo(spki: Buffer, commonName: string): Buffer {
  const cn = der(0x30, oid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')));
  const subject = der(0x30, der(0x31, cn));
  return der(0x30, der(0x02, Buffer.from([0])), subject, spki, der(0xa0));
}

/**
 * Builds a PEM PKCS#10 CSR for `spki` whose signature is produced by `signDigest` (the TPM: TPM2_Sign over the
 * SHA-256 of CertificationRequestInfo, returned as a DER ECDSA-Sig-Value). The private key never leaves the TPM.
 */
export async function buildTpmCsr(
  spki: Buffer,
  commonName: string,
  signDigest: (sha256: Buffer) => Promise<Buffer>,
): Promise<string> {
  const info = certificationRequestInfo(spki, commonName);
  const signature = await signDigest(createHash('sha256').update(info).digest());
  const algorithm = der(0x30, oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256, no parameters (RFC 5758)
  const csr = der(0x30, info, algorithm, der(0x03, Buffer.from([0]), signature));
  return toPem(csr, 'CERTIFICATE REQUEST');
}
