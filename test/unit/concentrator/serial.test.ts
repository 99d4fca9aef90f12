import { isAppError } from '../../../src/domain/errors';
import { normalizeSerial, serialFromDecimal, serialFromHex } from '../../../src/concentrator/serial';

const code = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    return isAppError(e) && e.kind === 'bad_request' ? e.code : 'NOT_AN_APP_ERROR';
  }
};

describe('certificate serial normalisation', () => {
  it.each([
    ['OpenVPN decimal tls_serial_0', () => serialFromDecimal('4097'), '1001', '1001'],
    ['OpenVPN colon-hex tls_serial_hex_0', () => serialFromHex('10:01'), '1001', '1001'],
    ['FreeRADIUS bare hex TLS-Client-Cert-Serial', () => serialFromHex('1001'), '1001', '1001'],
    ['small serial 2 / 02', () => serialFromHex('02'), '2', '02'],
    ['decimal with leading zeros', () => serialFromDecimal('0002'), '2', '02'],
    ['upper-case hex with 0x', () => serialFromHex('0xAB'), 'ab', '00ab'],
    ['DER sign octet present', () => serialFromHex('00:ff:01'), 'ff01', '00ff01'],
    ['one-digit colon groups', () => serialFromHex('a:1'), 'a01', '0a01'],
    ['zero', () => serialFromDecimal('0'), '0', '00'],
    ['a 20-octet random serial', () => serialFromHex('7f487fc81031ff45325f12c4a6e9e84400112233'), '7f487fc81031ff45325f12c4a6e9e84400112233', '7f487fc81031ff45325f12c4a6e9e84400112233'],
  ])('reads the %s', (_label, f, canonical, der) => {
    expect(f()).toEqual({ canonical, der });
  });

  it('gives the same canonical form for OpenVPN decimal and FreeRADIUS hex of one certificate', () => {
    expect(serialFromDecimal('170141183460469231731687303715884105727').canonical).toBe(serialFromHex('7fffffffffffffffffffffffffffffff').canonical);
  });

  it.each([
    ['empty', () => serialFromHex('')],
    ['non-hex letters', () => serialFromHex('zz')],
    ['mixed separators', () => serialFromHex('10:01-02')],
    ['a negative decimal', () => serialFromDecimal('-1')],
    ['decimal with hex letters', () => serialFromDecimal('12ab')],
    ['whitespace inside', () => serialFromDecimal('1 2')],
    ['an absurdly long hex serial', () => serialFromHex('1'.repeat(200))],
    ['an absurdly long decimal serial', () => serialFromDecimal('9'.repeat(200))],
    ['a triple colon group', () => serialFromHex('100:01')],
  ])('rejects %s as bad_request SERIAL_INVALID', (_label, f) => {
    expect(code(f)).toBe('SERIAL_INVALID');
  });

  it('rejects a request whose decimal and hex serials disagree (forged or garbled)', () => {
    expect(code(() => normalizeSerial({ dec: '4097', hex: '10:02' }))).toBe('SERIAL_MISMATCH');
  });

  it('accepts agreeing forms and ignores empty ones', () => {
    expect(normalizeSerial({ dec: '4097', hex: '10:01' })?.canonical).toBe('1001');
    expect(normalizeSerial({ dec: '', hex: '10:01' })?.canonical).toBe('1001');
    expect(normalizeSerial({})).toBeNull();
    expect(normalizeSerial(null)).toBeNull();
  });
});

describe('serialFromHex without BigInt', () => {
  it('gives the same forms as the BigInt value for 5,000 random serials with leading zeros and sign octets', () => {
    for (let i = 0; i < 5000; i++) {
      const digits = Array.from({ length: 1 + Math.floor(Math.random() * 42) }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
      const padded = '0'.repeat(Math.floor(Math.random() * 3)) + digits;
      const canonical = BigInt(`0x${padded}`).toString(16);
      expect(serialFromHex(padded).canonical).toBe(canonical);
      expect(serialFromHex(padded)).toEqual(serialFromDecimal(BigInt(`0x${padded}`).toString(10)));
    }
  });
});
