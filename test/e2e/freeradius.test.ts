/**
 * Real FreeRADIUS 3.2 with EAP-TLS (eapol_test) and devicegate's shipped rlm_rest / check-eap-tls / eap snippets
 * against the REAL devicegate (support/devicegate.ts): rlm_rest calls `POST /v1/adapters/freeradius/authorize` with
 * the concentrator token, and the eap module checks every client certificate with devicegate's OCSP responder
 * (`/v1/ocsp`, `softfail = no`). Device certificates come from devicegate's CA; every decision is looked up in its
 * audit log.
 *
 * Two radiusd instances: `radius` is the production shape (OCSP on, rlm_rest straight to devicegate); `noOcsp` has
 * OCSP off and reaches devicegate through a proxy that can break the path (support/faulty-proxy.ts), to show that
 * devicegate's own decision refuses revoked and foreign certificates too, and that every failure is a reject.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type FreeRadius, freeradiusRequirements, runEapolTest, startFreeRadius } from '../helpers/freeradius';
import { describeWith, tool } from '../helpers/requirements';
import { createTestPki, type TestCert, type TestPki } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway } from './support/devicegate';
import { type FaultyProxy, startFaultyProxy } from './support/faulty-proxy';

describeWith([...freeradiusRequirements, tool('openssl')], 'FreeRADIUS 3.2 EAP-TLS with OCSP and rlm_rest → devicegate (real radiusd + eapol_test)', () => {
  let work: string;
  let pki: TestPki;
  let gw: LiveGateway;
  let proxy: FaultyProxy;
  let trust: string;
  let radius: FreeRadius;
  let noOcsp: FreeRadius;
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

  const radiusd = (name: string, o: { gatewayUrl: string; token?: string; ocspUrl?: string | null }) =>
    startFreeRadius({
      workDir: path.join(work, name),
      gatewayUrl: o.gatewayUrl,
      token: o.token ?? gw.concentratorToken,
      clientCaFile: trust,
      serverCertFile: pki.server.certPath,
      serverKeyFile: pki.server.keyPath,
      ocspUrl: o.ocspUrl ?? null,
    });

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-radius-'));
    pki = createTestPki(path.join(work, 'pki'));
    gw = await startLiveGateway(path.join(work, 'devicegate'), { env: { DEVICEGATE_DECISIONS__ALLOWED_PLATFORMS: '["windows","linux"]' } });
    proxy = await startFaultyProxy(gw.url);
    certs.allowed = await gw.enrollDevice('allowed');
    certs.suspended = await gw.enrollDevice('suspended');
    await gw.setStatus(certs.suspended.deviceId!, 'suspended');
    certs.macos = await gw.enrollDevice('macos', { platform: 'macos' });
    certs.unregistered = await gw.issueForUnknownDevice('unregistered');
    certs.revoked = await gw.enrollDevice('revoked');
    await gw.revokeCertificate(certs.revoked);
    certs.retired = await gw.enrollDevice('retired');
    await gw.setStatus(certs.retired.deviceId!, 'retired');
    certs.otherCa = pki.issueFromOtherCa('other-ca');
    certs.privateLaptop = pki.selfSigned('private-laptop');
    // RADIUS trusts devicegate's device CA chain and the city's other CA.
    trust = path.join(work, 'radius-client-trust.pem');
    writeFileSync(trust, gw.chainPem + readFileSync(pki.otherCaCertPath, 'utf8'));
    radius = await radiusd('radius', { gatewayUrl: gw.url, ocspUrl: `${gw.url}/v1/ocsp` });
    noOcsp = await radiusd('radius-no-ocsp', { gatewayUrl: proxy.url });
  }, 90_000);

  afterAll(async () => {
    await radius?.stop();
    await noOcsp?.stop();
    await proxy?.close();
    await gw?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('accepts an enrolled device (OCSP good from devicegate, rlm_rest allow) and puts the decision id into Class', async () => {
    const logBefore = radius.log().length;
    const r = await eap('allowed', certs.allowed!);
    expect(r.success).toBe(true);
    expect(r.output).toMatch(/code=2 \(Access-Accept\)/);
    const log = radius.log().slice(logBefore);
    expect(log).toMatch(/ocsp: Cert status: good/);
    const [d] = await gw.decisions({ deviceId: certs.allowed!.deviceId! });
    // The serial reached devicegate as FreeRADIUS's bare hex and matched the record.
    expect(d).toMatchObject({ decision: 'allow', reason: 'OK', concentrator: { kind: 'freeradius', hook: 'radius-authorize' }, cert: { serialHex: certs.allowed!.serialDerHex } });
    expect(log).toContain(`Class = 0x${Buffer.from(`dec:${d!.decisionId}`).toString('hex')}`);
  });

  it.each([
    ['a suspended device', 'suspended', 'DEVICE_SUSPENDED'],
    ['a device of a platform the policy does not allow', 'macos', 'PLATFORM_NOT_ALLOWED'],
    ["a certificate of devicegate's CA whose device is not in the inventory", 'unregistered', 'DEVICE_NOT_REGISTERED'],
  ])('rejects %s: OCSP good, devicegate denies (401 + Reply-Message), audited', async (_label, key, reason) => {
    const logBefore = radius.log().length;
    const r = await eap(key, certs[key]!);
    expect(r.success).toBe(false);
    expect(r.output).toMatch(/code=3 \(Access-Reject\)/);
    const [d] = await gw.decisions({ reason });
    expect(d).toMatchObject({ decision: 'deny', reason, cert: { serialHex: certs[key]!.serialDerHex } });
    const log = radius.log().slice(logBefore);
    expect(log).toMatch(/\[rest\] = reject/);
    expect(log).toContain(`[${reason}, Ref ${d!.decisionId.slice(0, 8)}]`);
  });

  it.each([
    ['a revoked certificate', 'revoked', /ocsp: Cert status: revoked/],
    ['a retired device (its certificates are revoked)', 'retired', /ocsp: Cert status: revoked/],
    ['a certificate from another CA RADIUS trusts (devicegate cannot vouch for it)', 'otherCa', /ocsp: (Cert status: unknown|Couldn't verify OCSP basic response)/],
  ])('rejects %s already at OCSP (softfail = no), before any decision', async (_label, key, ocspLine) => {
    const logBefore = radius.log().length;
    const decisionsBefore = (await gw.decisions()).length;
    const r = await eap(`ocsp-${key}`, certs[key]!);
    expect(r.success).toBe(false);
    expect(radius.log().slice(logBefore)).toMatch(ocspLine);
    expect((await gw.decisions()).length).toBe(decisionsBefore);
  });

  it.each([
    ['a revoked certificate', 'revoked', 'CERT_REVOKED'],
    ['a certificate from another CA RADIUS trusts', 'otherCa', 'CERT_NOT_OURS'],
  ])('rejects %s through devicegate\'s own decision as well when OCSP is off (the deny is audited)', async (_label, key, reason) => {
    const r = await eap(`no-ocsp-${key}`, certs[key]!, noOcsp);
    expect(r.success).toBe(false);
    expect(r.output).toMatch(/code=3 \(Access-Reject\)/);
    const [d] = await gw.decisions({ reason });
    expect(d).toMatchObject({ decision: 'deny', reason });
    expect(noOcsp.log()).toContain(`[${reason}, Ref ${d!.decisionId.slice(0, 8)}]`);
  });

  it('rejects a self-signed "private laptop" certificate in the TLS handshake, before any decision', async () => {
    const before = (await gw.decisions()).length;
    const r = await eap('private-laptop', certs.privateLaptop!);
    expect(r.success).toBe(false);
    expect((await gw.decisions()).length).toBe(before);
  });

  it.each([
    ['HTTP 404 (rlm_rest notfound: the stock check-eap-tls would accept)', { kind: 'status', status: 404 }, /\[rest\] = notfound[\s\S]*&Auth-Type := Reject/],
    ['HTTP 500', { kind: 'status', status: 500 }, /\[rest\] = fail/],
    ['HTTP 403', { kind: 'status', status: 403 }, /\[rest\] = userlock/],
    ['a body that is not JSON', { kind: 'garbage' }, /Malformed JSON data[\s\S]*\[rest\] = fail/],
    ['no answer within the rest timeout', { kind: 'slow', delayMs: 2500 }, /Timeout was reached[\s\S]*\[rest\] = fail/],
  ] as const)('rejects an enrolled device when the path to devicegate answers %s', async (_label, fault, moduleCode) => {
    proxy.setFault(fault);
    const logBefore = noOcsp.log().length;
    try {
      const r = await eap('faulty', certs.allowed!, noOcsp);
      expect(r.success).toBe(false);
      expect(r.output).toMatch(/code=3 \(Access-Reject\)/);
      const log = noOcsp.log().slice(logBefore);
      expect(log).toMatch(moduleCode);
      // notfound reaches the explicit "else Auth-Type := Reject" of check-eap-tls; fail/userlock end the section early.
      expect(log).toMatch(/Sent Access-Reject/);
    } finally {
      proxy.setFault({ kind: 'none' });
    }
  });

  it('accepts the same enrolled device through the no-OCSP instance once the path is healthy again (the proxy is transparent)', async () => {
    const r = await eap('healthy-again', certs.allowed!, noOcsp);
    expect(r.success).toBe(true);
  });

  it('rejects everything when radiusd holds a wrong bearer token (devicegate answers 401)', async () => {
    const wrong = await radiusd('radius-wrong-token', { gatewayUrl: gw.url, token: `dg_${'0'.repeat(32)}_${'A'.repeat(43)}` });
    try {
      const r = await eap('wrong-token', certs.allowed!, wrong);
      expect(r.success).toBe(false);
      expect(wrong.log()).toMatch(/\[rest\] = reject/);
    } finally {
      await wrong.stop();
    }
  });

  it('rejects an enrolled device when OCSP is enabled with softfail = no and the responder is down', async () => {
    const down = await radiusd('radius-ocsp-down', { gatewayUrl: gw.url, ocspUrl: 'http://127.0.0.1:9/' });
    try {
      const r = await eap('ocsp-down', certs.allowed!, down);
      expect(r.success).toBe(false);
      expect(down.log()).toMatch(/ocsp: Unable to check certificate, failing/);
    } finally {
      await down.stop();
    }
  });
});
