import {
  DerError,
  children,
  decodeOid,
  decodeTime,
  encodeLength,
  fromPemStrict,
  integerBytes,
  integerFromUnsigned,
  oid,
  readTop,
  tlv,
  toPem,
  x509Time,
  content,
} from '../../../src/ca/der';

describe('strict DER reader', () => {
  it('reads a nested structure and tiles children exactly', () => {
    const der = tlv(0x30, tlv(0x02, Buffer.from([5])), tlv(0x04, Buffer.alloc(200, 1)));
    const top = readTop(der);
    const [a, b] = children(top);
    expect(content(a!)).toEqual(Buffer.from([5]));
    expect(content(b!).length).toBe(200);
  });

  it.each([
    ['indefinite length (BER)', Buffer.from([0x30, 0x80, 0x00, 0x00])],
    ['non-minimal long-form length', Buffer.from([0x04, 0x81, 0x01, 0x00])],
    ['length with a leading zero octet', Buffer.from([0x04, 0x82, 0x00, 0x81, ...Buffer.alloc(0x81)])],
    ['length beyond the buffer', Buffer.from([0x04, 0x05, 0x00])],
    ['trailing bytes', Buffer.from([0x05, 0x00, 0x00])],
    ['high tag number form', Buffer.from([0x1f, 0x81, 0x00, 0x00])],
    ['a 5-octet length (over 4 GiB claim)', Buffer.from([0x04, 0x85, 1, 0, 0, 0, 0])],
    ['an empty buffer', Buffer.alloc(0)],
  ])('rejects %s', (_name, der) => {
    expect(() => readTop(der)).toThrow(DerError);
  });

  it('rejects a child that overruns its parent', () => {
    const der = Buffer.from([0x30, 0x03, 0x04, 0x05, 0x00]);
    expect(() => children(readTop(der))).toThrow(DerError);
  });

  it('bounds the number of children', () => {
    const der = tlv(0x30, ...Array.from({ length: 20 }, () => Buffer.from([0x05, 0x00])));
    expect(() => children(readTop(der), 10)).toThrow(/too many/);
  });

  it('rejects non-minimal INTEGERs and accepts minimal ones', () => {
    expect(() => integerBytes(readTop(Buffer.from([0x02, 0x02, 0x00, 0x7f])))).toThrow(DerError);
    expect(() => integerBytes(readTop(Buffer.from([0x02, 0x02, 0xff, 0x80])))).toThrow(DerError);
    expect(integerBytes(readTop(Buffer.from([0x02, 0x02, 0x00, 0x80])))).toEqual(Buffer.from([0x00, 0x80]));
  });
});

describe('DER encoders', () => {
  it('encodes lengths minimally', () => {
    expect(encodeLength(0x7f)).toEqual(Buffer.from([0x7f]));
    expect(encodeLength(0x80)).toEqual(Buffer.from([0x81, 0x80]));
    expect(encodeLength(0x1234)).toEqual(Buffer.from([0x82, 0x12, 0x34]));
    expect(encodeLength(0x123456)).toEqual(Buffer.from([0x83, 0x12, 0x34, 0x56]));
  });

  it('encodes positive INTEGERs with a sign byte only when needed', () => {
    expect(integerFromUnsigned(Buffer.from([0x00, 0x00, 0x7f]))).toEqual(Buffer.from([0x02, 0x01, 0x7f]));
    expect(integerFromUnsigned(Buffer.from([0x80]))).toEqual(Buffer.from([0x02, 0x02, 0x00, 0x80]));
    expect(integerFromUnsigned(Buffer.from([0, 0]))).toEqual(Buffer.from([0x02, 0x01, 0x00]));
  });

  it('round-trips OIDs including large arcs', () => {
    for (const o of ['1.2.840.10045.4.3.2', '2.5.29.19', '1.3.6.1.5.5.7.48.1.5', '2.999.1234567']) {
      expect(decodeOid(content(readTop(oid(o))))).toBe(o);
    }
    expect(oid('1.2.840.113549.1.1.11').toString('hex')).toBe('06092a864886f70d01010b');
  });

  it('uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    const t2049 = Date.UTC(2049, 11, 31, 23, 59, 59);
    const t2050 = Date.UTC(2050, 0, 1);
    expect(x509Time(t2049).toString('latin1', 2)).toBe('491231235959Z');
    expect(x509Time(t2050)[0]).toBe(0x18);
    for (const t of [t2049, t2050]) {
      const n = readTop(x509Time(t));
      expect(decodeTime(n.tag, content(n))).toBe(t);
    }
  });

  it('PEM armour round-trips and the strict reader refuses foreign text and bad base64', () => {
    const der = Buffer.from('hello der');
    const pem = toPem(der, 'X509 CRL');
    expect(fromPemStrict(pem, ['X509 CRL'])!.der).toEqual(der);
    expect(fromPemStrict(pem, ['CRL'])).toBeNull();
    expect(fromPemStrict('junk\n' + pem, ['X509 CRL'])).toBeNull();
    expect(fromPemStrict(pem.replace('aGVs', 'a*Vs'), ['X509 CRL'])).toBeNull();
  });
});
