/**
 * Real OpenVPN 2.6 with the shipped C plugin (docker/openvpn/plugin/devicegate-openvpn-plugin.c, compiled here by
 * scripts/build-openvpn-plugin.sh) deciding tls-verify inside the OpenVPN process against the REAL devicegate: an
 * enrolled device connects; an unregistered device, a suspended device and a revoked certificate are refused with
 * their reason in the audit log; a cached allow is reused without asking devicegate; a slow, failing or garbled
 * devicegate means deny and is not cached; a plugin set up to send the token over plain http to a non-loopback
 * host refuses to load (OpenVPN does not start).
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectOpenVpnClient, type OpenVpnServer, openvpnRequirements, startOpenVpnServer } from '../helpers/openvpn';
import { describeWith, pathExists, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';

const ROOT = path.resolve(__dirname, '..', '..');

describeWith(
  [
    ...openvpnRequirements,
    tool('openssl'),
    tool('cc', 'apt-get install -y gcc'),
    pathExists('/usr/include/openvpn/openvpn-plugin.h', 'apt-get install -y openvpn (ships openvpn-plugin.h)'),
    pathExists('/usr/include/x86_64-linux-gnu/curl/curl.h', 'apt-get install -y libcurl4-openssl-dev'),
  ],
  'OpenVPN 2.6 with the devicegate C plugin against devicegate (real openvpn on loopback)',
  () => {
    let work: string;
    let pki: TestPki;
    let gw: LiveGateway;
    let proxy: FaultyProxy;
    let server: OpenVpnServer;
    let pluginPath: string;
    let cacheDir: string;
    let tokenFile: string;

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
      work = mkdtempSync(path.join(os.tmpdir(), 'dg-ovpn-plugin-'));
      pluginPath = path.join(work, 'devicegate-openvpn-plugin.so');
      const build = spawnSync('sh', [path.join(ROOT, 'scripts', 'build-openvpn-plugin.sh'), pluginPath], { encoding: 'utf8' });
      if (build.status !== 0) throw new Error(`plugin build failed:\n${build.stdout}${build.stderr}`);
      pki = createTestPki(path.join(work, 'pki'));
      gw = await startLiveGateway(path.join(work, 'devicegate'));
      proxy = await startFaultyProxy(gw.url);
      tokenFile = path.join(work, 'token');
      writeFileSync(tokenFile, `${gw.concentratorToken}\n`, { mode: 0o600 });
      cacheDir = path.join(work, 'cache');
      mkdirSync(cacheDir);
      server = await startOpenVpnServer({
        workDir: path.join(work, 'server'),
        caFile: gw.chainPath,
        certFile: pki.server.certPath,
        keyFile: pki.server.keyPath,
        auth: {
          kind: 'plugin',
          path: pluginPath,
          args: [`url=${proxy.url}`, `token_file=${tokenFile}`, 'gateway_id=ovpn-plugin-e2e', `cache_dir=${cacheDir}`, 'timeout_ms=1000'],
        },
      });
    }, 90_000);

    afterAll(async () => {
      await server?.stop();
      await proxy?.close();
      await gw?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('connects an enrolled device, audited as an allow from the tls-verify plugin, and caches the allow', async () => {
      const cert = await gw.enrollDevice('laptop');
      const { result } = await connect('laptop', cert);
      expect(result.outcome).toBe('connected');
      const [d] = await gw.decisions({ deviceId: cert.deviceId! });
      expect(d).toMatchObject({ decision: 'allow', reason: 'OK', concentrator: { id: 'ovpn-plugin-e2e', kind: 'openvpn', hook: 'tls-verify' } });
      expect(server.log()).toMatch(/PLUGIN_INIT: POST .*devicegate-openvpn-plugin\.so.*intercepted=PLUGIN_TLS_VERIFY/);
      const entries = readdirSync(cacheDir).filter((f) => /^[0-9a-f]{64}$/.test(f));
      expect(entries.length).toBeGreaterThanOrEqual(1);
      const [verdict, expires] = readFileSync(path.join(cacheDir, entries[0] as string), 'utf8').trim().split(' ');
      expect(verdict).toBe('allow');
      expect(Number(expires)).toBeGreaterThan(Date.now() / 1000);
    });

    it('reuses a cached allow without asking devicegate again', async () => {
      const cert = await gw.enrollDevice('repeat');
      expect((await connect('repeat-1', cert)).result.outcome).toBe('connected');
      const calls = proxy.decisionCalls.length;
      expect((await connect('repeat-2', cert)).result.outcome).toBe('connected');
      expect(proxy.decisionCalls.length).toBe(calls);
    });

    it('refuses a certificate of a device that is not in the inventory', async () => {
      const cert = await gw.issueForUnknownDevice('ghost');
      expect((await connect('ghost', cert)).result.outcome).toBe('tls_failed');
      const [d] = await gw.decisions({ deviceId: cert.deviceId! });
      expect(d?.decision ?? 'deny').toBe('deny');
    });

    it('refuses a suspended device with DEVICE_SUSPENDED in the audit log, and caches the deny briefly', async () => {
      const cert = await gw.enrollDevice('suspended');
      await gw.setStatus(cert.deviceId!, 'suspended', 'reported lost');
      expect((await connect('suspended', cert)).result.outcome).toBe('tls_failed');
      expect((await gw.decisions({ deviceId: cert.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'DEVICE_SUSPENDED' });
      const fp = new X509Certificate(readFileSync(cert.certPath)).fingerprint256.replace(/:/g, '').toLowerCase();
      const [verdict, expires] = readFileSync(path.join(cacheDir, fp), 'utf8').trim().split(' ');
      expect(verdict).toBe('deny');
      expect(Number(expires)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 5);
    });

    it('refuses a revoked certificate with CERT_REVOKED in the audit log', async () => {
      const cert = await gw.enrollDevice('revoked');
      await gw.revokeCertificate(cert);
      expect((await connect('revoked', cert)).result.outcome).toBe('tls_failed');
      expect((await gw.decisions({ deviceId: cert.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'CERT_REVOKED' });
    });

    it('refuses a self-signed "private laptop" certificate before the plugin is asked (OpenVPN chain check)', async () => {
      const calls = proxy.decisionCalls.length;
      expect((await connect('private', pki.selfSigned('private-laptop'))).result.outcome).toBe('tls_failed');
      expect(proxy.decisionCalls.length).toBe(calls);
    });

    it.each([
      ['devicegate answers too slowly', { kind: 'slow', delayMs: 2500 }],
      ['devicegate answers HTTP 500', { kind: 'status', status: 500 }],
      ['devicegate answers a truncated allow', { kind: 'garbage' }],
    ] as const)('refuses an enrolled device when %s (fail closed), without caching the failure', async (_label, fault) => {
      const cert = await gw.enrollDevice(`fault-${fault.kind}`);
      proxy.setFault(fault);
      try {
        expect((await connect(`fault-${fault.kind}`, cert)).result.outcome).toBe('tls_failed');
      } finally {
        proxy.setFault({ kind: 'none' });
      }
      // The outage is over: the next connect asks again and is allowed.
      expect((await connect(`fault-${fault.kind}-after`, cert)).result.outcome).toBe('connected');
    });

    it('a plugin configured to send the token over plain http to a non-loopback host refuses to load (token sniffing)', async () => {
      const bad = await startOpenVpnServer({
        workDir: path.join(work, 'server-bad'),
        caFile: gw.chainPath,
        certFile: pki.server.certPath,
        keyFile: pki.server.keyPath,
        auth: { kind: 'plugin', path: pluginPath, args: ['url=http://devicegate.example:8080', `token_file=${tokenFile}`] },
      }).catch((e: unknown) => e as Error);
      if (!(bad instanceof Error)) {
        await bad.stop();
        throw new Error('OpenVPN started with a plugin that sends the token in clear text');
      }
      expect(bad.message).toMatch(/url must be https|plugin/i);
    });
  },
);
