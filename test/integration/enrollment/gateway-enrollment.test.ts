/**
 * TPM-attested enrollment against the REAL gateway (app, SQLite store, dev CA, audit log) with real swtpm TPMs:
 * register → token → the agent enrolls → the certificate verifies against the served chain → renew. Then every
 * attack, each named: it gets a 4xx with a reason code, leaves a `device.enroll.fail` audit entry with that code,
 * and nothing is issued.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { main as agentMain } from '../../../src/agent/cli';
import { buildTpmCsr, certificationRequestInfo, der } from '../../../src/agent/csr';
import { DeviceTpm, ekPublicSha256, type DeviceTpmKey } from '../../../src/agent/tpm-device';
import { ENROLLMENT_PATHS, toB64 } from '../../../src/enrollment/protocol';
import {
  deviceKeyTemplate,
  marshalPublic,
  parsePublic,
  publicToSpki,
  publicToTpm2b,
  TPM_ALG,
  TPM_RH,
  TPMA_OBJECT,
  TpmWriter,
  type TpmClient,
} from '../../../src/tpm';
import { toPem } from '../../../src/attestation';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { opensslOk } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';
import { SwtpmHarness, type ManufacturerCa } from '../../helpers/swtpm';
import { bearer } from '../../helpers/tokens';

interface Tpm {
  tcti: string;
  client: TpmClient;
  dev: DeviceTpm;
  ak: DeviceTpmKey;
  key: DeviceTpmKey;
  ekHash: string;
}

const quiet = { stdout: () => undefined, stderr: () => undefined };

/** swtpm serves one TCP client at a time: the test lets go of the TPM while the agent talks to it. */
async function runAgent(d: Tpm, args: string[]): Promise<number> {
  await d.client.transport.close();
  return agentMain(['--tcti', d.tcti, ...args], quiet);
}

