import { createHash } from 'node:crypto';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';

const ek = (n: number): string => createHash('sha256').update(`ek-${n}`).digest('hex');

describe('device inventory API', () => {
  let t: TestApp;
  let admin: string;
  let auditor: string;
  let concentrator: string;

  beforeEach(async () => {
    t = await buildTestApp();
    admin = await bearer(t.services, 'it-admin');
    auditor = await bearer(t.services, 'auditor');
    concentrator = await bearer(t.services, 'concentrator');
  });
  afterEach(async () => t.cleanup());

  const register = (body: Record<string, unknown>, auth = admin) =>
    request(t.app).post('/v1/devices').set('Authorization', auth).send(body);

  it('registers a device, reads it back and audits who did it', async () => {
    const res = await register({ serial_number: 'PF-1', platform: 'windows', owner: 'erika', department: 'Ordnungsamt', ek_public_sha256: ek(1).toUpperCase() }).expect(201);
    expect(res.body).toMatchObject({ serial_number: 'PF-1', status: 'registered', enrolled: false, tpm: { ek_public_sha256: ek(1) } });
    expect(res.headers.location).toBe(`/v1/devices/${res.body.id}`);
    const got = await request(t.app).get(`/v1/devices/${res.body.id}`).set('Authorization', auditor).expect(200);
    expect(got.body).toEqual(res.body);
    await t.services.audit.log.flush();
    const events = await t.store.audit.query({ type: 'device.register' }, { limit: 10 });
    expect(events.items).toHaveLength(1);
    expect(JSON.parse(events.items[0]!.body).actor).toMatchObject({ kind: 'token', role: 'it-admin' });
  });

  it('rejects an unreadable EK certificate with 400 INVALID_EK_CERTIFICATE', async () => {
    const bad = await register({ serial_number: 'PF-2', platform: 'linux', ek_certificate_pem: 'not a cert' }).expect(400);
    expect(bad.body.error.code).toBe('INVALID_EK_CERTIFICATE');
  });

  it('rejects a duplicate serial number or EK with 409 DEVICE_EXISTS', async () => {
    await register({ serial_number: 'PF-3', platform: 'windows', ek_public_sha256: ek(3) }).expect(201);
    expect((await register({ serial_number: 'PF-3', platform: 'linux' }).expect(409)).body.error.code).toBe('DEVICE_EXISTS');
    expect((await register({ serial_number: 'PF-4', platform: 'linux', ek_public_sha256: ek(3) }).expect(409)).body.error.code).toBe('DEVICE_EXISTS');
  });

  it('rejects invalid device data with 400 and the list of problems', async () => {
    const res = await register({ serial_number: '', platform: 'amiga', ek_public_sha256: 'xyz', extra: 1 }).expect(400);
    expect(res.body.error.code).toBe('INVALID_DEVICE');
    expect(res.body.error.details.problems.join('\n')).toMatch(/serial_number/);
    expect(res.body.error.details.problems.join('\n')).toMatch(/platform/);
    expect(res.body.error.details.problems.join('\n')).toMatch(/ek_public_sha256/);
  });

  it('lists with filters and cursor pagination', async () => {
    for (let i = 0; i < 12; i++) {
      t.clock.advance(1);
      await register({ serial_number: `L-${i}`, platform: i % 3 === 0 ? 'linux' : 'windows', department: i % 2 ? 'A' : 'B' }).expect(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(t.app)
        .get('/v1/devices')
        .query({ limit: 5, ...(cursor ? { cursor } : {}) })
        .set('Authorization', admin)
        .expect(200);
      seen.push(...res.body.items.map((d: { serial_number: string }) => d.serial_number));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `L-${i}`));
    const linux = await request(t.app).get('/v1/devices?platform=linux&department=B').set('Authorization', admin).expect(200);
    expect(linux.body.items.map((d: { serial_number: string }) => d.serial_number)).toEqual(['L-0', 'L-6']);
    expect((await request(t.app).get('/v1/devices?q=l-1').set('Authorization', admin)).body.items).toHaveLength(3);
  });

  it('rejects bad query parameters with 400 codes (huge limit, malformed cursor, unknown status)', async () => {
    expect((await request(t.app).get('/v1/devices?limit=100000').set('Authorization', admin).expect(400)).body.error.code).toBe('INVALID_LIMIT');
    expect((await request(t.app).get('/v1/devices?cursor=%%%').set('Authorization', admin).expect(400)).body.error.code).toBe('INVALID_CURSOR');
    expect((await request(t.app).get('/v1/devices?status=happy').set('Authorization', admin).expect(400)).body.error.code).toBe('INVALID_QUERY');
    expect((await request(t.app).get('/v1/devices?status=a&status=b').set('Authorization', admin).expect(400)).body.error.code).toBe('INVALID_QUERY');
    expect((await request(t.app).get('/v1/devices/not-a-uuid').set('Authorization', admin).expect(400)).body.error.code).toBe('INVALID_DEVICE_ID');
    expect((await request(t.app).get('/v1/devices/00000000-0000-4000-8000-000000000000').set('Authorization', admin).expect(404)).body.error.code).toBe('DEVICE_NOT_FOUND');
  });

  it('suspends, revokes and retires along the allowed transitions only', async () => {
    const { body: d } = await register({ serial_number: 'S-1', platform: 'windows' }).expect(201);
    const status = (s: string, reason?: string) =>
      request(t.app).post(`/v1/devices/${d.id}/status`).set('Authorization', admin).send({ status: s, reason });
    expect((await status('suspended', 'laptop left in train').expect(200)).body).toMatchObject({ status: 'suspended', status_reason: 'laptop left in train' });
    // Never enrolled: resuming to active would skip attestation.
    expect((await status('active').expect(409)).body.error.code).toBe('DEVICE_NOT_ENROLLED');
    await status('registered').expect(200);
    await status('revoked', 'stolen').expect(200);
    expect((await status('active').expect(409)).body.error.code).toBe('INVALID_TRANSITION');
    const retired = await request(t.app).delete(`/v1/devices/${d.id}`).set('Authorization', admin).expect(200);
    expect(retired.body.status).toBe('retired');
    expect((await status('registered').expect(409)).body.error.code).toBe('INVALID_TRANSITION');
    await t.services.audit.log.flush();
    const changes = await t.store.audit.query({ type: 'device.status_change', deviceId: d.id }, { limit: 10 });
    expect(changes.items).toHaveLength(4);
  });

  it('publishes a status change so caches and live sessions can react', async () => {
    const { body: d } = await register({ serial_number: 'E-1', platform: 'windows' }).expect(201);
    const got: string[] = [];
    await t.store.events.subscribe('device-status', (m) => got.push(m));
    await request(t.app).post(`/v1/devices/${d.id}/status`).set('Authorization', admin).send({ status: 'suspended' }).expect(200);
    await new Promise((r) => setTimeout(r, 20));
    expect(got.map((m) => JSON.parse(m))).toEqual([{ device_id: d.id, status: 'suspended' }]);
  });

  it('updates inventory data with optimistic concurrency', async () => {
    const { body: d } = await register({ serial_number: 'U-1', platform: 'windows' }).expect(201);
    const res = await request(t.app).patch(`/v1/devices/${d.id}`).set('Authorization', admin).send({ owner: 'max', department: 'Bauamt' }).expect(200);
    expect(res.body).toMatchObject({ owner: 'max', department: 'Bauamt', version: 2 });
    expect((await request(t.app).patch(`/v1/devices/${d.id}`).set('Authorization', admin).send({ status: 'active' }).expect(400)).body.error.code).toBe('INVALID_DEVICE');
  });

  it('creates a one-time enrollment token: shown once, stored only as a hash, default TTL 1 h', async () => {
    const { body: d } = await register({ serial_number: 'T-1', platform: 'windows' }).expect(201);
    const res = await request(t.app).post(`/v1/devices/${d.id}/enrollment-tokens`).set('Authorization', admin).send({}).expect(201);
    expect(res.body.token).toMatch(/^et_[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(res.body.expires_at) - t.clock.nowMs()).toBe(3_600_000);
    const { createHash: h } = await import('node:crypto');
    const stored = await t.store.enrollmentTokens.get(h('sha256').update(res.body.token).digest('hex'));
    expect(stored).toMatchObject({ deviceId: d.id, spentAt: null });
    expect(JSON.stringify(stored)).not.toContain(res.body.token);
    const short = await request(t.app).post(`/v1/devices/${d.id}/enrollment-tokens`).set('Authorization', admin).send({ ttl_seconds: 5 }).expect(400);
    expect(short.body.error.code).toBe('INVALID_TTL');
  });

  it('refuses enrollment tokens for revoked or retired devices', async () => {
    const { body: d } = await register({ serial_number: 'T-2', platform: 'windows' }).expect(201);
    await request(t.app).post(`/v1/devices/${d.id}/status`).set('Authorization', admin).send({ status: 'revoked' }).expect(200);
    const res = await request(t.app).post(`/v1/devices/${d.id}/enrollment-tokens`).set('Authorization', admin).send({}).expect(409);
    expect(res.body.error.code).toBe('DEVICE_NOT_ENROLLABLE');
  });

  describe('access control', () => {
    it('denies writes to auditors and concentrators (403) and everything to anonymous callers (401)', async () => {
      expect((await register({ serial_number: 'X', platform: 'linux' }, auditor).expect(403)).body.error.code).toBe('FORBIDDEN');
      await register({ serial_number: 'X', platform: 'linux' }, concentrator).expect(403);
      await request(t.app).post('/v1/devices').send({ serial_number: 'X', platform: 'linux' }).expect(401);
      await request(t.app).get('/v1/devices').expect(401);
      await request(t.app).get('/v1/devices').set('Authorization', concentrator).expect(403);
      await request(t.app).get('/v1/devices').set('Authorization', auditor).expect(200);
    });

    it('rejects a forged token (right format, wrong secret) and a revoked token', async () => {
      const forged = admin.replace(/_[A-Za-z0-9_-]{43}$/, `_${'A'.repeat(43)}`);
      await request(t.app).get('/v1/devices').set('Authorization', forged).expect(401);
      const [, id] = /dg_([0-9a-f]{32})_/.exec(admin)!;
      const { cliPrincipal } = await import('../../../src/services/actors');
      await t.services.apiTokens.revoke(id!, cliPrincipal());
      await request(t.app).get('/v1/devices').set('Authorization', admin).expect(401);
    });
  });
});
