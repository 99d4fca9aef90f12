import { randomBytes, randomFillSync, randomUUID } from 'node:crypto';

/** A random RFC 4122 v4 UUID; device ids and other ids whose creation time is nobody's business. */
export const newId = (): string => randomUUID();

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const v7Bytes = Buffer.alloc(16);
/** Random bytes are drawn 10 per id from a pool refilled in one call (one CSPRNG call per id cost ~10 µs). */
const RANDOM_POOL_IDS = 512;
const randomPool = Buffer.alloc(RANDOM_POOL_IDS * 10);
let randomOffset = randomPool.length;

/**
 * An RFC 9562 version 7 UUID: 48-bit Unix milliseconds, then 74 random bits; audit event ids and decision ids.
 *
 * Why: the audit table keeps a UNIQUE index on event ids. Random (v4) ids land on a random leaf page of that index,
 * so every group commit dirtied and wrote one index page per entry; time-ordered ids append at the right edge. The
 * time they reveal is already in the entry. Ids made in the same millisecond are unordered among themselves, which
 * nothing relies on (the chain's order is `seq`).
 */
export function newTimeOrderedId(nowMs: number = Date.now()): string {
  const b = v7Bytes;
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomPool.copy(b, 6, randomOffset, randomOffset + 10);
  randomOffset += 10;
  b.writeUIntBE(Math.trunc(nowMs), 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += HEX[b[i]!];
  }
  return s;
}

/** A URL-safe random secret of `bytes` bytes (default 32 = 256 bits), for one-time tokens. */
export const newSecret = (bytes = 32): string => randomBytes(bytes).toString('base64url');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** True for a lower-case RFC 4122 UUID (the only form devicegate issues). */
export const isUuid = (s: string): boolean => UUID_RE.test(s);
