/**
 * The decision fact cache (`CachedFactLookups`) over a real SQLite store: the certificate and its revocation come
 * from one read, and what that read says about revocation is cached exactly as a separate revocation read would be.
 * A gate on the combined read lets a test revoke and invalidate while it is in flight.
 */
import { CachedFactLookups, FACT_CACHE_TTL_MS } from '../../../src/services/decisions';
import type { CertificateRecord } from '../../../src/domain/types';
import { ManualClock } from '../../../src/lib/clock';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { Store } from '../../../src/store/types';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

const cert = (serialHex: string): CertificateRecord => ({
  serialHex,
  deviceId: `dev-${serialHex}`,
  sha256: serialHex.padEnd(64, '0'),
  notBefore: T0,
  notAfter: T0 + 86_400_000,
  pem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
  issuedAt: T0,
  issuedVia: 'enroll',
});

/** Counts store reads and can hold the combined read until `release()`. */
function instrumented(store: Store) {
  const reads = { combined: 0, revocation: 0 };
  let gate: Promise<void> | null = null;
  let release: () => void = () => undefined;
  const certificates = Object.create(store.certificates) as Store['certificates'];
  certificates.getBySha256WithRevocation = async (sha) => {
    reads.combined++;
    const r = await store.certificates.getBySha256WithRevocation(sha);
    if (gate) await gate;
    return r;
  };
  const revocations = Object.create(store.revocations) as Store['revocations'];
  revocations.get = async (serial) => {
    reads.revocation++;
    return store.revocations.get(serial);
  };
  return {
    store: { ...store, certificates, revocations } as Store,
    reads,
    hold(): void {
      gate = new Promise((r) => (release = r));
    },
    release(): void {
      gate = null;
      release();
    },
  };
}

describe('CachedFactLookups with the combined certificate + revocation read (real SQLite)', () => {
  let store: Store;
  let clock: ManualClock;

  beforeEach(async () => {
    store = openSqliteStore({ path: ':memory:' });
    clock = new ManualClock(T0);
    for (const s of ['0a01', '0a02']) await store.certificates.put(cert(s));
  });
  afterEach(async () => store.close());

  it('answers the revocation from the combined read without a second store read', async () => {
    const t = instrumented(store);
    const facts = new CachedFactLookups(t.store, clock);
    expect(await facts.certificateBySha256(cert('0a01').sha256)).toEqual(cert('0a01'));
    expect(await facts.revocation('0a01')).toBeNull();
    expect(t.reads).toEqual({ combined: 1, revocation: 0 });
  });

  it('reports a revoked certificate from the combined read and keeps it revoked (revocation is final)', async () => {
    await store.revocations.revoke({ serialHex: '0a02', deviceId: 'dev-0a02', reason: 'keyCompromise', revokedAt: T0, revokedBy: 'it' });
    const t = instrumented(store);
    const facts = new CachedFactLookups(t.store, clock);
    await facts.certificateBySha256(cert('0a02').sha256);
    clock.advance(FACT_CACHE_TTL_MS * 10);
    expect(await facts.revocation('0a02')).toMatchObject({ reason: 'keyCompromise' });
    expect(t.reads.revocation).toBe(0);
  });

  it('reads the revocation again once "not revoked" is older than the ttl (revocation reaches a cached certificate)', async () => {
    const t = instrumented(store);
    const facts = new CachedFactLookups(t.store, clock);
    await facts.certificateBySha256(cert('0a01').sha256);
    await store.revocations.revoke({ serialHex: '0a01', deviceId: 'dev-0a01', reason: 'keyCompromise', revokedAt: T0, revokedBy: 'it' });
    clock.advance(FACT_CACHE_TTL_MS - 1);
    expect(await facts.revocation('0a01')).toBeNull();
    clock.advance(2);
    expect(await facts.revocation('0a01')).toMatchObject({ reason: 'keyCompromise' });
  });

  it('does not cache "not revoked" from a read that a revocation event overtook (invalidation race)', async () => {
    const t = instrumented(store);
    const facts = new CachedFactLookups(t.store, clock);
    t.hold();
    const pending = facts.certificateBySha256(cert('0a01').sha256);
    await new Promise((r) => setImmediate(r));
    // The read has seen "not revoked"; now the certificate is revoked and the event arrives before the read returns.
    await store.revocations.revoke({ serialHex: '0a01', deviceId: 'dev-0a01', reason: 'keyCompromise', revokedAt: T0, revokedBy: 'it' });
    facts.invalidateCertificate('0a01');
    t.release();
    await pending;
    expect(await facts.revocation('0a01')).toMatchObject({ reason: 'keyCompromise' });
    expect(t.reads.revocation).toBeGreaterThanOrEqual(1);
  });

  it('finds nothing for an unknown fingerprint and caches no miss', async () => {
    const t = instrumented(store);
    const facts = new CachedFactLookups(t.store, clock);
    expect(await facts.certificateBySha256('ff'.repeat(32))).toBeNull();
    await store.certificates.put({ ...cert('0a03'), sha256: 'ff'.repeat(32) });
    expect(await facts.certificateBySha256('ff'.repeat(32))).toMatchObject({ serialHex: '0a03' });
    expect(t.reads.combined).toBe(2);
  });
});