describeWith(
  [tool('swtpm'), tool('swtpm_setup'), tool('openssl')],
  'TPM enrollment through the real gateway (real swtpm, real app)',
  () => {
    let h: SwtpmHarness;
    let acme: ManufacturerCa;
    let t: TestApp;
    let server: http.Server;
    let url: string;
    let admin: string;
    let a: Tpm; // the official laptop
    let b: Tpm; // another genuine TPM of the same manufacturer, not in the inventory
    let rogue: Tpm; // a TPM from a manufacturer we do not trust
    let work: string;
    let deviceA: string;
    let tokenA: string;

    async function tpm(ca: ManufacturerCa): Promise<Tpm> {
      const run = await h.startSwtpm(await h.provisionTpm(ca));
      const client = run.client();
      const dev = new DeviceTpm(client);
      const ak = await dev.ensureAk('rsa');
      const key = await dev.ensureDeviceKey();
      return { tcti: run.tcti, client, dev, ak, key, ekHash: ekPublicSha256(await dev.ekPublic()) };
    }

    async function register(serial: string, ek: string): Promise<string> {
      const r = await request(t.app).post('/v1/devices').set('Authorization', admin).send({ serial_number: serial, platform: 'linux', ek_public_sha256: ek }).expect(201);
      return r.body.id as string;
    }

    async function token(deviceId: string): Promise<string> {
      return (await request(t.app).post(`/v1/devices/${deviceId}/enrollment-tokens`).set('Authorization', admin).send({}).expect(201)).body.token as string;
    }

    async function startFor(d: Tpm, deviceId: string, tok: string): Promise<request.Response> {
      return request(t.app)
        .post(ENROLLMENT_PATHS.start)
        .send({
          deviceId,
          token: tok,
          ekCertificate: toB64((await d.dev.ekCertificate())!),
          ekPublic: toB64(publicToTpm2b(marshalPublic((await d.dev.ekPublic()).public))),
          akPublic: toB64(d.ak.parsed.raw),
        });
    }

    const csrFor = (d: Tpm, key: DeviceTpmKey = d.key): Promise<string> =>
      buildTpmCsr(publicToSpki(key.parsed.public), 'device', (dg) => d.dev.signDigestDer(key.handle, dg));

    /** An honest start + activation; `finishBody` lets each attack change one part of the proof. */
    async function startAndActivate(d: Tpm, deviceId: string, tok: string) {
      const s = await startFor(d, deviceId, tok);
      expect(s.status).toBe(200);
      const secret = await d.dev.activateCredential(d.ak.handle, Buffer.from(s.body.credentialBlob, 'base64'), Buffer.from(s.body.encryptedSecret, 'base64'));
      return { enrollmentId: s.body.enrollmentId as string, nonce: Buffer.from(s.body.nonce, 'base64'), secret };
    }

    async function honestFinishBody(d: Tpm, st: { enrollmentId: string; nonce: Buffer; secret: Buffer }) {
      const c = await d.dev.certify(d.key.handle, d.ak.handle, st.nonce);
      return {
        enrollmentId: st.enrollmentId,
        activatedSecret: toB64(st.secret),
        csr: await csrFor(d),
        certifyInfo: toB64(c.certifyInfo),
        certifySignature: toB64(c.signature),
        keyPublic: toB64(d.key.parsed.raw),
      };
    }

    const finish = (body: unknown) => request(t.app).post(ENROLLMENT_PATHS.finish).send(body as object);

    async function expectRefused(res: request.Response, status: number, code: string, deviceId: string | null): Promise<void> {
      expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
      await t.services.audit.log.flush();
      const fails = await t.store.audit.query({ type: 'device.enroll.fail', reason: code }, { limit: 50 });
      expect(fails.items.length).toBeGreaterThan(0);
      if (deviceId) {
        expect(fails.items.some((e) => e.deviceId === deviceId)).toBe(true);
        expect(await t.store.certificates.listByDevice(deviceId)).toEqual([]);
      }
    }

    beforeAll(async () => {
      h = await SwtpmHarness.create();
      acme = await h.createManufacturerCa('Acme TPM');
      a = await tpm(acme);
      b = await tpm(acme);
      rogue = await tpm(await h.createManufacturerCa('Rogue TPM'));
      work = mkdtempSync(path.join(os.tmpdir(), 'dg-enroll-'));
      writeFileSync(path.join(work, 'tpm-roots.pem'), acme.bundlePem);
      t = await buildTestApp({
        env: {
          DEVICEGATE_TPM__TRUSTED_ROOTS_FILE: path.join(work, 'tpm-roots.pem'),
          // The fuzz case below sends hundreds of requests from one address; the limiter has its own test.
          DEVICEGATE_ENROLLMENT__REQUESTS_PER_MINUTE_PER_ADDRESS: '100000',
        },
      });
      // The EK certificates were just issued; run the gateway clock a little ahead of their notBefore.
      t.clock.set(Date.now() + 2000);
      server = http.createServer(t.app).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      admin = await bearer(t.services, 'it-admin');
      deviceA = await register('NB-A', a.ekHash);
      tokenA = await token(deviceA);
    }, 120_000);

    afterAll(async () => {
      await new Promise((r) => server?.close(r));
      await t?.cleanup();
      await h?.dispose();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    describe('attacks, each refused with a code, audited, nothing issued', () => {
      it('refuses an unregistered device: a genuine TPM whose EK is not in the inventory (private laptop)', async () => {
        await expectRefused(await startFor(b, deviceA, tokenA), 403, 'EK_NOT_REGISTERED', deviceA);
      });

      it('refuses an EK certificate from an untrusted manufacturer CA', async () => {
        const d = await register('NB-ROGUE', rogue.ekHash);
        await expectRefused(await startFor(rogue, d, await token(d)), 403, 'EK_CERT_UNTRUSTED', d);
      });

      it('refuses a token bound to another device', async () => {
        const other = await register('NB-OTHER', 'ab'.repeat(32));
        await expectRefused(await startFor(a, deviceA, await token(other)), 403, 'TOKEN_WRONG_DEVICE', deviceA);
      });

      it('refuses an unknown (guessed) token', async () => {
        await expectRefused(await startFor(a, deviceA, `et_${'A'.repeat(43)}`), 403, 'TOKEN_UNKNOWN', deviceA);
      });

      it('refuses an expired token', async () => {
        const tok = await token(deviceA);
        t.clock.advance(3_600_001);
        try {
          await expectRefused(await startFor(a, deviceA, tok), 403, 'TOKEN_EXPIRED', deviceA);
        } finally {
          t.clock.advance(-3_600_001);
        }
      });

      it('refuses a wrong activated secret, and the enrollment cannot be retried (nonce consumed)', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const wrong = Buffer.from(st.secret);
        wrong[0] = wrong[0]! ^ 0xff;
        await expectRefused(await finish({ ...body, activatedSecret: toB64(wrong) }), 403, 'CREDENTIAL_SECRET_MISMATCH', deviceA);
        await expectRefused(await finish(body), 403, 'ENROLLMENT_UNKNOWN', null);
      });

      it('refuses a Certify made by another TPM’s AK', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const c = await b.dev.certify(b.key.handle, b.ak.handle, st.nonce);
        await expectRefused(
          await finish({ ...body, certifyInfo: toB64(c.certifyInfo), certifySignature: toB64(c.signature), keyPublic: toB64(b.key.parsed.raw), csr: await csrFor(b) }),
          403,
          'ATTEST_SIGNATURE_INVALID',
          deviceA,
        );
      });

      it('refuses a CSR whose key is not the certified TPM key (software key in the CSR)', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const info = certificationRequestInfo(soft.publicKey.export({ type: 'spki', format: 'der' }), 'device');
        const { sign } = await import('node:crypto');
        const sig = sign('sha256', info, { key: soft.privateKey, dsaEncoding: 'der' });
        const softCsr = toPem(der(0x30, info, der(0x30, Buffer.from('06082a8648ce3d040302', 'hex')), der(0x03, Buffer.from([0]), sig)), 'CERTIFICATE REQUEST');
        await expectRefused(await finish({ ...body, csr: softCsr }), 403, 'CSR_KEY_MISMATCH', deviceA);
      });

      it('refuses a software key without fixedTPM (imported with TPM2_LoadExternal, then certified)', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const jwk = soft.privateKey.export({ format: 'jwk' }) as { x: string; y: string; d: string };
        const tmpl = parsePublic(deviceKeyTemplate(TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign | TPMA_OBJECT.noDA)).public;
        const pub = marshalPublic({ ...tmpl, x: Buffer.from(jwk.x, 'base64url'), y: Buffer.from(jwk.y, 'base64url') } as typeof tmpl);
        const sensitive = new TpmWriter().u16(TPM_ALG.ECC).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.from(jwk.d, 'base64url')).toBuffer();
        const ext = await a.client.loadExternal(pub, sensitive, TPM_RH.NULL);
        try {
          const c = await a.dev.certify(ext.handle, a.ak.handle, st.nonce);
          await expectRefused(
            await finish({ ...body, certifyInfo: toB64(c.certifyInfo), certifySignature: toB64(c.signature), keyPublic: toB64(pub) }),
            403,
            'KEY_ATTRIBUTES_INVALID',
            deviceA,
          );
        } finally {
          await a.client.flushQuietly(ext.handle);
        }
      });

      it('refuses a restricted key (the AK certifying itself)', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const c = await a.dev.certify(a.ak.handle, a.ak.handle, st.nonce);
        await expectRefused(
          await finish({ ...body, certifyInfo: toB64(c.certifyInfo), certifySignature: toB64(c.signature), keyPublic: toB64(a.ak.parsed.raw) }),
          403,
          'KEY_RESTRICTED',
          deviceA,
        );
      });

      it('refuses tampered attest bytes', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const info = Buffer.from(body.certifyInfo, 'base64');
        info[info.length - 40] = info[info.length - 40]! ^ 0x01;
        await expectRefused(await finish({ ...body, certifyInfo: toB64(info) }), 403, 'ATTEST_SIGNATURE_INVALID', deviceA);
      });

      it('refuses a Certify over another nonce (replayed attestation)', async () => {
        const st = await startAndActivate(a, deviceA, tokenA);
        const body = await honestFinishBody(a, st);
        const c = await a.dev.certify(a.key.handle, a.ak.handle, Buffer.alloc(32, 7));
        await expectRefused(await finish({ ...body, certifyInfo: toB64(c.certifyInfo), certifySignature: toB64(c.signature) }), 403, 'ATTEST_NONCE_MISMATCH', deviceA);
      });

      it('answers malformed TPM structures with 400 and never a 5xx (mutated start and finish bodies)', async () => {
        const st = await startFor(a, deviceA, tokenA);
        expect(st.status).toBe(200);
        const base = {
          deviceId: deviceA,
          token: tokenA,
          ekCertificate: toB64((await a.dev.ekCertificate())!),
          akPublic: toB64(a.ak.parsed.raw),
        };
        let seed = 7;
        const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
        const statuses = new Map<number, number>();
        for (let i = 0; i < 200; i++) {
          const field = (['ekCertificate', 'akPublic'] as const)[i % 2]!;
          const bytes = Buffer.from(base[field], 'base64');
          const m = Buffer.from(bytes.subarray(0, Math.max(1, Math.floor(rnd() * bytes.length * 1.2))));
          for (let k = 0; k < 3 && m.length; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
          const res = await request(t.app).post(ENROLLMENT_PATHS.start).send({ ...base, [field]: toB64(m) });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status).toBeLessThan(500);
          // A changed EK certificate can never pass its signature check; a changed AK may still be a valid AK (it
          // is bound to the TPM only by credential activation in finish).
          if (field === 'ekCertificate' && !m.equals(bytes)) expect(res.status).not.toBe(200);
        }
        expect([...statuses.keys()].every((s) => s === 400 || s === 403 || s === 200)).toBe(true);
        expect(await t.store.certificates.listByDevice(deviceA)).toEqual([]);
        const garbage = await request(t.app).post(ENROLLMENT_PATHS.finish).send({ enrollmentId: 'x', activatedSecret: '!!', csr: 'x', certifyInfo: 'AA==', certifySignature: 'AA==', keyPublic: 'AA==' });
        expect(garbage.status).toBe(400);
        expect(garbage.body.error.code).toBe('INVALID_ENROLLMENT_REQUEST');
      });
    });

    describe('the official device', () => {
      let out: string;

      it('enrolls with the agent: certificate for its TPM key, chaining to the served CA, device active', async () => {
        out = path.join(work, 'agent-a');
        const code = await runAgent(a, ['enroll', '--server', url, '--token', tokenA, '--device-id', deviceA, '--out', out]);
        expect(code).toBe(0);
        const chain = await request(t.app).get('/v1/ca/chain').expect(200);
        writeFileSync(path.join(work, 'chain.pem'), chain.text);
        expect(opensslOk(['verify', '-CAfile', path.join(work, 'chain.pem'), '-purpose', 'sslclient', path.join(out, 'device-cert.pem')]).stdout).toMatch(/OK/);
        const { X509Certificate } = await import('node:crypto');
        const cert = new X509Certificate(readFileSync(path.join(out, 'device-cert.pem')));
        expect(cert.subject).toBe(`CN=${deviceA}`);
        expect(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(publicToSpki(a.key.parsed.public))).toBe(true);
        const device = await t.store.devices.get(deviceA);
        expect(device.status).toBe('active');
        expect(device.attestationKey).toBe(toB64(a.ak.parsed.raw));
        await t.services.audit.log.flush();
        for (const type of ['device.enroll.start', 'device.enroll.attest', 'device.enroll.complete', 'cert.issue']) {
          expect((await t.store.audit.query({ type, deviceId: deviceA }, { limit: 5 })).items.length).toBeGreaterThan(0);
        }
      });

      it('refuses a second enrollment with the spent token', async () => {
        const code = await runAgent(a, ['enroll', '--server', url, '--token', tokenA, '--device-id', deviceA, '--out', path.join(work, 'again')]);
        expect(code).not.toBe(0);
        await expectRefused(await startFor(a, deviceA, tokenA), 403, 'TOKEN_SPENT', null);
        expect(await t.store.certificates.listByDevice(deviceA)).toHaveLength(1);
      });

      it('renews with a fresh Certify by the recorded AK (no token)', async () => {
        const before = readFileSync(path.join(out, 'device-cert.pem'), 'utf8');
        const code = await runAgent(a, ['renew', '--server', url, '--out', out]);
        expect(code).toBe(0);
        const after = readFileSync(path.join(out, 'device-cert.pem'), 'utf8');
        expect(after).not.toBe(before);
        expect(await t.store.certificates.listByDevice(deviceA)).toHaveLength(2);
        await t.services.audit.log.flush();
        expect((await t.store.audit.query({ type: 'cert.renew', deviceId: deviceA }, { limit: 5 })).items).toHaveLength(1);
      });

      it('refuses renewal by another TPM (its AK is not the recorded one)', async () => {
        const rs = await request(t.app).post(ENROLLMENT_PATHS.renewStart).send({ deviceId: deviceA }).expect(200);
        const nonce = Buffer.from(rs.body.nonce, 'base64');
        const c = await b.dev.certify(b.key.handle, b.ak.handle, nonce);
        const res = await request(t.app)
          .post(ENROLLMENT_PATHS.renewFinish)
          .send({ renewalId: rs.body.renewalId, csr: await csrFor(b), certifyInfo: toB64(c.certifyInfo), certifySignature: toB64(c.signature), keyPublic: toB64(b.key.parsed.raw) });
        await expectRefused(res, 403, 'ATTEST_SIGNATURE_INVALID', null);
        expect(await t.store.certificates.listByDevice(deviceA)).toHaveLength(2);
      });

      it('refuses renewal of a suspended device', async () => {
        await request(t.app).post(`/v1/devices/${deviceA}/status`).set('Authorization', admin).send({ status: 'suspended', reason: 'reported lost' }).expect(200);
        const code = await runAgent(a, ['renew', '--server', url, '--out', out]);
        expect(code).not.toBe(0);
        await expectRefused(await request(t.app).post(ENROLLMENT_PATHS.renewStart).send({ deviceId: deviceA }), 403, 'DEVICE_SUSPENDED', null);
        expect(await t.store.certificates.listByDevice(deviceA)).toHaveLength(2);
      });
    });
  },
);
