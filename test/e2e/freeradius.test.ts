/**
 * Real FreeRADIUS 3.2 with EAP-TLS (eapol_test) and devicegate's shipped rlm_rest / check-eap-tls / eap snippets,
 * against decision-endpoint-for-adapter-tests (the real rlm_rest mapping + normalise → gatherFacts → decide).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DecisionPolicy } from '../../src/policy/policy';
import { type FreeRadius, freeradiusRequirements, runEapolTest, startFreeRadius } from '../helpers/freeradius';
import { describeWith } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { AdapterTestWorld, type DecisionEndpoint, startDecisionEndpointForAdapterTests } from './support/decision-endpoint-for-adapter-tests';

const TOKEN = 'radius-token-0123456789abcdef';
const policy: DecisionPolicy = {
  version: 'e2e-radius-1',
  allowedPlatforms: ['windows', 'linux'],
  usernameRule: 'not_checked',
  maxCertificateAgeSeconds: null,
  ttlSeconds: 3600,
};

describeWith(freeradiusRequirements, 'FreeRADIUS 3.2 EAP-TLS with rlm_rest → devicegate (real radiusd + eapol_test)', () => {
  let work: string;
  let pki: TestPki;
  let world: AdapterTestWorld;
  let endpoint: DecisionEndpoint;
  let radius: FreeRadius;
  const certs: Record<string, TestCert> = {};

  const eap = (name: string, cert: TestCert, r: FreeRadius = radius) =>
    runEapolTest({
      workDir: path.join(work, 'eapol'),
      name,
      port: r.authPort,
      secret: r.secret,
      identity: cert.deviceId ?? name,
      caFile: pki.caCertPath,
      certFile: cert.certPath,
      keyFile: cert.keyPath,
    });

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-radius-'));
    pki = createTestPki(path.join(work, 'pki'));
    world = new AdapterTestWorld();
    const enrolled = (name: string, patch: Parameters<AdapterTestWorld['addDevice']>[1] = {}): TestCert => {
      const c = pki.issueDevice(name);
      world.addDevice(c.deviceId!, patch);
      world.addCertificate({ ...c, deviceId: c.deviceId! });
      return c;
    };
    certs.allowed = enrolled('allowed');
    certs.suspended = enrolled('suspended', { status: 'suspended' });
    certs.retired = enrolled('retired', { status: 'retired' });
    certs.macos = enrolled('macos', { platform: 'macos' });
    certs.revoked = enrolled('revoked');
    world.revokeCertificate(certs.revoked.serialDerHex, certs.revoked.deviceId);
    certs.unregistered = pki.issueDevice('unregistered');
    world.addCertificate({ ...certs.unregistered, deviceId: certs.unregistered.deviceId! });
    certs.unknown = pki.issueDevice('unknown');
    certs.otherCa = pki.issueFromOtherCa('other-ca');
    certs.privateLaptop = pki.selfSigned('private-laptop');
    endpoint = await startDecisionEndpointForAdapterTests({ token: TOKEN, policy, ourIssuers: [pki.caSubject], world });
    radius = await startFreeRadius({
      workDir: path.join(work, 'radius'),
      gatewayUrl: endpoint.url,
      token: TOKEN,
      clientCaFile: pki.trustBundlePath,
      serverCertFile: pki.server.certPath,
      serverKeyFile: pki.server.keyPath,
    });
  }, 60_000);

  afterAll(async () => {
    await radius?.stop();
    await endpoint?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('accepts an active device and puts the decision id into Class', async () => {
    const r = await eap('allowed', certs.allowed!);
    expect(r.success).toBe(true);
    expect(r.output).toMatch(/code=2 \(Access-Accept\)/);
    const call = endpoint.calls.find((c) => c.path === '/v1/adapters/freeradius/authorize' && c.response?.device_id === certs.allowed!.deviceId);
    expect(call?.status).toBe(200);
    const classHex = Buffer.from(`dec:${call!.response!.decision_id}`).toString('hex');
    expect(radius.log()).toContain(`Class = 0x${classHex}`);
    // The serial reached devicegate as FreeRADIUS's bare hex and matched the record.
    expect(call!.response!.reason_code).toBe('OK');
  });

  it.each([
    ['a revoked certificate', 'revoked', 'CERT_REVOKED'],
    ['a suspended device', 'suspended', 'DEVICE_SUSPENDED'],
    ['a retired device', 'retired', 'DEVICE_RETIRED'],
    ['a device of a platform the policy does not allow', 'macos', 'PLATFORM_NOT_ALLOWED'],
    ['a certificate of an unregistered device', 'unregistered', 'DEVICE_NOT_REGISTERED'],
    ['a certificate devicegate never issued', 'unknown', 'CERT_UNKNOWN'],
    ['a certificate from another CA RADIUS trusts', 'otherCa', 'CERT_NOT_OURS'],
  ])('rejects %s (401 + Reply-Message)', async (_label, key, reason) => {
    const before = endpoint.calls.length;
    const r = await eap(key, certs[key]!);
    expect(r.success).toBe(false);
    expect(r.output).toMatch(/code=3 \(Access-Reject\)/);
    const call = endpoint.calls.slice(before).find((c) => c.path === '/v1/adapters/freeradius/authorize');
    expect(call?.status).toBe(401);
    expect(call?.response?.reason_code).toBe(reason);
    expect(radius.log()).toContain(`[${reason}, Ref ${call!.response!.decision_id.slice(0, 8)}]`);
  });

  it('rejects a self-signed "private laptop" certificate in the TLS handshake, before any decision', async () => {
    const before = endpoint.calls.length;
    const r = await eap('private-laptop', certs.privateLaptop!);
    expect(r.success).toBe(false);
    expect(endpoint.calls.length).toBe(before);
  });

  it.each([
    ['HTTP 404 (rlm_rest notfound: the stock check-eap-tls would accept)', { kind: 'status', status: 404 }, /\[rest\] = notfound[\s\S]*&Auth-Type := Reject/],
    ['HTTP 500', { kind: 'status', status: 500 }, /\[rest\] = fail/],
    ['HTTP 403', { kind: 'status', status: 403 }, /\[rest\] = userlock/],
    ['a body that is not JSON', { kind: 'garbage' }, /Malformed JSON data[\s\S]*\[rest\] = fail/],
    ['no answer within the rest timeout', { kind: 'slow', delayMs: 2500 }, /Timeout was reached[\s\S]*\[rest\] = fail/],
  ] as const)('rejects an allowed device when devicegate answers %s', async (_label, behaviour, moduleCode) => {
    endpoint.setBehaviour(behaviour);
    const logBefore = radius.log().length;
    try {
      const r = await eap('faulty', certs.allowed!);
      expect(r.success).toBe(false);
      expect(r.output).toMatch(/code=3 \(Access-Reject\)/);
      const log = radius.log().slice(logBefore);
      expect(log).toMatch(moduleCode);
      // notfound reaches the explicit "else Auth-Type := Reject" of check-eap-tls; fail/userlock end the section early.
      expect(log).toMatch(/Sent Access-Reject/);
    } finally {
      endpoint.setBehaviour({ kind: 'normal' });
    }
  });

  it('rejects everything when radiusd holds a wrong bearer token (devicegate answers 401)', async () => {
    const wrong = await startFreeRadius({
      workDir: path.join(work, 'radius-wrong-token'),
      gatewayUrl: endpoint.url,
      token: 'not-the-token',
      clientCaFile: pki.trustBundlePath,
      serverCertFile: pki.server.certPath,
      serverKeyFile: pki.server.keyPath,
    });
    try {
      const r = await eap('wrong-token', certs.allowed!, wrong);
      expect(r.success).toBe(false);
      expect(wrong.log()).toMatch(/\[rest\] = reject/);
    } finally {
      await wrong.stop();
    }
  });

  it('rejects an allowed device when OCSP is enabled with softfail = no and the responder is down', async () => {
    const ocsp = await startFreeRadius({
      workDir: path.join(work, 'radius-ocsp'),
      gatewayUrl: endpoint.url,
      token: TOKEN,
      clientCaFile: pki.trustBundlePath,
      serverCertFile: pki.server.certPath,
      serverKeyFile: pki.server.keyPath,
      ocspUrl: 'http://127.0.0.1:9/',
    });
    try {
      const r = await eap('ocsp-down', certs.allowed!, ocsp);
      expect(r.success).toBe(false);
      expect(ocsp.log()).toMatch(/ocsp: Unable to check certificate, failing/);
    } finally {
      await ocsp.stop();
    }
  });
});
