/**
 * devicegate-agent end to end: a real swtpm provisioned by a test manufacturer CA, the agent CLI (`main`) over
 * real HTTP against the real gateway (live-enrollment-server.ts), then renew. No TPM mock.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../../src/agent/cli';
import { ekHash } from '../../../src/agent/flows';
import { parseTrustAnchors, spkiEqual, spkiSha256Hex, verifyEnrollmentStart } from '../../../src/attestation';
import { DeviceTpm } from '../../../src/agent/tpm-device';
import { marshalPublic, parsePublic, publicToSpki, publicToTpm2b } from '../../../src/tpm';
import { describeWith, tool } from '../../helpers/requirements';
import { SwtpmHarness, type ManufacturerCa, type ProvisionedTpm, type RunningSwtpm } from '../../helpers/swtpm';
import { startLiveEnrollmentServer, type LiveEnrollmentServer } from './live-enrollment-server';

const run = promisify(execFile);

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

describeWith([tool('swtpm'), tool('swtpm_setup'), tool('openssl'), tool('tpm2_readpublic', 'apt-get install -y tpm2-tools')], 'devicegate-agent with a real swtpm', () => {
  let h: SwtpmHarness;
  let ca: ManufacturerCa;
  let tpm: RunningSwtpm;
  let provisioned: ProvisionedTpm;
  let server: LiveEnrollmentServer;
  let out: string;

  beforeAll(async () => {
    h = await SwtpmHarness.create();
    ca = await h.createManufacturerCa('Acme TPM');
    provisioned = await h.provisionTpm(ca);
    tpm = await h.startSwtpm(provisioned);
    server = await startLiveEnrollmentServer({ trustedRootsPem: ca.bundlePem });
    out = await mkdtemp(path.join(tmpdir(), 'devicegate-agent-'));
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await h?.dispose();
    if (out) await rm(out, { recursive: true, force: true });
  });

  /** One TPM, one inventory entry: the tests below share the device and take a fresh token each. */
  let registered: { deviceId: string; token: string } | null = null;
  async function officialDevice(): Promise<{ deviceId: string; token: string }> {
    if (!registered) {
      const hash = await ekHash({ tcti: tpm.tcti, log: () => undefined });
      registered = await server.register(hash.ekPublicSha256);
      return registered;
    }
    return { deviceId: registered.deviceId, token: await server.token(registered.deviceId) };
  }

  it('prints the EK hash IT registers, equal to the SHA-256 of the EK certificate key', async () => {
    const r = await runCli(['--tcti', tpm.tcti, '--json', 'ek-hash']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { ok: boolean; ekPublicSha256: string; ekCertificate: boolean };
    expect(j.ok).toBe(true);
    expect(j.ekCertificate).toBe(true);
    const ekCertSpki = new X509Certificate(provisioned.ekCertRsa).publicKey.export({ type: 'spki', format: 'der' });
    expect(j.ekPublicSha256).toBe(spkiSha256Hex(ekCertSpki));
  });

  it('matches what IT computes on Linux with tpm2-tools and openssl (documented inventory procedure)', async () => {
    const hash = (await ekHash({ tcti: tpm.tcti, log: () => undefined })).ekPublicSha256;
    const env = { ...process.env, TPM2TOOLS_TCTI: tpm.tcti };
    const dir = await mkdtemp(path.join(tmpdir(), 'devicegate-ekhash-'));
    try {
      // 1) From the EK itself: tpm2_readpublic writes the SubjectPublicKeyInfo DER with -f der.
      await run('tpm2_readpublic', ['-c', '0x81010001', '-f', 'der', '-o', path.join(dir, 'ek.der')], { env });
      expect(createHash('sha256').update(await readFile(path.join(dir, 'ek.der'))).digest('hex')).toBe(hash);
      // 2) From the EK certificate in NV: public key → DER → SHA-256.
      await run('tpm2_nvread', ['0x01c00002', '-o', path.join(dir, 'ek-cert.der')], { env });
      const { stdout } = await run('sh', ['-c', `openssl x509 -inform der -in ${dir}/ek-cert.der -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`]);
      expect(stdout.split(' ')[0]).toBe(hash);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('recreates a non-persisted EK from the TCG template: same key as the certificate, activation still works', async () => {
    const clone = await h.startSwtpm(await h.cloneTpm(provisioned));
    try {
      const c = clone.client();
      await c.evictControl(0x81010001, 0x81010001); // remove the persisted EK, as on many Linux machines
      expect(await c.tryReadPublic(0x81010001)).toBeNull();
      const dev = new DeviceTpm(c);
      const ek = await dev.ekPublic();
      const certSpki = new X509Certificate(provisioned.ekCertRsa).publicKey.export({ type: 'spki', format: 'der' });
      expect(spkiEqual(publicToSpki(ek.public), certSpki)).toBe(true);
      const ak = await dev.ensureAk('ecc');
      const s = verifyEnrollmentStart(
        { ekCertificate: provisioned.ekCertRsa, ekPublic: publicToTpm2b(marshalPublic(ek.public)), akPublic: ak.parsed.raw },
        { roots: parseTrustAnchors(ca.bundlePem), allowEkPublicOnly: false },
        Date.now() + 1000,
      );
      const secret = await dev.activateCredential(ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret);
      expect(secret.equals(s.challenge.secret)).toBe(true);
    } finally {
      await clone.stop();
    }
  });

  it('enrolls: start → ActivateCredential → Certify(nonce) → TPM-signed CSR → finish, then renews', async () => {
    const { deviceId, token } = await officialDevice();

    const r = await runCli(['--tcti', tpm.tcti, '--json', 'enroll', '--server', server.url, '--token', token, '--device-id', deviceId, '--out', out]);
    expect(r.err).toContain('TPM: ActivateCredential');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out) as { ok: boolean; certificateFile: string; keyUri: string; keyCreated: boolean };
    expect(res).toMatchObject({ ok: true, keyUri: 'handle:0x81000002', keyCreated: true });

    const cert = new X509Certificate(await readFile(res.certificateFile));
    expect(cert.subject).toBe(`CN=${deviceId}`);
    expect(cert.verify(new X509Certificate(server.issuingCaPem).publicKey)).toBe(true);
    const c = tpm.client();
    const keyPub = await c.readPublic(0x81000002);
    await c.transport.close();
    expect(spkiEqual(cert.publicKey.export({ type: 'spki', format: 'der' }), publicToSpki(parsePublic(keyPub.public).public))).toBe(true);

    const rr = await runCli(['--tcti', tpm.tcti, '--json', 'renew', '--out', out]);
    expect(rr.code).toBe(0);
    const renewed = new X509Certificate(await readFile(res.certificateFile));
    expect(renewed.serialNumber).not.toBe(cert.serialNumber);
    expect(renewed.publicKey.export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('fails with the server reason when the token is reused (second enroll)', async () => {
    const { deviceId, token } = await officialDevice();
    const dir = await mkdtemp(path.join(tmpdir(), 'devicegate-agent-'));
    try {
      const first = await runCli(['--tcti', tpm.tcti, 'enroll', '--server', server.url, '--token', token, '--device-id', deviceId, '--out', dir]);
      expect(first.code).toBe(0);
      const second = await runCli(['--tcti', tpm.tcti, '--json', 'enroll', '--server', server.url, '--token', token, '--device-id', deviceId, '--out', dir]);
      expect(second.code).toBe(1);
      expect(JSON.parse(second.out)).toMatchObject({ ok: false, error: { code: 'TOKEN_SPENT' } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to renew a suspended device (server reason printed)', async () => {
    const { deviceId, token } = await officialDevice();
    const dir = await mkdtemp(path.join(tmpdir(), 'devicegate-agent-'));
    try {
      expect((await runCli(['--tcti', tpm.tcti, 'enroll', '--server', server.url, '--token', token, '--device-id', deviceId, '--out', dir])).code).toBe(0);
      await server.setStatus(deviceId, 'suspended');
      const r = await runCli(['--tcti', tpm.tcti, 'renew', '--out', dir]);
      expect(r.code).toBe(1);
      expect(r.err).toContain('DEVICE_SUSPENDED');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a device whose EK is not the registered one (unregistered TPM)', async () => {
    const { deviceId, token } = await server.register('00'.repeat(32));
    const r = await runCli(['--tcti', tpm.tcti, '--json', 'enroll', '--server', server.url, '--token', token, '--device-id', deviceId, '--out', out]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: { code: 'EK_NOT_REGISTERED' } });
  });

  it('refuses plain http to a non-loopback server before touching the network', async () => {
    const r = await runCli(['--tcti', tpm.tcti, 'enroll', '--server', 'http://devicegate.example', '--token', 'x'.repeat(20), '--device-id', randomUUID(), '--out', out]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('AGENT_SERVER_URL');
  });

  it('exits 2 on a usage error', async () => {
    const r = await runCli(['enroll', '--server', server.url]);
    expect(r.code).toBe(2);
  });
});
