/**
 * Two gateway instances on one real redis-server (one shared CA, one shared store, their own caches and spools):
 * a revocation or suspension made through instance B denies the next decision on instance A within 1 s although A
 * had the allow cached, and A's revocation-feed subscribers (the OpenVPN management adapters) hear about it.
 *
 * Both instances run on a frozen clock, so A's fact cache never expires by itself: only the cross-instance store
 * event can end A's cached allow.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { GatewayClient } from '../../../src/adapters/gateway-client';
import { silentLogger } from '../../../src/adapters/log';
import { subscribeRevocations, type RevocationNotice } from '../../../src/adapters/revocation-feed';
import { openRedisStore } from '../../../src/store/redis';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { redisServer, startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { describeWith } from '../../helpers/requirements';
import { bearer } from '../../helpers/tokens';
import { activeDeviceWithCert, openvpnBody } from './support';

describeWith([redisServer], 'decisions across two gateway instances sharing Redis', () => {
  let redis: RedisServerHandle;
  let caDir: string;
  let a: TestApp;
  let b: TestApp;
  let concA: string;
  let adminB: string;

  const instance = async (): Promise<TestApp> => {
    const store = await openRedisStore({ url: redis.url, keyPrefix: 'dg-multi', commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
    return buildTestApp({ store, env: { DEVICEGATE_STORE__BACKEND: 'redis', DEVICEGATE_CA__DEV_DIR: caDir } });
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    caDir = mkdtempSync(path.join(os.tmpdir(), 'dg-multi-ca-'));
    a = await instance();
    b = await instance();
    concA = await bearer(a.services, 'concentrator', 'ovpn-a');
    adminB = await bearer(b.services, 'it-admin');
  }, 30_000);

  afterAll(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await redis?.cleanup();
    rmSync(caDir, { recursive: true, force: true });
  });

  const askA = async (body: object) => (await request(a.app).post('/v1/decisions').set('Authorization', concA).send(body).expect(200)).body as { decision: string; reason_code: string };

  /** Asks A until it denies, for at most `ms` of wall time; returns the first deny or the last answer. */
  const askUntilDeny = async (body: object, ms: number) => {
    const end = Date.now() + ms;
    let last = await askA(body);
    while (last.decision !== 'deny' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
      last = await askA(body);
    }
    return last;
  };

  it('shares one CA, so a certificate issued through B is ours on A', async () => {
    const c = await activeDeviceWithCert(b.services, b.store);
    expect((await askA(openvpnBody(c))).decision).toBe('allow');
  });

  it('denies on A within 1 s a device that IT suspends through B, although A had the allow cached', async () => {
    const c = await activeDeviceWithCert(a.services, a.store);
    expect((await askA(openvpnBody(c))).decision).toBe('allow');
    expect(a.services.decisions.cacheStats().devices).toBeGreaterThan(0);
    await request(b.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', adminB).send({ status: 'suspended' }).expect(200);
    expect(await askUntilDeny(openvpnBody(c), 1000)).toMatchObject({ decision: 'deny', reason_code: 'DEVICE_SUSPENDED' });
  });

  it('denies on A within 1 s a certificate revoked through B, although A had "not revoked" cached', async () => {
    const c = await activeDeviceWithCert(a.services, a.store);
    expect((await askA(openvpnBody(c))).decision).toBe('allow');
    await request(b.app).post(`/v1/certificates/${c.serialHex}/revoke`).set('Authorization', adminB).send({ reason: 'keyCompromise' }).expect(200);
    expect(await askUntilDeny(openvpnBody(c), 1000)).toMatchObject({ decision: 'deny', reason_code: 'CERT_REVOKED' });
  });

  it("tells A's revocation-feed subscribers about a device revoked through B", async () => {
    const server = http.createServer(a.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const token = concA.replace(/^Bearer /, '');
    const client = new GatewayClient({ url, token, deadlineMs: 2000 });
    const notices: RevocationNotice[] = [];
    let ready!: () => void;
    const connected = new Promise<void>((r) => (ready = r));
    const feed = subscribeRevocations(client, token, { onRevocation: (n) => notices.push(n), onConnected: () => ready() }, silentLogger);
    try {
      await connected;
      const c = await activeDeviceWithCert(a.services, a.store);
      await request(b.app).post(`/v1/devices/${c.deviceId}/status`).set('Authorization', adminB).send({ status: 'revoked' }).expect(200);
      for (let i = 0; i < 100 && !notices.some((n) => n.deviceId === c.deviceId); i++) await new Promise((r) => setTimeout(r, 10));
      expect(notices.find((n) => n.deviceId === c.deviceId)).toMatchObject({ reason: 'DEVICE_REVOKED' });
      expect(notices.some((n) => n.certSha256 === c.sha256)).toBe(true);
    } finally {
      feed.close();
      client.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
