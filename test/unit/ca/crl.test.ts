import { AuthorityKeyIdentifierExtension, X509Certificate, X509Crl, X509CrlReason } from '@peculiar/x509';
import { buildCrl, crlToPem, serialContentFromHex, type CertificateAuthority, type CrlEntry } from '../../../src/ca';
import { TAG, children, readTop } from '../../../src/ca/der';
import { AppError } from '../../../src/domain/errors';
import { REVOCATION_REASONS } from '../../../src/domain/types';
import { NOW, testCa, bs } from './fixtures';

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AppError) return e;
    throw new Error(`expected an AppError, got ${String(e)}`);
  }
  throw new Error('expected a rejection');
}

const issuerOf = (ca: CertificateAuthority): X509Certificate => new X509Certificate(bs(ca.issuingCert.der));

describe('CRL builder', () => {
  let ca: CertificateAuthority;
  beforeAll(async () => {
    ({ ca } = await testCa());
  });

  it('builds a signed v2 CRL with crlNumber, AKI, times, entries and reason codes (parsed by @peculiar/x509)', async () => {
    const entries: CrlEntry[] = REVOCATION_REASONS.filter((r) => r !== 'removeFromCRL').map((reason, i) => ({
      serialHex: (0x10 + i).toString(16).padStart(2, '0') + 'aabbcc',
      revokedAtMs: NOW - (i + 1) * 60_000,
      reason,
    }));
    const built = await ca.buildCrl({ entries, crlNumber: 17, nowMs: NOW });
    const crl = new X509Crl(bs(built.der));
    // @peculiar/x509 reports the raw INTEGER: 1 encodes v2.
    expect(crl.version).toBe(1);
    expect(crl.issuer).toBe('O=devicegate, CN=devicegate Issuing CA');
    expect(crl.thisUpdate.getTime()).toBe(NOW);
    expect(crl.nextUpdate!.getTime()).toBe(NOW + 2 * 3600_000);
    expect(built.nextUpdateMs).toBe(NOW + 2 * 3600_000);
    expect(await crl.verify({ publicKey: issuerOf(ca) })).toBe(true);
    expect(crl.getExtension(AuthorityKeyIdentifierExtension)!.keyId).toBe(ca.issuingCert.keyId.toString('hex'));
    // CRLNumber ::= INTEGER, inside the extension's OCTET STRING.
    expect(Buffer.from(crl.getExtension('2.5.29.20')!.value).equals(Buffer.from([0x02, 0x01, 17]))).toBe(true);
    expect(crl.entries).toHaveLength(entries.length);
    for (const [i, e] of entries.entries()) {
      const got = crl.entries[i]!;
      expect(got.serialNumber.toLowerCase()).toBe(e.serialHex);
      expect(got.revocationDate.getTime()).toBe(e.revokedAtMs);
      if (e.reason === 'unspecified') {
        // RFC 5280 §5.3.1: the reason code unspecified SHOULD be absent.
        expect(got.reason).toBeUndefined();
        expect(got.extensions).toHaveLength(0);
      } else {
        expect(X509CrlReason[got.reason!]).toBe(e.reason);
      }
    }
    expect(built.entryCount).toBe(entries.length);
  });

  it('builds an empty CRL without a revokedCertificates field', async () => {
    const built = await ca.buildCrl({ entries: [], crlNumber: 1, nowMs: NOW });
    const crl = new X509Crl(bs(built.der));
    expect(crl.entries).toHaveLength(0);
    expect(await crl.verify({ publicKey: issuerOf(ca) })).toBe(true);
    const tbs = children(children(readTop(built.der))[0]!);
    // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions
    expect(tbs.map((n) => n.tag)).toEqual([TAG.INTEGER, TAG.SEQUENCE, TAG.SEQUENCE, TAG.UTC_TIME, TAG.UTC_TIME, 0xa0]);
  });

  it('keeps one entry per serial when the store hands over duplicates', async () => {
    const built = await ca.buildCrl({
      entries: [
        { serialHex: '0abc', revokedAtMs: NOW, reason: 'keyCompromise' },
        { serialHex: '0ABC', revokedAtMs: NOW + 1000, reason: 'superseded' },
      ],
      crlNumber: 2,
      nowMs: NOW,
    });
    expect(new X509Crl(bs(built.der)).entries).toHaveLength(1);
  });

  it('encodes a serial with the top bit set as a positive INTEGER', async () => {
    const built = await ca.buildCrl({ entries: [{ serialHex: 'ff01', revokedAtMs: NOW, reason: 'superseded' }], crlNumber: 3, nowMs: NOW });
    expect(built.der.includes(Buffer.from([0x02, 0x03, 0x00, 0xff, 0x01]))).toBe(true);
    expect(serialContentFromHex('000001').equals(Buffer.from([1]))).toBe(true);
  });

  it('uses GeneralizedTime for dates from 2050 on (RFC 5280 §5.1.2.4)', async () => {
    const y2051 = Date.UTC(2051, 0, 1);
    const built = await ca.buildCrl({ entries: [], crlNumber: 4, nowMs: y2051 });
    const tbs = children(children(readTop(built.der))[0]!);
    expect(tbs[3]!.tag).toBe(TAG.GENERALIZED_TIME);
  });

  it('writes revocation dates exactly, across the UTCTime/GeneralizedTime boundary and leap days', async () => {
    const times = [Date.UTC(2049, 11, 31, 23, 59, 59), Date.UTC(2050, 0, 1), Date.UTC(2024, 1, 29, 12, 0, 1), Date.UTC(2100, 1, 28, 1, 2, 3)];
    for (let i = 0; i < 50; i++) times.push(Date.UTC(1990, 0, 1) + Math.floor(Math.random() * 110 * 365 * 86400) * 1000 + 999);
    const built = await ca.buildCrl({
      entries: times.map((t, i) => ({ serialHex: (i + 1).toString(16).padStart(4, '0'), revokedAtMs: t, reason: 'superseded' })),
      crlNumber: 9,
      nowMs: NOW,
    });
    const crl = new X509Crl(bs(built.der));
    expect(crl.entries.map((e) => e.revocationDate.getTime())).toEqual(times.map((t) => Math.floor(t / 1000) * 1000));
  });

  it('refuses removeFromCRL in a full CRL, malformed serials, bad CRL numbers and inverted times', async () => {
    const e = (over: Partial<CrlEntry>): CrlEntry => ({ serialHex: '01', revokedAtMs: NOW, reason: 'keyCompromise', ...over });
    expect(await rejection(ca.buildCrl({ entries: [e({ reason: 'removeFromCRL' })], crlNumber: 1, nowMs: NOW }))).toMatchObject({
      code: 'CRL_REASON_INVALID',
    });
    expect(await rejection(ca.buildCrl({ entries: [e({ reason: 'bogus' as never })], crlNumber: 1, nowMs: NOW }))).toMatchObject({
      code: 'CRL_REASON_INVALID',
    });
    for (const serialHex of ['', 'xyz', '00', 'ab'.repeat(21), '-1']) {
      expect(await rejection(ca.buildCrl({ entries: [e({ serialHex })], crlNumber: 1, nowMs: NOW }))).toMatchObject({ code: 'SERIAL_INVALID' });
    }
    expect(await rejection(ca.buildCrl({ entries: [], crlNumber: -1, nowMs: NOW }))).toMatchObject({ code: 'CRL_NUMBER_INVALID' });
    const { h } = await testCa();
    expect(await rejection(buildCrl(h.issuing, { entries: [], crlNumber: 1, thisUpdateMs: NOW, nextUpdateMs: NOW }))).toMatchObject({
      code: 'CRL_TIMES_INVALID',
    });
  });

  it('labels PEM `X509 CRL` (not @peculiar/x509’s `CRL`)', async () => {
    const built = await ca.buildCrl({ entries: [], crlNumber: 5, nowMs: NOW });
    expect(built.pem).toBe(crlToPem(built.der));
    expect(built.pem).toMatch(/^-----BEGIN X509 CRL-----\n[A-Za-z0-9+/=\n]+-----END X509 CRL-----\n$/);
  });

  it('builds a 100k-entry CRL whose DER walks to exactly 100k entries', async () => {
    const entries: CrlEntry[] = [];
    for (let i = 0; i < 100_000; i++) {
      entries.push({ serialHex: (0x10000000 + i).toString(16) + 'a1b2c3d4e5f60718', revokedAtMs: NOW - i * 1000, reason: i % 3 ? 'keyCompromise' : 'unspecified' });
    }
    const built = await ca.buildCrl({ entries, crlNumber: 6, nowMs: NOW });
    const tbs = children(children(readTop(built.der))[0]!);
    expect(children(tbs[5]!, 200_000)).toHaveLength(100_000);
  });
});
