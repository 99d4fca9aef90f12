/**
 * Real OpenVPN 2.6 with the script-hook adapter (`devicegate-openvpn hook`, the real launcher in bin/, run by
 * OpenVPN itself): tls-verify from the local cache, deferred auth-user-pass-verify and client-connect through
 * OpenVPN's control files, client-disconnect reporting bytes and duration.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PLATFORMS } from '../../src/domain/types';
import type { DecisionPolicy } from '../../src/policy/policy';
import {
  buildAdapterLauncher,
  connectOpenVpnClient,
  nodeModulesDir,
  type OpenVpnServer,
  openvpnRequirements,
  startOpenVpnServer,
} from '../helpers/openvpn';
import { describeWith } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { AdapterTestWorld, type DecisionEndpoint, startDecisionEndpointForAdapterTests } from './support/decision-endpoint-for-adapter-tests';

const TOKEN = 'hook-token-abcdef0123456789';
const policy: DecisionPolicy = {
  version: 'e2e-hook-1',
  allowedPlatforms: [...PLATFORMS],
  usernameRule: 'not_checked',
  maxCertificateAgeSeconds: null,
  ttlSeconds: 3600,
};

async function until(check: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describeWith(openvpnRequirements, 'OpenVPN 2.6 with the script-hook adapter (real openvpn on loopback)', () => {
  let work: string;
  let pki: TestPki;
  let world: AdapterTestWorld;
  let endpoint: DecisionEndpoint;
  let server: OpenVpnServer;
  let cachePath: string;
  const certs: Record<string, TestCert> = {};

  // Deferred answers reach the client on its push-request cycle (recipe: up to ~6 s): long client hand-window.
  const client = (name: string, cert: TestCert, extra: { keepRunning?: boolean; handWindowSeconds?: number; extraArgs?: string[] } = {}) =>
    connectOpenVpnClient({
      workDir: path.join(work, 'clients'),
      name,
      port: server.port,
      caFile: pki.caCertPath,
      certFile: cert.certPath,
      keyFile: cert.keyPath,
      handWindowSeconds: extra.handWindowSeconds ?? 20,
      timeoutMs: 25_000,
      ...extra,
    });

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-ovpn-hook-'));
    pki = createTestPki(path.join(work, 'pki'));
    world = new AdapterTestWorld();
    for (const [name, status] of [['allowed', undefined], ['suspended', 'suspended'], ['cached', 'revoked']] as const) {
      const c = pki.issueDevice(name);
      world.addDevice(c.deviceId!, status ? { status } : {});
      world.addCertificate({ ...c, deviceId: c.deviceId! });
      certs[name] = c;
    }
    endpoint = await startDecisionEndpointForAdapterTests({ token: TOKEN, policy, ourIssuers: [pki.caSubject], world });
    const launcher = buildAdapterLauncher(path.join(work, 'build'));
    cachePath = path.join(work, 'decision-cache.json');
    const tokenFile = path.join(work, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    // OpenVPN rejects config lines over 256 characters: options go into a --config file, as in docker/openvpn.
    const optionsFile = path.join(work, 'openvpn-hook.conf');
    writeFileSync(
      optionsFile,
      [`gateway ${endpoint.url}`, `token-file ${tokenFile}`, 'gateway-id ovpn-hook-e2e', 'deadline-ms 1500', `cache ${cachePath}`].join('\n'),
    );
    const base = `${process.execPath} ${launcher} hook --config ${optionsFile}`;
    server = await startOpenVpnServer({
      workDir: path.join(work, 'server'),
      caFile: pki.caCertPath,
      certFile: pki.server.certPath,
      keyFile: pki.server.keyPath,
      auth: {
        kind: 'hook',
        command: base,
        tlsVerifyCommand: `${base} --tls-verify-miss defer`,
        hooks: ['tls-verify', 'auth-user-pass-verify', 'client-connect', 'client-disconnect'],
        env: { NODE_PATH: nodeModulesDir() },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await endpoint?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('allows an active device through deferred auth-user-pass-verify and deferred client-connect', async () => {
    const { result, live } = await client('allowed', certs.allowed!, { keepRunning: true, extraArgs: ['--explicit-exit-notify', '1'] });
    expect(result.outcome).toBe('connected');
    expect(server.log()).toMatch(/authentication deferred/);
    const hooks = endpoint.calls
      .filter((c) => c.response?.device_id === certs.allowed!.deviceId)
      .map((c) => (c.body as { gateway: { hook: string } }).gateway.hook);
    expect(hooks).toEqual(expect.arrayContaining(['auth', 'client-connect']));
    // client-disconnect reports the session once the client leaves.
    await live!.stop();
    expect(
      await until(() =>
        endpoint.calls.some((c) => (c.body as { event?: string }).event === 'disconnect' && c.response?.device_id === certs.allowed!.deviceId),
      ),
    ).toBe(true);
    const report = endpoint.calls.find((c) => (c.body as { event?: string }).event === 'disconnect')!.body as {
      gateway: { hook: string };
      session: { bytes_sent: number; bytes_received: number; duration_seconds: number };
    };
    expect(report.gateway.hook).toBe('client-disconnect');
    expect(report.session.bytes_sent).toBeGreaterThan(0);
    expect(report.session.bytes_received).toBeGreaterThan(0);
    expect(report.session.duration_seconds).toBeGreaterThanOrEqual(0);
  });

  it('denies a suspended device with AUTH_FAILED carrying the reason written to $auth_failed_reason_file', async () => {
    const { result } = await client('suspended', certs.suspended!);
    expect(result.outcome).toBe('auth_failed');
    expect(result.authFailedMessage).toContain('[DEVICE_SUSPENDED, Ref ');
  });

  it('refuses a device with a cached deny already in --tls-verify, without asking devicegate again', async () => {
    const first = await client('cached-1', certs.cached!);
    expect(first.result.outcome).toBe('auth_failed');
    expect(first.result.authFailedMessage).toContain('DEVICE_REVOKED');
    const cache = JSON.parse(readFileSync(cachePath, 'utf8')) as { entries: Record<string, { decision: string }> };
    expect(cache.entries[certs.cached!.sha256]?.decision).toBe('deny');
    const callsBefore = endpoint.calls.length;
    const second = await client('cached-2', certs.cached!, { handWindowSeconds: 3 });
    expect(second.result.outcome).toBe('tls_failed');
    expect(server.log()).toMatch(/VERIFY SCRIPT ERROR: depth=0/);
    expect(endpoint.calls.length).toBe(callsBefore);
  });

  it('denies an allowed device when devicegate does not answer within the deadline', async () => {
    endpoint.setBehaviour({ kind: 'slow', delayMs: 3000 });
    try {
      // a fresh certificate of an active device, so no cached allow can answer for it
      const c = pki.issueDevice('slow');
      world.addDevice(c.deviceId!);
      world.addCertificate({ ...c, deviceId: c.deviceId! });
      const { result } = await client('slow', c);
      expect(result.outcome).toBe('auth_failed');
      expect(result.authFailedMessage).toContain('GATEWAY_UNAVAILABLE');
    } finally {
      endpoint.setBehaviour({ kind: 'normal' });
    }
  });
});
