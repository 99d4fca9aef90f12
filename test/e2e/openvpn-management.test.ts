/**
 * Real OpenVPN 2.6 server + clients on 127.0.0.1, decided by the management-interface authorizer
 * (src/adapters/openvpn/management-daemon.ts) against the REAL devicegate (test/e2e/support/devicegate.ts: the full
 * app on 127.0.0.1 with a concentrator token), with device certificates from devicegate's own CA. Every decision is
 * looked up in devicegate's audit log; IT's revocation over the API ends a live session.
 *
 * The OpenVPN server trusts devicegate's device CA chain and a second CA (the city's user CA), as a real server
 * might; clients trust the server's CA. The adapter's fail-closed behaviour is shown through a proxy that makes the
 * path to devicegate slow or broken (support/faulty-proxy.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayClient } from '../../src/adapters/gateway-client';
import { silentLogger } from '../../src/adapters/log';
import { OpenVpnManagementAuthorizer } from '../../src/adapters/openvpn/management-daemon';
import { connectOpenVpnClient, type OpenVpnServer, openvpnRequirements, startOpenVpnServer } from '../helpers/openvpn';
import { describeWith, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway, until } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';

describeWith([...openvpnRequirements, tool('openssl')], 'OpenVPN 2.6 with the management-interface adapter against devicegate (real openvpn on loopback)', () => {
  let work: string;
  let pki: TestPki;
  let gw: LiveGateway;
  let proxy: FaultyProxy;
  let server: OpenVpnServer;
  let daemon: OpenVpnManagementAuthorizer;
  let socketPath: string;
  const certs: Record<string, TestCert> = {};

  const startDaemon = (url: string, deadlineMs = 1500): OpenVpnManagementAuthorizer => {
    const d = new OpenVpnManagementAuthorizer({
      endpoint: { path: socketPath },
      gateway: new GatewayClient({ url, token: gw.concentratorToken, deadlineMs }),
      token: gw.concentratorToken,
      gatewayId: 'ovpn-e2e',
      log: silentLogger,
      reconnectDelayMs: 100,
    });
    d.start();
    return d;
  };

  const client = (name: string, cert: TestCert, extra: { keepRunning?: boolean; handWindowSeconds?: number } = {}) =>
    connectOpenVpnClient({
      workDir: path.join(work, 'clients'),
      name,
      port: server.port,
      caFile: pki.caCertPath,
      certFile: cert.certPath,
      keyFile: cert.keyPath,
      ...extra,
    });

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-ovpn-mgmt-'));
    pki = createTestPki(path.join(work, 'pki'));
    gw = await startLiveGateway(path.join(work, 'devicegate'));
    proxy = await startFaultyProxy(gw.url);

    certs.allowed = await gw.enrollDevice('allowed');
    certs.killme = await gw.enrollDevice('killme');
    certs.suspended = await gw.enrollDevice('suspended');
    await gw.setStatus(certs.suspended.deviceId!, 'suspended', 'reported lost');
    certs.revoked = await gw.enrollDevice('cert-revoked');
    await gw.revokeCertificate(certs.revoked);
    // Issued by devicegate's CA, but the device is not in the inventory.
    certs.unregistered = await gw.issueForUnknownDevice('unregistered');
    // Another CA the server also trusts (city user CA): passes TLS, devicegate says CERT_NOT_OURS.
    certs.otherCa = pki.issueFromOtherCa('other-ca');
    certs.privateLaptop = pki.selfSigned('private-laptop');

    const trust = path.join(work, 'server-trust.pem');
    writeFileSync(trust, gw.chainPem + readFileSync(pki.otherCaCertPath, 'utf8'));
    socketPath = path.join(work, 'mgmt.sock');
    server = await startOpenVpnServer({
      workDir: path.join(work, 'server'),
      caFile: trust,
      certFile: pki.server.certPath,
      keyFile: pki.server.keyPath,
      auth: { kind: 'management', socketPath },
    });
    daemon = startDaemon(proxy.url);
    await until(() => daemon.connected && gw.app.services.decisions.revocations.subscribers === 1);
  }, 90_000);

  afterAll(async () => {
    await daemon?.stop();
    await server?.stop();
    await proxy?.close();
    await gw?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('connects an enrolled device (Initialization Sequence Completed) and audits the allow', async () => {
    const { result } = await client('allowed', certs.allowed!);
    expect(result.outcome).toBe('connected');
    expect(server.log()).toMatch(/MANAGEMENT: Client connected/);
    const [d] = await gw.decisions({ deviceId: certs.allowed!.deviceId! });
    expect(d).toMatchObject({
      decision: 'allow',
      reason: 'OK',
      event: 'connect',
      concentrator: { id: 'ovpn-e2e', kind: 'openvpn', hook: 'mgmt-connect' },
      cert: { sha256: certs.allowed!.sha256, serialHex: certs.allowed!.serialDerHex },
    });
  });

  it.each([
    ['a revoked certificate', 'revoked', 'CERT_REVOKED'],
    ['a suspended device', 'suspended', 'DEVICE_SUSPENDED'],
    ['a certificate of devicegate\'s CA whose device is not in the inventory', 'unregistered', 'DEVICE_NOT_REGISTERED'],
    ['a certificate from another CA the server trusts', 'otherCa', 'CERT_NOT_OURS'],
  ])('refuses %s with AUTH_FAILED carrying the reason, and the audit log has it', async (_label, key, reason) => {
    const cert = certs[key]!;
    const { result } = await client(key, cert);
    expect(result.outcome).toBe('auth_failed');
    expect(result.authFailedMessage).toContain(`[${reason}, Ref `);
    expect(result.authFailedMessage).toMatch(/Zugang verweigert: .* \/ Access denied: /);
    const ref = /Ref ([0-9a-f]{8})/.exec(result.authFailedMessage!)![1]!;
    const audited = (await gw.decisions({ reason })).find((d) => d.decisionId.startsWith(ref));
    expect(audited).toMatchObject({ decision: 'deny', reason, cert: { sha256: cert.sha256 } });
    // The server log gets "<reason_code> <decision_id>" from client-deny.
    expect(server.log()).toContain(`${reason} ${audited!.decisionId}`);
  });

  it('refuses a self-signed "private laptop" certificate in the TLS handshake, so devicegate is never asked', async () => {
    const before = (await gw.decisions()).length;
    const { result } = await client('private-laptop', certs.privateLaptop!);
    expect(result.outcome).toBe('tls_failed');
    expect(server.log()).toMatch(/VERIFY ERROR: depth=0.*self-signed certificate|certificate verify failed/);
    expect((await gw.decisions()).length).toBe(before);
  });

  it('ends the live session of a device that IT revokes through POST /v1/devices/{id}/status', async () => {
    const { result, live } = await client('killme', certs.killme!, { keepRunning: true });
    expect(result.outcome).toBe('connected');
    expect(await until(() => [...daemon.sessions().values()].some((s) => s.deviceId === certs.killme!.deviceId && s.established))).toBe(true);
    const killed = new Promise<number[]>((resolve) => daemon.once('killed', resolve));
    await gw.setStatus(certs.killme!.deviceId!, 'revoked', 'stolen');
    expect((await killed).length).toBe(1);
    const log = await live!.waitForExit(10_000);
    await live!.stop();
    expect(log).toMatch(/SIGTERM\[soft,server-pushed-halt\] received/);
    expect(server.log()).toMatch(/CMD 'client-kill \d+ HALT'/);
    expect([...daemon.sessions().values()].some((s) => s.deviceId === certs.killme!.deviceId)).toBe(false);
    // Its next attempt is refused: revoking a device revokes its certificates.
    const again = await client('killme-again', certs.killme!);
    expect(again.result.outcome).toBe('auth_failed');
    expect(again.result.authFailedMessage).toContain('CERT_REVOKED');
  });

  it.each([
    ['too slow (past the adapter deadline)', { kind: 'slow', delayMs: 2500 }],
    ['answering HTTP 500', { kind: 'status', status: 500 }],
    ['answering HTTP 404', { kind: 'status', status: 404 }],
    ['answering a truncated allow', { kind: 'garbage' }],
  ] as const)('refuses an enrolled device when the path to devicegate is %s', async (_label, fault) => {
    proxy.setFault(fault);
    try {
      const { result } = await client('faulty-gateway', certs.allowed!, { handWindowSeconds: 10 });
      expect(result.outcome).toBe('auth_failed');
      expect(result.authFailedMessage).toMatch(/GATEWAY_(UNAVAILABLE|RESPONSE_INVALID)/);
    } finally {
      proxy.setFault({ kind: 'none' });
    }
  });

  it('refuses when devicegate is unreachable (nothing listening)', async () => {
    await daemon.stop();
    const unreachable = startDaemon('http://127.0.0.1:9');
    try {
      expect(await until(() => unreachable.connected)).toBe(true);
      const { result } = await client('unreachable', certs.allowed!);
      expect(result.outcome).toBe('auth_failed');
      expect(result.authFailedMessage).toContain('GATEWAY_UNAVAILABLE');
    } finally {
      await unreachable.stop();
      daemon = startDaemon(proxy.url);
      await until(() => daemon.connected);
    }
  });

  it('reconnects to the management socket after OpenVPN restarts and keeps deciding', async () => {
    const disconnected = new Promise<void>((resolve) => daemon.once('disconnected', () => resolve()));
    await server.restart();
    await disconnected;
    expect(await until(() => daemon.connected, 15_000)).toBe(true);
    const { result } = await client('after-restart', certs.allowed!);
    expect(result.outcome).toBe('connected');
  });
});
