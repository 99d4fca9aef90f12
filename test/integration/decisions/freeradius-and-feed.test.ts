/**
 * The FreeRADIUS rlm_rest routes and the revocation feed on the real app (SQLite): rlm_rest's status contract
 * (allow 200 + Class, deny 401 + Reply-Message, never 404), and server-sent revocation notices for revoked and
 * suspended devices and revoked certificates, with Last-Event-ID replay.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { subscribeRevocations, type RevocationNotice } from '../../../src/adapters/revocation-feed';
import { GatewayClient } from '../../../src/adapters/gateway-client';
import { silentLogger } from '../../../src/adapters/log';
import { cliPrincipal } from '../../../src/services/actors';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';
import { activeDeviceWithCert, auditEvents, decisionEntry, issueCert, makeDevice, rlmRestBody, type IssuedCert } from './support';

describe('FreeRADIUS rlm_rest routes', () => {
  let t: TestApp;
  let conc: string;
  let allowed: IssuedCert;

  beforeAll(async () => {
    t = await buildTestApp();
    conc = await bearer(t.services, 'concentrator', 'radius-01');
    allowed = await activeDeviceWithCert(t.services, t.store);
  });

  afterAll(async () => {
    await t?.cleanup();
  });

  const post = (section: string, body: unknown) => request(t.app).post(`/v1/adapters/freeradius/${section}`).set('Authorization', conc).send(body as object);

  it('answers authorize for an active device with 200 {reply:Class = dec:<id>, reply:Session-Timeout}', async () => {
    const res = await post('authorize', rlmRestBody(allowed)).expect(200);
    expect(res.body['reply:Class']).toMatch(/^dec:[0-9a-f-]{36}$/);
    expect(res.body['reply:Session-Timeout']).toBeGreaterThan(0);
    const entry = await decisionEntry(t.store, res.body['reply:Class'].slice(4));
    expect(entry).toMatchObject({
      decision: 'allow',
      deviceId: allowed.deviceId,
      concentrator: { id: 'radius-01', kind: 'freeradius', hook: 'radius-authorize' },
      peer: { ip: '127.0.0.1', port: 4500 },
      cert: { serialHex: allowed.serialHex },
    });
  });

  it('answers authorize for a suspended device with 401 and the bilingual Reply-Message (never 404)', async () => {
    const d = await makeDevice(t.services, t.store);
    const c = await issueCert(t.services, d.id);
    await t.services.registry.changeStatus(d.id, { status: 'suspended' }, cliPrincipal());
    const res = await post('authorize', rlmRestBody(c)).expect(401);
    expect(res.body['reply:Reply-Message']).toMatch(/^Zugang verweigert: .* \[DEVICE_SUSPENDED, Ref [0-9a-f]{8}\]$/);
    expect(Object.keys(res.body)).toEqual(['reply:Reply-Message']);
  });

  it('answers authorize for a certificate from another CA with 401 (CERT_NOT_OURS audited)', async () => {
    const res = await post('authorize', { ...rlmRestBody(allowed), 'TLS-Client-Cert-Issuer': { type: 'string', value: ['/C=DE/CN=Other CA'] } }).expect(401);
    expect(res.body['reply:Reply-Message']).toContain('CERT_NOT_OURS');
  });

  it.each([
    ['an unknown section (a typo in mods-available/rest)', 'authorise', {}],
    ['a body that is not an attribute map', 'authorize', [1, 2, 3]],
    ['an attribute with nested garbage', 'authorize', { 'TLS-Client-Cert-Serial': { value: [{ x: 1 }] } }],
    ['a serial that is not hex', 'authorize', { 'TLS-Client-Cert-Serial': { type: 'string', value: ['zz-not-hex'] }, 'TLS-Client-Cert-Issuer': { type: 'string', value: ['/CN=x'] } }],
  ])('answers %s with 401, never 404 (notfound would be Accept in the stock check-eap-tls)', async (_label, section, body) => {
    const res = await post(section, body).expect(401);
    expect(res.body['reply:Reply-Message']).toContain('INTERNAL_ERROR');
  });

  it('rejects a caller without the concentrator token with 401 (rlm_rest: reject)', async () => {
    await request(t.app).post('/v1/adapters/freeradius/authorize').send(rlmRestBody(allowed)).expect(401);
    await request(t.app).post('/v1/adapters/freeradius/authorize').set('Authorization', 'Bearer nope').send(rlmRestBody(allowed)).expect(401);
  });

  it('acknowledges post-auth with 204 without deciding again', async () => {
    const before = (await auditEvents(t.store, { type: 'vpn.decision' })).length;
    await post('post-auth', rlmRestBody(allowed)).expect(204);
    expect((await auditEvents(t.store, { type: 'vpn.decision' })).length).toBe(before);
  });

  it('records an Accounting-Stop as a disconnect with vpn.session_end tied to the decision in Class (204)', async () => {
    const granted = await post('authorize', rlmRestBody(allowed)).expect(200);
    const decisionId = String(granted.body['reply:Class']).slice(4);
    const stop = rlmRestBody(allowed, {
      'Acct-Status-Type': { type: 'integer', value: ['Stop'] },
      'Acct-Session-Id': { type: 'string', value: ['5f3a-1'] },
      'Acct-Input-Octets': { type: 'integer', value: [4000] },
      'Acct-Output-Octets': { type: 'integer', value: [9000] },
      'Acct-Session-Time': { type: 'integer', value: [300] },
      Class: { type: 'octets', value: [`0x${Buffer.from(`dec:${decisionId}`).toString('hex')}`] },
    });
    await post('accounting', stop).expect(204);
    const ends = await auditEvents(t.store, { type: 'vpn.session_end', deviceId: allowed.deviceId });
    expect(ends[0]?.data).toMatchObject({ decisionId, bytesReceived: 4000, bytesSent: 9000, durationSeconds: 300, session: { acctSessionId: '5f3a-1' } });
  });

  it('acknowledges Accounting-Start with 204 and records no decision for it', async () => {
    const before = (await auditEvents(t.store, { type: 'vpn.decision' })).length;
    await post('accounting', rlmRestBody(allowed, { 'Acct-Status-Type': { type: 'integer', value: ['Start'] } })).expect(204);
    expect((await auditEvents(t.store, { type: 'vpn.decision' })).length).toBe(before);
  });
});

describe('GET /v1/decisions/revocations/stream', () => {
  let t: TestApp;
  let conc: string;
  let admin: string;
  let server: http.Server;
  let url: string;
  const token = (h: string) => h.replace(/^Bearer /, '');

  beforeAll(async () => {
    t = await buildTestApp();
    conc = await bearer(t.services, 'concentrator', 'ovpn-feed');
    admin = await bearer(t.services, 'it-admin');
    server = http.createServer(t.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await t?.cleanup();
  });

  /** Subscribes like the OpenVPN management adapter does (its own SSE client). */
  const subscribe = async () => {
    const notices: RevocationNotice[] = [];
    const client = new GatewayClient({ url, token: token(conc), deadlineMs: 2000 });
    let connected!: () => void;
    const ready = new Promise<void>((r) => (connected = r));
    const feed = subscribeRevocations(client, token(conc), { onRevocation: (n) => notices.push(n), onConnected: () => connected() }, silentLogger, { retryMs: 100 });
    await ready;
    return { notices, close: () => (feed.close(), client.close()) };
  };

  const waitFor = async (check: () => boolean): Promise<boolean> => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    return check();
  };

  it('notifies subscribers of a revoked device and of each of its certificates', async () => {
    const c = await activeDeviceWithCert(t.services, t.store);
    const sub = await subscribe();
    try {
      await request(t.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', admin).send({ status: 'revoked', reason: 'stolen' }).expect(200);
      expect(await waitFor(() => sub.notices.some((n) => n.deviceId === c.deviceId))).toBe(true);
      expect(await waitFor(() => sub.notices.some((n) => n.certSha256 === c.sha256))).toBe(true);
      expect(sub.notices.find((n) => n.deviceId === c.deviceId)).toMatchObject({ reason: 'DEVICE_REVOKED', certSha256: null });
      // A certificate notice names only the certificate: after a renewal the device's new session must survive.
      expect(sub.notices.find((n) => n.certSha256 === c.sha256)).toMatchObject({ reason: 'CERT_REVOKED', deviceId: null });
    } finally {
      sub.close();
    }
  });

  it('notifies subscribers of a suspended device, and not of a device that becomes active again', async () => {
    const c = await activeDeviceWithCert(t.services, t.store);
    const sub = await subscribe();
    try {
      await request(t.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', admin).send({ status: 'suspended' }).expect(200);
      expect(await waitFor(() => sub.notices.some((n) => n.deviceId === c.deviceId && n.reason === 'DEVICE_SUSPENDED'))).toBe(true);
      const n = sub.notices.length;
      await request(t.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', admin).send({ status: 'active' }).expect(200);
      await new Promise((r) => setTimeout(r, 100));
      expect(sub.notices.length).toBe(n);
    } finally {
      sub.close();
    }
  });

  it('replays the notices after Last-Event-ID to a subscriber that reconnects to this instance', async () => {
    const c1 = await activeDeviceWithCert(t.services, t.store);
    const c2 = await activeDeviceWithCert(t.services, t.store);
    const first = await readStream(url, conc, null, (text) => text.includes(c1.deviceId), () =>
      t.services.registry.changeStatus(c1.deviceId, { status: 'suspended' }, cliPrincipal()),
    );
    const lastId = /id: (\S+)\nevent: revocation\ndata: \{"device_id":"([^"]+)"/.exec(first)?.[1];
    expect(lastId).toMatch(/^[0-9a-f]{8}\.\d+$/);
    // While the subscriber is away, c2 is suspended.
    await t.services.registry.changeStatus(c2.deviceId, { status: 'suspended' }, cliPrincipal());
    await new Promise((r) => setImmediate(r));
    const resumed = await readStream(url, conc, lastId!, (text) => text.includes(c2.deviceId));
    expect(resumed).toContain(': devicegate revocation feed, resumed');
    expect(resumed).toContain(`"device_id":"${c2.deviceId}","reason":"DEVICE_SUSPENDED"`);
    expect(resumed).not.toContain(c1.deviceId);
  });

  it('does not replay for an event id of another instance (the adapter re-checks its sessions instead)', async () => {
    const text = await readStream(url, conc, 'deadbeef.1', (s) => s.includes('revocation feed'));
    expect(text).not.toContain('resumed');
  });

  it('refuses the feed to callers without the concentrator token (401) and to other roles (403)', async () => {
    await request(t.app).get('/v1/decisions/revocations/stream').expect(401);
    await request(t.app).get('/v1/decisions/revocations/stream').set('Authorization', admin).expect(403);
  });

  it('ends open streams when the service closes (shutdown does not wait for subscribers)', async () => {
    const t2 = await buildTestApp();
    const conc2 = await bearer(t2.services, 'concentrator');
    const s2 = http.createServer(t2.app);
    await new Promise<void>((r) => s2.listen(0, '127.0.0.1', r));
    try {
      const u = `http://127.0.0.1:${(s2.address() as AddressInfo).port}`;
      const ended = new Promise<string>((resolve) => {
        http.get(`${u}/v1/decisions/revocations/stream`, { headers: { authorization: conc2 } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        });
      });
      await waitFor(() => t2.services.decisions.revocations.subscribers === 1);
      await t2.services.decisions.close();
      expect(await ended).toContain('revocation feed');
    } finally {
      s2.closeAllConnections();
      await new Promise<void>((r) => s2.close(() => r()));
      await t2.cleanup();
    }
  });
});

/** Reads an SSE stream until `until(text)` holds, then closes it. */
function readStream(
  base: string,
  auth: string,
  lastEventId: string | null,
  until: (text: string) => boolean,
  afterConnect?: () => Promise<unknown>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: auth, accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    const req = http.get(`${base}/v1/decisions/revocations/stream`, { headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      let text = '';
      const timer = setTimeout(() => (req.destroy(), resolve(text)), 3000);
      void afterConnect?.();
      res.on('data', (c: Buffer) => {
        text += c.toString();
        if (until(text)) {
          clearTimeout(timer);
          req.destroy();
          resolve(text);
        }
      });
    });
    req.on('error', () => undefined);
  });
}
