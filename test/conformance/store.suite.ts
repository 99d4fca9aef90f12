/**
 * One conformance suite for every store back-end (Teleport's RunBackendComplianceSuite pattern). A back-end is
 * correct when this suite passes against it; services rely on nothing the suite does not check.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEntry, Device } from '../../src/domain/types';
import { ManualClock } from '../../src/lib/clock';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../../src/store/errors';
import type { AuditHead, Store } from '../../src/store/types';

export interface StoreHarness {
  store: Store;
  /** Opens a second, independent handle on the same data (another gateway instance or the CLI). */
  openSecond(): Promise<Store>;
  /** False when handles share data but not notifications (SQLite: one process per file). */
  sharesEvents?: boolean;
  cleanup(): Promise<void>;
}

export type StoreFactory = (clock: ManualClock) => Promise<StoreHarness>;

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

export function device(overrides: Partial<Device> = {}): Device {
  const id = overrides.id ?? randomUUID();
  return {
    id,
    serialNumber: `SN-${id.slice(0, 8)}`,
    assetTag: null,
    model: 'Latitude 7440',
    platform: 'windows',
    owner: 'erika.mustermann',
    department: 'Ordnungsamt',
    status: 'registered',
    statusReason: null,
    tpm: { ekPublicSha256: randomUUID().replace(/-/g, '').padEnd(64, '0') },
    attestationKey: null,
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}

const GENESIS = '0'.repeat(64);

function entry(seq: number, prevHash: string, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    seq,
    eventId: randomUUID(),
    time: T0 + seq,
    type: 'vpn.decision',
    prevHash,
    hash: `h${seq}`.padEnd(64, 'f'),
    body: JSON.stringify({ seq }),
    deviceId: null,
    user: null,
    decision: null,
    reason: null,
    concentrator: null,
    ...overrides,
  };
}

