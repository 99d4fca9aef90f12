/**
 * Minimal, strict DER encoder and reader for the CA's own structures (certificates, CSRs, CRLs, OCSP).
 *
 * Why hand-rolled: @peculiar/x509 spends ~95 % of its ~2 ms per certificate in JavaScript ASN.1 encoding
 * (../shared/reference/pki.md §2). Issuance, CRL and OCSP here need an order of magnitude more, so we encode the few
 * structures we emit by concatenating DER pieces, most of them precomputed once per CA.
 *
 * The reader is strict on purpose (it parses attacker-controlled CSRs and OCSP requests): definite lengths only,
 * minimal length encodings, single-byte tags, no reads beyond the enclosing element, and explicit checks by the
 * caller on every tag. It never recurses on its own, so nesting depth is bounded by the caller's walk.
 */

/** Raised by the reader for any encoding that is not strict DER; callers translate it to an AppError. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

// Universal tags used by the CA.
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** DER length octets for `n` (short form below 128, otherwise the minimal long form). */
export function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** One TLV with the given tag around the concatenation of `parts`. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const lenBytes = encodeLength(len);
  const out = Buffer.allocUnsafe(1 + lenBytes.length + len);
  out[0] = tag;
  lenBytes.copy(out, 1);
  let off = 1 + lenBytes.length;
  for (const p of parts) {
    p.copy(out, off);
    off += p.length;
  }
  return out;
}

/** SEQUENCE around `parts`. */
export const seq = (...parts: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
/** SET around `parts` (callers pass a single element or pre-sorted ones, as DER requires). */
export const set = (...parts: Buffer[]): Buffer => tlv(TAG.SET, ...parts);
/** OCTET STRING around `b`. */
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
/** BIT STRING with zero unused bits (every bit string the CA emits is whole bytes). */
export const bitString = (b: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), b);
/** UTF8String of `s`. */
export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
/** PrintableString of `s` (caller guarantees the PrintableString alphabet). */
export const printableString = (s: string): Buffer => tlv(TAG.PRINTABLE_STRING, Buffer.from(s, 'latin1'));
/** IA5String of `s` (caller guarantees ASCII). */
export const ia5String = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'latin1'));
/** NULL. */
export const derNull = (): Buffer => Buffer.from([0x05, 0x00]);
/** BOOLEAN with the DER value 0xff for true. */
export const derBoolean = (v: boolean): Buffer => Buffer.from([0x01, 0x01, v ? 0xff : 0x00]);
/** `[n] EXPLICIT` (constructed context-specific tag). */
export const explicit = (n: number, ...parts: Buffer[]): Buffer => tlv(0xa0 | n, ...parts);

/** INTEGER from a small non-negative JS number. */
export function integerFromNumber(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('integerFromNumber: non-negative safe integer required');
  return integerFromUnsigned(Buffer.from(bigintToBytes(BigInt(n))));
}

/** INTEGER from a non-negative bigint. */
export function integerFromBigint(n: bigint): Buffer {
  if (n < 0n) throw new RangeError('integerFromBigint: non-negative required');
  return integerFromUnsigned(Buffer.from(bigintToBytes(n)));
}

function bigintToBytes(n: bigint): Uint8Array {
  if (n === 0n) return new Uint8Array([0]);
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}

/**
 * INTEGER whose value is the unsigned big-endian `bytes`: leading zero bytes are stripped and a 0x00 sign byte is
 * added when the top bit is set, so the encoding is minimal DER for a non-negative value.
 */
export function integerFromUnsigned(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const body = bytes.subarray(i);
  if (body.length === 0) return Buffer.from([0x02, 0x01, 0x00]);
  if ((body[0] as number) & 0x80) return tlv(TAG.INTEGER, Buffer.from([0]), body);
  return tlv(TAG.INTEGER, body);
}

/** ENUMERATED for 0..127. */
export function enumerated(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError('enumerated: 0..127');
  return Buffer.from([TAG.ENUMERATED, 0x01, n]);
}

/** OBJECT IDENTIFIER from dotted text. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const first = (arcs[0] as bigint) * 40n + (arcs[1] as bigint);
  const out: number[] = [];
  for (const arc of [first, ...arcs.slice(2)]) {
    const stack: number[] = [Number(arc & 0x7fn)];
    let v = arc >> 7n;
    while (v > 0n) {
      stack.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...stack);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** Dotted text of an OID's content bytes; throws DerError on non-minimal or truncated arcs. */
export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const arcs: bigint[] = [];
  let v = 0n;
  let started = false;
  for (let i = 0; i < content.length; i++) {
    const b = content[i] as number;
    if (!started && b === 0x80) throw new DerError('non-minimal OID arc');
    started = true;
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
      started = false;
    } else if (i === content.length - 1) {
      throw new DerError('truncated OID');
    }
  }
  const first = arcs[0] as bigint;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

const pad2 = (n: number): string => (n < 10 ? '0' + n : String(n));

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (whole seconds, as RFC 5280 and RFC 6960 require). */
export function generalizedTime(ms: number): Buffer {
  const d = new Date(ms);
  const s =
    String(d.getUTCFullYear()).padStart(4, '0') +
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z';
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(s, 'latin1'));
}

