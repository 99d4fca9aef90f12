import { createHash } from 'node:crypto';
import { isAppError } from '../../../src/domain/errors';
import { parseCertificateTime } from '../../../src/concentrator/asn1-time';
import { deviceIdFromCn, deviceIdFromSanUri } from '../../../src/concentrator/device-id';
import { normalizeSha256Fingerprint, readPemCertificate } from '../../../src/concentrator/fingerprint';

const HEX = createHash('sha256').update('x').digest('hex');
const colon = (h: string): string => h.match(/../g)!.join(':');

describe('SHA-256 fingerprint forms', () => {
  it.each([
    ['bare lower-case hex', HEX],
    ['upper-case hex', HEX.toUpperCase()],
    ['OpenVPN tls_digest_sha256_0 (colon, lower case)', colon(HEX)],
    ['OpenSSL output', `SHA256 Fingerprint=${colon(HEX).toUpperCase()}`],
    ['sha256: prefix', `sha256:${HEX}`],
    ['space separated', HEX.match(/../g)!.join(' ')],
    ['dash separated', HEX.match(/../g)!.join('-')],
    ['base64', Buffer.from(HEX, 'hex').toString('base64')],
    ['base64url', Buffer.from(HEX, 'hex').toString('base64url')],
    ['surrounding whitespace', `  ${HEX}\n`],
  ])('normalises %s', (_label, input) => {
    expect(normalizeSha256Fingerprint(input)).toBe(HEX);
  });

  it.each([
    ['a SHA-1 fingerprint (wrong algorithm)', createHash('sha1').update('x').digest('hex')],
    ['63 hex digits', HEX.slice(1)],
    ['65 hex digits', `${HEX}0`],
    ['mixed separators', `${colon(HEX).slice(0, 20)}-${colon(HEX).slice(21)}`],
    ['non-hex characters', `${HEX.slice(0, 63)}g`],
    ['empty', ''],
    ['base64 of 31 bytes', Buffer.alloc(31).toString('base64')],
    ['a huge string', 'a'.repeat(10_000)],
    ['SQL-ish garbage', "' OR 1=1 --"],
  ])('rejects %s as bad_request FINGERPRINT_INVALID', (_label, input) => {
    try {
      normalizeSha256Fingerprint(input);
      throw new Error('accepted');
    } catch (e) {
      expect(isAppError(e) && e.code).toBe('FINGERPRINT_INVALID');
    }
  });

  it('rejects a PEM that is not a certificate with CERT_PEM_INVALID', () => {
    expect(() => readPemCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')).toThrow(
      expect.objectContaining({ code: 'CERT_PEM_INVALID', kind: 'bad_request' }),
    );
  });
});

describe('device id from SAN URI and CN', () => {
  const id = '5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e';
  it('reads urn:uuid:<id> in any case and returns the lower-case id', () => {
    expect(deviceIdFromSanUri(`urn:uuid:${id}`)).toBe(id);
    expect(deviceIdFromSanUri(`URN:UUID:${id.toUpperCase()}`)).toBe(id);
  });

  it.each([
    ['another scheme', `https://example/${id}`],
    ['a malformed UUID', 'urn:uuid:5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7'],
    ['a UUID with an invalid variant', 'urn:uuid:5b0e7c1a-4f7e-4d5a-0c1e-2f3a4b5c6d7e'],
    ['a suffix after the UUID', `urn:uuid:${id}/x`],
    ['an empty string', ''],
  ])('ignores %s', (_label, uri) => {
    expect(deviceIdFromSanUri(uri)).toBeNull();
  });

  it('takes a CN only when it is a UUID', () => {
    expect(deviceIdFromCn(id.toUpperCase())).toBe(id);
    expect(deviceIdFromCn('Test-Client')).toBeNull();
    expect(deviceIdFromCn(null)).toBeNull();
  });
});

describe('certificate time forms', () => {
  it('reads FreeRADIUS UTCTime, GeneralizedTime and ISO 8601', () => {
    expect(parseCertificateTime('331104122339Z')).toBe(Date.UTC(2033, 10, 4, 12, 23, 39));
    expect(parseCertificateTime('991231235959Z')).toBe(Date.UTC(1999, 11, 31, 23, 59, 59));
    expect(parseCertificateTime('20501104122339Z')).toBe(Date.UTC(2050, 10, 4, 12, 23, 39));
    expect(parseCertificateTime('2033-11-04T12:23:39Z')).toBe(Date.UTC(2033, 10, 4, 12, 23, 39));
  });

  it.each(['', '331304122339Z', '330231000000Z', '331104122339', '2033-11-04', 'tomorrow', '331104246000Z'])('returns null for %p', (s) => {
    expect(parseCertificateTime(s)).toBeNull();
  });
});