export function runStoreConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, () => {
    let clock: ManualClock;
    let h: StoreHarness;
    let store: Store;

    beforeEach(async () => {
      clock = new ManualClock(T0);
      h = await factory(clock);
      store = h.store;
    });

    afterEach(async () => {
      await h.cleanup();
    });

    describe('devices', () => {
      it('creates and reads a device back unchanged', async () => {
        const d = device({ assetTag: 'A-1', tpm: { ekPublicSha256: 'ab'.repeat(32), ekCertificatePem: 'PEM' } });
        await store.devices.create(d);
        expect(await store.devices.get(d.id)).toEqual(d);
        expect(await store.devices.findBySerial(d.serialNumber)).toEqual(d);
        expect(await store.devices.findByEkHash('ab'.repeat(32))).toEqual(d);
      });

      it('reads the decision summary of a device (id, status, platform, owner, department) and null for an unknown id', async () => {
        const d = device({ owner: 'anna', department: 'Bürgeramt', tpm: { ekPublicSha256: 'cd'.repeat(32), ekCertificatePem: 'PEM' } });
        await store.devices.create(d);
        expect(await store.devices.getSummary(d.id)).toEqual({ id: d.id, status: d.status, platform: d.platform, owner: 'anna', department: 'Bürgeramt' });
        await store.devices.update(d.id, { status: 'suspended', updatedAt: T0 + 1 });
        expect((await store.devices.getSummary(d.id))?.status).toBe('suspended');
        expect(await store.devices.getSummary(randomUUID())).toBeNull();
      });

      it('throws NotFound for an unknown id and returns null for unknown serial/EK', async () => {
        await expect(store.devices.get(randomUUID())).rejects.toBeInstanceOf(NotFoundError);
        expect(await store.devices.findBySerial('nope')).toBeNull();
        expect(await store.devices.findByEkHash('00'.repeat(32))).toBeNull();
      });

      it('throws AlreadyExists for a duplicate id, serial number or EK hash', async () => {
        const d = device();
        await store.devices.create(d);
        await expect(store.devices.create(device({ id: d.id, serialNumber: 'other' }))).rejects.toBeInstanceOf(
          AlreadyExistsError,
        );
        await expect(store.devices.create(device({ serialNumber: d.serialNumber }))).rejects.toBeInstanceOf(
          AlreadyExistsError,
        );
        await expect(store.devices.create(device({ tpm: d.tpm }))).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.devices.count()).toBe(1);
      });

      it('updates with a version bump and rejects a stale expected version with Conflict', async () => {
        const d = device();
        await store.devices.create(d);
        const u = await store.devices.update(d.id, { status: 'active', updatedAt: T0 + 5 }, 1);
        expect(u).toMatchObject({ status: 'active', version: 2, updatedAt: T0 + 5, createdAt: T0 });
        expect(await store.devices.get(d.id)).toEqual(u);
        await expect(store.devices.update(d.id, { status: 'revoked', updatedAt: T0 + 6 }, 1)).rejects.toBeInstanceOf(
          ConflictError,
        );
        expect((await store.devices.get(d.id)).status).toBe('active');
        await expect(store.devices.update(randomUUID(), { updatedAt: T0 })).rejects.toBeInstanceOf(NotFoundError);
      });

      it('rejects an update that would take another device serial number or EK', async () => {
        const a = device();
        const b = device();
        await store.devices.create(a);
        await store.devices.create(b);
        await expect(
          store.devices.update(b.id, { serialNumber: a.serialNumber, updatedAt: T0 }),
        ).rejects.toBeInstanceOf(AlreadyExistsError);
        await expect(store.devices.update(b.id, { tpm: a.tpm, updatedAt: T0 })).rejects.toBeInstanceOf(
          AlreadyExistsError,
        );
        expect(await store.devices.findBySerial(a.serialNumber)).toEqual(a);
      });

      it('finds a device by its new serial and EK after an update and not by the old ones', async () => {
        const d = device();
        await store.devices.create(d);
        await store.devices.update(d.id, { serialNumber: 'NEW-1', tpm: { ekPublicSha256: 'cd'.repeat(32) }, updatedAt: T0 });
        expect(await store.devices.findBySerial(d.serialNumber)).toBeNull();
        expect(await store.devices.findByEkHash(d.tpm!.ekPublicSha256)).toBeNull();
        expect((await store.devices.findBySerial('NEW-1'))?.id).toBe(d.id);
        expect((await store.devices.findByEkHash('cd'.repeat(32)))?.id).toBe(d.id);
      });

      it('paginates in creation order with filters and a stable cursor', async () => {
        const all: Device[] = [];
        for (let i = 0; i < 25; i++) {
          const d = device({
            createdAt: T0 + Math.floor(i / 2), // pairs share a timestamp: the id breaks the tie
            platform: i % 5 === 0 ? 'linux' : 'windows',
            owner: `user${i}`,
            serialNumber: `SER-${String(i).padStart(3, '0')}`,
          });
          all.push(d);
          await store.devices.create(d);
        }
        const expected = [...all].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1)).map((d) => d.id);
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.devices.list({}, { cursor, limit: 7 });
          seen.push(...page.items.map((d) => d.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor);
        expect(pages).toBe(4);
        expect(seen).toEqual(expected);

        const linux = await store.devices.list({ platform: 'linux' }, { limit: 100 });
        expect(linux.items).toHaveLength(5);
        expect(linux.nextCursor).toBeNull();
        expect(await store.devices.count({ platform: 'linux' })).toBe(5);

        const search = await store.devices.list({ search: 'ser-01' }, { limit: 100 });
        expect(search.items.map((d) => d.serialNumber).sort()).toEqual(
          Array.from({ length: 10 }, (_, i) => `SER-01${i}`),
        );
        // `%` is literal, not a wildcard.
        expect((await store.devices.list({ search: '%' }, { limit: 100 })).items).toHaveLength(0);
      });

      it('rejects a malformed cursor with a bad_request error', async () => {
        await expect(store.devices.list({}, { cursor: '!!not-a-cursor', limit: 5 })).rejects.toMatchObject({
          kind: 'bad_request',
          code: 'INVALID_CURSOR',
        });
        await expect(
          store.devices.list({}, { cursor: Buffer.from('{"x":1}').toString('base64url'), limit: 5 }),
        ).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
      });

      it('upserts many by serial atomically: all rows or none', async () => {
        const existing = device({ serialNumber: 'IMP-1', status: 'active' });
        const clash = device({ serialNumber: 'CLASH' });
        await store.devices.create(existing);
        await store.devices.create(clash);
        const res = await store.devices.upsertManyBySerial([
          device({ serialNumber: 'IMP-1', model: 'new model', tpm: existing.tpm }),
          device({ serialNumber: 'IMP-2' }),
        ]);
        expect(res).toEqual({ created: 1, updated: 1 });
        const updated = await store.devices.get(existing.id);
        expect(updated).toMatchObject({ model: 'new model', status: 'active', id: existing.id, version: 2 });
        expect(await store.devices.findBySerial('IMP-2')).not.toBeNull();

        // The second row takes an EK hash that another device owns: nothing of the batch may be written.
        await expect(
          store.devices.upsertManyBySerial([device({ serialNumber: 'IMP-3' }), device({ serialNumber: 'IMP-4', tpm: clash.tpm })]),
        ).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.devices.findBySerial('IMP-3')).toBeNull();
        expect(await store.devices.count()).toBe(3);

        await expect(
          store.devices.upsertManyBySerial([device({ serialNumber: 'IMP-5' }), device({ serialNumber: 'IMP-5' })]),
        ).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.devices.findBySerial('IMP-5')).toBeNull();
      });
    });

    describe('enrollment tokens', () => {
      const tok = (over: Partial<{ tokenHash: string; deviceId: string; expiresAt: number }> = {}) => ({
        tokenHash: randomUUID(),
        deviceId: 'dev-1',
        createdAt: T0,
        expiresAt: T0 + 3_600_000,
        createdBy: 'it-admin:alice',
        spentAt: null,
        ...over,
      });

      it('stores, reads and spends a token exactly once', async () => {
        const t = tok();
        await store.enrollmentTokens.create(t);
        expect(await store.enrollmentTokens.get(t.tokenHash)).toEqual(t);
        const spent = await store.enrollmentTokens.spend(t.tokenHash, 'dev-1', T0 + 10);
        expect(spent.spentAt).toBe(T0 + 10);
        await expect(store.enrollmentTokens.spend(t.tokenHash, 'dev-1', T0 + 11)).rejects.toBeInstanceOf(ConflictError);
        expect((await store.enrollmentTokens.get(t.tokenHash))?.spentAt).toBe(T0 + 10);
      });

      it('refuses to spend an expired token, a token for another device, or an unknown token', async () => {
        const t = tok({ expiresAt: T0 + 1000 });
        await store.enrollmentTokens.create(t);
        await expect(store.enrollmentTokens.spend(t.tokenHash, 'dev-2', T0)).rejects.toBeInstanceOf(ConflictError);
        await expect(store.enrollmentTokens.spend(t.tokenHash, 'dev-1', T0 + 1000)).rejects.toBeInstanceOf(
          ConflictError,
        );
        await expect(store.enrollmentTokens.spend('unknown', 'dev-1', T0)).rejects.toBeInstanceOf(NotFoundError);
        expect((await store.enrollmentTokens.get(t.tokenHash))?.spentAt).toBeNull();
        await expect(store.enrollmentTokens.create(t)).rejects.toBeInstanceOf(AlreadyExistsError);
      });

      it('lets exactly one of 100 concurrent spenders win, across two store handles', async () => {
        const t = tok();
        await store.enrollmentTokens.create(t);
        const second = await h.openSecond();
        try {
          const results = await Promise.allSettled(
            Array.from({ length: 100 }, (_, i) =>
              (i % 2 ? second : store).enrollmentTokens.spend(t.tokenHash, 'dev-1', T0 + 1),
            ),
          );
          expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
        } finally {
          await second.close();
        }
      });
    });

    describe('certificates and revocations', () => {
      const cert = (serialHex: string, deviceId = 'dev-1', issuedAt = T0) => ({
        serialHex,
        deviceId,
        sha256: `${serialHex}`.padEnd(64, '0'),
        notBefore: T0,
        notAfter: T0 + 86_400_000,
        pem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
        issuedAt,
        issuedVia: 'enroll',
      });

      it('stores certificates and finds them by serial, fingerprint and device (newest first)', async () => {
        await store.certificates.put(cert('0a01', 'dev-1', T0));
        await store.certificates.put(cert('0a02', 'dev-1', T0 + 10));
        await store.certificates.put(cert('0b01', 'dev-2', T0));
        expect(await store.certificates.getBySerial('0a01')).toEqual(cert('0a01', 'dev-1', T0));
        expect((await store.certificates.getBySha256('0a02'.padEnd(64, '0')))?.serialHex).toBe('0a02');
        expect((await store.certificates.listByDevice('dev-1')).map((c) => c.serialHex)).toEqual(['0a02', '0a01']);
        expect(await store.certificates.getBySerial('ffff')).toBeNull();
        await expect(store.certificates.put(cert('0a01'))).rejects.toBeInstanceOf(AlreadyExistsError);
      });

      it('reads a certificate together with its revocation by fingerprint (the decision read)', async () => {
        await store.certificates.put(cert('0c01', 'dev-3', T0));
        await store.certificates.put(cert('0c02', 'dev-3', T0 + 1));
        const revocation = { serialHex: '0c02', deviceId: 'dev-3', reason: 'keyCompromise' as const, revokedAt: T0 + 5, revokedBy: 'alice' };
        await store.revocations.revoke(revocation);
        expect(await store.certificates.getBySha256WithRevocation('0c01'.padEnd(64, '0'))).toEqual({ certificate: cert('0c01', 'dev-3', T0), revocation: null });
        expect(await store.certificates.getBySha256WithRevocation('0c02'.padEnd(64, '0'))).toEqual({ certificate: cert('0c02', 'dev-3', T0 + 1), revocation });
        expect(await store.certificates.getBySha256WithRevocation('ffff'.padEnd(64, '0'))).toBeNull();
        // A revocation of a serial without a certificate record does not invent a certificate.
        await store.revocations.revoke({ ...revocation, serialHex: '0c03' });
        expect(await store.certificates.getBySha256WithRevocation('0c03'.padEnd(64, '0'))).toBeNull();
      });

      it('records revocations once, bumps the generation, and pages through them in order', async () => {
        const g0 = await store.revocations.generation();
        for (let i = 0; i < 12; i++) {
          await store.revocations.revoke({
            serialHex: `c${i}`,
            deviceId: 'dev-1',
            reason: 'keyCompromise',
            revokedAt: T0 + i,
            revokedBy: 'alice',
          });
        }
        expect(await store.revocations.generation()).toBeGreaterThan(g0);
        const g1 = await store.revocations.generation();
        await expect(
          store.revocations.revoke({ serialHex: 'c0', deviceId: null, reason: 'superseded', revokedAt: T0 + 99, revokedBy: 'x' }),
        ).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.revocations.get('c0')).toMatchObject({ reason: 'keyCompromise', revokedAt: T0 });
        expect(await store.revocations.generation()).toBe(g1);
        expect(await store.revocations.count()).toBe(12);
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await store.revocations.list({ cursor, limit: 5 });
          seen.push(...page.items.map((r) => r.serialHex));
          cursor = page.nextCursor;
        } while (cursor);
        expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `c${i}`));
        expect(await store.revocations.get('nope')).toBeNull();
      });

      it('shows a revocation made through one handle to another handle at once', async () => {
        const second = await h.openSecond();
        try {
          await store.revocations.revoke({ serialHex: 'dd', deviceId: 'dev-9', reason: 'unspecified', revokedAt: T0, revokedBy: 'a' });
          expect(await second.revocations.get('dd')).not.toBeNull();
          expect(await second.revocations.generation()).toBe(await store.revocations.generation());
        } finally {
          await second.close();
        }
      });
    });

    describe('nonces (TTL, consume-once)', () => {
      it('returns a value once and then never again', async () => {
        await store.nonces.put('n1', 'v1', 60_000, clock.nowMs());
        expect(await store.nonces.get('n1', clock.nowMs())).toBe('v1');
        expect(await store.nonces.consume('n1', clock.nowMs())).toBe('v1');
        expect(await store.nonces.consume('n1', clock.nowMs())).toBeNull();
        expect(await store.nonces.get('n1', clock.nowMs())).toBeNull();
      });

      it('expires entries by the caller clock (fake clock, no sleeping)', async () => {
        await store.nonces.put('n2', 'v2', 1000, clock.nowMs());
        clock.advance(999);
        expect(await store.nonces.get('n2', clock.nowMs())).toBe('v2');
        clock.advance(1);
        expect(await store.nonces.get('n2', clock.nowMs())).toBeNull();
        expect(await store.nonces.consume('n2', clock.nowMs())).toBeNull();
      });

      it('refuses to overwrite a live key unless asked, and reuses an expired key', async () => {
        await store.nonces.put('n3', 'a', 1000, clock.nowMs());
        await expect(store.nonces.put('n3', 'b', 1000, clock.nowMs())).rejects.toBeInstanceOf(AlreadyExistsError);
        await store.nonces.put('n3', 'c', 1000, clock.nowMs(), { overwrite: true });
        expect(await store.nonces.get('n3', clock.nowMs())).toBe('c');
        clock.advance(1000);
        await store.nonces.put('n3', 'd', 1000, clock.nowMs());
        expect(await store.nonces.get('n3', clock.nowMs())).toBe('d');
        await store.nonces.delete('n3');
        expect(await store.nonces.get('n3', clock.nowMs())).toBeNull();
      });

      it('lets exactly one of 100 concurrent consumers win, across two store handles', async () => {
        await store.nonces.put('race', 'prize', 60_000, clock.nowMs());
        const second = await h.openSecond();
        try {
          const results = await Promise.all(
            Array.from({ length: 100 }, (_, i) => (i % 2 ? second : store).nonces.consume('race', clock.nowMs())),
          );
          expect(results.filter((r) => r === 'prize')).toHaveLength(1);
          expect(results.filter((r) => r === null)).toHaveLength(99);
        } finally {
          await second.close();
        }
      });
    });

    describe('rate limits', () => {
      it('counts hits per fixed window and starts over in the next window', async () => {
        const w = 60_000;
        const base = T0 - (T0 % w);
        expect(await store.rateLimits.hit('ip:1', w, base)).toBe(1);
        expect(await store.rateLimits.hit('ip:1', w, base + 10)).toBe(2);
        expect(await store.rateLimits.hit('ip:2', w, base + 10)).toBe(1);
        expect(await store.rateLimits.hit('ip:1', w, base + w)).toBe(1);
      });

      it('counts 100 concurrent hits exactly', async () => {
        const counts = await Promise.all(Array.from({ length: 100 }, () => store.rateLimits.hit('burst', 60_000, T0)));
        expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      });
    });

    describe('API tokens', () => {
      it('creates, lists, reads and revokes tokens; names are unique', async () => {
        const t = { id: randomUUID(), name: 'ovpn-1', role: 'concentrator' as const, secretHash: 'aa', createdAt: T0, expiresAt: null, revokedAt: null };
        await store.apiTokens.create(t);
        expect(await store.apiTokens.get(t.id)).toEqual(t);
        await expect(store.apiTokens.create({ ...t, id: randomUUID() })).rejects.toBeInstanceOf(AlreadyExistsError);
        await store.apiTokens.revoke(t.id, T0 + 5);
        expect((await store.apiTokens.get(t.id))?.revokedAt).toBe(T0 + 5);
        expect((await store.apiTokens.list()).map((x) => x.id)).toEqual([t.id]);
        await expect(store.apiTokens.revoke(randomUUID(), T0)).rejects.toBeInstanceOf(NotFoundError);
        expect(await store.apiTokens.get(randomUUID())).toBeNull();
      });
    });

    describe('audit entries (atomic append)', () => {
      async function appendChain(n: number, from: AuditHead | null = null): Promise<AuditHead> {
        let head = from;
        const batch: AuditEntry[] = [];
        let prev = head?.hash ?? GENESIS;
        let seq = head?.seq ?? 0;
        for (let i = 0; i < n; i++) {
          const e = entry(++seq, prev);
          batch.push(e);
          prev = e.hash;
        }
        await store.audit.appendIfHead(head, batch);
        head = { seq, hash: prev };
        return head;
      }

      it('appends batches in order and reads them back by range', async () => {
        expect(await store.audit.head()).toBeNull();
        const h1 = await appendChain(3);
        const h2 = await appendChain(2, h1);
        expect(await store.audit.head()).toEqual(h2);
        const all = await store.audit.range(1, 100, 100);
        expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(all[3]?.prevHash).toBe(all[2]?.hash);
        expect((await store.audit.range(2, 3, 100)).map((e) => e.seq)).toEqual([2, 3]);
        expect((await store.audit.range(1, 100, 2)).map((e) => e.seq)).toEqual([1, 2]);
        expect(await store.audit.firstSeq()).toBe(1);
      });

      it('rejects an append against a stale head with Conflict and writes nothing', async () => {
        const h1 = await appendChain(2);
        await appendChain(1, h1);
        await expect(store.audit.appendIfHead(h1, [entry(3, h1.hash)])).rejects.toBeInstanceOf(ConflictError);
        await expect(store.audit.appendIfHead(null, [entry(1, GENESIS)])).rejects.toBeInstanceOf(ConflictError);
        expect((await store.audit.range(1, 100, 100)).length).toBe(3);
      });

      it('rejects a batch that does not continue the head (gap or wrong prevHash)', async () => {
        const h1 = await appendChain(1);
        await expect(store.audit.appendIfHead(h1, [entry(3, h1.hash)])).rejects.toBeInstanceOf(ConflictError);
        await expect(store.audit.appendIfHead(h1, [entry(2, 'f'.repeat(64))])).rejects.toBeInstanceOf(ConflictError);
        expect(await store.audit.head()).toEqual(h1);
      });

      it('is idempotent by event id: a duplicate event id is a Conflict and the batch is not written', async () => {
        const first = entry(1, GENESIS);
        await store.audit.appendIfHead(null, [first]);
        const head = { seq: 1, hash: first.hash };
        const dup = entry(2, first.hash, { eventId: first.eventId });
        await expect(store.audit.appendIfHead(head, [entry(2, first.hash, { hash: 'x'.repeat(64) }), { ...dup, seq: 3, prevHash: 'x'.repeat(64) }])).rejects.toBeInstanceOf(ConflictError);
        expect(await store.audit.head()).toEqual(head);
        expect((await store.audit.range(1, 10, 10)).length).toBe(1);
        expect(await store.audit.existingEventIds([first.eventId, randomUUID()])).toEqual(new Set([first.eventId]));
      });

      it('lets exactly one of 100 racing appenders on the same head win, across two handles', async () => {
        const h1 = await appendChain(1);
        const second = await h.openSecond();
        try {
          const results = await Promise.allSettled(
            Array.from({ length: 100 }, (_, i) =>
              (i % 2 ? second : store).audit.appendIfHead(h1, [entry(2, h1.hash, { hash: `w${i}`.padEnd(64, '0') })]),
            ),
          );
          expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          expect((await store.audit.range(1, 10, 10)).map((e) => e.seq)).toEqual([1, 2]);
        } finally {
          await second.close();
        }
      });

      it('queries with filters newest first and paginates with a cursor', async () => {
        const batch: AuditEntry[] = [];
        let prev = GENESIS;
        for (let i = 1; i <= 30; i++) {
          const e = entry(i, prev, {
            time: T0 + i * 1000,
            type: i % 3 === 0 ? 'device.register' : 'vpn.decision',
            deviceId: i % 2 ? 'dev-a' : 'dev-b',
            user: i % 2 ? 'alice' : 'bob',
            decision: i % 3 === 0 ? null : i % 5 === 0 ? 'deny' : 'allow',
            reason: i % 5 === 0 ? 'CERT_REVOKED' : 'OK',
            concentrator: 'ovpn-1',
          });
          batch.push(e);
          prev = e.hash;
        }
        await store.audit.appendIfHead(null, batch);
        const devA = await store.audit.query({ deviceId: 'dev-a' }, { limit: 100 });
        expect(devA.items.map((e) => e.seq)).toEqual(batch.filter((e) => e.deviceId === 'dev-a').map((e) => e.seq).reverse());
        const window = await store.audit.query({ fromTime: T0 + 10_000, toTime: T0 + 20_000 }, { limit: 100 });
        expect(window.items.map((e) => e.seq)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
        const denies = await store.audit.query({ decision: 'deny', reason: 'CERT_REVOKED', user: 'alice' }, { limit: 100 });
        expect(denies.items.map((e) => e.seq)).toEqual([25, 5]);
        expect((await store.audit.query({ type: 'device.register', concentrator: 'ovpn-1' }, { limit: 100 })).items).toHaveLength(10);
        const seen: number[] = [];
        let cursor: string | null = null;
        do {
          const page = await store.audit.query({}, { cursor, limit: 8 });
          seen.push(...page.items.map((e) => e.seq));
          cursor = page.nextCursor;
        } while (cursor);
        expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i));
        await expect(store.audit.query({}, { cursor: 'garbage!', limit: 5 })).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
      });

      it('deletes only a prefix and keeps appending after it', async () => {
        const h1 = await appendChain(10);
        expect(await store.audit.deletePrefix(4)).toBe(3);
        expect(await store.audit.firstSeq()).toBe(4);
        expect((await store.audit.range(1, 100, 100)).map((e) => e.seq)).toEqual([4, 5, 6, 7, 8, 9, 10]);
        const h2 = await appendChain(1, h1);
        expect(h2.seq).toBe(11);
        expect(await store.audit.head()).toEqual(h2);
      });
    });

    describe('events', () => {
      it('delivers a published message to subscribers, also on a second handle', async () => {
        const second = await h.openSecond();
        try {
          const got: string[] = [];
          const gotSecond: string[] = [];
          const un1 = await store.events.subscribe('revocations', (m) => got.push(m));
          const un2 = await second.events.subscribe('revocations', (m) => gotSecond.push(m));
          await store.events.publish('revocations', 'dev-1');
          const deadline = Date.now() + 2000;
          while ((got.length === 0 || (h.sharesEvents !== false && gotSecond.length === 0)) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 10));
          }
          expect(got).toEqual(['dev-1']);
          if (h.sharesEvents !== false) expect(gotSecond).toEqual(['dev-1']);
          await un1();
          await un2();
        } finally {
          await second.close();
        }
      });
    });

    describe('health', () => {
      it('answers ping while open and reports not ok after close', async () => {
        expect((await store.ping()).ok).toBe(true);
        const second = await h.openSecond();
        await second.close();
        expect((await second.ping()).ok).toBe(false);
      });
    });
  });
}
