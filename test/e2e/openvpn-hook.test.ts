/**
 * Real OpenVPN 2.6 with the script-hook adapter (`devicegate-openvpn hook`, the real launcher in bin/, run by
 * OpenVPN itself) against the REAL devicegate (support/devicegate.ts): tls-verify from the local cache, deferred
 * auth-user-pass-verify and client-connect through OpenVPN's control files, client-disconnect reporting bytes and
 * duration into devicegate's audit log (`vpn.session_end`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildAdapterLauncher,
  connectOpenVpnClient,
  nodeModulesDir,
  type OpenVpnServer,
  openvpnRequirements,
  startOpenVpnServer,
} from '../helpers/openvpn';
import { describeWith, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway, until } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';

describeWith([...openvpnRequirements, tool('openssl')], 'OpenVPN 2.6 with the script-hook adapter against devicegate (real openvpn on loopback)', () => {
  let work: string;
  let pki: TestPki;
  let gw: LiveGateway;
  let proxy: FaultyProxy;
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
    gw = await startLiveGateway(path.join(work, 'devicegate'));
    proxy = await startFaultyProxy(gw.url);
    certs.allowed = await gw.enrollDevice('allowed');
    certs.suspended = await gw.enrollDevice('suspended');
    await gw.setStatus(certs.suspended.deviceId!, 'suspended');
    certs.cached = await gw.enrollDevice('cached');
    await gw.setStatus(certs.cached.deviceId!, 'suspended');

    const launcher = buildAdapterLauncher(path.join(work, 'build'));
    cachePath = path.join(work, 'decision-cache.json');
    const tokenFile = path.join(work, 'token');
    writeFileSync(tokenFile, `${gw.concentratorToken}\n`, { mode: 0o600 });
    // OpenVPN rejects config lines over 256 characters: options go into a --config file, as in docker/openvpn.
    const optionsFile = path.join(work, 'openvpn-hook.conf');
    writeFileSync(
      optionsFile,
      [`gateway ${proxy.url}`, `token-file ${tokenFile}`, 'gateway-id ovpn-hook-e2e', 'deadline-ms 1500', `cache ${cachePath}`].join('\n'),
    );
    const base = `${process.execPath} ${launcher} hook --config ${optionsFile}`;
    server = await startOpenVpnServer({
      workDir: path.join(work, 'server'),
      caFile: gw.chainPath,
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
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await gw?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('connects an enrolled device through deferred auth-user-pass-verify and client-connect, and audits the session end', async () => {
    const id = certs.allowed!.deviceId!;
    const { result, live } = await client('allowed', certs.allowed!, { keepRunning: true, extraArgs: ['--explicit-exit-notify', '1'] });
    expect(result.outcome).toBe('connected');
    expect(server.log()).toMatch(/authentication deferred/);
    const hooks = (await gw.decisions({ deviceId: id })).filter((d) => d.decision === 'allow').map((d) => d.concentrator.hook);
    expect(hooks).toEqual(expect.arrayContaining(['auth', 'client-connect']));
    // client-disconnect reports the session once the client leaves.
    await live!.stop();
    expect(await until(async () => (await gw.sessionEnds(id)).length > 0, 15_000)).toBe(true);
    const [end] = await gw.sessionEnds(id);
    expect(end).toMatchObject({ deviceId: id, concentrator: { id: 'ovpn-hook-e2e', kind: 'openvpn', hook: 'client-disconnect' } });
    expect(end!.bytesSent as number).toBeGreaterThan(0);
    expect(end!.bytesReceived as number).toBeGreaterThan(0);
    expect(end!.durationSeconds as number).toBeGreaterThanOrEqual(0);
    expect((await gw.decisions({ deviceId: id })).some((d) => d.event === 'disconnect')).toBe(true);
  });

  it('refuses a suspended device with AUTH_FAILED carrying the reason written to $auth_failed_reason_file', async () => {
    const { result } = await client('suspended', certs.suspended!);
    expect(result.outcome).toBe('auth_failed');
    expect(result.authFailedMessage).toContain('[DEVICE_SUSPENDED, Ref ');
    expect((await gw.decisions({ deviceId: certs.suspended!.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'DEVICE_SUSPENDED' });
  });

  it('refuses a device with a cached deny already in --tls-verify, without asking devicegate again', async () => {
    const id = certs.cached!.deviceId!;
    const first = await client('cached-1', certs.cached!);
    expect(first.result.outcome).toBe('auth_failed');
    expect(first.result.authFailedMessage).toContain('DEVICE_SUSPENDED');
    const cache = JSON.parse(readFileSync(cachePath, 'utf8')) as { entries: Record<string, { decision: string }> };
    expect(cache.entries[certs.cached!.sha256]?.decision).toBe('deny');
    const asked = (await gw.decisions({ deviceId: id })).length;
    const second = await client('cached-2', certs.cached!, { handWindowSeconds: 3 });
    expect(second.result.outcome).toBe('tls_failed');
    expect(server.log()).toMatch(/VERIFY SCRIPT ERROR: depth=0/);
    expect((await gw.decisions({ deviceId: id })).length).toBe(asked);
  });

  it('refuses an enrolled device when devicegate does not answer within the deadline', async () => {
    proxy.setFault({ kind: 'slow', delayMs: 3000 });
    try {
      // a fresh certificate of an active device, so no cached allow can answer for it
      const c = await gw.enrollDevice('slow');
      const { result } = await client('slow', c);
      expect(result.outcome).toBe('auth_failed');
      expect(result.authFailedMessage).toContain('GATEWAY_UNAVAILABLE');
    } finally {
      proxy.setFault({ kind: 'none' });
    }
  });
});
