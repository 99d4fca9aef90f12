/**
 * Real OpenVPN 2.6 server + clients on 127.0.0.1, decided by the management-interface authorizer
 * (src/adapters/openvpn/management-daemon.ts) against decision-endpoint-for-adapter-tests, which runs the real
 * normalise → gatherFacts → decide pipeline over an in-memory registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayClient } from '../../src/adapters/gateway-client';
import { silentLogger } from '../../src/adapters/log';
import { OpenVpnManagementAuthorizer } from '../../src/adapters/openvpn/management-daemon';
import { PLATFORMS } from '../../src/domain/types';
import type { DecisionPolicy } from '../../src/policy/policy';
import { connectOpenVpnClient, type OpenVpnServer, openvpnRequirements, startOpenVpnServer } from '../helpers/openvpn';
import { describeWith } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import {
  AdapterTestWorld,
  type DecisionEndpoint,
  startDecisionEndpointForAdapterTests,
} from './support/decision-endpoint-for-adapter-tests';

const TOKEN = 'test-concentrator-token-0123456789';
const policy: DecisionPolicy = {
  version: 'e2e-1',
  allowedPlatforms: [...PLATFORMS],
  usernameRule: 'not_checked',
  maxCertificateAgeSeconds: null,
  ttlSeconds: 3600,
};

async function until(check: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

describeWith(openvpnRequirements, 'OpenVPN 2.6 with the management-interface adapter (real openvpn on loopback)', () => {
  let work: string;
  let pki: TestPki;
  let world: AdapterTestWorld;
  let endpoint: DecisionEndpoint;
  let server: OpenVpnServer;
  let daemon: OpenVpnManagementAuthorizer;
  let socketPath: string;
  const certs: Record<string, TestCert> = {};

  const startDaemon = (url: string, deadlineMs = 1500): OpenVpnManagementAuthorizer => {
    const d = new OpenVpnManagementAuthorizer({
      endpoint: { path: socketPath },
      gateway: new GatewayClient({ url, token: TOKEN, deadlineMs }),
      token: TOKEN,
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
    world = new AdapterTestWorld();
    const enrolled = (name: string, status?: 'suspended' | 'revoked' | 'retired' | 'registered'): TestCert => {
      const c = pki.issueDevice(name);
      world.addDevice(c.deviceId!, status ? { status } : {});
      world.addCertificate({ ...c, deviceId: c.deviceId! });
      return c;
    };
    certs.allowed = enrolled('allowed');
    certs.killme = enrolled('killme');
    certs.suspended = enrolled('suspended', 'suspended');
    certs.deviceRevoked = enrolled('device-revoked', 'revoked');
    certs.revoked = enrolled('cert-revoked');
    world.revokeCertificate(certs.revoked.serialDerHex, certs.revoked.deviceId);
    // Our CA issued it and devicegate has its record, but the device is not in the registry.
    certs.unregistered = pki.issueDevice('unregistered');
    world.addCertificate({ ...certs.unregistered, deviceId: certs.unregistered.deviceId! });
    // Our CA issued it, devicegate has no record of it.
    certs.unknown = pki.issueDevice('unknown');
    // Another CA the server also trusts (city user CA): passes TLS, devicegate says CERT_NOT_OURS.
    certs.otherCa = pki.issueFromOtherCa('other-ca');
    certs.privateLaptop = pki.selfSigned('private-laptop');

    endpoint = await startDecisionEndpointForAdapterTests({ token: TOKEN, policy, ourIssuers: [pki.caSubject], world });
    socketPath = path.join(work, 'mgmt.sock');
    server = await startOpenVpnServer({
      workDir: path.join(work, 'server'),
      caFile: pki.trustBundlePath,
      certFile: pki.server.certPath,
      keyFile: pki.server.keyPath,
      auth: { kind: 'management', socketPath },
    });
    daemon = startDaemon(endpoint.url);
    await until(() => daemon.connected && endpoint.subscribers() === 1);
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    await server?.stop();
    await endpoint?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('allows an active device with a certificate devicegate issued (Initialization Sequence Completed)', async () => {
    const { result } = await client('allowed', certs.allowed!);
    expect(result.outcome).toBe('connected');
    const call = endpoint.calls.find((c) => c.response?.device_id === certs.allowed!.deviceId);
    expect(call?.response).toMatchObject({ decision: 'allow', reason_code: 'OK' });
    expect(server.log()).toMatch(/MANAGEMENT: Client connected/);
  });

  it.each([
    ['a revoked certificate', 'revoked', 'CERT_REVOKED'],
    ['a suspended device', 'suspended', 'DEVICE_SUSPENDED'],
    ['a revoked device', 'deviceRevoked', 'DEVICE_REVOKED'],
    ['a certificate of an unregistered device', 'unregistered', 'DEVICE_NOT_REGISTERED'],
    ['a certificate devicegate never issued (unknown device)', 'unknown', 'CERT_UNKNOWN'],
    ['a certificate from another CA the server trusts', 'otherCa', 'CERT_NOT_OURS'],
  ])('denies %s with AUTH_FAILED carrying the reason', async (_label, key, reason) => {
    const { result } = await client(key, certs[key]!);
    expect(result.outcome).toBe('auth_failed');
    expect(result.authFailedMessage).toContain(`[${reason}, Ref `);
    expect(result.authFailedMessage).toMatch(/Zugang verweigert: .* \/ Access denied: /);
    // The server log gets "<reason_code> <decision_id>" from client-deny.
    expect(server.log()).toMatch(new RegExp(`${reason} [0-9a-f-]{36}`));
  });

  it('refuses a self-signed "private laptop" certificate during the TLS handshake (no decision request)', async () => {
    const before = endpoint.calls.length;
    const { result } = await client('private-laptop', certs.privateLaptop!);
    expect(result.outcome).toBe('tls_failed');
    expect(server.log()).toMatch(/VERIFY ERROR: depth=0.*self-signed certificate|certificate verify failed/);
    expect(endpoint.calls.length).toBe(before);
  });

  it('ends a live session with client-kill when devicegate publishes a revocation of the device', async () => {
    const { result, live } = await client('killme', certs.killme!, { keepRunning: true });
    expect(result.outcome).toBe('connected');
    expect(await until(() => [...daemon.sessions().values()].some((s) => s.deviceId === certs.killme!.deviceId && s.established))).toBe(true);
    world.setDeviceStatus(certs.killme!.deviceId!, 'revoked');
    const killed = new Promise<number[]>((resolve) => daemon.once('killed', resolve));
    expect(endpoint.publishRevocation({ device_id: certs.killme!.deviceId!, reason: 'DEVICE_REVOKED' })).toBe(1);
    expect((await killed).length).toBe(1);
    const log = await live!.waitForExit(10_000);
    await live!.stop();
    expect(log).not.toBeNull();
    expect(log).toMatch(/SIGTERM\[soft,server-pushed-halt\] received/);
    expect(server.log()).toMatch(/CMD 'client-kill \d+ HALT'/);
    expect([...daemon.sessions().values()].some((s) => s.deviceId === certs.killme!.deviceId)).toBe(false);
    // Its next attempt is denied.
    const again = await client('killme-again', certs.killme!);
    expect(again.result.outcome).toBe('auth_failed');
    expect(again.result.authFailedMessage).toContain('DEVICE_REVOKED');
  });

  it.each([
    ['too slow (past the adapter deadline)', { kind: 'slow', delayMs: 2500 }],
    ['answering HTTP 500', { kind: 'status', status: 500 }],
    ['answering HTTP 404', { kind: 'status', status: 404 }],
    ['answering a truncated allow', { kind: 'garbage' }],
  ] as const)('denies an allowed device when the gateway is %s', async (_label, behaviour) => {
    endpoint.setBehaviour(behaviour);
    try {
      const { result } = await client('faulty-gateway', certs.allowed!);
      expect(result.outcome).toBe('auth_failed');
      expect(result.authFailedMessage).toMatch(/GATEWAY_(UNAVAILABLE|RESPONSE_INVALID)/);
    } finally {
      endpoint.setBehaviour({ kind: 'normal' });
    }
  });

  it('denies when the gateway is unreachable (nothing listening)', async () => {
    await daemon.stop();
    const unreachable = startDaemon('http://127.0.0.1:9');
    try {
      expect(await until(() => unreachable.connected)).toBe(true);
      const { result } = await client('unreachable', certs.allowed!);
      expect(result.outcome).toBe('auth_failed');
      expect(result.authFailedMessage).toContain('GATEWAY_UNAVAILABLE');
    } finally {
      await unreachable.stop();
      daemon = startDaemon(endpoint.url);
      await until(() => daemon.connected && endpoint.subscribers() >= 1);
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
