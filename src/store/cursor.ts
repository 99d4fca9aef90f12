import { badRequest } from '../domain/errors';

/**
 * Opaque pagination cursors. A cursor is base64url JSON of the sort key of the last item returned; it carries no
 * authority (a forged cursor only moves the page window), but a malformed one is a caller error, not a crash.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, shape: readonly ('string' | 'number')[]): (string | number)[] {
  let parsed: unknown;
  try {
    if (cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('bad alphabet');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (cause) {
    throw badRequest('INVALID_CURSOR', 'The pagination cursor is malformed.', { cause });
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== shape.length ||
    !parsed.every((v, i) => typeof v === shape[i] && (typeof v !== 'number' || Number.isSafeInteger(v)))
  ) {
    throw badRequest('INVALID_CURSOR', 'The pagination cursor is malformed.');
  }
  return parsed as (string | number)[];
}
