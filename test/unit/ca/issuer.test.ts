import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  CRLDistributionPointsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate as PeculiarCertificate,
} from '@peculiar/x509';
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { DeviceCertificateIssuer, createKeyObjectSigner, type CertificateAuthority } from '../../../src/ca';
import { AppError } from '../../../src/domain/errors';
import { genKey, makeCsr, makeTempDir, type TempDir } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';
import { DEVICE_ID, NOW, OTHER_DEVICE_ID, PUBLIC_URL, craftCsr, ecKey, rsaKey, testCa, bs } from './fixtures';

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw new Error(`expected an AppError, got ${String(e)}`);
  }
  throw new Error('expected a rejection');
}

describe('device certificate issuance', () => {
  let ca: CertificateAuthority;
  let issuingSki: string;
  const csr = craftCsr({ signingKey: ecKey('P-256') });

  beforeAll(async () => {
    ({ ca } = await testCa());
    issuingSki = new PeculiarCertificate(bs(ca.issuingCert.der)).getExtension(SubjectKeyIdentifierExtension)!.keyId;
  });

  it('produces exactly the device profile of issue 3 (parsed with @peculiar/x509 and node:crypto)', async () => {
    const issued = await ca.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });
    const cert = new PeculiarCertificate(bs(issued.der));
    expect(cert.subject).toBe(`CN=${DEVICE_ID}`);
    expect(cert.issuer).toBe('O=devicegate, CN=devicegate Issuing CA');

    const san = cert.getExtension(SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(false);
    expect(san.names.toJSON()).toEqual([{ type: 'url', value: `urn:uuid:${DEVICE_ID}` }]);

    const eku = cert.getExtension(ExtendedKeyUsageExtension)!;
    expect(eku.usages).toEqual(['1.3.6.1.5.5.7.3.2']);

    const ku = cert.getExtension(KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(KeyUsageFlags.digitalSignature);

    const bc = cert.getExtension(BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(false);

    const ski = cert.getExtension(SubjectKeyIdentifierExtension)!;
    const keyBits = Buffer.from(cert.publicKey.rawData).subarray(-65);
    expect(ski.keyId).toBe(createHash('sha1').update(keyBits).digest('hex'));
    expect(cert.getExtension(AuthorityKeyIdentifierExtension)!.keyId).toBe(issuingSki);

    const cdp = cert.getExtension(CRLDistributionPointsExtension)!;
    expect(cdp.distributionPoints[0]!.distributionPoint!.fullName![0]!.uniformResourceIdentifier).toBe(`${PUBLIC_URL}/v1/crl`);
    const node = new X509Certificate(issued.der);
    expect(node.infoAccess).toBe(`OCSP - URI:${PUBLIC_URL}/v1/ocsp`);
    expect(node.subjectAltName).toBe(`URI:urn:uuid:${DEVICE_ID}`);
    expect(node.ca).toBe(false);

    expect(cert.extensions.map((e) => e.type).sort()).toEqual(
      ['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.14', '2.5.29.35', '2.5.29.17', '2.5.29.31', '1.3.6.1.5.5.7.1.1'].sort(),
    );
    expect(await cert.verify({ publicKey: ca.issuingCert.publicKey.export({ type: 'spki', format: 'der' }), signatureOnly: true })).toBe(true);
  });

  it('returns a record consistent with the certificate (serial, sha256, times, PEM, issuedVia)', async () => {
    const issued = await ca.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW + 123, issuedVia: 'renew' });
    const node = new X509Certificate(issued.pem);
    expect(node.raw.equals(issued.der)).toBe(true);
    expect(node.serialNumber.toLowerCase()).toBe(issued.serialHex);
    expect(issued.sha256).toBe(node.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(issued.notBefore).toBe(NOW - 300_000);
    expect(issued.notAfter).toBe(NOW + 24 * 3600_000);
    expect(Date.parse(node.validFrom)).toBe(issued.notBefore);
    expect(Date.parse(node.validTo)).toBe(issued.notAfter);
    expect(issued.issuedVia).toBe('renew');
    expect(issued.issuedAt).toBe(NOW + 123);
    expect(issued.deviceId).toBe(DEVICE_ID);
    expect(issued.pem.startsWith('-----BEGIN CERTIFICATE-----\n')).toBe(true);
  });

  it('uses random, positive, 16-octet serials without a sign byte, never repeating', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const { serialHex } = await ca.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });
      expect(serialHex).toMatch(/^[0-7][0-9a-f]{31}$/);
      expect(serialHex.startsWith('00')).toBe(false);
      serials.add(serialHex);
    }
    expect(serials.size).toBe(300);
  });

  it('caps the lifetime at the configured maximum and refuses non-positive lifetimes', async () => {
    const long = await ca.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW, validitySeconds: 365 * 24 * 3600, issuedVia: 'manual' });
    expect(long.notAfter).toBe(NOW + 7 * 24 * 3600_000);
    const short = await ca.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW, validitySeconds: 600, issuedVia: 'manual' });
    expect(short.notAfter).toBe(NOW + 600_000);
    for (const v of [0, -5, 1.5, Number.NaN]) {
      expect(await rejection(ca.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW, validitySeconds: v, issuedVia: 'manual' }))).toMatchObject({
        kind: 'bad_request',
        code: 'VALIDITY_INVALID',
      });
    }
  });

  it('never lets a device certificate outlive its issuing CA, and refuses to issue from an expired CA', async () => {
    const nearEnd = ca.issuingCert.notAfterMs - 3600_000;
    const issued = await ca.issue({ csr, deviceId: DEVICE_ID, nowMs: nearEnd, issuedVia: 'enroll' });
    expect(issued.notAfter).toBe(ca.issuingCert.notAfterMs);
    expect(await rejection(ca.issue({ csr, deviceId: DEVICE_ID, nowMs: ca.issuingCert.notAfterMs + 1000, issuedVia: 'enroll' }))).toMatchObject({
      kind: 'unavailable',
      code: 'CA_NOT_VALID',
    });
    expect(await rejection(ca.issue({ csr, deviceId: DEVICE_ID, nowMs: ca.issuingCert.notBeforeMs - 1000, issuedVia: 'enroll' }))).toMatchObject({
      code: 'CA_NOT_VALID',
    });
  });

  it('rejects device ids that are not lower-case UUIDs (name injection into CN/SAN)', async () => {
    for (const id of ['', 'device-1', DEVICE_ID.toUpperCase(), `${DEVICE_ID},CN=admin`, `${DEVICE_ID}\nCN=x`, '../../etc/passwd']) {
      expect(await rejection(ca.issue({ csr, deviceId: id, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({
        kind: 'bad_request',
        code: 'DEVICE_ID_INVALID',
      });
    }
  });

  it('issues from a bare SPKI (key proven by attestation) and applies the same key policy to it', async () => {
    const spki = createPublicKey(ecKey('P-384')).export({ type: 'spki', format: 'der' });
    const issued = await ca.issue({ spki, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });
    expect(issued.keyKind).toBe('ec-p384');
    expect(new X509Certificate(issued.der).publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);

    const weak = createPublicKey(rsaKey(1024)).export({ type: 'spki', format: 'der' });
    expect(await rejection(ca.issue({ spki: weak, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({ code: 'KEY_TOO_WEAK' });
    const k1 = createPublicKey(ecKey('secp256k1')).export({ type: 'spki', format: 'der' });
    expect(await rejection(ca.issue({ spki: k1, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({ code: 'KEY_UNSUPPORTED' });
    expect(await rejection(ca.issue({ spki: Buffer.from('junk'), deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({ code: 'KEY_MALFORMED' });
  });

  it('demands exactly one key source', async () => {
    const spki = createPublicKey(ecKey('P-256')).export({ type: 'spki', format: 'der' });
    expect(await rejection(ca.issue({ deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({ code: 'ISSUE_KEY_SOURCE' });
    expect(await rejection(ca.issue({ csr, spki, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({ code: 'ISSUE_KEY_SOURCE' });
  });

  it('refuses to build an issuer whose signer does not match the issuing certificate', async () => {
    const { h } = await testCa();
    expect(() => new DeviceCertificateIssuer({ cert: h.issuing.cert, signer: createKeyObjectSigner(ecKey('P-256')) }, {
      publicUrl: PUBLIC_URL,
      defaultValiditySeconds: 3600,
      maxValiditySeconds: 3600,
      backdateSeconds: 0,
    })).toThrow(expect.objectContaining({ code: 'CA_KEY_MISMATCH' }));
  });

  it('does not double the slash when the public URL ends with one', async () => {
    const { h } = await testCa();
    const issuer = new DeviceCertificateIssuer(h.issuing, {
      publicUrl: 'https://gw.example/base/',
      defaultValiditySeconds: 3600,
      maxValiditySeconds: 3600,
      backdateSeconds: 60,
    });
    const issued = await issuer.issue({ csr, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });
    expect(new X509Certificate(issued.der).infoAccess).toBe('OCSP - URI:https://gw.example/base/v1/ocsp');
  });
});

describeWith([tool('openssl')], 'device certificate issuance from hostile CSRs', () => {
  let tmp: TempDir;
  let ca: CertificateAuthority;
  beforeAll(async () => {
    tmp = makeTempDir();
    ({ ca } = await testCa());
  });
  afterAll(() => tmp.cleanup());

  it('ignores a CSR asking for extra SANs and EKUs and claiming another device id: the certificate carries only ours', async () => {
    const csr = makeCsr(tmp, genKey(tmp, 'hostile', 'p256'), {
      subject: `/CN=${OTHER_DEVICE_ID}/O=City IT/OU=admins`,
      addext: [
        `subjectAltName=URI:urn:uuid:${OTHER_DEVICE_ID},DNS:vpn.stadt.example,email:admin@stadt.example`,
        'extendedKeyUsage=serverAuth,codeSigning,clientAuth',
        'basicConstraints=critical,CA:TRUE',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      ],
    });
    const issued = await ca.issue({ csr: csr.pem, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'manual' });
    const cert = new PeculiarCertificate(bs(issued.der));
    expect(cert.subject).toBe(`CN=${DEVICE_ID}`);
    expect(cert.getExtension(SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: 'url', value: `urn:uuid:${DEVICE_ID}` }]);
    expect(cert.getExtension(ExtendedKeyUsageExtension)!.usages).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(cert.getExtension(BasicConstraintsExtension)!.ca).toBe(false);
    expect(cert.getExtension(KeyUsagesExtension)!.usages).toBe(KeyUsageFlags.digitalSignature);
    expect(cert.extensions).toHaveLength(8);
    expect(issued.der.includes(Buffer.from(OTHER_DEVICE_ID))).toBe(false);
    expect(issued.der.includes(Buffer.from('vpn.stadt.example'))).toBe(false);
  });

  it('rejects a CSR for an RSA-1024 key instead of issuing', async () => {
    const csr = makeCsr(tmp, genKey(tmp, 'weak', 'rsa1024'));
    expect(await rejection(ca.issue({ csr: csr.der, deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' }))).toMatchObject({
      code: 'CSR_KEY_TOO_WEAK',
    });
  });
});
