/**
 * Real OpenVPN 2.6 with the shipped POSIX-sh `--tls-verify` hook (docker/openvpn/devicegate-tls-verify.sh) against
 * the REAL devicegate: the synchronous path that avoids OpenVPN's 1 s deferred-auth tick. An enrolled device
 * connects; an unregistered device, a suspended device and a revoked certificate are refused with their reason in
 * the audit log; a cached allow is reused without asking devicegate; a slow or failing devicegate means deny.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectOpenVpnClient, type OpenVpnServer, openvpnRequirements, startOpenVpnServer } from '../helpers/openvpn';
import { describeWith, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';

const HOOK = path.resolve(__dirname, '..', '..', 'docker', 'openvpn', 'devicegate-tls-verify.sh');

describeWith([...openvpnRequirements, tool('openssl'), tool('curl')], 'OpenVPN 2.6 with the sh tls-verify hook against devicegate (real openvpn on loopback)', () => {
  let work: string;
  let pki: TestPki;
  let gw: LiveGateway;
  let proxy: FaultyProxy;
  let server: OpenVpnServer;

  const connect = (name: string, cert: TestCert) =>
    connectOpenVpnClient({
      workDir: path.join(work, 'clients'),
      name,
      port: server.port,
      caFile: pki.caCertPath,
      certFile: cert.certPath,
      keyFile: cert.keyPath,
      handWindowSeconds: 3,
      timeoutMs: 20_000,
    });

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-ovpn-sh-'));
    pki = createTestPki(path.join(work, 'pki'));
    gw = await startLiveGateway(path.join(work, 'devicegate'));
    proxy = await startFaultyProxy(gw.url);
    const tokenFile = path.join(work, 'token');
    writeFileSync(tokenFile, gw.concentratorToken, { mode: 0o600 });
    mkdirSync(path.join(work, 'cache'));
    server = await startOpenVpnServer({
      workDir: path.join(work, 'server'),
      caFile: gw.chainPath,
      certFile: pki.server.certPath,
      keyFile: pki.server.keyPath,
      auth: {
        kind: 'hook',
        command: HOOK,
        hooks: ['tls-verify'],
        env: {
          DEVICEGATE_URL: proxy.url,
          DEVICEGATE_TOKEN_FILE: tokenFile,
          DEVICEGATE_GATEWAY_ID: 'ovpn-sh-e2e',
          DEVICEGATE_CACHE_DIR: path.join(work, 'cache'),
        },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await gw?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('connects an enrolled device, audited as an allow from the tls-verify hook', async () => {
    const cert = await gw.enrollDevice('laptop');
    const { result } = await connect('laptop', cert);
    expect(result.outcome).toBe('connected');
    const [d] = await gw.decisions({ deviceId: cert.deviceId! });
    expect(d).toMatchObject({ decision: 'allow', reason: 'OK', concentrator: { id: 'ovpn-sh-e2e', kind: 'openvpn', hook: 'tls-verify' } });
  });

  it('reuses a cached allow without asking devicegate again', async () => {
    const cert = await gw.enrollDevice('repeat');
    expect((await connect('repeat-1', cert)).result.outcome).toBe('connected');
    const calls = proxy.decisionCalls.length;
    expect((await connect('repeat-2', cert)).result.outcome).toBe('connected');
    expect(proxy.decisionCalls.length).toBe(calls);
  });

  it('refuses a certificate of a device that is not in the inventory (CERT_UNKNOWN or DEVICE_NOT_REGISTERED)', async () => {
    const cert = await gw.issueForUnknownDevice('ghost');
    expect((await connect('ghost', cert)).result.outcome).toBe('tls_failed');
    const [d] = await gw.decisions({ deviceId: cert.deviceId! });
    expect(d?.decision ?? 'deny').toBe('deny');
  });

  it('refuses a suspended device with DEVICE_SUSPENDED in the audit log', async () => {
    const cert = await gw.enrollDevice('suspended');
    await gw.setStatus(cert.deviceId!, 'suspended', 'reported lost');
    expect((await connect('suspended', cert)).result.outcome).toBe('tls_failed');
    expect((await gw.decisions({ deviceId: cert.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'DEVICE_SUSPENDED' });
  });

  it('refuses a revoked certificate with CERT_REVOKED in the audit log', async () => {
    const cert = await gw.enrollDevice('revoked');
    await gw.revokeCertificate(cert);
    expect((await connect('revoked', cert)).result.outcome).toBe('tls_failed');
    expect((await gw.decisions({ deviceId: cert.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'CERT_REVOKED' });
  });

  it.each([
    ['devicegate answers too slowly', { kind: 'slow', delayMs: 2500 }],
    ['devicegate answers HTTP 500', { kind: 'status', status: 500 }],
    ['devicegate answers a truncated allow', { kind: 'garbage' }],
  ] as const)('refuses an enrolled device when %s (fail closed)', async (_label, fault) => {
    const cert = await gw.enrollDevice(`fault-${fault.kind}`);
    proxy.setFault(fault);
    try {
      expect((await connect(`fault-${fault.kind}`, cert)).result.outcome).toBe('tls_failed');
    } finally {
      proxy.setFault({ kind: 'none' });
    }
  });
});
