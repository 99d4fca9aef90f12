import { type webcrypto } from 'node:crypto';
import { AppError } from '../../../src/domain/errors';
import { normalizeEkCertificate, parseTrustAnchors, resolveEk, verifyEkCertificate } from '../../../src/attestation';
import { ekuExtension, issue, keys, rawExtension, sanDirectoryName, tpmName, type Issued } from './pki';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const KU_CA = 0x20 | 0x40; // keyCertSign | cRLSign (x509 KeyUsageFlags)

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return (e as AppError).code;
  }
  throw new Error('expected a rejection');
}

describe('verifyEkCertificate', () => {
  let root: Issued;
  let inter: Issued;
  let ek: Issued;
  let ekKey: webcrypto.CryptoKeyPair;

  const tpmSan = () => rawExtension('2.5.29.17', true, sanDirectoryName(tpmName({ manufacturer: 'id:00001014', model: 'swtpm', version: 'id:20191023' })));

  beforeAll(async () => {
    root = await issue({ subject: 'CN=Test TPM Root', ca: true, keyUsage: KU_CA });
    inter = await issue({ subject: 'CN=Test TPM EK CA', issuer: root, ca: true, pathLen: 0, keyUsage: KU_CA });
    ekKey = await keys();
    ek = await issue({ subject: 'CN=unknown', issuer: inter, keys: ekKey, extensions: [tpmSan(), ekuExtension('2.23.133.8.1')] });
  });

  it('accepts an EK certificate chaining through an intermediate to a configured root, with the critical TPM SAN', () => {
    const r = verifyEkCertificate(ek.der, root.pem, NOW, { intermediates: [inter.der] });
    expect(r.tpm).toEqual({ manufacturer: 'id:00001014', model: 'swtpm', version: 'id:20191023' });
    expect(r.ekPublicSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.chainSha256).toHaveLength(3);
  });

  it('accepts when the bundle holds the intermediate as an anchor (partial chain)', () => {
    expect(verifyEkCertificate(ek.der, parseTrustAnchors(inter.pem), NOW).chainSha256).toHaveLength(2);
  });

  it('rejects an EK certificate whose chain ends at an unconfigured root (untrusted manufacturer)', async () => {
    const otherRoot = await issue({ subject: 'CN=Test TPM Root', ca: true, keyUsage: KU_CA });
    expect(code(() => verifyEkCertificate(ek.der, otherRoot.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects when the intermediate is missing', () => {
    expect(code(() => verifyEkCertificate(ek.der, root.pem, NOW))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects an expired EK certificate (node:crypto does not check dates)', async () => {
    const old = await issue({ subject: 'CN=unknown', issuer: inter, notAfter: new Date('2025-01-01T00:00:00Z'), extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(old.der, root.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects a not-yet-valid EK certificate', async () => {
    const future = await issue({ subject: 'CN=unknown', issuer: inter, notBefore: new Date('2030-01-01T00:00:00Z'), extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(future.der, root.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects a chain through an expired intermediate', async () => {
    const oldInter = await issue({ subject: 'CN=Old EK CA', issuer: root, ca: true, keyUsage: KU_CA, notAfter: new Date('2025-06-01T00:00:00Z') });
    const leaf = await issue({ subject: 'CN=unknown', issuer: oldInter, extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [oldInter.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects a chain through an intermediate that is not a CA (node:crypto does not check CA flags)', async () => {
    const notCa = await issue({ subject: 'CN=Not a CA', issuer: root, ca: false });
    const leaf = await issue({ subject: 'CN=unknown', issuer: notCa, extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [notCa.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects a chain through an intermediate without keyCertSign', async () => {
    const noSign = await issue({ subject: 'CN=No keyCertSign', issuer: root, ca: true, keyUsage: 0x40 });
    const leaf = await issue({ subject: 'CN=unknown', issuer: noSign, extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [noSign.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects a path that violates pathLenConstraint', async () => {
    const sub = await issue({ subject: 'CN=Sub CA', issuer: inter, ca: true, keyUsage: KU_CA });
    const leaf = await issue({ subject: 'CN=unknown', issuer: sub, extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [inter.der, sub.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects an unknown critical extension on the EK certificate', async () => {
    const leaf = await issue({ subject: 'CN=unknown', issuer: inter, extensions: [tpmSan(), rawExtension('1.2.3.4.5', true, Buffer.from([0x05, 0x00]))] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('rejects an EK certificate that is itself a CA', async () => {
    const leaf = await issue({ subject: 'CN=unknown', issuer: inter, ca: true, extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_PROFILE');
  });

  it('rejects an EK certificate whose EKU is not tcg-kp-EKCertificate', async () => {
    const leaf = await issue({ subject: 'CN=unknown', issuer: inter, extensions: [tpmSan(), ekuExtension('1.3.6.1.5.5.7.3.2')] });
    expect(code(() => verifyEkCertificate(leaf.der, root.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_PROFILE');
  });

  it('rejects a forged EK certificate (signature by another key with the intermediate’s name)', async () => {
    const fakeInter = await issue({ subject: 'CN=Test TPM EK CA', issuer: root, ca: true, keyUsage: KU_CA, keys: await keys() });
    const forged = await issue({ subject: 'CN=unknown', issuer: fakeInter, extensions: [tpmSan()] });
    expect(code(() => verifyEkCertificate(forged.der, root.pem, NOW, { intermediates: [inter.der] }))).toBe('EK_CERT_UNTRUSTED');
  });

  it('accepts the NV header and zero padding quirks, and rejects trailing garbage', () => {
    const withHeader = Buffer.concat([Buffer.from([0x10, 0x01, ek.der.length >> 8, ek.der.length & 0xff]), ek.der]);
    expect(normalizeEkCertificate(withHeader).equals(ek.der)).toBe(true);
    expect(normalizeEkCertificate(Buffer.concat([ek.der, Buffer.alloc(40)])).equals(ek.der)).toBe(true);
    expect(code(() => normalizeEkCertificate(Buffer.concat([ek.der, Buffer.from('junk')])))).toBe('EK_CERT_MALFORMED');
    expect(code(() => normalizeEkCertificate(ek.der.subarray(0, 100)))).toBe('EK_CERT_MALFORMED');
  });

  it('refuses an empty trust-anchor bundle as a configuration error', () => {
    expect(code(() => parseTrustAnchors('# comment only\n'))).toBe('TRUST_ROOTS_INVALID');
  });

  it('requires an EK certificate unless EK-public-only is allowed, and a decodable input', () => {
    expect(code(() => resolveEk({ roots: parseTrustAnchors(root.pem), nowMs: NOW, allowEkPublicOnly: true }))).toBe('EK_MISSING');
  });

  it('derives MakeCredential parameters from an EK certificate alone (TCG template defaults)', () => {
    const r = resolveEk({ ekCertificate: ek.der, roots: parseTrustAnchors(root.pem), intermediates: [inter.der], nowMs: NOW, allowEkPublicOnly: false });
    expect(r.ekPublic.type).toBe(0x0023);
    expect(r.ekPublic.nameAlg).toBe(0x000b);
    expect(r.ekPublic.symmetric).toEqual({ algorithm: 0x0006, keyBits: 128, mode: 0x0043 });
  });
});
