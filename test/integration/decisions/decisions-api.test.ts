/**
 * `POST /v1/decisions` on the real app (SQLite, dev CA, real audit log): every reason code a concentrator can meet,
 * the response contract, the audit entry of every decision, the fast path and the Express route answering alike,
 * and the fail-closed rules (no audit → no allow; malformed → 4xx, never allow).
 */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { isUuid } from '../../../src/lib/ids';
import { MAX_CLIENT_MESSAGE_BYTES } from '../../../src/policy/messages';
import { cliPrincipal } from '../../../src/services/actors';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';
import { activeDeviceWithCert, auditEvents, decisionEntry, issueCert, makeDevice, openvpnBody, type IssuedCert } from './support';

describe('POST /v1/decisions', () => {
  let t: TestApp;
  let conc: string;
  let admin: string;
  let allowed: IssuedCert;

  beforeAll(async () => {
    t = await buildTestApp({ env: { DEVICEGATE_DECISIONS__ALLOWED_PLATFORMS: '["linux","windows"]', DEVICEGATE_DECISIONS__POLICY_VERSION: 'it-7' } });
    conc = await bearer(t.services, 'concentrator', 'ovpn-it-01');
    admin = await bearer(t.services, 'it-admin');
    allowed = await activeDeviceWithCert(t.services, t.store);
  });

  afterAll(async () => {
    await t?.cleanup();
  });

  const ask = (body: unknown, path = '/v1/decisions') => request(t.app).post(path).set('Authorization', conc).send(body as object);

  it('allows an active device with a certificate of our CA and answers the §8.3 shape', async () => {
    const res = await ask(openvpnBody(allowed)).expect(200);
    expect(res.body).toMatchObject({ decision: 'allow', reason_code: 'OK', device_id: allowed.deviceId, policy_version: 'it-7' });
    expect(isUuid(res.body.decision_id)).toBe(true);
    expect(res.body.ttl_seconds).toBeGreaterThan(0);
    expect(res.body.ttl_seconds).toBeLessThanOrEqual(t.config.decisions.ttlSeconds);
    expect(res.body.client_message).toBe('Zugang erlaubt / Access granted');
    expect(res.body.radius).toEqual({ 'reply:Class': `dec:${res.body.decision_id}`, 'reply:Session-Timeout': res.body.ttl_seconds });
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });

  it('writes the allow to the audit log before answering, with the concentrator, certificate and latency', async () => {
    const body = openvpnBody(allowed);
    const res = await ask(body).expect(200);
    const entry = await decisionEntry(t.store, res.body.decision_id);
    expect(entry).toMatchObject({
      requestId: body.request_id,
      decisionId: res.body.decision_id,
      event: 'connect',
      decision: 'allow',
      reason: 'OK',
      deviceId: allowed.deviceId,
      peer: { ip: '203.0.113.7', port: 51234 },
      concentrator: { id: 'ovpn-it-01', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14', credential: 'ovpn-it-01' },
      cert: { sha256: allowed.sha256, serialHex: allowed.serialHex, cn: allowed.deviceId },
      session: { ovpnCid: 7, ovpnKid: 1 },
      policyVersion: 'it-7',
    });
    expect(typeof entry!.latencyMs).toBe('number');
    // Client hints are self-asserted and not evidence: they are not written into the permanent record.
    expect(JSON.stringify(entry)).not.toContain('IV_PLAT');
  });

  it('a concentrator claiming another gateway id is still recorded under the credential it authenticated with (impersonation)', async () => {
    const body = { ...openvpnBody(allowed), gateway: { id: 'radius-core-9', kind: 'freeradius' } };
    const res = await ask(body).expect(200);
    const entry = await decisionEntry(t.store, res.body.decision_id);
    expect(entry?.concentrator).toEqual({ id: 'radius-core-9', kind: 'freeradius', credential: 'ovpn-it-01' });
  });

  it('identifies the certificate by issuer + serial alone (FreeRADIUS-style bare hex, one-line DN)', async () => {
    const res = await ask({
      gateway: { id: 'radius-1', kind: 'freeradius' },
      event: 'connect',
      cert: { serial: { hex: allowed.serialHex }, issuer_dn: `/${allowed.issuer.split('\n').join('/')}` },
    }).expect(200);
    expect(res.body).toMatchObject({ decision: 'allow', device_id: allowed.deviceId });
  });

  describe('denies with HTTP 200, a reason code and a bilingual message, and audits the deny', () => {
    const cases: [string, string, () => Promise<object>][] = [
      ['a certificate devicegate never issued (forged fingerprint of an unknown device)', 'CERT_UNKNOWN', async () => openvpnBody({ ...allowed, sha256: 'ab'.repeat(32), serialHex: '01', serialDecimal: '1' })],
      [
        'a certificate from another CA whose serial equals one of ours',
        'CERT_NOT_OURS',
        async () => ({ gateway: { id: 'r', kind: 'freeradius' }, event: 'connect', cert: { serial: { hex: allowed.serialHex }, issuer_dn: '/C=DE/O=Privat/CN=Home CA' } }),
      ],
      ['our fingerprint presented with a foreign issuer', 'IDENTITY_MISMATCH', async () => openvpnBody({ ...allowed, issuer: 'C=DE\nCN=Evil CA' })],
      [
        'a certificate whose SAN claims another (active) device id',
        'IDENTITY_MISMATCH',
        async () => {
          const other = await issueCert(t.services, randomUUID());
          return openvpnBody(other, { cert: { sha256: other.sha256, san: { uri: [`urn:uuid:${allowed.deviceId}`] } } });
        },
      ],
      ['a request without any certificate identity', 'IDENTITY_MISSING', async () => ({ gateway: { id: 'g', kind: 'openvpn' }, event: 'connect' })],
      [
        'only a CN / SAN naming an active device (claims without a certificate identifier)',
        'IDENTITY_MISSING',
        async () => ({ gateway: { id: 'g', kind: 'strongswan' }, event: 'connect', cert: { cn: allowed.deviceId, san: { uri: [`urn:uuid:${allowed.deviceId}`] } } }),
      ],
      [
        'a serial without an issuer (serials are unique per issuer only)',
        'IDENTITY_MISSING',
        async () => ({ gateway: { id: 'g', kind: 'freeradius' }, event: 'connect', cert: { serial: { hex: allowed.serialHex } } }),
      ],
      [
        'a revoked certificate of an active device',
        'CERT_REVOKED',
        async () => {
          const c = await activeDeviceWithCert(t.services, t.store);
          await t.services.pki.revokeSerial(c.serialHex, 'keyCompromise', cliPrincipal());
          return openvpnBody(c);
        },
      ],
      [
        'a certificate of our CA whose device is not in the inventory',
        'DEVICE_NOT_REGISTERED',
        async () => openvpnBody(await issueCert(t.services, randomUUID())),
      ],
      [
        'a suspended device',
        'DEVICE_SUSPENDED',
        async () => {
          const d = await makeDevice(t.services, t.store);
          const c = await issueCert(t.services, d.id);
          await t.services.registry.changeStatus(d.id, { status: 'suspended' }, cliPrincipal());
          return openvpnBody(c);
        },
      ],
      [
        'a registered device that never completed enrollment',
        'DEVICE_NOT_ENROLLED',
        async () => openvpnBody(await issueCert(t.services, (await makeDevice(t.services, t.store, { status: 'registered' })).id)),
      ],
      [
        'a device whose status was revoked in the store without its certificates (defence in depth)',
        'DEVICE_REVOKED',
        async () => {
          const c = await activeDeviceWithCert(t.services, t.store);
          await t.store.devices.update(c.deviceId, { status: 'revoked', updatedAt: Date.now() });
          return openvpnBody(c);
        },
      ],
      [
        'a retired device (its certificates are revoked with it)',
        'CERT_REVOKED',
        async () => {
          const c = await activeDeviceWithCert(t.services, t.store);
          await request(t.app).delete(`/v1/devices/${c.deviceId}`).set('Authorization', admin).expect(200);
          return openvpnBody(c);
        },
      ],
      ['a device of a platform the policy does not allow', 'PLATFORM_NOT_ALLOWED', async () => openvpnBody(await activeDeviceWithCert(t.services, t.store, 'macos'))],
    ];

    it.each(cases)('denies %s (%s)', async (_label, reason, build) => {
      const res = await ask(await build()).expect(200);
      expect(res.body.decision).toBe('deny');
      expect(res.body.reason_code).toBe(reason);
      expect(res.body.ttl_seconds).toBe(0);
      expect(res.body.client_message).toMatch(new RegExp(`^Zugang verweigert: .+ / Access denied: .+ \\[${reason}, Ref ${res.body.decision_id.slice(0, 8)}\\]$`));
      expect(Buffer.byteLength(res.body.client_message)).toBeLessThanOrEqual(MAX_CLIENT_MESSAGE_BYTES);
      expect(res.body.radius['reply:Session-Timeout']).toBeUndefined();
      const entry = await decisionEntry(t.store, res.body.decision_id);
      expect(entry).toMatchObject({ decision: 'deny', reason });
    });

    it('denies an expired certificate (CERT_EXPIRED) once the clock passes notAfter', async () => {
      const c = await activeDeviceWithCert(t.services, t.store);
      const now = t.clock.nowMs();
      t.clock.set(c.record.notAfter + 1000);
      try {
        const res = await ask(openvpnBody(c)).expect(200);
        expect(res.body).toMatchObject({ decision: 'deny', reason_code: 'CERT_EXPIRED', device_id: c.deviceId });
      } finally {
        t.clock.set(now);
      }
    });
  });

  it('caps ttl_seconds at the certificate expiry', async () => {
    const now = t.clock.nowMs();
    t.clock.set(allowed.record.notAfter - 120_000);
    try {
      const res = await ask(openvpnBody(allowed)).expect(200);
      expect(res.body.decision).toBe('allow');
      expect(res.body.ttl_seconds).toBe(120);
    } finally {
      t.clock.set(now);
    }
  });

  it('records a disconnect report as vpn.decision and vpn.session_end with the byte counts', async () => {
    const body = openvpnBody(allowed, {
      event: 'disconnect',
      gateway: { id: 'ovpn-it-01', kind: 'openvpn', hook: 'client-disconnect' },
      session: { ovpn_cid: 9, bytes_sent: 1234, bytes_received: 5678, duration_seconds: 61 },
    });
    const res = await ask(body).expect(200);
    expect(await decisionEntry(t.store, res.body.decision_id)).toMatchObject({ event: 'disconnect', decision: 'allow' });
    const ends = await auditEvents(t.store, { type: 'vpn.session_end', deviceId: allowed.deviceId });
    expect(ends[0]?.data).toMatchObject({ bytesSent: 1234, bytesReceived: 5678, durationSeconds: 61, deviceId: allowed.deviceId, session: { ovpnCid: 9 } });
  });

  it('drops a cached allow as soon as IT suspends the device (the next decision is a deny)', async () => {
    const c = await activeDeviceWithCert(t.services, t.store);
    expect((await ask(openvpnBody(c)).expect(200)).body.decision).toBe('allow');
    // The clock is frozen, so the 1 s cache ttl cannot expire: only the device-status event can end the allow.
    await request(t.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', admin).send({ status: 'suspended' }).expect(200);
    expect((await ask(openvpnBody(c)).expect(200)).body.reason_code).toBe('DEVICE_SUSPENDED');
    await request(t.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', admin).send({ status: 'active' }).expect(200);
    expect((await ask(openvpnBody(c)).expect(200)).body.decision).toBe('allow');
  });

  it('drops a cached "not revoked" as soon as the certificate is revoked', async () => {
    const c = await activeDeviceWithCert(t.services, t.store);
    expect((await ask(openvpnBody(c)).expect(200)).body.decision).toBe('allow');
    await request(t.app).post(`/v1/certificates/${c.serialHex}/revoke`).set('Authorization', admin).send({ reason: 'keyCompromise' }).expect(200);
    expect((await ask(openvpnBody(c)).expect(200)).body.reason_code).toBe('CERT_REVOKED');
  });

  describe('malformed requests and callers (4xx, never an allow, never a crash)', () => {
    it('rejects a garbage fingerprint with 400 FINGERPRINT_INVALID', async () => {
      const res = await ask(openvpnBody(allowed, { cert: { sha256: 'not-a-fingerprint', cn: allowed.deviceId } })).expect(400);
      expect(res.body.error).toMatchObject({ code: 'FINGERPRINT_INVALID', request_id: res.headers['x-request-id'] });
    });

    it('rejects a SHA-1 fingerprint passed off as SHA-256', async () => {
      await ask(openvpnBody(allowed, { cert: { sha256: 'a'.repeat(40) } })).expect(400);
    });

    it('rejects a body that does not match the schema (400 DECISION_REQUEST_INVALID with the failing paths)', async () => {
      const res = await ask({ event: 'connect', cert: { sha256: allowed.sha256 } }).expect(400);
      expect(res.body.error.code).toBe('DECISION_REQUEST_INVALID');
      expect(res.body.error.details.issues[0].path).toBe('gateway');
    });

    it('rejects malformed JSON with 400 INVALID_JSON', async () => {
      const res = await request(t.app).post('/v1/decisions').set('Authorization', conc).set('Content-Type', 'application/json').send('{"decision":"allow",').expect(400);
      expect(res.body.error.code).toBe('INVALID_JSON');
    });

    it('rejects a JSON string at the top level (strict JSON) with 400', async () => {
      await request(t.app).post('/v1/decisions').set('Authorization', conc).set('Content-Type', 'application/json').send('"allow"').expect(400);
    });

    it('rejects a 1 MB body with 413 PAYLOAD_TOO_LARGE', async () => {
      const big = JSON.stringify({ ...openvpnBody(allowed), padding: 'x'.repeat(1024 * 1024) });
      const res = await request(t.app).post('/v1/decisions').set('Authorization', conc).set('Content-Type', 'application/json').send(big);
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    });

    it('rejects a caller without a token (401 AUTHENTICATION_REQUIRED, WWW-Authenticate)', async () => {
      const res = await request(t.app).post('/v1/decisions').send(openvpnBody(allowed)).expect(401);
      expect(res.body.error.code).toBe('AUTHENTICATION_REQUIRED');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it('rejects a forged token (401 INVALID_TOKEN) and a malformed Authorization header (401)', async () => {
      const forged = `Bearer dg_${'0'.repeat(32)}_${'A'.repeat(43)}`;
      expect((await request(t.app).post('/v1/decisions').set('Authorization', forged).send(openvpnBody(allowed)).expect(401)).body.error.code).toBe('INVALID_TOKEN');
      expect((await request(t.app).post('/v1/decisions').set('Authorization', 'Basic Zm9vOmJhcg==').send(openvpnBody(allowed)).expect(401)).body.error.code).toBe(
        'INVALID_AUTHORIZATION',
      );
    });

    it('rejects a revoked concentrator token', async () => {
      const created = await t.services.apiTokens.create({ name: 'ovpn-old', role: 'concentrator' }, cliPrincipal());
      await t.services.apiTokens.revoke(created.record.id, cliPrincipal());
      await request(t.app).post('/v1/decisions').set('Authorization', `Bearer ${created.token}`).send(openvpnBody(allowed)).expect(401);
    });

    it('rejects a valid token of a role other than concentrator (403), even it-admin', async () => {
      const res = await request(t.app).post('/v1/decisions').set('Authorization', admin).send(openvpnBody(allowed)).expect(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    });

    it('does not audit malformed requests (they are no decisions)', async () => {
      const before = (await auditEvents(t.store, { type: 'vpn.decision' })).length;
      await ask({ gateway: { id: 'x', kind: 'openvpn' }, event: 'connect', cert: { sha256: 'zz' } }).expect(400);
      expect((await auditEvents(t.store, { type: 'vpn.decision' })).length).toBe(before);
    });
  });

  describe('the fast path and the Express route answer alike', () => {
    // `/v1/decisions/` (trailing slash) is served by the Express route; `/v1/decisions` by the fast path, which
    // never sets Express's ETag header.
    const both = async (build: (path: string) => request.Test): Promise<[request.Response, request.Response]> => [
      await build('/v1/decisions'),
      await build('/v1/decisions/'),
    ];

    it.each([
      ['an allow', (p: string) => ask(openvpnBody(allowed), p), 200],
      ['a deny', (p: string) => ask({ gateway: { id: 'g', kind: 'openvpn' }, event: 'connect' }, p), 200],
      ['a malformed body', (p: string) => ask({ event: 'nope' }, p), 400],
      ['invalid JSON', (p: string) => request(t.app).post(p).set('Authorization', conc).set('Content-Type', 'application/json').send('{'), 400],
      ['no token', (p: string) => request(t.app).post(p).send(openvpnBody(allowed)), 401],
      ['a forged token', (p: string) => request(t.app).post(p).set('Authorization', 'Bearer dg_x').send(openvpnBody(allowed)), 401],
      ['a wrong role', (p: string) => request(t.app).post(p).set('Authorization', admin).send(openvpnBody(allowed)), 403],
      [
        'an oversized body',
        (p: string) => request(t.app).post(p).set('Authorization', conc).set('Content-Type', 'application/json').send(`{"x":"${'y'.repeat(300 * 1024)}"}`),
        413,
      ],
    ] as const)('%s', async (_label, build, status) => {
      const [fast, slow] = await both(build);
      expect(fast.status).toBe(status);
      expect(slow.status).toBe(status);
      expect(fast.headers.etag).toBeUndefined();
      expect(slow.headers.etag).toBeDefined();
      for (const h of ['content-type', 'cache-control', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'www-authenticate']) {
        expect([h, fast.headers[h]]).toEqual([h, slow.headers[h]]);
      }
      expect(fast.headers['x-request-id']).toBeTruthy();
      if (status === 200) {
        expect(Object.keys(fast.body).sort()).toEqual(Object.keys(slow.body).sort());
        expect([fast.body.decision, fast.body.reason_code]).toEqual([slow.body.decision, slow.body.reason_code]);
      } else {
        expect(fast.body.error.code).toBe(slow.body.error.code);
        expect(fast.body.error.message).toBe(slow.body.error.message);
      }
    });

    it('keeps a caller-supplied X-Request-Id and uses it as the audit requestId when the body has none', async () => {
      const body = openvpnBody(allowed);
      delete (body as { request_id?: unknown }).request_id;
      const res = await ask(body).set('X-Request-Id', 'ovpn-4711').expect(200);
      expect(res.headers['x-request-id']).toBe('ovpn-4711');
      expect((await decisionEntry(t.store, res.body.decision_id))?.requestId).toBe('ovpn-4711');
    });

    it('counts fast-path requests in the request-duration metric under the route template', async () => {
      await ask(openvpnBody(allowed)).expect(200);
      const metrics = await t.metrics.registry.getSingleMetricAsString('devicegate_http_request_duration_seconds');
      expect(metrics).toMatch(/devicegate_http_request_duration_seconds_count\{method="POST",route="\/v1\/decisions",status="200"\} \d+/);
      expect(await t.metrics.registry.getSingleMetricAsString('devicegate_decisions_total')).toMatch(/decision="allow",reason="OK"/);
    });
  });
});

describe('POST /v1/decisions when the audit log cannot write (no audit, no access)', () => {
  let t: TestApp;

  afterAll(async () => {
    await t?.cleanup();
  });

  it('answers a would-be allow with a deny (INTERNAL_ERROR) and never an allow', async () => {
    t = await buildTestApp();
    const conc = await bearer(t.services, 'concentrator');
    const c = await activeDeviceWithCert(t.services, t.store);
    expect((await request(t.app).post('/v1/decisions').set('Authorization', conc).send(openvpnBody(c)).expect(200)).body.decision).toBe('allow');
    await t.services.audit.log.close();
    const res = await request(t.app).post('/v1/decisions').set('Authorization', conc).send(openvpnBody(c)).expect(200);
    expect(res.body).toMatchObject({ decision: 'deny', reason_code: 'INTERNAL_ERROR', device_id: c.deviceId, ttl_seconds: 0 });
    expect(res.body.client_message).toContain('[INTERNAL_ERROR, Ref ');
  });
});
