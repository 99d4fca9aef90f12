import { badRequest } from '../domain/errors';

/** One DER TLV: tag byte, content, and the whole encoding (header + content). */
export interface DerNode {
  readonly tag: number;
  readonly content: Buffer;
  readonly raw: Buffer;
}

/**
 * Reads one definite-length DER TLV at `offset` of `buf`. Only what devicegate needs: single-byte tags and lengths
 * up to 4 bytes; anything else (indefinite length, length past the end) is `code` (bad_request).
 */
export function readDer(buf: Buffer, offset: number, code: string): DerNode {
  const fail = (why: string): never => {
    throw badRequest(code, `Invalid DER: ${why}`);
  };
  if (offset + 2 > buf.length) fail('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('multi-byte tag');
  let len = buf[offset + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) fail('unsupported length encoding');
    if (offset + 2 + n > buf.length) fail('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    hdr += n;
  }
  if (offset + hdr + len > buf.length) fail('length past the end');
  return { tag, content: buf.subarray(offset + hdr, offset + hdr + len), raw: buf.subarray(offset, offset + hdr + len) };
}

/** The children of a constructed DER node (SEQUENCE/SET/context). */
export function derChildren(node: DerNode, code: string): DerNode[] {
  const out: DerNode[] = [];
  let off = 0;
  while (off < node.content.length) {
    const child = readDer(node.content, off, code);
    out.push(child);
    off += child.raw.length;
    if (out.length > 10_000) throw badRequest(code, 'Invalid DER: too many elements');
  }
  return out;
}

/** Decodes a DER OBJECT IDENTIFIER content to dotted form. */
export function decodeOid(content: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const b of content) {
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}

/** Extracts every PEM block of `label` from text (comments and other blocks are ignored). */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of text.matchAll(re)) out.push(Buffer.from(m[1]!.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'));
  return out;
}

/** PEM-encodes DER. */
export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
