import { BasicConstraintsExtension, ExtendedKeyUsageExtension, KeyUsageFlags, KeyUsagesExtension, X509Certificate as PeculiarCertificate } from '@peculiar/x509';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  DEV_ORGANIZATION,
  createCaHierarchy,
  ensureDevCa,
  isDevCertificate,
  loadCa,
  loadFileSigner,
  memoryKeyProvider,
  writeCaFiles,
  type CaFilePaths,
  type CaLog,
} from '../../../src/ca';
import { caConfigSchema } from '../../../src/config/sections/ca';
import { AppError } from '../../../src/domain/errors';
import { makeTempDir, type TempDir } from '../../helpers/openssl';
import { DEVICE_ID, NOW, PUBLIC_URL, craftCsr, ecKey, bs } from './fixtures';

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw new Error(`expected an AppError, got ${String(e)}`);
  }
  throw new Error('expected a rejection');
}

const silentLog = (): CaLog & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, info: (_o, m) => lines.push(m), warn: (_o, m) => lines.push(m) };
};

describe('CA hierarchy', () => {
  let tmp: TempDir;
  beforeEach(() => {
    tmp = makeTempDir();
  });
  afterEach(() => tmp.cleanup());

  const filePaths = (prefix = ''): CaFilePaths & { issuingKey: string; ocspKey: string; rootKey: string } => ({
    rootCert: tmp.file(`${prefix}root.cert.pem`),
    rootKey: tmp.file(`${prefix}root.key.pem`),
    issuingCert: tmp.file(`${prefix}issuing.cert.pem`),
    issuingKey: tmp.file(`${prefix}issuing.key.pem`),
    ocspCert: tmp.file(`${prefix}ocsp.cert.pem`),
    ocspKey: tmp.file(`${prefix}ocsp.key.pem`),
    chain: tmp.file(`${prefix}chain.pem`),
  });

  it('builds root → issuing → OCSP signer with the right constraints, usages and validity nesting', async () => {
    const h = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider(), algorithm: 'ec-p384' });
    const root = new PeculiarCertificate(bs(h.root.der));
    const issuing = new PeculiarCertificate(bs(h.issuing.der));
    const ocsp = new PeculiarCertificate(bs(h.ocsp.der));
    expect(root.subject).toBe(root.issuer);
    expect(root.getExtension(BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 1, critical: true });
    expect(issuing.getExtension(BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 0, critical: true });
    expect(issuing.getExtension(KeyUsagesExtension)!.usages).toBe(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign);
    expect(ocsp.getExtension(BasicConstraintsExtension)!.ca).toBe(false);
    expect(ocsp.getExtension(ExtendedKeyUsageExtension)!.usages).toEqual(['1.3.6.1.5.5.7.3.9']);
    expect(ocsp.getExtension('1.3.6.1.5.5.7.48.1.5')).not.toBeNull();
    expect(new X509Certificate(h.issuing.der).verify(new X509Certificate(h.root.der).publicKey)).toBe(true);
    expect(new X509Certificate(h.ocsp.der).verify(new X509Certificate(h.issuing.der).publicKey)).toBe(true);
    expect(h.issuing.cert.notAfterMs).toBeLessThanOrEqual(h.root.cert.notAfterMs);
    expect(h.ocsp.cert.notAfterMs).toBeLessThanOrEqual(h.issuing.cert.notAfterMs);
    expect(h.root.signer.algorithm.name).toBe('ecdsa-with-SHA384');
    expect(isDevCertificate(h.issuing.der)).toBe(false);
  });

  describe('ensureDevCa', () => {
    it('generates a P-256 dev CA marked DEV ONLY with 0600 `.key.pem` keys, then reuses it', async () => {
      const dir = path.join(tmp.dir, 'certs-dev', 'ca');
      const log = silentLog();
      const first = await ensureDevCa(dir, { nowMs: Date.now(), log });
      expect(first.generated).toBe(true);
      for (const key of [first.paths.rootKey, first.paths.issuingKey, first.paths.ocspKey]) {
        expect(key.endsWith('.key.pem')).toBe(true);
        expect(statSync(key).mode & 0o777).toBe(0o600);
      }
      const issuingPem = readFileSync(first.paths.issuingCert, 'utf8');
      const issuing = new X509Certificate(issuingPem);
      expect(issuing.subject).toContain(`O=${DEV_ORGANIZATION}`);
      expect(issuing.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(isDevCertificate(issuingPem)).toBe(true);
      expect(readFileSync(first.paths.chain, 'utf8')).toBe(issuingPem + readFileSync(first.paths.rootCert, 'utf8'));

      const second = await ensureDevCa(dir, { nowMs: Date.now(), log });
      expect(second.generated).toBe(false);
      expect(readFileSync(second.paths.issuingCert, 'utf8')).toBe(issuingPem);
      expect(log.lines.filter((l) => l.startsWith('generated'))).toHaveLength(1);
    });

    it('replaces an incomplete dev CA (a deleted key) and one that has expired', async () => {
      const dir = path.join(tmp.dir, 'ca');
      const first = await ensureDevCa(dir, { nowMs: NOW });
      const before = readFileSync(first.paths.issuingCert, 'utf8');
      rmSync(first.paths.ocspKey);
      const second = await ensureDevCa(dir, { nowMs: NOW });
      expect(second.generated).toBe(true);
      expect(readFileSync(second.paths.issuingCert, 'utf8')).not.toBe(before);
      const later = await ensureDevCa(dir, { nowMs: NOW + 400 * 24 * 3600_000 });
      expect(later.generated).toBe(true);
    });

    it('refuses to move aside a directory that holds anything but dev CA files (misconfigured devDir)', async () => {
      const dir = path.join(tmp.dir, 'not-a-ca');
      mkdirSync(dir);
      tmp.write('not-a-ca/README.md', 'important');
      expect((await rejection(ensureDevCa(dir, { nowMs: NOW }))).code).toBe('DEV_CA_DIR_FOREIGN_FILES');
      expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toBe('important');
    });

    it('lets two concurrent starts share one dev CA', async () => {
      const dir = path.join(tmp.dir, 'race');
      const [a, b] = await Promise.all([ensureDevCa(dir, { nowMs: NOW }), ensureDevCa(dir, { nowMs: NOW })]);
      expect([a.generated, b.generated].filter(Boolean).length).toBeGreaterThanOrEqual(1);
      const pem = readFileSync(a.paths.issuingCert, 'utf8');
      expect(readFileSync(b.paths.issuingCert, 'utf8')).toBe(pem);
      const ca = await loadCa(caConfigSchema.parse({ source: 'dev', devDir: dir }), { publicUrl: PUBLIC_URL, nowMs: NOW });
      expect(ca.issuingCertPem).toBe(pem);
    });
  });

  it('isDevCertificate is false for garbage and true for device certificates issued by a dev CA', async () => {
    expect(isDevCertificate(Buffer.from('nope'))).toBe(false);
    expect(isDevCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toBe(false);
    const ca = await loadCa(caConfigSchema.parse({ source: 'dev', devDir: tmp.file('dev') }), { publicUrl: PUBLIC_URL, nowMs: NOW });
    expect(ca.isDev).toBe(true);
    const leaf = await ca.issue({ csr: craftCsr({ signingKey: ecKey('P-256') }), deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });
    expect(isDevCertificate(leaf.der)).toBe(true);
  });

  describe('ca init into files and loadCa with source file', () => {
    it('writes encrypted keys and loads them with the passphrase from a file or from the env value passed in', async () => {
      const h = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      const p = filePaths();
      writeCaFiles(h, p, { passphrase: 'correct horse battery staple' });
      expect(readFileSync(p.issuingKey, 'utf8')).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
      expect(statSync(p.issuingKey).mode & 0o777).toBe(0o600);
      tmp.write('pass.txt', 'correct horse battery staple\n');
      const files = { rootCert: p.rootCert, issuingCert: p.issuingCert, issuingKey: p.issuingKey, ocspCert: p.ocspCert, ocspKey: p.ocspKey };

      const viaFile = await loadCa(caConfigSchema.parse({ source: 'file', files: { ...files, keyPassphraseFile: tmp.file('pass.txt') } }), {
        publicUrl: PUBLIC_URL,
        nowMs: NOW,
        production: true,
      });
      const viaEnv = await loadCa(caConfigSchema.parse({ source: 'file', files: { ...files, keyPassphraseEnv: 'DG_TEST_PASS' } }), {
        publicUrl: PUBLIC_URL,
        nowMs: NOW,
        env: { DG_TEST_PASS: 'correct horse battery staple' },
        production: true,
      });
      for (const ca of [viaFile, viaEnv]) {
        expect(ca.isDev).toBe(false);
        const leaf = await ca.issue({ csr: craftCsr({ signingKey: ecKey('P-256') }), deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'manual' });
        expect(new X509Certificate(leaf.der).verify(new X509Certificate(h.issuing.der).publicKey)).toBe(true);
        expect(ca.chainPem).toBe(h.issuing.pem + h.root.pem);
      }
    });

    it('fails closed on a wrong or missing passphrase without echoing it', async () => {
      const h = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      const p = filePaths();
      writeCaFiles(h, p, { passphrase: 's3cret-pass' });
      const wrong = await rejection(loadFileSigner(p.issuingKey, { value: 'not-it' }));
      expect(wrong.code).toBe('CA_KEY_UNREADABLE');
      expect(wrong.message).not.toContain('not-it');
      expect((await rejection(loadFileSigner(p.issuingKey))).code).toBe('CA_KEY_UNREADABLE');
      const files = { rootCert: p.rootCert, issuingCert: p.issuingCert, issuingKey: p.issuingKey, ocspCert: p.ocspCert, ocspKey: p.ocspKey };
      const missingEnv = await rejection(
        loadCa(caConfigSchema.parse({ source: 'file', files: { ...files, keyPassphraseEnv: 'DG_UNSET_VAR' } }), { publicUrl: PUBLIC_URL, nowMs: NOW, env: {} }),
      );
      expect(missingEnv.code).toBe('CA_SECRET_MISSING');
    });

    it('refuses to overwrite an existing CA (second `ca init`)', async () => {
      const h = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      const p = filePaths();
      writeCaFiles(h, p);
      const before = readFileSync(p.issuingKey, 'utf8');
      const h2 = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      expect(() => writeCaFiles(h2, p)).toThrow(expect.objectContaining({ code: 'CA_FILE_EXISTS' }));
      expect(readFileSync(p.issuingKey, 'utf8')).toBe(before);
    });

    it('refuses a key that does not belong to its certificate (swapped key files)', async () => {
      const h = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      const p = filePaths();
      writeCaFiles(h, p);
      const cfg = caConfigSchema.parse({
        source: 'file',
        files: { rootCert: p.rootCert, issuingCert: p.issuingCert, issuingKey: p.ocspKey, ocspCert: p.ocspCert, ocspKey: p.ocspKey },
      });
      expect((await rejection(loadCa(cfg, { publicUrl: PUBLIC_URL, nowMs: NOW }))).code).toBe('CA_KEY_MISMATCH');
    });

    it('refuses an issuing CA that the configured root did not sign, and an OCSP signer of another CA', async () => {
      const a = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      const b = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider() });
      const pa = filePaths('a-');
      const pb = filePaths('b-');
      writeCaFiles(a, pa);
      writeCaFiles(b, pb);
      const base = { rootCert: pa.rootCert, issuingCert: pa.issuingCert, issuingKey: pa.issuingKey, ocspCert: pa.ocspCert, ocspKey: pa.ocspKey };
      const wrongRoot = caConfigSchema.parse({ source: 'file', files: { ...base, rootCert: pb.rootCert } });
      expect((await rejection(loadCa(wrongRoot, { publicUrl: PUBLIC_URL, nowMs: NOW }))).code).toBe('CA_CHAIN_INVALID');
      const wrongOcsp = caConfigSchema.parse({ source: 'file', files: { ...base, ocspCert: pb.ocspCert, ocspKey: pb.ocspKey } });
      expect((await rejection(loadCa(wrongOcsp, { publicUrl: PUBLIC_URL, nowMs: NOW }))).code).toBe('CA_CHAIN_INVALID');
    });

    it('refuses an expired issuing CA at load time', async () => {
      const h = await createCaHierarchy({ nowMs: NOW, keys: memoryKeyProvider(), issuingValidityDays: 10 });
      const p = filePaths();
      writeCaFiles(h, p);
      const cfg = caConfigSchema.parse({ source: 'file', files: { rootCert: p.rootCert, issuingCert: p.issuingCert, issuingKey: p.issuingKey, ocspCert: p.ocspCert, ocspKey: p.ocspKey } });
      expect((await rejection(loadCa(cfg, { publicUrl: PUBLIC_URL, nowMs: NOW + 11 * 24 * 3600_000 }))).code).toBe('CA_NOT_VALID');
    });
  });

  describe('production mode', () => {
    it('refuses source dev in production', async () => {
      const err = await rejection(loadCa(caConfigSchema.parse({ source: 'dev', devDir: tmp.file('d') }), { publicUrl: PUBLIC_URL, nowMs: NOW, production: true }));
      expect(err.code).toBe('CA_DEV_IN_PRODUCTION');
      expect(existsSync(tmp.file('d'))).toBe(false);
    });

    it('refuses dev certificates smuggled in through source file (dev CA copied into production paths)', async () => {
      const { paths } = await ensureDevCa(tmp.file('dev'), { nowMs: NOW });
      const cfg = caConfigSchema.parse({
        source: 'file',
        files: { rootCert: paths.rootCert, issuingCert: paths.issuingCert, issuingKey: paths.issuingKey, ocspCert: paths.ocspCert, ocspKey: paths.ocspKey },
      });
      expect((await rejection(loadCa(cfg, { publicUrl: PUBLIC_URL, nowMs: NOW, production: true }))).code).toBe('CA_DEV_IN_PRODUCTION');
      const outsideProduction = await loadCa(cfg, { publicUrl: PUBLIC_URL, nowMs: NOW });
      expect(outsideProduction.isDev).toBe(true);
    });
  });
});

