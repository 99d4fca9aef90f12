import { randomBytes, randomUUID } from 'node:crypto';

/** A random RFC 4122 v4 UUID; device ids, decision ids, event ids. */
export const newId = (): string => randomUUID();

/** A URL-safe random secret of `bytes` bytes (default 32 = 256 bits), for one-time tokens. */
export const newSecret = (bytes = 32): string => randomBytes(bytes).toString('base64url');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** True for a lower-case RFC 4122 UUID (the only form devicegate issues). */
export const isUuid = (s: string): boolean => UUID_RE.test(s);
