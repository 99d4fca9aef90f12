/**
 * Pseudonymisation of personal names (and optionally IP addresses) in audit exports, for auditors without the need
 * to know (GDPR Art. 4(5), DSK "Protokollierung": evaluation with the least personal data that serves the purpose).
 *
 * A pseudonym is `ps-` + the first 128 bits of HMAC-SHA256(key, kind ‖ 0x00 ‖ value) in hex: the same name gives the
 * same pseudonym for one key (so an auditor can still follow one person across entries), differs between keys, and
 * cannot be reversed without the key (unlike a plain hash of a guessable user name). Vault's audit devices hash
 * strings with HMAC-SHA256 for the same reason.
 */
import { createHmac } from 'node:crypto';
import { IP_KEYS, PERSONAL_NAME_KEYS } from './events';

/** Keyed pseudonymisation of names (and optionally IPs) in exported entries. */
export interface Pseudonymiser {
  /** Whether IP addresses are replaced as well as names. */
  readonly ips: boolean;
  /** The pseudonym of one value. */
  pseudonym(kind: 'user' | 'ip', value: string): string;
  /**
   * Returns a deep copy of a parsed entry body with names (and IPs) replaced, and whether anything changed. Only
   * `actor` (when a user) and `data` are touched; chain fields and ids stay as they are.
   */
  apply<T extends Record<string, unknown>>(body: T): { readonly value: T; readonly changed: boolean };
}

/** A pseudonymiser with `key` (at least 32 bytes). */
export function createPseudonymiser(key: Buffer, options: { ips?: boolean } = {}): Pseudonymiser {
  if (key.length < 32) throw new RangeError('pseudonymisation key must be at least 32 bytes');
  const ips = options.ips === true;
  const pseudonym = (kind: 'user' | 'ip', value: string): string =>
    `ps-${createHmac('sha256', key).update(`${kind}\u0000${value}`, 'utf8').digest('hex').slice(0, 32)}`;

  const walk = (v: unknown, state: { changed: boolean }): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, state));
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x === 'string' && PERSONAL_NAME_KEYS.has(k)) {
        out[k] = pseudonym('user', x);
        state.changed = true;
      } else if (ips && typeof x === 'string' && IP_KEYS.has(k)) {
        out[k] = pseudonym('ip', x);
        state.changed = true;
      } else {
        out[k] = walk(x, state);
      }
    }
    return out;
  };

  return {
    ips,
    pseudonym,
    apply<T extends Record<string, unknown>>(body: T) {
      const state = { changed: false };
      const value: Record<string, unknown> = { ...body };
      if (body.data !== undefined) value.data = walk(body.data, state);
      const actor = body.actor as { kind?: unknown; id?: unknown } | undefined;
      if (actor && actor.kind === 'user' && typeof actor.id === 'string') {
        value.actor = { ...actor, id: pseudonym('user', actor.id) };
        state.changed = true;
      }
      return { value: value as T, changed: state.changed };
    },
  };
}