describe('ca config section', () => {
  it('applies defaults: dev source, 24 h device certificates, 7 d cap, 5 min backdate', () => {
    const c = caConfigSchema.parse(undefined);
    expect(c.source).toBe('dev');
    expect(c.deviceCert).toMatchObject({ defaultValiditySeconds: 86400, maxValiditySeconds: 604800, backdateSeconds: 300, csrMaxBytes: 16384 });
    expect(c.crl.validitySeconds).toBeGreaterThan(c.crl.refreshSeconds);
  });

  it('reports every missing setting for source file and pkcs11 at once', () => {
    const file = caConfigSchema.safeParse({ source: 'file' });
    expect(file.success).toBe(false);
    expect(file.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(
      ['files.issuingCert', 'files.issuingKey', 'files.ocspCert', 'files.ocspKey', 'files.rootCert'].sort(),
    );
    const p11 = caConfigSchema.safeParse({ source: 'pkcs11', files: { rootCert: 'r', issuingCert: 'i', ocspCert: 'o' } });
    expect(p11.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['pkcs11.pinFile', 'pkcs11.tokenLabel']);
  });

  it('rejects a default lifetime above the cap, a CRL validity not above its refresh, and an OCSP cache outliving answers', () => {
    const r = caConfigSchema.safeParse({
      deviceCert: { defaultValiditySeconds: 90000, maxValiditySeconds: 86400 },
      crl: { refreshSeconds: 3600, validitySeconds: 3600 },
      ocsp: { responseValiditySeconds: 600, cacheSeconds: 600 },
    });
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['crl.validitySeconds', 'deviceCert.defaultValiditySeconds', 'ocsp.cacheSeconds']);
  });

  it('takes secrets only as file paths or env variable names', () => {
    expect(caConfigSchema.safeParse({ files: { keyPassphraseEnv: 'my secret passphrase' } }).success).toBe(false);
    expect(caConfigSchema.safeParse({ pkcs11: { pinEnv: 'DEVICEGATE_HSM_PIN' } }).success).toBe(true);
  });
});
