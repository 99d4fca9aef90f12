/**
 * What the CA produces must be accepted by the real OpenSSL: issued certificates (`verify -purpose sslclient`),
 * CRLs (`crl -verify`, `verify -crl_check`) and OCSP responses (`ocsp -reqin/-respin`).
 *
 * OpenSSL checks validity against the system clock, so this suite issues at the real `Date.now()`.
 */
import { writeFileSync } from 'node:fs';
import {
  assembleAuthority,
  createCaHierarchy,
  memoryKeyProvider,
  type CaKeyAlgorithm,
  type CertificateAuthority,
  type OcspCertStatus,
} from '../../../src/ca';
import { caConfigSchema } from '../../../src/config/sections/ca';
import { genKey, makeCsr, makeTempDir, openssl, opensslOk, type TempDir, type TestKeyType } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';

const DEVICE = '6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4';
const config = caConfigSchema.parse({});

async function makeCa(keyAlg: CaKeyAlgorithm, nowMs: number): Promise<CertificateAuthority> {
  const h = await createCaHierarchy({ nowMs, keys: memoryKeyProvider(), algorithm: keyAlg });
  return assembleAuthority({
    source: 'file',
    isDev: false,
    root: h.root,
    issuing: h.issuing,
    ocsp: h.ocsp,
    config,
    publicUrl: 'https://devicegate.test',
  });
}

