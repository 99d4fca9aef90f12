import type { Principal } from '../auth/permissions';
import { badRequest } from '../domain/errors';

/** Reads a single string query parameter; repeated or non-string values are a 400, not silently the first one. */
export function queryString(query: unknown, name: string): string | undefined {
  const v = (query as Record<string, unknown>)[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest('INVALID_QUERY', `Query parameter "${name}" must be given once.`);
  return v;
}

/** `limit` within 1..max (default `def`). */
export function queryLimit(query: unknown, def = 50, max = 1000): number {
  const v = queryString(query, 'limit');
  if (v === undefined) return def;
  if (!/^\d{1,7}$/.test(v) || Number(v) < 1 || Number(v) > max) {
    throw badRequest('INVALID_LIMIT', `limit must be an integer from 1 to ${max}.`);
  }
  return Number(v);
}

/** A boolean query flag: `true`/`1` or `false`/`0`. */
export function queryBool(query: unknown, name: string, def = false): boolean {
  const v = queryString(query, name);
  if (v === undefined) return def;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw badRequest('INVALID_QUERY', `Query parameter "${name}" must be true or false.`);
}

/** One of the allowed values, or undefined when absent. */
export function queryEnum<T extends string>(query: unknown, name: string, allowed: readonly T[]): T | undefined {
  const v = queryString(query, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw badRequest('INVALID_QUERY', `Query parameter "${name}" must be one of ${allowed.join(', ')}.`);
  }
  return v as T;
}

/** The authenticated principal of a request on a route behind `authorize` (always set there). */
export function principalOf(req: { principal?: Principal }): Principal {
  if (!req.principal) throw new Error('route without authorize() reached a handler that needs a principal');
  return req.principal;
}
