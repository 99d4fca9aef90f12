/**
 * Real OpenVPN 2.6 with the shipped C plugin (docker/openvpn/plugin/devicegate-openvpn-plugin.c, compiled here by
 * scripts/build-openvpn-plugin.sh) deciding tls-verify inside the OpenVPN process against the REAL devicegate. The
 * scenarios it shares with the sh hook (support/tls-verify-adapter-cases.ts: allow, cached allow, unregistered,
 * suspended, revoked, devicegate faults) plus what only the plugin does: the cache entries it writes, outages that are
 * not cached, the OpenVPN chain check before it is asked, and refusing to load with a plain-http token channel.
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildOpenVpnPlugin, type OpenVpnServer, openvpnRequirements, startOpenVpnServer } from '../helpers/openvpn';
import { describeWith, pathExists, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';
import { connectTlsVerifyClient, DEVICEGATE_FAULTS, tlsVerifyAdapterCases } from './support/tls-verify-adapter-cases';

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

    const connect = (name: string, cert: TestCert) => connectTlsVerifyClient({ port: server.port, workDir: work, caFile: pki.caCertPath }, name, cert);

    beforeAll(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'dg-ovpn-plugin-'));
      pluginPath = path.join(work, 'devicegate-openvpn-plugin.so');
      buildOpenVpnPlugin(pluginPath);
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

    tlsVerifyAdapterCases(() => ({ gw, proxy, gatewayId: 'ovpn-plugin-e2e', connect }));

    const cacheEntry = (cert: TestCert): [string, number] => {
      const fp = new X509Certificate(readFileSync(cert.certPath)).fingerprint256.replace(/:/g, '').toLowerCase();
      const [verdict, expires] = readFileSync(path.join(cacheDir, fp), 'utf8').trim().split(' ');
      return [verdict as string, Number(expires)];
    };

    it('runs as a plugin inside OpenVPN and caches an allow in the shared cache format', async () => {
      const cert = await gw.enrollDevice('cache-allow');
      expect((await connect('cache-allow', cert)).result.outcome).toBe('connected');
      expect(server.log()).toMatch(/PLUGIN_INIT: POST .*devicegate-openvpn-plugin\.so.*intercepted=PLUGIN_TLS_VERIFY/);
      const [verdict, expires] = cacheEntry(cert);
      expect(verdict).toBe('allow');
      expect(expires).toBeGreaterThan(Date.now() / 1000);
    });

    it('caches an answered deny only briefly (5 s)', async () => {
      const cert = await gw.enrollDevice('cache-deny');
      await gw.setStatus(cert.deviceId!, 'suspended', 'reported lost');
      expect((await connect('cache-deny', cert)).result.outcome).toBe('tls_failed');
      const [verdict, expires] = cacheEntry(cert);
      expect(verdict).toBe('deny');
      expect(expires).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 5);
    });

    it('refuses a self-signed "private laptop" certificate before the plugin is asked (OpenVPN chain check)', async () => {
      const calls = proxy.decisionCalls.length;
      expect((await connect('private', pki.selfSigned('private-laptop'))).result.outcome).toBe('tls_failed');
      expect(proxy.decisionCalls.length).toBe(calls);
    });

    it.each(DEVICEGATE_FAULTS)('does not cache the deny of an outage (%s): the device connects once devicegate is back', async (_label, fault) => {
      const cert = await gw.enrollDevice(`outage-${fault.kind}`);
      proxy.setFault(fault);
      try {
        expect((await connect(`outage-${fault.kind}`, cert)).result.outcome).toBe('tls_failed');
      } finally {
        proxy.setFault({ kind: 'none' });
      }
      expect((await connect(`outage-${fault.kind}-after`, cert)).result.outcome).toBe('connected');
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
