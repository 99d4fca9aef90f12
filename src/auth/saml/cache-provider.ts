/**
 * node-saml's `CacheProvider` over the shared `NonceStore`, so the AuthnRequest IDs that `InResponseTo` must match
 * live in SQLite or Redis instead of process memory.
 *
 * Why: node-saml's default `InMemoryCacheProvider` forgets requests on restart and cannot see requests issued by
 * another gateway instance, so behind a load balancer `validateInResponseTo: 'always'` would either fail logins or
 * have to be weakened. With the store, any instance can finish a login any other instance started, and a response
 * whose request id was already used (node-saml removes it after the first validation) fails everywhere.
 */
import type { CacheItem, CacheProvider } from '@node-saml/node-saml';
import { isAlreadyExists } from '../../store/errors';
import type { NonceStore } from '../../store/types';
import type { Clock } from '../../lib/clock';

/** Key prefix in the shared nonce namespace (enrollment nonces and sessions live there too). */
export const SAML_REQUEST_KEY_PREFIX = 'saml:req:';

/**
 * node-saml ids are `_` + 40 hex digits; IdPs echo what we sent. Anything else cannot be one of ours, so it is never
 * looked up (keeps attacker-chosen strings out of store keys and bounds their length).
 */
const REQUEST_ID_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

export interface StoreCacheProviderOptions {
  readonly store: NonceStore;
  readonly clock: Clock;
  /** How long an issued request id stays valid; match node-saml's `requestIdExpirationPeriodMs`. */
  readonly ttlMs: number;
}

/**
 * A `CacheProvider` whose entries expire after `ttlMs` by the injected clock.
 *
 * Guarantees: `saveAsync` never overwrites a live entry (returns null instead); `getAsync` returns only live
 * entries; `removeAsync` deletes atomically across instances and returns the key only to the caller that removed a
 * live entry. Malformed keys behave as absent.
 */
export class StoreCacheProvider implements CacheProvider {
  private readonly store: NonceStore;
  private readonly clock: Clock;
  private readonly ttlMs: number;

  constructor(options: StoreCacheProviderOptions) {
    if (!Number.isInteger(options.ttlMs) || options.ttlMs <= 0) throw new TypeError('ttlMs must be a positive integer');
    this.store = options.store;
    this.clock = options.clock;
    this.ttlMs = options.ttlMs;
  }

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    if (!isRequestId(key)) return null;
    const now = this.clock.nowMs();
    try {
      await this.store.put(SAML_REQUEST_KEY_PREFIX + key, value, this.ttlMs, now);
    } catch (e) {
      if (isAlreadyExists(e)) return null;
      throw e;
    }
    return { value, createdAt: now };
  }

  async getAsync(key: string): Promise<string | null> {
    if (!isRequestId(key)) return null;
    return this.store.get(SAML_REQUEST_KEY_PREFIX + key, this.clock.nowMs());
  }

  async removeAsync(key: string | null): Promise<string | null> {
    if (key === null || !isRequestId(key)) return null;
    const value = await this.store.consume(SAML_REQUEST_KEY_PREFIX + key, this.clock.nowMs());
    return value === null ? null : key;
  }
}

/** True when `id` has the shape of a SAML request id we could have issued. */
export function isRequestId(id: unknown): id is string {
  return typeof id === 'string' && REQUEST_ID_RE.test(id);
}
