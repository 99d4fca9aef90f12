import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { verifyExportFile } from '../../../src/audit/verify';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';

describe('auditor API (/v1/audit/*)', () => {
  let t: TestApp;
  let auditor: string;
  let admin: string;
  let concentrator: string;

  beforeAll(async () => {
    t = await buildTestApp();
    auditor = await bearer(t.services, 'auditor');
    admin = await bearer(t.services, 'it-admin');
    concentrator = await bearer(t.services, 'concentrator');
    // Some realistic admin history: register devices and change a status (each action is audited).
    for (let i = 0; i < 12; i++) {
      t.clock.advance(1000);
      const r = await request(t.app).post('/v1/devices').set('Authorization', admin).send({ serial_number: `AUD-${i}`, platform: 'windows', owner: `user${i % 3}` }).expect(201);
      if (i % 4 === 0) await request(t.app).post(`/v1/devices/${r.body.id}/status`).set('Authorization', admin).send({ status: 'suspended', reason: 'test' }).expect(200);
    }
    await t.services.audit.log.flush();
  });
  afterAll(async () => t.cleanup());

  it('lets auditors search with filters and cursor pagination, newest first', async () => {
    const all: number[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(t.app)
        .get('/v1/audit/events')
        .query({ type: 'device.register', limit: 5, ...(cursor ? { cursor } : {}) })
        .set('Authorization', auditor)
        .expect(200);
      all.push(...res.body.items.map((e: { seq: number }) => e.seq));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(all).toHaveLength(12);
    expect([...all].sort((a, b) => b - a)).toEqual(all);
    const changes = await request(t.app).get('/v1/audit/events?type=device.status_change').set('Authorization', auditor).expect(200);
    expect(changes.body.items).toHaveLength(3);
  });

  it.each([
    ['an unknown event type', { type: 'device.explode' }],
    ['a huge limit', { limit: '1000000' }],
    ['a malformed time', { from: 'yesterday' }],
    ['an inverted time range', { from: '2026-11-27', to: '2026-11-26' }],
    ['an unknown parameter', { sort: 'asc' }],
    ['a malformed reason code', { reason: 'drop table' }],
  ])('rejects %s with 400 AUDIT_QUERY_INVALID', async (_label, query) => {
    const res = await request(t.app).get('/v1/audit/events').query(query).set('Authorization', auditor).expect(400);
    expect(res.body.error.code).toBe('AUDIT_QUERY_INVALID');
  });

  it('rejects a malformed cursor and a repeated parameter with 400', async () => {
    expect((await request(t.app).get('/v1/audit/events?cursor=%21%21').set('Authorization', auditor).expect(400)).body.error.code).toBe('INVALID_CURSOR');
    await request(t.app).get('/v1/audit/events?type=vpn.decision&type=cert.issue').set('Authorization', auditor).expect(400);
  });

  it('refuses it-admin (403, separation of duties), concentrators (403) and anonymous callers (401)', async () => {
    expect((await request(t.app).get('/v1/audit/events').set('Authorization', admin).expect(403)).body.error.code).toBe('FORBIDDEN');
    await request(t.app).get('/v1/audit/export').set('Authorization', admin).expect(403);
    await request(t.app).get('/v1/audit/verify').set('Authorization', concentrator).expect(403);
    await request(t.app).get('/v1/audit/events').expect(401);
  });

  it('offers no way to modify or delete entries through any API', async () => {
    for (const method of ['delete', 'patch', 'put', 'post'] as const) {
      await request(t.app)[method]('/v1/audit/events').set('Authorization', auditor).send({}).expect(404);
      await request(t.app)[method]('/v1/audit/events/1').set('Authorization', auditor).send({}).expect(404);
    }
    const mutating = t.app.routes.routes.filter((r) => r.path.startsWith('/v1/audit') && r.method !== 'get');
    expect(mutating).toEqual([]);
  });

  it('streams an NDJSON export (chunked, no Content-Length) that verifies offline with the public key', async () => {
    const res = await request(t.app).get('/v1/audit/export?format=ndjson').set('Authorization', auditor).buffer(true).parse((r, cb) => {
      let s = '';
      r.on('data', (c: Buffer) => (s += c.toString()));
      r.on('end', () => cb(null, s));
    }).expect(200);
    expect(res.headers['content-type']).toMatch(/application\/x-ndjson/);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const file = path.join(t.dataDir, 'export.ndjson');
    writeFileSync(file, res.body as string);
    const pub = (await request(t.app).get('/v1/audit/public-key').set('Authorization', auditor).expect(200)).text;
    const result = await verifyExportFile(file, pub);
    expect(result.ok).toBe(true);
    // A cut-off download is caught (no trailer).
    const lines = (res.body as string).trimEnd().split('\n');
    writeFileSync(file, `${lines.slice(0, -3).join('\n')}\n`);
    const cut = await verifyExportFile(file, pub);
    expect(cut.ok).toBe(false);
  });

  it('exports CSV of a filtered query with one row per entry', async () => {
    const res = await request(t.app).get('/v1/audit/export?format=csv&type=device.status_change').set('Authorization', auditor).expect(200);
    expect(res.headers['content-type']).toMatch(/text\/csv/);
    const rows = res.text.trim().split('\n').filter((l) => l.split(',')[2] === 'device.status_change');
    expect(rows).toHaveLength(3);
    await t.services.audit.log.flush();
    const exports = await t.store.audit.query({ type: 'audit.export' }, { limit: 10 });
    expect(exports.items.length).toBeGreaterThanOrEqual(1);
  });

  it('verifies the chain, and after an entry is altered in the database reports the first broken seq and why', async () => {
    const ok = await request(t.app).get('/v1/audit/verify').set('Authorization', auditor).expect(200);
    expect(ok.body).toMatchObject({ ok: true });
    expect(ok.body.checked).toBeGreaterThan(10);
    // An administrator with file access edits a stored entry behind devicegate's back.
    const db = new Database(t.config.sqlitePath);
    const victim = db.prepare("SELECT seq, body FROM audit_entries WHERE type = 'device.status_change' ORDER BY seq LIMIT 1").get() as { seq: number; body: string };
    db.prepare('UPDATE audit_entries SET body = ? WHERE seq = ?').run(victim.body.replace('"reason":"test"', '"reason":"nothing to see"'), victim.seq);
    db.close();
    const broken = await request(t.app).get('/v1/audit/verify').set('Authorization', auditor).expect(200);
    expect(broken.body).toMatchObject({ ok: false, broken_seq: victim.seq });
    expect(typeof broken.body.code).toBe('string');
    expect((await request(t.app).get('/v1/audit/verify?from=5&to=2').set('Authorization', auditor).expect(400)).body.error.code).toBe('AUDIT_QUERY_INVALID');
  });
});

describe('auditor API with audit.itAdminMayReadRawLogs', () => {
  it('lets it-admin read (but still not modify) when configured', async () => {
    const t = await buildTestApp({ env: { DEVICEGATE_AUDIT__IT_ADMIN_MAY_READ_RAW_LOGS: 'true' } });
    try {
      const admin = await bearer(t.services, 'it-admin');
      await request(t.app).get('/v1/audit/events').set('Authorization', admin).expect(200);
    } finally {
      await t.cleanup();
    }
  });
});
