/**
 * Real strongSwan 5.9 charon (IKEv2, childless) with eap-radius → real FreeRADIUS (EAP-TLS, check-eap-tls, rlm_rest)
 * → decision-endpoint-for-adapter-tests, all inside a private network namespace (loopback only).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PLATFORMS } from '../../src/domain/types';
import type { DecisionPolicy } from '../../src/policy/policy';
import { describeWith } from '../helpers/requirements';
import { startStrongSwanLab, strongswanDn, type StrongSwanLab, strongswanRequirements } from '../helpers/strongswan';
import { createTestPki, type TestCert } from '../helpers/test-pki';
import { AdapterTestWorld, type DecisionEndpoint, startDecisionEndpointForAdapterTests } from './support/decision-endpoint-for-adapter-tests';

const TOKEN = 'swan-token-0123456789abcdef';
const policy: DecisionPolicy = {
  version: 'e2e-swan-1',
  allowedPlatforms: [...PLATFORMS],
  usernameRule: 'not_checked',
  maxCertificateAgeSeconds: null,
  ttlSeconds: 3600,
};

describeWith(strongswanRequirements, 'strongSwan 5.9 eap-radius → FreeRADIUS → devicegate (real charon, childless IKE)', () => {
  let work: string;
  let endpoint: DecisionEndpoint;
  let lab: StrongSwanLab;
  const certs: Record<string, TestCert> = {};

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-swan-'));
    const pki = createTestPki(path.join(work, 'pki'));
    const world = new AdapterTestWorld();
    for (const [name, status] of [['allowed', 'active'], ['suspended', 'suspended']] as const) {
      const c = pki.issueDevice(name);
      world.addDevice(c.deviceId!, { status });
      world.addCertificate({ ...c, deviceId: c.deviceId! });
      certs[name] = c;
    }
    certs.unknown = pki.issueDevice('unknown');
    certs.otherCa = pki.issueFromOtherCa('other-ca');
    endpoint = await startDecisionEndpointForAdapterTests({ token: TOKEN, policy, ourIssuers: [pki.caSubject], world });
    lab = await startStrongSwanLab({
      workDir: path.join(work, 'lab'),
      gatewayUrl: endpoint.url,
      token: TOKEN,
      radiusClientCaFile: pki.trustBundlePath,
      serverCaFile: pki.caCertPath,
      serverCertFile: pki.server.certPath,
      serverKeyFile: pki.server.keyPath,
      serverId: strongswanDn(pki.server.subject),
      clients: Object.entries(certs).map(([name, c]) => ({ name, certFile: c.certPath, keyFile: c.keyPath, id: strongswanDn(c.subject) })),
    });
  }, 60_000);

  afterAll(async () => {
    await lab?.stop();
    await endpoint?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('establishes the IKE_SA of an active device (RADIUS Access-Accept from devicegate)', async () => {
    const r = await lab.initiate('allowed');
    expect(r.established).toBe(true);
    expect(lab.responderLog()).toMatch(/received RADIUS Access-Accept/);
    const call = endpoint.calls.find((c) => c.response?.device_id === certs.allowed!.deviceId);
    expect(call).toMatchObject({ path: '/v1/adapters/freeradius/authorize', status: 200 });
    expect(call!.response!.reason_code).toBe('OK');
  });

  it.each([
    ['a suspended device', 'suspended', 'DEVICE_SUSPENDED'],
    ['a certificate devicegate never issued', 'unknown', 'CERT_UNKNOWN'],
    ['a certificate from another CA RADIUS trusts', 'otherCa', 'CERT_NOT_OURS'],
  ])('refuses %s (EAP_FAILURE, AUTH_FAILED)', async (_label, name, reason) => {
    const before = endpoint.calls.length;
    const r = await lab.initiate(name);
    expect(r.established).toBe(false);
    expect(r.output).toMatch(/received EAP_FAILURE|AUTH_FAILED/);
    const call = endpoint.calls.slice(before).find((c) => c.path === '/v1/adapters/freeradius/authorize');
    expect(call?.status).toBe(401);
    expect(call?.response?.reason_code).toBe(reason);
  });
});
