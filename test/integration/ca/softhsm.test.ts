/**
 * The CA with its keys in a real PKCS#11 token (SoftHSM2): `ca init` into the token, `loadCa` with source pkcs11,
 * issuance, CRL and OCSP signed inside the token and verified by OpenSSL.
 */
import { verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import {
  Pkcs11Token,
  createCaHierarchy,
  loadCa,
  pkcs11KeyProvider,
  writeCaFiles,
  type CertificateAuthority,
} from '../../../src/ca';
import { caConfigSchema } from '../../../src/config/sections/ca';
import { AppError } from '../../../src/domain/errors';
import { genKey, makeCsr, makeTempDir, openssl, opensslOk, type TempDir } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';
import { createSoftHsmToken, softhsmRequirements, type SoftHsmToken } from '../../helpers/softhsm';

const DEVICE = '0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a';

describeWith([tool('openssl'), ...softhsmRequirements], 'CA with keys in a SoftHSM2 token', () => {
  let hsm: SoftHsmToken;
  let tmp: TempDir;
  let ca: CertificateAuthority;
  const now = Date.now();

  const paths = () => ({
    rootCert: tmp.file('root.cert.pem'),
    issuingCert: tmp.file('issuing.cert.pem'),
    ocspCert: tmp.file('ocsp.cert.pem'),
    chain: tmp.file('chain.pem'),
  });

  beforeAll(async () => {
    hsm = createSoftHsmToken('dg-ca-test');
    tmp = makeTempDir();
    tmp.write('pin.txt', `${hsm.pin}\n`);
    // `ca init` into the token: three key pairs generated inside it, certificates written to files.
    const token = Pkcs11Token.open({ modulePath: hsm.modulePath, tokenLabel: hsm.label, pin: hsm.pin });
    try {
      const h = await createCaHierarchy({
        nowMs: now,
        keys: pkcs11KeyProvider(token),
        algorithm: { root: 'ec-p384', issuing: 'ec-p256', ocsp: 'ec-p256' },
      });
      expect(h.issuing.privateKey).toBeUndefined();
      writeCaFiles(h, paths());
    } finally {
      await token.close();
    }
  });

  afterAll(() => {
    hsm?.cleanup();
    tmp?.cleanup();
  });

  // PKCS#11 login state is per process: these run before the CA below logs in, or a wrong PIN would be moot.
  it('rejects a wrong PIN with PKCS11_LOGIN', () => {
    let err: unknown;
    try {
      Pkcs11Token.open({ modulePath: hsm.modulePath, tokenLabel: hsm.label, pin: '9999' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('PKCS11_LOGIN');
  });

  it('fails closed when the token label does not exist', () => {
    expect(() => Pkcs11Token.open({ modulePath: hsm.modulePath, tokenLabel: 'no-such-token', pin: hsm.pin })).toThrow(
      expect.objectContaining({ code: 'PKCS11_TOKEN_NOT_FOUND' }),
    );
  });

  it('refuses to load when the configured issuing certificate does not belong to the token key (CA_KEY_MISMATCH)', async () => {
    const config = caConfigSchema.parse({
      source: 'pkcs11',
      files: { rootCert: paths().rootCert, issuingCert: paths().issuingCert, ocspCert: paths().ocspCert },
      // The OCSP key label where the issuing key belongs: the token key and the certificate disagree.
      pkcs11: { module: hsm.modulePath, tokenLabel: hsm.label, pinFile: tmp.file('pin.txt'), issuingKeyLabel: 'devicegate-ocsp' },
    });
    await expect(loadCa(config, { publicUrl: 'https://devicegate.test', nowMs: now })).rejects.toMatchObject({ code: 'CA_KEY_MISMATCH' });
  });

  describe('loaded with source pkcs11', () => {
    beforeAll(async () => {
      const config = caConfigSchema.parse({
        source: 'pkcs11',
        files: { rootCert: paths().rootCert, issuingCert: paths().issuingCert, ocspCert: paths().ocspCert },
        pkcs11: { module: hsm.modulePath, tokenLabel: hsm.label, pinFile: tmp.file('pin.txt') },
      });
      ca = await loadCa(config, { publicUrl: 'https://devicegate.test', nowMs: now, production: true });
    });
    afterAll(async () => {
      await ca?.close();
    });

    it('keeps the CA private keys sensitive and never extractable in the token', () => {
      // Read the attributes straight through pkcs11js (the library is already initialised by the loaded CA).
      const p11 = new pkcs11js.PKCS11();
      p11.load(hsm.modulePath);
      try {
        p11.C_Initialize();
      } catch (e) {
        if ((e as { code?: number }).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw e;
      }
      const slot = p11.C_GetSlotList(true).find((sl) => p11.C_GetTokenInfo(sl).label.trim() === hsm.label)!;
      const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      try {
        for (const label of ['devicegate-root', 'devicegate-issuing', 'devicegate-ocsp']) {
          p11.C_FindObjectsInit(session, [
            { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
            { type: pkcs11js.CKA_LABEL, value: label },
          ]);
          const [key] = p11.C_FindObjects(session, 2);
          p11.C_FindObjectsFinal(session);
          expect(key).toBeDefined();
          const attrs = p11.C_GetAttributeValue(session, key!, [
            { type: pkcs11js.CKA_SENSITIVE },
            { type: pkcs11js.CKA_EXTRACTABLE },
            { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
            { type: pkcs11js.CKA_TOKEN },
          ]);
          expect(attrs.map((a) => a.value[0])).toEqual([1, 0, 1, 1]);
        }
      } finally {
        p11.C_CloseSession(session);
      }
    });

    it('issues a device certificate signed in the token that `openssl verify -purpose sslclient` accepts', async () => {
      const csr = makeCsr(tmp, genKey(tmp, 'leaf', 'p256'));
      const cert = await ca.issue({ csr: csr.der, deviceId: DEVICE, nowMs: now, issuedVia: 'manual' });
      const leaf = tmp.write('leaf.cert.pem', cert.pem);
      const r = openssl(['verify', '-purpose', 'sslclient', '-CAfile', paths().rootCert, '-untrusted', paths().issuingCert, leaf]);
      expect(r.all).toContain(': OK');
      expect(r.code).toBe(0);
    });

    it('signs CRLs and OCSP responses in the token that OpenSSL verifies', async () => {
      const csr = makeCsr(tmp, genKey(tmp, 'leaf2', 'rsa2048'));
      const cert = await ca.issue({ csr: csr.pem, deviceId: DEVICE, nowMs: now, issuedVia: 'manual' });
      const leaf = tmp.write('leaf2.cert.pem', cert.pem);
      const crl = await ca.buildCrl({ entries: [{ serialHex: cert.serialHex, revokedAtMs: now, reason: 'superseded' }], crlNumber: 1, nowMs: now });
      const crlPath = tmp.write('token.crl.pem', crl.pem);
      const all = tmp.write('all.pem', ca.rootCertPem + ca.issuingCertPem);
      expect(openssl(['crl', '-in', crlPath, '-CAfile', paths().issuingCert, '-noout', '-verify']).all).toContain('verify OK');
      expect(openssl(['verify', '-crl_check', '-CAfile', all, '-CRLfile', crlPath, leaf]).all).toMatch(/certificate revoked/);

      const responder = ca.createOcspResponder({ lookup: () => ({ status: 'revoked', revokedAtMs: now, reason: 'superseded' }) });
      opensslOk(['ocsp', '-issuer', paths().issuingCert, '-cert', leaf, '-reqout', tmp.file('req.der')]);
      const res = await responder.respond(tmp.read('req.der'), { nowMs: now, generation: 0 });
      writeFileSync(tmp.file('resp.der'), res.der);
      const r = openssl(['ocsp', '-reqin', tmp.file('req.der'), '-respin', tmp.file('resp.der'), '-CAfile', all, '-resp_text']);
      expect(r.all).toContain('Response verify OK');
      expect(r.all).toContain('Cert Status: revoked');
    });

    it('signs with an RSA-2048 key generated in the token (CKM_SHA256_RSA_PKCS)', async () => {
      const token = Pkcs11Token.open({ modulePath: hsm.modulePath, tokenLabel: hsm.label, pin: hsm.pin });
      try {
        const signer = await token.generateKeyPair('rsa-test', 'rsa-2048');
        expect(signer.algorithm.name).toBe('sha256WithRSAEncryption');
        const data = Buffer.from('tbs');
        const sig = await signer.sign(data);
        expect(verify('sha256', data, signer.publicKey, sig)).toBe(true);
      } finally {
        await token.close();
      }
    });

    it('refuses to generate a second key under an existing label (no silent CA key replacement)', async () => {
      const token = Pkcs11Token.open({ modulePath: hsm.modulePath, tokenLabel: hsm.label, pin: hsm.pin });
      try {
        await expect(token.generateKeyPair('devicegate-issuing', 'ec-p256')).rejects.toMatchObject({ code: 'PKCS11_KEY_EXISTS' });
      } finally {
        await token.close();
      }
    });
  });
});
