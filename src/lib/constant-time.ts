import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets without leaking where they differ. Inputs of different lengths are hashed first so the
 * comparison itself still runs in constant time and the length check does not short-circuit on content.
 */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const ab = typeof a === 'string' ? Buffer.from(a, 'utf8') : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const bb = typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (ab.length !== bb.length) {
    const ha = createHash('sha256').update(ab).digest();
    const hb = createHash('sha256').update(bb).digest();
    timingSafeEqual(ha, hb);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
