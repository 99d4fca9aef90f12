/**
 * Admin and auditor actions through the console, signed in over SAML: every change is audited with the signed-in
 * user as actor, every state-changing form needs the session's CSRF token, and the auditor's search, export and
 * verification work on the real audit log.
 */
import request from 'supertest';
import { parseCsv } from '../../../src/lib/csv';
import { hashEnrollmentToken } from '../../../src/services/registry';
import { bearer } from '../../helpers/tokens';
import { buildSamlApp, signIn, USERS, type SamlApp, type SignedIn } from './support';

const EK = 'ab'.repeat(32);

describe('console actions (real app, SAML sessions)', () => {
  let t: SamlApp;
  let it_: SignedIn;
  let auditor: SignedIn;
  let viewer: SignedIn;

  beforeAll(async () => {
    t = await buildSamlApp();
    it_ = await signIn(t, USERS['it-admin']);
    auditor = await signIn(t, USERS.auditor);
    viewer = await signIn(t, USERS.viewer);
  }, 60_000);

  afterAll(async () => {
    await t?.cleanup();
  });

  const post = (path: string, s: SignedIn | null, form: Record<string, string>) => {
    let r = request(t.app).post(path).type('form');
    if (s) r = r.set('Cookie', s.cookie);
    return r.send(form);
  };
  const entries = async (type: string) => {
    await t.services.audit.log.flush();
    return (await t.store.audit.query({ type }, { limit: 200 })).items.map((e) => JSON.parse(e.body) as { actor?: unknown; data: Record<string, unknown> });
  };
  const register = async (serial: string, extra: Record<string, string> = {}): Promise<string> => {
    const res = await post('/console/devices', it_, { _csrf: it_.csrf, serial_number: serial, platform: 'windows', ...extra }).expect(303);
    const m = /^\/console\/devices\/([0-9a-f-]{36})\?done=created$/.exec(res.headers.location as string);
    if (!m) throw new Error(`unexpected redirect ${res.headers.location as string}`);
    return m[1] as string;
  };
  const actorIt = { kind: 'user', id: USERS['it-admin'].nameId, roles: ['it-admin'] };

  describe('IT administration', () => {
    it('registers a device through the form and audits it with the signed-in user as actor', async () => {
      const id = await register('CON-0001', { owner: 'mueller.k', department: 'Bürgeramt', ek_public_sha256: EK.toUpperCase() });
      const detail = await request(t.app).get(`/console/devices/${id}?done=created`).set('Cookie', it_.cookie).expect(200);
      expect(detail.text).toContain('Das Gerät wurde registriert.');
      expect(detail.text).toContain('CON-0001');
      expect(detail.text).toContain(`<code>${EK}</code>`);
      expect(detail.text).toContain('Bürgeramt');
      const audit = await entries('device.register');
      expect(audit).toContainEqual(expect.objectContaining({ actor: actorIt, data: expect.objectContaining({ deviceId: id, serialNumber: 'CON-0001' }) }));
    });

    it('re-shows the form with the problems when the input is invalid, and writes nothing', async () => {
      const res = await post('/console/devices', it_, { _csrf: it_.csrf, serial_number: 'CON-BAD', platform: 'amiga', ek_public_sha256: 'xyz' }).expect(400);
      expect(res.text).toContain('role="alert"');
      expect(res.text).toMatch(/platform: /);
      expect(res.text).toMatch(/ek_public_sha256: /);
      expect(res.text).toContain('value="CON-BAD"');
      expect(await t.store.devices.findBySerial('CON-BAD')).toBeNull();
    });

    it('refuses a duplicate serial with a conflict message', async () => {
      await register('CON-DUP');
      const res = await post('/console/devices', it_, { _csrf: it_.csrf, serial_number: 'CON-DUP', platform: 'linux' }).expect(409);
      expect(res.text).toContain('bereits registriert');
    });

    it('creates a one-time enrollment token, shows it once with the agent command, and audits it', async () => {
      const id = await register('CON-TOKEN');
      const res = await post(`/console/devices/${id}/enrollment-token`, it_, { _csrf: it_.csrf, ttl_seconds: '3600' }).expect(200);
      const token = /id="token-value" value="(et_[A-Za-z0-9_-]+)"/.exec(res.text)?.[1];
      expect(token).toBeDefined();
      expect(res.text).toContain(`value="devicegate-agent enroll --server ${t.publicUrl} --device-id ${id} --token ${token as string}"`);
      expect(res.headers['cache-control']).toBe('no-store');
      const stored = await t.store.enrollmentTokens.get(hashEnrollmentToken(token as string));
      expect(stored).toMatchObject({ deviceId: id, spentAt: null, createdBy: USERS['it-admin'].nameId });
      const audit = await entries('enroll_token.create');
      expect(audit).toContainEqual(expect.objectContaining({ actor: actorIt, data: expect.objectContaining({ deviceId: id }) }));
      // The device page never shows the token again.
      const detail = await request(t.app).get(`/console/devices/${id}`).set('Cookie', it_.cookie).expect(200);
      expect(detail.text).not.toContain(token as string);
    });

    it('asks for confirmation and a reason before suspending, then suspends and audits with the reason', async () => {
      const id = await register('CON-SUSP');
      const confirm = await request(t.app).get(`/console/devices/${id}/status?to=suspended`).set('Cookie', it_.cookie).expect(200);
      expect(confirm.text).toContain('name="confirm"');
      expect(confirm.text).toContain('<textarea id="reason" name="reason"');

      const unconfirmed = await post(`/console/devices/${id}/status`, it_, { _csrf: it_.csrf, to: 'suspended', reason: 'verloren' }).expect(400);
      expect(unconfirmed.text).toContain('Bitte bestätigen Sie die Änderung.');
      const noReason = await post(`/console/devices/${id}/status`, it_, { _csrf: it_.csrf, to: 'suspended', confirm: 'yes' }).expect(400);
      expect(noReason.text).toContain('Bitte geben Sie eine Begründung an.');
      expect((await t.services.registry.get(id)).status).toBe('registered');

      const done = await post(`/console/devices/${id}/status`, it_, { _csrf: it_.csrf, to: 'suspended', reason: 'verloren', confirm: 'yes' }).expect(303);
      expect(done.headers.location).toBe(`/console/devices/${id}?done=status`);
      const device = await t.services.registry.get(id);
      expect(device.status).toBe('suspended');
      expect(device.statusReason).toBe('verloren');
      const audit = await entries('device.status_change');
      expect(audit).toContainEqual(expect.objectContaining({ actor: actorIt, data: { deviceId: id, from: 'registered', to: 'suspended', reason: 'verloren' } }));
    });

    it('revokes a device after confirmation (final: no further actions but retire)', async () => {
      const id = await register('CON-REVOKE');
      await post(`/console/devices/${id}/status`, it_, { _csrf: it_.csrf, to: 'revoked', reason: 'gestohlen', confirm: 'yes' }).expect(303);
      expect((await t.services.registry.get(id)).status).toBe('revoked');
      const detail = await request(t.app).get(`/console/devices/${id}`).set('Cookie', it_.cookie).expect(200);
      expect(detail.text).toContain('status?to=retired');
      expect(detail.text).not.toContain('status?to=suspended');
      await request(t.app).get(`/console/devices/${id}/status?to=active`).set('Cookie', it_.cookie).expect(409);
    });

    it('imports CSV: a dry run shows a per-row result table and writes nothing; apply writes and audits', async () => {
      const csv = 'serial_number,platform,owner\nIMP-1,linux,a.b\nIMP-2,plan9,c.d\nIMP-1,linux,dup\n';
      const dry = await post('/console/devices/import', it_, { _csrf: it_.csrf, csv, mode: 'dry-run' }).expect(200);
      expect(dry.text).toContain('Probelauf: Es wurde nichts geschrieben.');
      expect((dry.text.match(/<tr data-action="create">/g) ?? []).length).toBe(1);
      expect((dry.text.match(/<tr data-action="rejected">/g) ?? []).length).toBe(2);
      expect(dry.text).toContain('serial_number repeats line 2');
      expect(await t.store.devices.findBySerial('IMP-1')).toBeNull();

      const refused = await post('/console/devices/import', it_, { _csrf: it_.csrf, csv, mode: 'apply' }).expect(400);
      expect(refused.text).toContain('Nichts wurde geschrieben, weil Zeilen abgelehnt wurden.');
      expect(refused.text).toContain('<tr data-action="rejected">');
      expect(await t.store.devices.findBySerial('IMP-1')).toBeNull();

      const good = 'serial_number,platform\r\nIMP-3,linux\r\nIMP-4,macos\r\n';
      const applied = await post('/console/devices/import', it_, { _csrf: it_.csrf, csv: good, mode: 'apply' }).expect(200);
      expect(applied.text).toContain('Übernommen');
      expect(await t.store.devices.findBySerial('IMP-4')).not.toBeNull();
      const audit = await entries('device.import');
      expect(audit).toContainEqual(expect.objectContaining({ actor: actorIt, data: expect.objectContaining({ rows: 2, created: 2 }) }));
    });

    it('shows a bad CSV header as an error with the problem, not a crash', async () => {
      const res = await post('/console/devices/import', it_, { _csrf: it_.csrf, csv: 'serial,colour\nX,red\n', mode: 'dry-run' }).expect(400);
      expect(res.text).toContain('Die Kopfzeile der CSV-Datei ist ungültig.');
      expect(res.text).toContain('unknown: serial, colour');
    });

    it('shows certificates with serial, validity and revocation state, and the latest connection decisions', async () => {
      const id = await register('CON-CERTS');
      const now = t.clock.nowMs();
      const cert = (serialHex: string, notBefore: number, notAfter: number) => ({
        serialHex,
        deviceId: id,
        sha256: serialHex.padEnd(64, '0'),
        notBefore,
        notAfter,
        pem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
        issuedAt: notBefore,
        issuedVia: 'enroll',
      });
      await t.store.certificates.put(cert('0a01', now - 3600_000, now + 86_400_000));
      await t.store.certificates.put(cert('0a02', now - 10 * 86_400_000, now - 86_400_000));
      await t.store.certificates.put(cert('0a03', now - 3600_000, now + 86_400_000));
      await t.store.revocations.revoke({ serialHex: '0a03', deviceId: id, reason: 'keyCompromise', revokedAt: now, revokedBy: 'test' });
      for (const decision of ['allow', 'deny'] as const) {
        await t.services.audit.log.append({
          type: 'vpn.decision',
          data: {
            requestId: `r-${decision}`,
            decisionId: `d-${decision}`,
            event: 'connect',
            decision,
            reason: decision === 'allow' ? 'OK' : 'CERT_REVOKED',
            deviceId: id,
            user: 'mueller.k',
            peer: { ip: '203.0.113.7' },
            concentrator: { id: 'ovpn-gw-01', kind: 'openvpn' },
            latencyMs: 3,
          },
        });
      }
      await t.services.audit.log.flush();
      const res = await request(t.app).get(`/console/devices/${id}`).set('Cookie', it_.cookie).expect(200);
      const row = (serial: string) => new RegExp(`<tr><td><code>${serial}</code></td>.*?</tr>`).exec(res.text)?.[0] ?? '';
      expect(row('0a01')).toContain('class="state-valid">Gültig');
      expect(row('0a02')).toContain('class="state-expired">Abgelaufen');
      expect(row('0a03')).toContain('Widerrufen am');
      expect(row('0a03')).toContain('keyCompromise');
      expect(res.text).toContain('<code>CERT_REVOKED</code>');
      expect(res.text).toContain('ovpn-gw-01');
      expect(res.text).toContain('class="decision-deny">Abgelehnt');
      // IT sees the outcome of decisions, not the personal data in them.
      expect(res.text).not.toContain('mueller.k');
      expect(res.text).not.toContain('203.0.113.7');
    });

    it('filters the device list by status and platform and searches, with pagination links', async () => {
      for (let i = 0; i < 27; i++) await t.services.registry.register({ serial_number: `PAGE-${String(i).padStart(2, '0')}`, platform: 'android' }, { kind: 'api-token', id: 'x', name: 'seed', roles: ['it-admin'] });
      const first = await request(t.app).get('/console/devices?platform=android&status=registered&q=PAGE-').set('Cookie', it_.cookie).expect(200);
      expect((first.text.match(/PAGE-\d\d/g) ?? []).length).toBe(25);
      const next = /href="(\/console\/devices\?[^"]*cursor=[^"]+)" rel="next"/.exec(first.text)?.[1];
      expect(next).toBeDefined();
      const second = await request(t.app).get((next as string).replace(/&amp;/g, '&')).set('Cookie', it_.cookie).expect(200);
      expect((second.text.match(/PAGE-\d\d/g) ?? []).length).toBe(2);
      const none = await request(t.app).get('/console/devices?platform=ios&q=PAGE-').set('Cookie', it_.cookie).expect(200);
      expect(none.text).toContain('Keine Geräte gefunden.');
      await request(t.app).get('/console/devices?status=lost').set('Cookie', it_.cookie).expect(400);
    });
  });

  describe('CSRF: every state-changing form needs the session token', () => {
    it('refuses a registration without the CSRF token (cross-site form post) and writes nothing', async () => {
      const res = await post('/console/devices', it_, { serial_number: 'CSRF-1', platform: 'linux' }).expect(403);
      expect(res.text).toContain('CSRF_TOKEN_INVALID');
      expect(await t.store.devices.findBySerial('CSRF-1')).toBeNull();
    });

    it("refuses another session's CSRF token (token not bound to this session)", async () => {
      const other = await signIn(t, USERS['it-admin']);
      await post('/console/devices', it_, { _csrf: other.csrf, serial_number: 'CSRF-2', platform: 'linux' }).expect(403);
      expect(await t.store.devices.findBySerial('CSRF-2')).toBeNull();
    });

    it('refuses a form posted from a foreign Origin even with a valid token', async () => {
      const res = await request(t.app)
        .post('/console/devices')
        .set('Cookie', it_.cookie)
        .set('Origin', 'https://evil.example')
        .type('form')
        .send({ _csrf: it_.csrf, serial_number: 'CSRF-3', platform: 'linux' })
        .expect(403);
      expect(res.text).toContain('CSRF_ORIGIN_MISMATCH');
      expect(await t.store.devices.findBySerial('CSRF-3')).toBeNull();
    });

    it('refuses status changes, tokens, imports and verification runs without the token', async () => {
      const id = await register('CSRF-4');
      await post(`/console/devices/${id}/status`, it_, { to: 'revoked', reason: 'x', confirm: 'yes' }).expect(403);
      await post(`/console/devices/${id}/enrollment-token`, it_, {}).expect(403);
      await post('/console/devices/import', it_, { csv: 'serial_number,platform\nCSRF-5,linux\n', mode: 'apply' }).expect(403);
      await post('/console/audit/verify', auditor, {}).expect(403);
      expect((await t.services.registry.get(id)).status).toBe('registered');
      expect(await t.store.devices.findBySerial('CSRF-5')).toBeNull();
    });

    it('refuses an API write made with the browser session unless it carries X-CSRF-Token', async () => {
      await request(t.app).post('/v1/devices').set('Cookie', it_.cookie).send({ serial_number: 'CSRF-API', platform: 'linux' }).expect(403);
      expect(await t.store.devices.findBySerial('CSRF-API')).toBeNull();
      const ok = await request(t.app)
        .post('/v1/devices')
        .set('Cookie', it_.cookie)
        .set('X-CSRF-Token', it_.csrf)
        .send({ serial_number: 'CSRF-API', platform: 'linux' })
        .expect(201);
      const audit = await entries('device.register');
      expect(audit).toContainEqual(expect.objectContaining({ actor: actorIt, data: expect.objectContaining({ deviceId: ok.body.id }) }));
    });

    it('does not ask API-token callers for a CSRF token (a bearer header is never sent by a browser on its own)', async () => {
      const res = await request(t.app)
        .post('/console/devices')
        .set('Authorization', await bearer(t.services, 'it-admin'))
        .type('form')
        .send({ serial_number: 'TOKEN-FORM', platform: 'linux' })
        .expect(303);
      expect(res.headers.location).toMatch(/^\/console\/devices\//);
    });

    it('refuses a viewer who posts a valid token to an IT form (role check before anything else)', async () => {
      await post('/console/devices', viewer, { _csrf: viewer.csrf, serial_number: 'VIEWER-1', platform: 'linux' }).expect(403);
      expect(await t.store.devices.findBySerial('VIEWER-1')).toBeNull();
    });
  });

  describe('auditor', () => {
    it('searches events with filters and pages through them', async () => {
      const res = await request(t.app)
        .get('/console/audit')
        .query({ type: 'device.register', limit: '5' })
        .set('Cookie', auditor.cookie)
        .expect(200);
      const seqs = (text: string) => [...text.matchAll(/<tr data-seq="(\d+)">/g)].map((m) => Number(m[1]));
      expect(seqs(res.text)).toHaveLength(5);
      expect(res.text.match(/<td><code>device\.register<\/code><\/td>/g)).toHaveLength(5);
      const next = /href="(\/console\/audit\?[^"]*cursor=[^"]+)" rel="next"/.exec(res.text)?.[1];
      expect(next).toBeDefined();
      const page2 = await request(t.app).get((next as string).replace(/&amp;/g, '&')).set('Cookie', auditor.cookie).expect(200);
      expect(seqs(page2.text)).toHaveLength(5);
      // Newest first, and the second page continues where the first ended.
      expect(Math.max(...seqs(page2.text))).toBeLessThan(Math.min(...seqs(res.text)));
      expect(page2.text.match(/<td><code>device\.register<\/code><\/td>/g)).toHaveLength(5);
      const mine = await request(t.app)
        .get('/console/audit')
        .query({ user: USERS['it-admin'].nameId, type: 'device.status_change' })
        .set('Cookie', auditor.cookie)
        .expect(200);
      expect(seqs(mine.text).length).toBeGreaterThanOrEqual(2);
      expect(mine.text).toContain(`user:${USERS['it-admin'].nameId}`);
      const from = new Date(t.clock.nowMs() + 3600_000).toISOString().slice(0, 16);
      const future = await request(t.app).get('/console/audit').query({ from }).set('Cookie', auditor.cookie).expect(200);
      expect(future.text).toContain('Keine Einträge gefunden.');
    });

    it('shows invalid filters as an error on the page (400), not a crash', async () => {
      const res = await request(t.app).get('/console/audit').query({ from: 'gestern', decision: 'vielleicht' }).set('Cookie', auditor.cookie).expect(400);
      expect(res.text).toContain('Die Suchangaben sind ungültig.');
      expect(res.text).toMatch(/from: /);
    });

    it('exports the filtered query as CSV with a signed trailer, and audits the export', async () => {
      const res = await request(t.app)
        .get('/console/audit/export')
        .query({ format: 'csv', type: 'device.status_change' })
        .set('Cookie', auditor.cookie)
        .buffer(true)
        .parse((r, cb) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (d: string) => (text += d));
          r.on('end', () => cb(null, text));
        })
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename="devicegate-audit-.*\.csv"$/);
      const rows = parseCsv(res.body as string).map((r) => r.fields);
      expect(rows[0]?.slice(0, 5)).toEqual(['seq', 'time', 'type', 'event_id', 'actor']);
      const data = rows.slice(1, -1);
      expect(data.length).toBeGreaterThanOrEqual(2);
      for (const r of data) {
        expect(r[2]).toBe('device.status_change');
        expect(r[4]).toBe(`user:${USERS['it-admin'].nameId}`);
      }
      expect(rows[rows.length - 1]?.[2]).toBe('audit.export.trailer');
      const exports = await entries('audit.export');
      expect(exports).toContainEqual(
        expect.objectContaining({
          actor: { kind: 'user', id: USERS.auditor.nameId, roles: ['auditor'] },
          data: expect.objectContaining({ format: 'csv', mode: 'query', rows: data.length }),
        }),
      );
    });

    it('exports NDJSON whose entry lines hash to the recorded hashes', async () => {
      const res = await request(t.app).get('/console/audit/export').query({ format: 'ndjson', type: 'device.register' }).set('Cookie', auditor.cookie).expect(200);
      const lines = (res.text).trim().split('\n');
      expect(JSON.parse(lines[0] as string)).toEqual({ export: { format: 'ndjson', mode: 'query', v: 1 } });
      const { createHash } = await import('node:crypto');
      for (const line of lines.slice(1, -1)) {
        const m = /^\{"hash":"([0-9a-f]{64})","entry":(.*)\}$/.exec(line);
        expect(m).not.toBeNull();
        expect(createHash('sha256').update((m as RegExpExecArray)[2] as string).digest('hex')).toBe((m as RegExpExecArray)[1]);
      }
      expect(JSON.parse(lines[lines.length - 1] as string)).toHaveProperty('signature');
    });

    it('verifies the chain on request, shows the latest signed checkpoint and records the run', async () => {
      await t.services.audit.log.flush();
      const before = await request(t.app).get('/console/audit/verify').set('Cookie', auditor.cookie).expect(200);
      expect(before.text).toContain('-----BEGIN PUBLIC KEY-----');
      const run = await post('/console/audit/verify', auditor, { _csrf: auditor.csrf }).expect(200);
      expect(run.text).toContain('data-verify="ok"');
      expect(run.text).toMatch(/Die Kette ist unversehrt: \d+ Einträge/);
      expect(run.text).toMatch(/Letzte Prüfung: unversehrt, .* durch user:rolf\.revision@stadt\.example\./);
      const verifies = await entries('audit.verify');
      expect(verifies).toContainEqual(expect.objectContaining({ actor: { kind: 'user', id: USERS.auditor.nameId, roles: ['auditor'] }, data: expect.objectContaining({ ok: true }) }));
    });

    it('shows the latest signed checkpoint with its signature checked against the audit key', async () => {
      const cp = await t.services.audit.log.checkpointNow();
      expect(cp).not.toBeNull();
      const res = await request(t.app).get('/console/audit/verify').set('Cookie', auditor.cookie).expect(200);
      expect(res.text).toContain('data-signature="valid"');
      expect(res.text).toContain(`<code>${(cp as { hash: string }).hash}</code>`);
    });
  });
});
