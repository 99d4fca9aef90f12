/**
 * Real OpenVPN 2.6 with the shipped POSIX-sh `--tls-verify` hook (docker/openvpn/devicegate-tls-verify.sh) against
 * the REAL devicegate: the synchronous path that avoids OpenVPN's 1 s deferred-auth tick. An enrolled device
 * connects; an unregistered device, a suspended device and a revoked certificate are refused with their reason in
 * the audit log; a cached allow is reused without asking devicegate; a slow or failing devicegate means deny.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type OpenVpnServer, openvpnRequirements, startOpenVpnServer } from '../helpers/openvpn';
import { describeWith, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';
import { connectTlsVerifyClient, tlsVerifyAdapterCases } from './support/tls-verify-adapter-cases';

const HOOK = path.resolve(__dirname, '..', '..', 'docker', 'openvpn', 'devicegate-tls-verify.sh');

describeWith([...openvpnRequirements, tool('openssl'), tool('curl')], 'OpenVPN 2.6 with the sh tls-verify hook against devicegate (real openvpn on loopback)', () => {
  let work: string;
  let pki: TestPki;
  let gw: LiveGateway;
  let proxy: FaultyProxy;
  let server: OpenVpnServer;

  const connect = (name: string, cert: TestCert) => connectTlsVerifyClient({ port: server.port, workDir: work, caFile: pki.caCertPath }, name, cert);

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

  tlsVerifyAdapterCases(() => ({ gw, proxy, gatewayId: 'ovpn-sh-e2e', connect }));
});
