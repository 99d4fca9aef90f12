/**
 * Real strongSwan 5.9 charon (IKEv2, childless) with eap-radius → real FreeRADIUS (EAP-TLS, check-eap-tls, rlm_rest)
 * → the REAL devicegate (support/devicegate.ts), with device certificates from devicegate's CA. strongSwan and
 * FreeRADIUS run inside a private network namespace (loopback only); devicegate stays in the test's namespace.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeWith, tool } from '../helpers/requirements';
import { startStrongSwanLab, strongswanDn, type StrongSwanLab, strongswanRequirements } from '../helpers/strongswan';
import { createTestPki, type TestCert } from '../helpers/test-pki';
import { type LiveGateway, startLiveGateway } from './support/devicegate';

describeWith([...strongswanRequirements, tool('openssl')], 'strongSwan 5.9 eap-radius → FreeRADIUS → devicegate (real charon, childless IKE)', () => {
  let work: string;
  let gw: LiveGateway;
  let lab: StrongSwanLab;
  const certs: Record<string, TestCert> = {};

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'dg-swan-'));
    const pki = createTestPki(path.join(work, 'pki'));
    gw = await startLiveGateway(path.join(work, 'devicegate'));
    certs.allowed = await gw.enrollDevice('allowed');
    certs.suspended = await gw.enrollDevice('suspended');
    await gw.setStatus(certs.suspended.deviceId!, 'suspended');
    certs.unregistered = await gw.issueForUnknownDevice('unregistered');
    certs.otherCa = pki.issueFromOtherCa('other-ca');
    const trust = path.join(work, 'radius-client-trust.pem');
    writeFileSync(trust, gw.chainPem + readFileSync(pki.otherCaCertPath, 'utf8'));
    lab = await startStrongSwanLab({
      workDir: path.join(work, 'lab'),
      gatewayUrl: gw.url,
      token: gw.concentratorToken,
      radiusClientCaFile: trust,
      serverCaFile: pki.caCertPath,
      serverCertFile: pki.server.certPath,
      serverKeyFile: pki.server.keyPath,
      serverId: strongswanDn(pki.server.subject),
      clients: Object.entries(certs).map(([name, c]) => ({ name, certFile: c.certPath, keyFile: c.keyPath, id: strongswanDn(c.subject) })),
    });
  }, 90_000);

  afterAll(async () => {
    await lab?.stop();
    await gw?.close();
    if (work && !process.env.KEEP_E2E) rmSync(work, { recursive: true, force: true });
  });

  it('establishes the IKE_SA of an enrolled device (RADIUS Access-Accept from devicegate)', async () => {
    const r = await lab.initiate('allowed');
    expect(r.established).toBe(true);
    expect(lab.responderLog()).toMatch(/received RADIUS Access-Accept/);
    const [d] = await gw.decisions({ deviceId: certs.allowed!.deviceId! });
    expect(d).toMatchObject({ decision: 'allow', reason: 'OK', concentrator: { kind: 'freeradius', hook: 'radius-authorize' } });
  });

  it.each([
    ['a suspended device', 'suspended', 'DEVICE_SUSPENDED'],
    ["a certificate of devicegate's CA whose device is not in the inventory", 'unregistered', 'DEVICE_NOT_REGISTERED'],
    ['a certificate from another CA RADIUS trusts', 'otherCa', 'CERT_NOT_OURS'],
  ])('refuses %s (EAP_FAILURE, AUTH_FAILED) and devicegate audits the reason', async (_label, name, reason) => {
    const before = (await gw.decisions({ reason })).length;
    const r = await lab.initiate(name);
    expect(r.established).toBe(false);
    expect(r.output).toMatch(/received EAP_FAILURE|AUTH_FAILED/);
    const after = await gw.decisions({ reason });
    expect(after.length).toBe(before + 1);
    expect(after[0]).toMatchObject({ decision: 'deny', reason, concentrator: { kind: 'freeradius' } });
  });
});
