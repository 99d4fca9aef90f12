/**
 * The verifiers against a real swtpm (no TPM mock): the honest flow, then each attack, named. The TPM side uses the
 * agent's DeviceTpm; the server side calls only the pure functions of src/attestation.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { AppError } from '../../../src/domain/errors';
import {
  parseTrustAnchors,
  toPem,
  verifyCertifiedCsr,
  verifyCsr,
  verifyEnrollmentFinish,
  verifyEnrollmentStart,
  type StartResult,
  type TrustAnchor,
} from '../../../src/attestation';
import { buildTpmCsr, certificationRequestInfo, der } from '../../../src/agent/csr';
import { DeviceTpm, type DeviceTpmKey } from '../../../src/agent/tpm-device';
import {
  TPMA_OBJECT,
  TPM_ALG,
  TPM_RH,
  TpmCommandError,
  TpmWriter,
  deviceKeyTemplate,
  ecdsaRsToDer,
  marshalPublic,
  parsePublic,
  publicToSpki,
  publicToTpm2b,
  srkTemplate,
  type TpmClient,
} from '../../../src/tpm';
import { describeWith, tool } from '../../helpers/requirements';
import { SwtpmHarness, type ManufacturerCa, type ProvisionedTpm, type RunningSwtpm } from '../../helpers/swtpm';

function rejects(fn: () => unknown, code: string): AppError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe(code);
  return caught as AppError;
}

interface Device {
  run: RunningSwtpm;
  prov: ProvisionedTpm;
  client: TpmClient;
  dev: DeviceTpm;
  ak: DeviceTpmKey;
  key: DeviceTpmKey;
}

describeWith([tool('swtpm'), tool('swtpm_setup'), tool('openssl')], 'TPM enrollment verifiers against a real swtpm', () => {
  let h: SwtpmHarness;
  let acme: ManufacturerCa;
  let roots: TrustAnchor[];
  let a: Device; // the honest device
  let b: Device; // another genuine TPM of the same manufacturer
  let rogue: Device; // a TPM from an untrusted manufacturer
  // Set after provisioning: the EK certificates are issued at that moment (notBefore).
  let now = 0;

  async function device(ca: ManufacturerCa): Promise<Device> {
    const prov = await h.provisionTpm(ca);
    const run = await h.startSwtpm(prov);
    const client = run.client();
    const dev = new DeviceTpm(client);
    const ak = await dev.ensureAk('rsa');
    const key = await dev.ensureDeviceKey();
    return { run, prov, client, dev, ak, key };
  }

  async function start(d: Device, opts: { cert?: boolean; pub?: boolean; allowEkPublicOnly?: boolean; rootsOverride?: TrustAnchor[] } = {}): Promise<StartResult> {
    const ekPub = await d.dev.ekPublic();
    return verifyEnrollmentStart(
      {
        ekCertificate: opts.cert === false ? undefined : (await d.dev.ekCertificate())!,
        ekPublic: opts.pub === false ? undefined : publicToTpm2b(marshalPublic(ekPub.public)),
        akPublic: d.ak.parsed.raw,
      },
      { roots: opts.rootsOverride ?? roots, allowEkPublicOnly: opts.allowEkPublicOnly ?? false },
      now,
    );
  }

  async function csrFor(d: Device, key = d.key): Promise<string> {
    return buildTpmCsr(publicToSpki(key.parsed.public), 'device', (dg) => d.dev.signDigestDer(key.handle, dg));
  }

  beforeAll(async () => {
    h = await SwtpmHarness.create();
    acme = await h.createManufacturerCa('Acme TPM');
    roots = parseTrustAnchors(acme.bundlePem);
    a = await device(acme);
    b = await device(acme);
    rogue = await device(await h.createManufacturerCa('Rogue TPM'));
    now = Date.now() + 1000;
  }, 60_000);

  afterAll(async () => {
    await h?.dispose();
  });

  it('accepts the honest flow: EK cert → MakeCredential → ActivateCredential → Certify(nonce) → CSR', async () => {
    const s = await start(a);
    expect(s.ek.certificate?.tpm?.model).toBe('swtpm');
    const secret = await a.dev.activateCredential(a.ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret);
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, s.nonce);
    const res = verifyEnrollmentFinish(
      {
        activatedSecret: secret,
        expectedSecret: s.challenge.secret,
        csr: await csrFor(a),
        certifyInfo: cert.certifyInfo,
        certifySignature: cert.signature,
        keyPublic: a.key.parsed.raw,
        akPublic: s.ak.parsed.raw,
        nonce: s.nonce,
      },
      {},
    );
    expect(res.key.keyAlgorithm).toBe('ecc-p256');
    expect(res.key.keySpki.equals(publicToSpki(a.key.parsed.public))).toBe(true);
  });

  it('activates a credential made for the ECC P-384 EK (certificate at NV 0x01c00016)', async () => {
    const eccDev = new DeviceTpm(a.client, { ...a.dev.handles, ek: 0x81010016, ekCertIndex: 0x01c00016 });
    const ekPub = await eccDev.ekPublic();
    const s = verifyEnrollmentStart(
      { ekCertificate: (await eccDev.ekCertificate())!, ekPublic: publicToTpm2b(marshalPublic(ekPub.public)), akPublic: a.ak.parsed.raw },
      { roots, allowEkPublicOnly: false },
      now,
    );
    const secret = await eccDev.activateCredential(a.ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret);
    expect(secret.equals(s.challenge.secret)).toBe(true);
  });

  it('rejects an EK from an untrusted manufacturer CA', async () => {
    const cert = (await rogue.dev.ekCertificate())!;
    const ekPub = await rogue.dev.ekPublic();
    rejects(
      () =>
        verifyEnrollmentStart(
          { ekCertificate: cert, ekPublic: publicToTpm2b(marshalPublic(ekPub.public)), akPublic: rogue.ak.parsed.raw },
          { roots, allowEkPublicOnly: false },
          now,
        ),
      'EK_CERT_UNTRUSTED',
    );
  });

  it('rejects an EK-public-only device unless tpm.allowEkPublicOnly is set', async () => {
    await expect(start(a, { cert: false })).rejects.toMatchObject({ code: 'EK_CERT_REQUIRED' });
    const ok = await start(a, { cert: false, allowEkPublicOnly: true });
    expect(ok.ek.certificate).toBeNull();
  });

  it('rejects the EK certificate of TPM A combined with the EK public of TPM B (EK_PUBLIC_MISMATCH)', async () => {
    const certA = (await a.dev.ekCertificate())!;
    const ekPubB = await b.dev.ekPublic();
    rejects(
      () =>
        verifyEnrollmentStart(
          { ekCertificate: certA, ekPublic: publicToTpm2b(marshalPublic(ekPubB.public)), akPublic: a.ak.parsed.raw },
          { roots, allowEkPublicOnly: false },
          now,
        ),
      'EK_PUBLIC_MISMATCH',
    );
  });

  it('rejects a wrong activated secret', async () => {
    const s = await start(a);
    const secret = await a.dev.activateCredential(a.ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret);
    secret[0] = secret[0]! ^ 0xff;
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, s.nonce);
    rejects(
      () =>
        verifyEnrollmentFinish(
          { activatedSecret: secret, expectedSecret: s.challenge.secret, csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: a.key.parsed.raw, akPublic: s.ak.parsed.raw, nonce: s.nonce },
          {},
        ),
      'CREDENTIAL_SECRET_MISMATCH',
    );
  });

  it('cannot activate a credential with an AK from another TPM (the TPM itself refuses)', async () => {
    // The attacker presents B's AK next to A's genuine EK certificate; only A's TPM could decrypt, and A does not hold B's AK.
    const ekA = await a.dev.ekPublic();
    const s = verifyEnrollmentStart(
      { ekCertificate: (await a.dev.ekCertificate())!, ekPublic: publicToTpm2b(marshalPublic(ekA.public)), akPublic: b.ak.parsed.raw },
      { roots, allowEkPublicOnly: false },
      now,
    );
    await expect(b.dev.activateCredential(b.ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret)).rejects.toBeInstanceOf(TpmCommandError);
    await expect(a.dev.activateCredential(a.ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret)).rejects.toMatchObject({ rc: 0x1df });
  });

  it('rejects a Certify by another TPM’s AK', async () => {
    const s = await start(a);
    const secret = await a.dev.activateCredential(a.ak.handle, s.challenge.credentialBlob, s.challenge.encryptedSecret);
    const cert = await b.dev.certify(b.key.handle, b.ak.handle, s.nonce);
    rejects(
      () =>
        verifyEnrollmentFinish(
          { activatedSecret: secret, expectedSecret: s.challenge.secret, csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: b.key.parsed.raw, akPublic: s.ak.parsed.raw, nonce: s.nonce },
          {},
        ),
      'ATTEST_SIGNATURE_INVALID',
    );
  });

  it('rejects a CSR whose key is not the certified key (software key in the CSR)', async () => {
    const nonce = Buffer.alloc(32, 1);
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, nonce);
    // A valid CSR for a software key: its own signature verifies, but it is not the key the TPM certified.
    const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = soft.publicKey.export({ type: 'spki', format: 'der' });
    const info = certificationRequestInfo(spki, 'device');
    const sig = sign('sha256', info, { key: soft.privateKey, dsaEncoding: 'der' });
    const softCsr = toPem(der(0x30, info, der(0x30, Buffer.from('06082a8648ce3d040302', 'hex')), der(0x03, Buffer.from([0]), sig)), 'CERTIFICATE REQUEST');
    expect(verifyCsr(softCsr).spki.equals(spki)).toBe(true);
    rejects(
      () => verifyCertifiedCsr({ csr: softCsr, certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: a.key.parsed.raw, akPublic: a.ak.parsed.raw, nonce }, {}),
      'CSR_KEY_MISMATCH',
    );
  });

  it('rejects a CSR for the TPM key whose signature was not made by that key (proof-of-possession forgery)', async () => {
    const nonce = Buffer.alloc(32, 2);
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, nonce);
    const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await buildTpmCsr(publicToSpki(a.key.parsed.public), 'device', async (dg) => {
      const raw = sign(null, dg, { key: soft.privateKey, dsaEncoding: 'ieee-p1363' });
      return ecdsaRsToDer(raw.subarray(0, 32), raw.subarray(32));
    });
    rejects(
      () => verifyCertifiedCsr({ csr: forged, certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: a.key.parsed.raw, akPublic: a.ak.parsed.raw, nonce }, {}),
      'CSR_SIGNATURE_INVALID',
    );
  });

  it('rejects a software key without fixedTPM (loaded with TPM2_LoadExternal, then certified)', async () => {
    const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = soft.privateKey.export({ format: 'jwk' }) as { x: string; y: string; d: string };
    const attrs = TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign | TPMA_OBJECT.noDA;
    const tmpl = parsePublic(deviceKeyTemplate(attrs)).public;
    const pub = marshalPublic({ ...tmpl, x: Buffer.from(jwk.x, 'base64url'), y: Buffer.from(jwk.y, 'base64url') } as typeof tmpl);
    const sensitive = new TpmWriter().u16(TPM_ALG.ECC).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.from(jwk.d, 'base64url')).toBuffer();
    const ext = await a.client.loadExternal(pub, sensitive, TPM_RH.NULL);
    try {
      const nonce = Buffer.alloc(32, 3);
      const cert = await a.dev.certify(ext.handle, a.ak.handle, nonce);
      const e = rejects(
        () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: pub, akPublic: a.ak.parsed.raw, nonce }, {}),
        'KEY_ATTRIBUTES_INVALID',
      );
      expect(e.details?.['missing']).toEqual(expect.arrayContaining(['fixedTPM', 'fixedParent', 'sensitiveDataOrigin']));
    } finally {
      await a.client.flushQuietly(ext.handle);
    }
  });

  it('the TPM refuses to LoadExternal a software key that claims fixedTPM', async () => {
    const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = soft.privateKey.export({ format: 'jwk' }) as { x: string; y: string; d: string };
    const tmpl = parsePublic(deviceKeyTemplate()).public;
    const pub = marshalPublic({ ...tmpl, x: Buffer.from(jwk.x, 'base64url'), y: Buffer.from(jwk.y, 'base64url') } as typeof tmpl);
    const sensitive = new TpmWriter().u16(TPM_ALG.ECC).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.alloc(0)).tpm2b(Buffer.from(jwk.d, 'base64url')).toBuffer();
    await expect(a.client.loadExternal(pub, sensitive, TPM_RH.NULL)).rejects.toBeInstanceOf(TpmCommandError);
  });

  it('rejects a duplicable TPM key (fixedTPM and fixedParent clear) certified by the AK', async () => {
    const srk = await a.client.createPrimary(TPM_RH.OWNER, srkTemplate());
    let handle: number | null = null;
    try {
      const attrs = TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign | TPMA_OBJECT.noDA;
      const made = await a.client.create(srk.handle, deviceKeyTemplate(attrs));
      handle = (await a.client.load(srk.handle, made.private, made.public)).handle;
      await a.client.flushQuietly(srk.handle);
      const nonce = Buffer.alloc(32, 4);
      const cert = await a.dev.certify(handle, a.ak.handle, nonce);
      const e = rejects(
        () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: made.public, akPublic: a.ak.parsed.raw, nonce }, {}),
        'KEY_ATTRIBUTES_INVALID',
      );
      expect(e.details?.['missing']).toEqual(['fixedTPM', 'fixedParent']);
    } finally {
      await a.client.flushQuietly(handle);
      await a.client.flushQuietly(srk.handle);
    }
  });

  it('rejects a restricted key (the AK certifying itself)', async () => {
    const nonce = Buffer.alloc(32, 5);
    const cert = await a.dev.certify(a.ak.handle, a.ak.handle, nonce);
    rejects(
      () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: a.ak.parsed.raw, akPublic: a.ak.parsed.raw, nonce }, {}),
      'KEY_RESTRICTED',
    );
  });

  it('rejects tampered attest bytes (clockInfo flipped)', async () => {
    const nonce = Buffer.alloc(32, 6);
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, nonce);
    const tampered = Buffer.from(cert.certifyInfo);
    const clockOffset = 4 + 2 + 2 + tampered.readUInt16BE(6) + 2 + 32; // magic, type, qualifiedSigner, extraData
    tampered[clockOffset + 3] = tampered[clockOffset + 3]! ^ 0x01;
    rejects(
      () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: tampered, certifySignature: cert.signature, keyPublic: a.key.parsed.raw, akPublic: a.ak.parsed.raw, nonce }, {}),
      'ATTEST_SIGNATURE_INVALID',
    );
  });

  it('rejects a nonce mismatch (Certify made for another nonce: replay)', async () => {
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, Buffer.alloc(32, 7));
    rejects(
      () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: a.key.parsed.raw, akPublic: a.ak.parsed.raw, nonce: Buffer.alloc(32, 8) }, {}),
      'ATTEST_NONCE_MISMATCH',
    );
  });

  it('rejects a keyPublic that is not the certified object (name mismatch)', async () => {
    const nonce = Buffer.alloc(32, 9);
    const cert = await a.dev.certify(a.key.handle, a.ak.handle, nonce);
    rejects(
      () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: cert.certifyInfo, certifySignature: cert.signature, keyPublic: b.key.parsed.raw, akPublic: a.ak.parsed.raw, nonce }, {}),
      'ATTEST_NAME_MISMATCH',
    );
  });

  it('rejects a Certify forged with an unrestricted key posing as the AK', async () => {
    // TPM2_Sign with an unrestricted key signs any digest, including one over a hand-made TPMS_ATTEST.
    const nonce = Buffer.alloc(32, 10);
    const genuine = await a.dev.certify(a.key.handle, a.ak.handle, nonce);
    const digest = createHash('sha256').update(genuine.certifyInfo).digest();
    const forgedSig = await a.client.sign(a.key.handle, digest, TPM_ALG.ECDSA, TPM_ALG.SHA256);
    rejects(
      () => verifyCertifiedCsr({ csr: 'unused', certifyInfo: genuine.certifyInfo, certifySignature: forgedSig, keyPublic: a.key.parsed.raw, akPublic: a.key.parsed.raw, nonce }, {}),
      'AK_ATTRIBUTES_INVALID',
    );
  });

  it('rejects an AK that is not restricted at start', async () => {
    const ekA = await a.dev.ekPublic();
    rejects(
      () =>
        verifyEnrollmentStart(
          { ekCertificate: undefined, ekPublic: publicToTpm2b(marshalPublic(ekA.public)), akPublic: a.key.parsed.raw },
          { roots, allowEkPublicOnly: true },
          now,
        ),
      'AK_ATTRIBUTES_INVALID',
    );
  });
});