describeWith([tool('openssl')], 'CA output is accepted by OpenSSL', () => {
  let tmp: TempDir;
  let ca: CertificateAuthority;
  const now = Date.now();

  const writeCa = (c: CertificateAuthority, prefix: string): { root: string; issuing: string; all: string } => ({
    root: tmp.write(`${prefix}-root.pem`, c.rootCertPem),
    issuing: tmp.write(`${prefix}-issuing.pem`, c.issuingCertPem),
    all: tmp.write(`${prefix}-all.pem`, c.rootCertPem + c.issuingCertPem),
  });

  beforeAll(async () => {
    tmp = makeTempDir();
    ca = await makeCa('ec-p256', now);
    writeCa(ca, 'main');
  });
  afterAll(() => tmp.cleanup());

  const issueFor = async (c: CertificateAuthority, keyType: TestKeyType, name: string): Promise<{ path: string; serialHex: string }> => {
    const key = genKey(tmp, name, keyType);
    const csr = makeCsr(tmp, key, { name });
    const cert = await c.issue({ csr: csr.pem, deviceId: DEVICE, nowMs: now, issuedVia: 'enroll' });
    return { path: tmp.write(`${name}.cert.pem`, cert.pem), serialHex: cert.serialHex };
  };

  it.each<TestKeyType>(['p256', 'p384', 'rsa2048'])(
    'issues a device certificate for a %s key that `openssl verify -purpose sslclient` accepts',
    async (keyType) => {
      const leaf = await issueFor(ca, keyType, `leaf-${keyType}`);
      const r = openssl(['verify', '-purpose', 'sslclient', '-CAfile', tmp.file('main-root.pem'), '-untrusted', tmp.file('main-issuing.pem'), leaf.path]);
      expect(r.all).toContain(': OK');
      expect(r.code).toBe(0);
    },
  );

  it.each<CaKeyAlgorithm>(['ec-p384', 'rsa-2048'])('signs with a %s CA hierarchy that OpenSSL verifies', async (alg) => {
    const other = await makeCa(alg, now);
    const files = writeCa(other, alg);
    const leaf = await issueFor(other, 'p256', `leaf-under-${alg}`);
    const r = openssl(['verify', '-purpose', 'sslclient', '-CAfile', files.root, '-untrusted', files.issuing, leaf.path]);
    expect(r.code).toBe(0);
    expect(r.all).toContain(': OK');
    const text = opensslOk(['x509', '-in', leaf.path, '-noout', '-text']).stdout;
    expect(text).toContain(alg === 'rsa-2048' ? 'sha256WithRSAEncryption' : 'ecdsa-with-SHA384');
  });

  it('rejects a device certificate under `openssl verify -purpose sslserver` (EKU is clientAuth only)', async () => {
    const leaf = await issueFor(ca, 'p256', 'leaf-server-purpose');
    const r = openssl(['verify', '-purpose', 'sslserver', '-CAfile', tmp.file('main-root.pem'), '-untrusted', tmp.file('main-issuing.pem'), leaf.path]);
    expect(r.code).not.toBe(0);
    expect(r.all).toMatch(/error 26 .*unsuitable certificate purpose/);
  });

  it('produces a CRL (PEM label X509 CRL) that `openssl crl -verify` accepts, with number and reasons', async () => {
    const crl = await ca.buildCrl({
      entries: [
        { serialHex: '0badc0de', revokedAtMs: now - 60_000, reason: 'keyCompromise' },
        { serialHex: '7fffffff01', revokedAtMs: now - 30_000, reason: 'unspecified' },
      ],
      crlNumber: 42,
      nowMs: now,
    });
    expect(crl.pem.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true);
    const pemPath = tmp.write('main.crl.pem', crl.pem);
    const derPath = tmp.write('main.crl.der', crl.der);
    const r = openssl(['crl', '-in', pemPath, '-CAfile', tmp.file('main-issuing.pem'), '-noout', '-verify']);
    expect(r.code).toBe(0);
    expect(r.all).toContain('verify OK');
    const text = opensslOk(['crl', '-inform', 'DER', '-in', derPath, '-noout', '-text']).stdout;
    expect(text).toMatch(/CRL Number:\s*\n\s*42/);
    expect(text).toContain('Serial Number: 0BADC0DE');
    expect(text).toContain('Key Compromise');
    expect(text).toContain('Serial Number: 7FFFFFFF01');
  });

  it('makes `openssl verify -crl_check` reject a revoked certificate and accept an unrevoked one', async () => {
    const revoked = await issueFor(ca, 'p256', 'leaf-revoked');
    const fine = await issueFor(ca, 'p256', 'leaf-fine');
    const crl = await ca.buildCrl({
      entries: [{ serialHex: revoked.serialHex, revokedAtMs: now, reason: 'keyCompromise' }],
      crlNumber: 43,
      nowMs: now,
    });
    const crlPath = tmp.write('crl-check.crl.pem', crl.pem);
    const bad = openssl(['verify', '-crl_check', '-CAfile', tmp.file('main-all.pem'), '-CRLfile', crlPath, revoked.path]);
    expect(bad.code).not.toBe(0);
    expect(bad.all).toMatch(/error 23 .*certificate revoked/);
    const good = openssl(['verify', '-crl_check', '-CAfile', tmp.file('main-all.pem'), '-CRLfile', crlPath, fine.path]);
    expect(good.code).toBe(0);
  });

  describe('OCSP', () => {
    let good: { path: string; serialHex: string };
    let revoked: { path: string; serialHex: string };
    let unknownToStore: { path: string; serialHex: string };
    const revokedAt = now - 120_000;

    beforeAll(async () => {
      good = await issueFor(ca, 'p256', 'ocsp-good');
      revoked = await issueFor(ca, 'p256', 'ocsp-revoked');
      unknownToStore = await issueFor(ca, 'p256', 'ocsp-unknown');
    });

    const lookup = (serialHex: string): OcspCertStatus => {
      if (serialHex === good.serialHex) return { status: 'good' };
      if (serialHex === revoked.serialHex) return { status: 'revoked', revokedAtMs: revokedAt, reason: 'keyCompromise' };
      return { status: 'unknown' };
    };

    async function roundTrip(
      leafPath: string,
      opts: { digest?: 'sha1' | 'sha256'; issuerPem?: string; nonce?: boolean; name: string },
    ): Promise<{ text: string; code: number; summary: string }> {
      const responder = ca.createOcspResponder({ lookup });
      const reqPath = tmp.file(`${opts.name}.req.der`);
      const respPath = tmp.file(`${opts.name}.resp.der`);
      const issuer = opts.issuerPem ?? tmp.file('main-issuing.pem');
      opensslOk([
        'ocsp',
        '-issuer', issuer,
        `-${opts.digest ?? 'sha1'}`,
        '-cert', leafPath,
        ...(opts.nonce === false ? ['-no_nonce'] : []),
        '-reqout', reqPath,
      ]);
      const res = await responder.respond(tmp.read(`${opts.name}.req.der`), { nowMs: now, generation: 1 });
      writeFileSync(respPath, res.der);
      const r = openssl(['ocsp', '-reqin', reqPath, '-respin', respPath, '-CAfile', tmp.file('main-all.pem'), '-req_text', '-resp_text']);
      // The summary form ("<file>: good") recomputes the certID from -issuer/-cert and checks it against the answer.
      const s = openssl([
        'ocsp', '-issuer', issuer, `-${opts.digest ?? 'sha1'}`, '-cert', leafPath, '-respin', respPath,
        '-CAfile', tmp.file('main-all.pem'), '-no_nonce',
      ]);
      return { text: r.all, code: r.code, summary: s.all };
    }

    const nonces = (text: string): string[] => [...text.matchAll(/OCSP Nonce:\s*\n\s*([0-9A-F]+)/g)].map((m) => m[1] as string);

    it('answers good for a valid certificate; openssl says "Response verify OK" and the nonce is echoed', async () => {
      const r = await roundTrip(good.path, { name: 'good' });
      expect(r.code).toBe(0);
      expect(r.text).toContain('Response verify OK');
      expect(r.text).toContain('Cert Status: good');
      const [reqNonce, respNonce] = nonces(r.text);
      expect(reqNonce).toBeDefined();
      expect(respNonce).toBe(reqNonce);
      expect(r.summary).toContain(`${good.path}: good`);
      expect(r.summary).toContain('Response verify OK');
    });

    it('answers revoked with time and reason for a revoked certificate', async () => {
      const r = await roundTrip(revoked.path, { name: 'revoked' });
      expect(r.text).toContain('Response verify OK');
      expect(r.text).toContain('Cert Status: revoked');
      expect(r.text).toContain('Revocation Reason: keyCompromise');
      expect(r.summary).toContain(`${revoked.path}: revoked`);
    });

    it('answers unknown for a serial the store does not know', async () => {
      const r = await roundTrip(unknownToStore.path, { name: 'unknown' });
      expect(r.text).toContain('Response verify OK');
      expect(r.text).toContain('Cert Status: unknown');
      expect(r.summary).toContain(`${unknownToStore.path}: unknown`);
    });

    it('handles SHA-256 certIDs', async () => {
      const r = await roundTrip(revoked.path, { name: 'revoked-sha256', digest: 'sha256' });
      expect(r.text).toContain('Hash Algorithm: sha256');
      expect(r.text).toContain('Response verify OK');
      expect(r.summary).toContain(`${revoked.path}: revoked`);
    });

    it('answers a request without nonce with a response without nonce that still verifies', async () => {
      const r = await roundTrip(good.path, { name: 'no-nonce', nonce: false });
      expect(r.text).toContain('Response verify OK');
      expect(nonces(r.text)).toHaveLength(0);
    });

    // OpenSSL only accepts a delegated responder for certIDs of the CA that issued it (RFC 6960 §4.2.2.2), so for a
    // foreign certID the response can only be checked with the responder certificate trusted directly (-VAfile).
    it('answers unknown for a certificate of another issuer (issuerNameHash/issuerKeyHash mismatch) although the lookup would say good', async () => {
      const foreign = await makeCa('ec-p256', now);
      const files = writeCa(foreign, 'foreign');
      const key = genKey(tmp, 'foreign-leaf', 'p256');
      const cert = await foreign.issue({ csr: makeCsr(tmp, key).pem, deviceId: DEVICE, nowMs: now, issuedVia: 'enroll' });
      const leafPath = tmp.write('foreign-leaf.cert.pem', cert.pem);
      const responder = ca.createOcspResponder({ lookup: () => ({ status: 'good' }) });
      opensslOk(['ocsp', '-issuer', files.issuing, '-cert', leafPath, '-reqout', tmp.file('foreign.req.der')]);
      const res = await responder.respond(tmp.read('foreign.req.der'), { nowMs: now, generation: 1 });
      expect(res.answers).toEqual([{ serialHex: null, status: 'unknown' }]);
      writeFileSync(tmp.file('foreign.resp.der'), res.der);
      const va = tmp.write('main-ocsp.pem', ca.ocspCertPem);
      const r = openssl(['ocsp', '-reqin', tmp.file('foreign.req.der'), '-respin', tmp.file('foreign.resp.der'), '-VAfile', va, '-resp_text']);
      expect(r.all).toContain('Response verify OK');
      expect(r.all).toContain('Cert Status: unknown');
    });

    it('answers malformedRequest for a garbage request, which openssl reports as a responder error', async () => {
      const responder = ca.createOcspResponder({ lookup });
      const res = await responder.respond(Buffer.from('this is not DER at all'), { nowMs: now, generation: 1 });
      expect(res.responseStatus).toBe('malformedRequest');
      writeFileSync(tmp.file('garbage.resp.der'), res.der);
      const r = openssl(['ocsp', '-respin', tmp.file('garbage.resp.der'), '-resp_text', '-noverify']);
      expect(r.all).toMatch(/malformedrequest/i);
    });
  });
});
