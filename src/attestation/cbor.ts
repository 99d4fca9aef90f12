import { badRequest } from '../domain/errors';

/** A decoded CBOR value: numbers (ints only), strings, byte strings, arrays, maps, booleans, null. */
export type CborValue = number | bigint | string | Buffer | boolean | null | CborValue[] | Map<CborValue, CborValue>;

const C = 'CBOR_MALFORMED';
const MAX_DEPTH = 16;
const MAX_ITEMS = 4096;

/**
 * Strict, bounded CBOR decoder (RFC 8949) for WebAuthn/ACME attestation objects: definite lengths only, no tags,
 * no floats, nesting ≤ 16, ≤ 4096 items per container. Returns the value and the bytes consumed (authData embeds
 * a COSE key followed by extensions). Anything else is `CBOR_MALFORMED` (bad_request).
 */
export function decodeCborPrefix(buf: Buffer, offset = 0): { value: CborValue; length: number } {
  let pos = offset;
  const fail = (why: string): never => {
    throw badRequest(C, `Invalid CBOR: ${why}`);
  };
  const need = (n: number): void => {
    if (pos + n > buf.length) fail('truncated');
  };
  const readArg = (info: number): number | bigint => {
    if (info < 24) return info;
    if (info === 24) {
      need(1);
      return buf[pos++]!;
    }
    if (info === 25) {
      need(2);
      pos += 2;
      return buf.readUInt16BE(pos - 2);
    }
    if (info === 26) {
      need(4);
      pos += 4;
      return buf.readUInt32BE(pos - 4);
    }
    if (info === 27) {
      need(8);
      pos += 8;
      const v = buf.readBigUInt64BE(pos - 8);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    return fail('indefinite or reserved length');
  };
  const count = (arg: number | bigint, limit: number): number => {
    if (typeof arg === 'bigint' || arg > limit) fail('length too large');
    return arg as number;
  };
  const item = (depth: number): CborValue => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    need(1);
    const first = buf[pos++]!;
    const major = first >> 5;
    const info = first & 0x1f;
    switch (major) {
      case 0:
        return readArg(info);
      case 1: {
        const a = readArg(info);
        return typeof a === 'bigint' ? -1n - a : -1 - a;
      }
      case 2:
      case 3: {
        const n = count(readArg(info), buf.length);
        need(n);
        const bytes = buf.subarray(pos, pos + n);
        pos += n;
        if (major === 2) return Buffer.from(bytes);
        const text = bytes.toString('utf8');
        if (!Buffer.from(text, 'utf8').equals(bytes)) fail('invalid UTF-8');
        return text;
      }
      case 4: {
        const n = count(readArg(info), MAX_ITEMS);
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        const n = count(readArg(info), MAX_ITEMS);
        const m = new Map<CborValue, CborValue>();
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== 'number' && typeof k !== 'string') fail('map key must be an integer or text');
          if (m.has(k)) fail('duplicate map key');
          m.set(k, item(depth + 1));
        }
        return m;
      }
      case 7:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        return fail('unsupported simple value or float');
      default:
        return fail('tags are not supported');
    }
  };
  const value = item(0);
  return { value, length: pos - offset };
}

/** Decodes a buffer that must hold exactly one CBOR item. */
export function decodeCbor(buf: Buffer): CborValue {
  const { value, length } = decodeCborPrefix(buf, 0);
  if (length !== buf.length) throw badRequest(C, 'Invalid CBOR: trailing bytes');
  return value;
}
