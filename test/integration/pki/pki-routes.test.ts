import request from 'supertest';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { genKey, makeCsr, makeTempDir, openssl, opensslOk, type TempDir } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';
import { bearer } from '../../helpers/tokens';

const binary = (res: request.Response, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
};

describeWith([tool('openssl')], 'PKI endpoints of the running app, checked with OpenSSL', () => {
  let t: TestApp;
  let dir: TempDir;
  let admin: string;
  let auditor: string;
  let deviceId: string;
  let certPath: string;
  let serialHex: string;

  beforeAll(async () => {
    t = await buildTestApp();
    dir = makeTempDir('dg-pki-');
    admin = await bearer(t.services, 'it-admin');
    auditor = await bearer(t.services, 'auditor');
    const reg = await request(t.app).post('/v1/devices').set('Authorization', admin).send({ serial_number: 'PKI-1', platform: 'linux' }).expect(201);
    deviceId = reg.body.id;
    const csr = makeCsr(dir, genKey(dir, 'dev', 'p256'), { subject: '/CN=whatever-the-device-claims' });
    const issued = await t.services.pki.issue({ deviceId, csr: csr.pem, via: 'manual' });
    serialHex = issued.serialHex;
    certPath = dir.write('dev.crt.pem', issued.pem);
    const chain = await request(t.app).get('/v1/ca/chain').expect(200);
    dir.write('chain.pem', chain.text);
    dir.write('issuing.pem', t.services.pki.ca.issuingCertPem);
  });

  afterAll(async () => {
    await t?.cleanup();
    dir?.cleanup();
  });

  const crlDer = async () => (await request(t.app).get('/v1/crl').buffer(true).parse(binary).expect(200)).body as Buffer;

  it('serves a chain against which the device certificate verifies for TLS client auth', () => {
    expect(opensslOk(['verify', '-CAfile', dir.file('chain.pem'), '-purpose', 'sslclient', certPath]).stdout).toMatch(/: OK/);
    const subject = opensslOk(['x509', '-in', certPath, '-noout', '-subject', '-ext', 'subjectAltName']).stdout;
    expect(subject).toContain(`CN = ${deviceId}`);
    expect(subject).toContain(`URI:urn:uuid:${deviceId}`);
  });

  it('serves the CRL as DER (application/pkix-crl) and PEM labelled X509 CRL, signed by the issuing CA', async () => {
    const res = await request(t.app).get('/v1/crl').buffer(true).parse(binary).expect(200);
    expect(res.headers['content-type']).toMatch(/application\/pkix-crl/);
    dir.write('crl.der', res.body as Buffer);
    expect(opensslOk(['crl', '-inform', 'DER', '-in', dir.file('crl.der'), '-CAfile', dir.file('chain.pem'), '-noout']).all).toMatch(/verify OK/);
    const pem = await request(t.app).get('/v1/crl?format=pem').expect(200);
    expect(pem.text).toMatch(/^-----BEGIN X509 CRL-----/);
    expect(opensslOk(['crl', '-in', dir.write('crl.pem', pem.text), '-noout', '-nextupdate']).stdout).toMatch(/nextUpdate=/);
    expect((await request(t.app).get('/v1/crl?format=xml').expect(400)).body.error.code).toBe('INVALID_QUERY');
  });

  it('answers OCSP good over POST and GET, with the nonce echoed, verified by openssl ocsp', async () => {
    opensslOk(['ocsp', '-issuer', dir.file('issuing.pem'), '-cert', certPath, '-reqout', dir.file('req.der')]);
    const reqDer = dir.read('req.der');
    const post = await request(t.app).post('/v1/ocsp').set('Content-Type', 'application/ocsp-request').send(reqDer).buffer(true).parse(binary).expect(200);
    expect(post.headers['content-type']).toMatch(/application\/ocsp-response/);
    dir.write('resp.der', post.body as Buffer);
    const check = openssl(['ocsp', '-reqin', dir.file('req.der'), '-respin', dir.file('resp.der'), '-CAfile', dir.file('chain.pem'), '-req_text', '-resp_text']);
    expect(check.all).toMatch(/Response verify OK/);
    expect(check.all).toMatch(/Cert Status: good/);
    const nonces = [...check.all.matchAll(/OCSP Nonce:\s*\n\s*([0-9A-F]+)/g)].map((m) => m[1]);
    expect(nonces).toHaveLength(2);
    expect(nonces[0]).toBe(nonces[1]);
    const get = await request(t.app).get(`/v1/ocsp/${encodeURIComponent(reqDer.toString('base64'))}`).buffer(true).parse(binary).expect(200);
    dir.write('resp-get.der', get.body as Buffer);
    expect(openssl(['ocsp', '-reqin', dir.file('req.der'), '-respin', dir.file('resp-get.der'), '-CAfile', dir.file('chain.pem')]).all).toMatch(/Response verify OK/);
  });

  it('answers malformedRequest (HTTP 200) to a garbage OCSP request, over POST and GET', async () => {
    const post = await request(t.app).post('/v1/ocsp').set('Content-Type', 'application/ocsp-request').send(Buffer.from('garbage')).buffer(true).parse(binary).expect(200);
    expect((post.body as Buffer).equals(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]))).toBe(true);
    const get = await request(t.app).get(`/v1/ocsp/${encodeURIComponent(Buffer.from('not-der').toString('base64'))}`).buffer(true).parse(binary).expect(200);
    expect((get.body as Buffer).equals(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]))).toBe(true);
    const notBase64 = await request(t.app).get('/v1/ocsp/***').buffer(true).parse(binary).expect(200);
    expect((notBase64.body as Buffer)[4]).toBe(1);
    // A path that is not even valid percent-encoding never reaches the responder: a 400 with a code.
    const broken = await request(t.app).get('/v1/ocsp/%%%').expect(400);
    expect(broken.body.error.code).toBe('BAD_REQUEST');
  });

  it('refuses certificate revocation to auditors (403) and anonymous callers (401)', async () => {
    await request(t.app).post(`/v1/certificates/${serialHex}/revoke`).set('Authorization', auditor).send({}).expect(403);
    await request(t.app).post(`/v1/certificates/${serialHex}/revoke`).send({}).expect(401);
    expect((await request(t.app).post('/v1/certificates/zz/revoke').set('Authorization', admin).send({}).expect(400)).body.error.code).toBe('INVALID_SERIAL');
    expect((await request(t.app).post('/v1/certificates/0a0b/revoke').set('Authorization', admin).send({}).expect(404)).body.error.code).toBe('CERT_NOT_FOUND');
    expect((await request(t.app).post(`/v1/certificates/${serialHex}/revoke`).set('Authorization', admin).send({ reason: 'removeFromCRL' }).expect(400)).body.error.code).toBe('INVALID_REASON');
  });

  it('after a revocation the CRL lists it (openssl verify -crl_check rejects the certificate) and OCSP says revoked', async () => {
    const before = await crlDer();
    const colonSerial = serialHex.match(/../g)!.join(':').toUpperCase();
    await request(t.app).post(`/v1/certificates/${colonSerial}/revoke`).set('Authorization', admin).send({ reason: 'keyCompromise' }).expect(200);
    expect((await request(t.app).post(`/v1/certificates/${serialHex}/revoke`).set('Authorization', admin).send({}).expect(409)).body.error.code).toBe('CERT_ALREADY_REVOKED');
    const after = await crlDer();
    expect(after.equals(before)).toBe(false);
    dir.write('crl2.der', after);
    opensslOk(['crl', '-inform', 'DER', '-in', dir.file('crl2.der'), '-out', dir.file('crl2.pem')]);
    const v = openssl(['verify', '-crl_check', '-CAfile', dir.file('chain.pem'), '-CRLfile', dir.file('crl2.pem'), certPath]);
    expect(v.code).not.toBe(0);
    expect(v.all).toMatch(/certificate revoked/);
    opensslOk(['ocsp', '-issuer', dir.file('issuing.pem'), '-cert', certPath, '-reqout', dir.file('req2.der')]);
    const resp = await request(t.app).post('/v1/ocsp').set('Content-Type', 'application/ocsp-request').send(dir.read('req2.der')).buffer(true).parse(binary).expect(200);
    dir.write('resp2.der', resp.body as Buffer);
    const check = openssl(['ocsp', '-reqin', dir.file('req2.der'), '-respin', dir.file('resp2.der'), '-CAfile', dir.file('chain.pem'), '-resp_text']);
    expect(check.all).toMatch(/Response verify OK/);
    expect(check.all).toMatch(/Cert Status: revoked/);
    expect(check.all).toMatch(/Revocation Reason: keyCompromise/);
  });

  it('revokes every certificate of a device when IT revokes the device', async () => {
    const reg = await request(t.app).post('/v1/devices').set('Authorization', admin).send({ serial_number: 'PKI-2', platform: 'windows' }).expect(201);
    const csr = makeCsr(dir, genKey(dir, 'dev2', 'rsa2048'));
    const a = await t.services.pki.issue({ deviceId: reg.body.id, csr: csr.pem, via: 'manual' });
    const b = await t.services.pki.issue({ deviceId: reg.body.id, csr: csr.pem, via: 'manual' });
    await request(t.app).post(`/v1/devices/${reg.body.id}/status`).set('Authorization', admin).send({ status: 'revoked', reason: 'stolen' }).expect(200);
    expect((await t.store.revocations.get(a.serialHex))?.reason).toBe('privilegeWithdrawn');
    expect(await t.store.revocations.get(b.serialHex)).not.toBeNull();
  });
});
