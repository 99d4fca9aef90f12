import { generateKeyPairSync } from 'node:crypto';
import { AppError } from '../../../src/domain/errors';
import { canonicalSpki, decodeCbor, spkiEqual, spkiSha256Hex } from '../../../src/attestation';
import {
  ENROLLMENT_PATHS,
  finishRequestSchema,
  renewStartRequestSchema,
  startRequestSchema,
  startResponseSchema,
} from '../../../src/enrollment/protocol';
import { TPM_ECC, ecSpki, rsaSpki } from '../../../src/tpm';

describe('SPKI built without OpenSSL', () => {
  it.each([['P-256', TPM_ECC.NIST_P256, 32], ['P-384', TPM_ECC.NIST_P384, 48], ['P-521', TPM_ECC.NIST_P521, 66]] as const)(
    'matches node:crypto’s export byte for byte for %s',
    (curve, id, size) => {
      for (let i = 0; i < 5; i++) {
        const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
        const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
        const built = ecSpki(id, Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url'));
        expect(built.equals(publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
        expect(Buffer.from(jwk.x, 'base64url')).toHaveLength(size);
      }
    },
  );

  it.each([2048, 3072])('matches node:crypto’s export byte for byte for RSA-%d', (bits) => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    const jwk = publicKey.export({ format: 'jwk' }) as { n: string };
    const der = publicKey.export({ type: 'spki', format: 'der' });
    expect(rsaSpki(Buffer.from(jwk.n, 'base64url'), 0).equals(der)).toBe(true);
    expect(canonicalSpki(der).equals(der)).toBe(true);
  });

  it('canonicalises a compressed EC point to the uncompressed form and compares equal', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    const y = Buffer.from(jwk.y, 'base64url');
    const compressed = Buffer.concat([der.subarray(0, 23), Buffer.from([0x03, 0x22, 0x00, (y[31]! & 1) === 1 ? 0x03 : 0x02]), Buffer.from(jwk.x, 'base64url')]);
    compressed[1] = compressed.length - 2;
    expect(spkiEqual(compressed, der)).toBe(true);
    expect(spkiSha256Hex(compressed)).toBe(spkiSha256Hex(der));
  });

  it('tells different keys apart and rejects garbage as SPKI_MALFORMED', () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    expect(spkiEqual(a, b)).toBe(false);
    expect(() => canonicalSpki(Buffer.from('3003020100', 'hex'))).toThrow(AppError);
    try {
      canonicalSpki(Buffer.from('00', 'hex'));
    } catch (e) {
      expect((e as AppError).code).toBe('SPKI_MALFORMED');
    }
  });
});

describe('enrollment wire protocol', () => {
  const uuid = '0b8f9c1e-2d3a-4b5c-8d7e-9f0a1b2c3d4e';
  const b64 = Buffer.alloc(32, 1).toString('base64');

  it('accepts a minimal start request and requires ekCertificate or ekPublic', () => {
    expect(startRequestSchema.safeParse({ deviceId: uuid, token: 't'.repeat(20), ekPublic: b64, akPublic: b64 }).success).toBe(true);
    expect(startRequestSchema.safeParse({ deviceId: uuid, token: 't'.repeat(20), akPublic: b64 }).success).toBe(false);
  });

  it('rejects unknown fields (strict) so no input is silently ignored', () => {
    expect(startRequestSchema.safeParse({ deviceId: uuid, token: 't'.repeat(20), ekPublic: b64, akPublic: b64, akName: b64 }).success).toBe(false);
    expect(renewStartRequestSchema.safeParse({ deviceId: uuid, token: 'x' }).success).toBe(false);
  });

  it('accepts only standard padded base64 (one spelling per value)', () => {
    const base = { deviceId: uuid, token: 't'.repeat(20), akPublic: b64 };
    expect(startRequestSchema.safeParse({ ...base, ekPublic: Buffer.alloc(31, 0xff).toString('base64url') }).success).toBe(false);
    expect(startRequestSchema.safeParse({ ...base, ekPublic: 'AAA' }).success).toBe(false);
  });

  it('bounds sizes (oversized TPM structures are refused before decoding)', () => {
    const big = Buffer.alloc(4096).toString('base64');
    expect(finishRequestSchema.safeParse({ enrollmentId: 'e', activatedSecret: b64, csr: '-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n', certifyInfo: big, certifySignature: b64, keyPublic: b64 }).success).toBe(false);
  });

  it('validates the start response the agent receives', () => {
    expect(startResponseSchema.safeParse({ enrollmentId: 'e', credentialBlob: b64, encryptedSecret: b64, akName: b64, nonce: b64, expiresAt: '2026-11-26T12:00:00.000Z' }).success).toBe(true);
    expect(startResponseSchema.safeParse({ enrollmentId: 'e', credentialBlob: b64, encryptedSecret: b64, akName: b64, nonce: b64, expiresAt: 'tomorrow' }).success).toBe(false);
  });

  it('publishes the four paths under /v1/enrollment/tpm', () => {
    expect(Object.values(ENROLLMENT_PATHS).every((p) => p.startsWith('/v1/enrollment/tpm/'))).toBe(true);
  });
});

describe('CBOR decoder limits', () => {
  const err = (hex: string) => {
    try {
      decodeCbor(Buffer.from(hex, 'hex'));
    } catch (e) {
      return (e as AppError).code;
    }
    return 'ok';
  };
  it('decodes maps, arrays, byte and text strings, negative ints', () => {
    const v = decodeCbor(Buffer.from('a2636b65798220414161026139', 'hex')) as Map<string, unknown>;
    expect(v.get('key')).toEqual([-1, Buffer.from('A')]);
  });
  it.each([
    ['indefinite length', '5f'],
    ['tags', 'c11a514b67b0'],
    ['floats', 'fa47c35000'],
    ['duplicate map keys', 'a2616101616102'],
    ['trailing bytes', '0000'],
    ['length past the end', '5a0000ffff00'],
    ['invalid UTF-8', '62c328'],
  ])('rejects %s', (_n, hex) => {
    expect(err(hex)).toBe('CBOR_MALFORMED');
  });
  it('rejects nesting deeper than 16', () => {
    expect(err('81'.repeat(20) + '00')).toBe('CBOR_MALFORMED');
  });
});
