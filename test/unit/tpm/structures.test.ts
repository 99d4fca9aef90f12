import { createHash } from 'node:crypto';
import { AppError } from '../../../src/domain/errors';
import {
  TPM_ALG,
  TpmWriter,
  akTemplate,
  computeName,
  deviceKeyTemplate,
  ecdsaDerToRs,
  ecdsaRsToDer,
  ekRsaTemplate,
  kdfa,
  marshalCertifyAttest,
  marshalPublic,
  marshalSignature,
  parseAttest,
  parsePublic,
  parsePublicTpm2b,
  parseSignature,
  parseTcti,
  publicKeyOf,
  publicToTpm2b,
  srkTemplate,
} from '../../../src/tpm';

function err(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected a rejection');
}

const attest = () =>
  marshalCertifyAttest({
    magic: 0xff544347,
    type: 0x8017,
    qualifiedSigner: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 1)]),
    extraData: Buffer.alloc(32, 2),
    clockInfo: { clock: 5n, resetCount: 1, restartCount: 2, safe: true },
    firmwareVersion: 7n,
    certify: { name: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 3)]), qualifiedName: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 4)]) },
  });

describe('TPMT_PUBLIC', () => {
  it.each([
    ['EK RSA template', ekRsaTemplate()],
    ['SRK template', srkTemplate()],
    ['AK RSA template', akTemplate('rsa')],
    ['AK ECC template', akTemplate('ecc')],
    ['device key template', deviceKeyTemplate()],
  ])('round-trips the %s', (_n, raw) => {
    const p = parsePublic(raw);
    expect(marshalPublic(p.public).equals(raw)).toBe(true);
    expect(parsePublicTpm2b(publicToTpm2b(raw)).raw.equals(raw)).toBe(true);
  });

  it('computes the name as nameAlg ‖ SHA-256(pubArea)', () => {
    const raw = ekRsaTemplate();
    const name = computeName(parsePublic(raw));
    expect(name.subarray(0, 2).toString('hex')).toBe('000b');
    expect(name.subarray(2).equals(createHash('sha256').update(raw).digest())).toBe(true);
  });

  it('rejects truncated input', () => {
    const raw = ekRsaTemplate();
    for (const n of [0, 1, 5, 20, raw.length - 1]) expect(err(() => parsePublic(raw.subarray(0, n))).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects trailing bytes', () => {
    expect(err(() => parsePublic(Buffer.concat([akTemplate(), Buffer.from([0])]))).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects an oversized size field (authPolicy larger than any digest)', () => {
    const raw = Buffer.from(ekRsaTemplate());
    raw.writeUInt16BE(0xffff, 8); // authPolicy.size
    expect(err(() => parsePublic(raw)).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects an unknown key type and an unknown nameAlg', () => {
    const raw = Buffer.from(akTemplate());
    raw.writeUInt16BE(0x0099, 0);
    expect(err(() => parsePublic(raw)).code).toBe('TPM_ALG_UNSUPPORTED');
    const raw2 = Buffer.from(akTemplate());
    raw2.writeUInt16BE(0x0099, 2);
    expect(err(() => parsePublic(raw2)).code).toBe('TPM_ALG_UNSUPPORTED');
  });

  it('rejects reserved objectAttributes bits', () => {
    const raw = Buffer.from(akTemplate());
    raw.writeUInt32BE((raw.readUInt32BE(4) | 0x80000000) >>> 0, 4);
    expect(err(() => parsePublic(raw)).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects an RSA modulus whose size disagrees with keyBits', () => {
    const p = parsePublic(akTemplate('rsa')).public;
    const bad = marshalPublic({ ...p, modulus: Buffer.alloc(128, 1) } as typeof p);
    expect(err(() => parsePublic(bad)).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects an ECC point that is not on the curve when converting to a key', () => {
    const p = parsePublic(deviceKeyTemplate()).public;
    const bad = parsePublic(marshalPublic({ ...p, x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 2) } as typeof p)).public;
    expect(err(() => publicKeyOf(bad)).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects a TPM2B_PUBLIC whose size prefix is wrong', () => {
    const t = publicToTpm2b(akTemplate());
    expect(err(() => parsePublicTpm2b(t.subarray(0, t.length - 1))).code).toBe('TPM_STRUCTURE_MALFORMED');
    expect(err(() => parsePublicTpm2b(Buffer.concat([t, Buffer.from([1])]))).code).toBe('TPM_STRUCTURE_MALFORMED');
  });
});

describe('TPMS_ATTEST', () => {
  it('round-trips a certify attestation', () => {
    const a = parseAttest(attest());
    expect(a.type).toBe(0x8017);
    expect(a.certify?.name.subarray(2).equals(Buffer.alloc(32, 3))).toBe(true);
    expect(a.clockInfo).toEqual({ clock: 5n, resetCount: 1, restartCount: 2, safe: true });
  });

  it('rejects truncation, trailing bytes, a bad safe flag and an unknown attestation type', () => {
    const a = attest();
    expect(err(() => parseAttest(a.subarray(0, a.length - 3))).code).toBe('TPM_STRUCTURE_MALFORMED');
    expect(err(() => parseAttest(Buffer.concat([a, Buffer.alloc(1)]))).code).toBe('TPM_STRUCTURE_MALFORMED');
    const unsafe = Buffer.from(a);
    unsafe[4 + 2 + 36 + 34 + 16] = 2;
    expect(err(() => parseAttest(unsafe)).code).toBe('TPM_STRUCTURE_MALFORMED');
    const t = Buffer.from(a);
    t.writeUInt16BE(0x8099, 4);
    expect(err(() => parseAttest(t)).code).toBe('TPM_ALG_UNSUPPORTED');
  });

  it('rejects a name whose digest size does not match its algorithm', () => {
    const bad = marshalCertifyAttest({ ...parseAttest(attest()), certify: { name: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(20)]), qualifiedName: Buffer.alloc(0) } });
    expect(err(() => parseAttest(bad)).code).toBe('TPM_STRUCTURE_MALFORMED');
  });
});

describe('TPMT_SIGNATURE', () => {
  it('round-trips RSASSA and ECDSA', () => {
    const rsa = marshalSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, sig: Buffer.alloc(256, 9) });
    expect(marshalSignature(parseSignature(rsa)).equals(rsa)).toBe(true);
    const ec = marshalSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: Buffer.alloc(32, 1), s: Buffer.alloc(32, 2) });
    expect(marshalSignature(parseSignature(ec)).equals(ec)).toBe(true);
  });

  it('rejects unknown schemes, oversized sizes, truncation and trailing bytes', () => {
    expect(err(() => parseSignature(Buffer.from('001a000b', 'hex'))).code).toBe('TPM_ALG_UNSUPPORTED');
    expect(err(() => parseSignature(Buffer.from('0014000bffff', 'hex'))).code).toBe('TPM_STRUCTURE_MALFORMED');
    expect(err(() => parseSignature(Buffer.from('0014000b0004aabb', 'hex'))).code).toBe('TPM_STRUCTURE_MALFORMED');
    expect(err(() => parseSignature(Buffer.from('0010ff', 'hex'))).code).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('converts ECDSA r/s to DER and back, keeping high-bit integers positive', () => {
    const r = Buffer.alloc(32, 0x80);
    const s = Buffer.concat([Buffer.alloc(1), Buffer.alloc(31, 0x01)]);
    const der = ecdsaRsToDer(r, s);
    const back = ecdsaDerToRs(der);
    expect(back.r.equals(r)).toBe(true);
    expect(back.s.equals(s.subarray(1))).toBe(true);
  });
});

describe('KDFa (SP 800-108 counter mode, TPM Part 1 §11.4.10.2)', () => {
  it('produces the requested number of bits and depends on every input', () => {
    const key = Buffer.alloc(32, 1);
    const base = kdfa(TPM_ALG.SHA256, key, 'STORAGE', Buffer.from('u'), Buffer.from('v'), 128);
    expect(base).toHaveLength(16);
    expect(kdfa(TPM_ALG.SHA256, key, 'STORAGE', Buffer.from('u'), Buffer.from('v'), 256).subarray(0, 16).equals(base)).toBe(false);
    expect(kdfa(TPM_ALG.SHA256, key, 'INTEGRITY', Buffer.from('u'), Buffer.from('v'), 128).equals(base)).toBe(false);
    expect(kdfa(TPM_ALG.SHA256, key, 'STORAGE', Buffer.from('x'), Buffer.from('v'), 128).equals(base)).toBe(false);
    expect(kdfa(TPM_ALG.SHA256, key, 'STORAGE', Buffer.from('u'), Buffer.from('v'), 512)).toHaveLength(64);
  });
});

describe('parseTcti', () => {
  it('parses swtpm and device settings', () => {
    expect(parseTcti('swtpm:host=127.0.0.1,port=2321')).toEqual({ kind: 'swtpm', host: '127.0.0.1', port: 2321 });
    expect(parseTcti('device:/dev/tpmrm0')).toEqual({ kind: 'device', path: '/dev/tpmrm0' });
    expect(parseTcti('/dev/tpm0')).toEqual({ kind: 'device', path: '/dev/tpm0' });
  });
  it.each(['mssim:port=1', 'swtpm:port=99999', 'swtpm:bogus=1', ''])('rejects %p', (v) => {
    expect(err(() => parseTcti(v)).code).toBe('TCTI_INVALID');
  });
});

describe('TpmWriter', () => {
  it('writes big-endian fields and TPM2B sizes', () => {
    expect(new TpmWriter().u16(0x0102).u32(0x03040506).tpm2b(Buffer.from([7])).toBuffer().toString('hex')).toBe('010203040506000107');
  });
});