/**
 * RFC 5280 §4.1.2.5 Time: "CAs conforming to this profile MUST always encode certificate validity dates through the
 * year 2049 as UTCTime; certificate validity dates in 2050 or later MUST be encoded as GeneralizedTime." Same rule for
 * CRL thisUpdate/nextUpdate/revocationDate (§5.1.2.4-6).
 */
export function x509Time(ms: number): Buffer {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (y < 1950 || y >= 2050) return generalizedTime(ms);
  const s =
    pad2(y % 100) +
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z';
  return tlv(TAG.UTC_TIME, Buffer.from(s, 'latin1'));
}

/** Parse a UTCTime or GeneralizedTime element's content (the `Z` forms DER requires) into epoch ms. */
export function decodeTime(tag: number, content: Buffer): number {
  const s = content.toString('latin1');
  let m: RegExpExecArray | null;
  if (tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new DerError('bad UTCTime');
    const yy = Number(m[1]);
    return Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  if (tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new DerError('bad GeneralizedTime');
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  throw new DerError('expected a time');
}

/** One parsed element: positions into `buf`, never a copy. */
export interface DerNode {
  readonly buf: Buffer;
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the element. */
  readonly end: number;
}

/** The whole element (tag, length and content). */
export const raw = (n: DerNode): Buffer => n.buf.subarray(n.start, n.end);
/** The content octets only. */
export const content = (n: DerNode): Buffer => n.buf.subarray(n.contentStart, n.end);

/** Read the element starting at `offset`, which must end at or before `limit`. */
export function readNode(buf: Buffer, offset: number, limit: number = buf.length): DerNode {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  let len = buf[offset + 1] as number;
  let p = offset + 2;
  if (len & 0x80) {
    const nLen = len & 0x7f;
    if (nLen === 0) throw new DerError('indefinite length is not DER');
    if (nLen > 4) throw new DerError('length too large');
    if (p + nLen > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < nLen; i++) len = len * 256 + (buf[p + i] as number);
    if (buf[p] === 0 || len < 0x80) throw new DerError('non-minimal length');
    p += nLen;
  }
  if (p + len > limit) throw new DerError('truncated content');
  return { buf, tag, start: offset, contentStart: p, end: p + len };
}

/** Parse `buf` as exactly one element (no trailing bytes). */
export function readTop(buf: Buffer): DerNode {
  const n = readNode(buf, 0, buf.length);
  if (n.end !== buf.length) throw new DerError('trailing bytes after DER element');
  return n;
}

/** The children of a constructed element, which must tile its content exactly. `max` bounds the count. */
export function children(n: DerNode, max = 1024): DerNode[] {
  if (!(n.tag & 0x20)) throw new DerError('expected a constructed element');
  const out: DerNode[] = [];
  let p = n.contentStart;
  while (p < n.end) {
    if (out.length >= max) throw new DerError('too many elements');
    const c = readNode(n.buf, p, n.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

/** Throws unless `n` has `tag`; returns `n` for chaining. */
export function expectTag(n: DerNode | undefined, tag: number, what: string): DerNode {
  if (n === undefined) throw new DerError(`missing ${what}`);
  if (n.tag !== tag) throw new DerError(`${what}: unexpected tag 0x${n.tag.toString(16)}`);
  return n;
}

/** Content of a BIT STRING with zero unused bits (keys and signatures are whole bytes). */
export function bitStringBytes(n: DerNode): Buffer {
  expectTag(n, TAG.BIT_STRING, 'BIT STRING');
  const c = content(n);
  if (c.length < 1 || c[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return c.subarray(1);
}

/** Throws unless `n` is a minimally encoded INTEGER; returns its content bytes. */
export function integerBytes(n: DerNode): Buffer {
  expectTag(n, TAG.INTEGER, 'INTEGER');
  const c = content(n);
  if (c.length === 0) throw new DerError('empty INTEGER');
  if (c.length > 1 && ((c[0] === 0x00 && !((c[1] as number) & 0x80)) || (c[0] === 0xff && (c[1] as number) & 0x80))) {
    throw new DerError('non-minimal INTEGER');
  }
  return c;
}

/** PEM armour with 64-character lines and a final newline. */
export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const B64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decode exactly one PEM block with one of `labels`, allowing only whitespace around it. Returns null for anything
 * else (missing armour, a second block, foreign text, invalid base64): PEM arrives from callers and is untrusted.
 */
export function fromPemStrict(text: string, labels: readonly string[]): { label: string; der: Buffer } | null {
  const m = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END ([A-Z0-9 ]+)-----\s*$/.exec(text);
  if (!m) return null;
  const [, begin, body, end] = m as unknown as [string, string, string, string];
  if (begin !== end || !labels.includes(begin)) return null;
  const compact = body.replace(/[\r\n\t ]/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !B64_BODY.test(compact)) return null;
  return { label: begin, der: Buffer.from(compact, 'base64') };
}

/** All PEM blocks with `label` in `text` (for trusted files such as chain bundles). */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of text.matchAll(re)) out.push(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
  return out;
}
