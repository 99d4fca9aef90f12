import { ManualClock } from '../../../src/lib/clock';
import { SAML_REQUEST_KEY_PREFIX, StoreCacheProvider, isRequestId } from '../../../src/auth/saml/cache-provider';
import { openTempStore, type TempStore } from './store-fixture';

const ID = '_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c';
const TTL = 10 * 60_000;

describe('StoreCacheProvider (node-saml request cache over the SQLite NonceStore)', () => {
  let t: TempStore;
  let clock: ManualClock;
  let cache: StoreCacheProvider;
  beforeEach(() => {
    t = openTempStore();
    clock = new ManualClock();
    cache = new StoreCacheProvider({ store: t.store.nonces, clock, ttlMs: TTL });
  });
  afterEach(async () => {
    await t.close();
  });

  it('stores an issued request id and returns its value until the TTL passes', async () => {
    const item = await cache.saveAsync(ID, '2026-11-26T12:00:00.000Z');
    expect(item).toEqual({ value: '2026-11-26T12:00:00.000Z', createdAt: clock.nowMs() });
    clock.advance(TTL - 1);
    expect(await cache.getAsync(ID)).toBe('2026-11-26T12:00:00.000Z');
    clock.advance(1);
    expect(await cache.getAsync(ID)).toBeNull();
  });

  it('keeps entries under a SAML-specific prefix of the shared nonce namespace', async () => {
    await cache.saveAsync(ID, 'v');
    expect(await t.store.nonces.get(SAML_REQUEST_KEY_PREFIX + ID, clock.nowMs())).toBe('v');
    expect(await t.store.nonces.get(ID, clock.nowMs())).toBeNull();
  });

  it('never overwrites a live entry (saveAsync returns null)', async () => {
    await cache.saveAsync(ID, 'first');
    expect(await cache.saveAsync(ID, 'second')).toBeNull();
    expect(await cache.getAsync(ID)).toBe('first');
  });

  it('lets an expired id be issued again', async () => {
    await cache.saveAsync(ID, 'first');
    clock.advance(TTL);
    expect(await cache.saveAsync(ID, 'again')).not.toBeNull();
    expect(await cache.getAsync(ID)).toBe('again');
  });

  it('removes an id once: a second removal (a replay) finds nothing', async () => {
    await cache.saveAsync(ID, 'v');
    expect(await cache.removeAsync(ID)).toBe(ID);
    expect(await cache.removeAsync(ID)).toBeNull();
    expect(await cache.getAsync(ID)).toBeNull();
    expect(await cache.removeAsync(null)).toBeNull();
  });

  it('lets exactly one of many concurrent removals win (replayed response racing the original)', async () => {
    await cache.saveAsync(ID, 'v');
    const other = new StoreCacheProvider({ store: t.openAnother().nonces, clock, ttlMs: TTL });
    const results = await Promise.all([cache, other, cache, other, cache, other].map((c) => c.removeAsync(ID)));
    expect(results.filter((r) => r === ID)).toHaveLength(1);
  });

  it('shares request ids between gateway instances on the same store (login finishes on another instance)', async () => {
    const instanceB = new StoreCacheProvider({ store: t.openAnother().nonces, clock, ttlMs: TTL });
    await cache.saveAsync(ID, 'issued-on-A');
    expect(await instanceB.getAsync(ID)).toBe('issued-on-A');
    expect(await instanceB.removeAsync(ID)).toBe(ID);
    expect(await cache.getAsync(ID)).toBeNull();
  });

  it('treats attacker-shaped InResponseTo values as unknown without touching the store', async () => {
    for (const bad of ['', 'x'.repeat(200), "_a' or '1'='1", '../../etc', 'a b', '1abc']) {
      expect(isRequestId(bad)).toBe(false);
      expect(await cache.getAsync(bad)).toBeNull();
      expect(await cache.saveAsync(bad, 'v')).toBeNull();
      expect(await cache.removeAsync(bad)).toBeNull();
    }
    expect(isRequestId(ID)).toBe(true);
  });

  it('refuses a non-positive TTL at construction', () => {
    expect(() => new StoreCacheProvider({ store: t.store.nonces, clock, ttlMs: 0 })).toThrow(TypeError);
  });
});
