import { createPublicKey, randomBytes } from 'node:crypto';
import { acceptCsr } from '../../../src/ca';
import { bitString, derNull, integerFromUnsigned, oid, seq, toPem } from '../../../src/ca/der';
import { AppError } from '../../../src/domain/errors';
import { genKey, makeCsr, makeTempDir, type TempDir } from '../../helpers/openssl';
import { describeWith, tool } from '../../helpers/requirements';
import { SIG_OIDS, craftCsr, ecKey, rsaKey } from './fixtures';

/** Run `fn` and return the AppError it throws (fails the test if it does not throw one). */
function appError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw new Error(`expected an AppError, got ${String(e)}`);
  }
  throw new Error('expected an AppError, nothing was thrown');
}

const rsaSpki = (modulus: Buffer, exponent: Buffer): Buffer =>
  seq(seq(oid('1.2.840.113549.1.1.1'), derNull()), bitString(seq(integerFromUnsigned(modulus), integerFromUnsigned(exponent))));

describeWith([tool('openssl')], 'CSR intake (acceptCsr)', () => {
  let tmp: TempDir;
  let p256: { pem: string; der: Buffer; keyPath: string };

  beforeAll(() => {
    tmp = makeTempDir();
    const keyPath = genKey(tmp, 'p256', 'p256');
    p256 = { ...makeCsr(tmp, keyPath), keyPath };
  });
  afterAll(() => tmp.cleanup());

  describe('accepts', () => {
    it.each(['p256', 'p384', 'rsa2048'] as const)('an OpenSSL %s CSR as PEM string, PEM buffer and DER', (type) => {
      const csr = makeCsr(tmp, genKey(tmp, `ok-${type}`, type));
      const fromPem = acceptCsr(csr.pem);
      const fromPemBuf = acceptCsr(Buffer.from(csr.pem));
      const fromDer = acceptCsr(csr.der);
      expect(fromPem.key.kind).toBe(type === 'rsa2048' ? 'rsa' : type === 'p256' ? 'ec-p256' : 'ec-p384');
      expect(fromPem.key.spki.equals(fromDer.key.spki)).toBe(true);
      expect(fromPemBuf.key.spki.equals(fromDer.key.spki)).toBe(true);
      expect(fromDer.der.equals(csr.der)).toBe(true);
    });

    it('an OpenSSL `NEW CERTIFICATE REQUEST` PEM label', () => {
      const pem = p256.pem.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST');
      expect(acceptCsr(pem).key.kind).toBe('ec-p256');
    });

    it('an ECDSA CSR signed with SHA-384 (ecdsa-with-SHA384)', () => {
      const key = ecKey('P-256');
      const csr = craftCsr({ signingKey: key, sigOid: '1.2.840.10045.4.3.3', hash: 'sha384' });
      expect(acceptCsr(csr).signatureAlgorithm).toBe('1.2.840.10045.4.3.3');
    });
  });

  describe('proof of possession', () => {
    it('rejects a CSR whose signature does not verify (proof-of-possession forgery: flipped signature byte)', () => {
      const der = Buffer.from(p256.der);
      der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01;
      expect(appError(() => acceptCsr(der))).toMatchObject({ kind: 'bad_request', code: 'CSR_SIGNATURE_INVALID' });
    });

    it('rejects a CSR that carries a victim key but is signed by the attacker key (key substitution)', () => {
      const victim = createPublicKey(ecKey('P-256')).export({ type: 'spki', format: 'der' });
      const csr = craftCsr({ signingKey: ecKey('P-256'), spki: victim });
      expect(appError(() => acceptCsr(csr))).toMatchObject({ code: 'CSR_SIGNATURE_INVALID' });
    });

    it('rejects a CSR whose subject was altered after signing (tampered request info)', () => {
      const csr = craftCsr({
        signingKey: ecKey('P-256'),
        subjectCn: 'device-aaaa',
        mutateCri: (cri) => Buffer.from(cri.toString('latin1').replace('device-aaaa', 'device-bbbb'), 'latin1'),
      });
      expect(appError(() => acceptCsr(csr))).toMatchObject({ code: 'CSR_SIGNATURE_INVALID' });
    });

    it('rejects a CSR whose signature algorithm does not match its key (RSA algorithm on an EC key)', () => {
      const csr = craftCsr({ signingKey: ecKey('P-256'), sigOid: SIG_OIDS.rsaSha256 });
      expect(appError(() => acceptCsr(csr))).toMatchObject({ code: 'CSR_SIGNATURE_INVALID' });
    });

    it('rejects SHA-1 proof of possession (collision-prone hash) for EC and RSA', () => {
      const ec = craftCsr({ signingKey: ecKey('P-256'), sigOid: SIG_OIDS.ecdsaSha1, hash: 'sha1' });
      const rsa = craftCsr({ signingKey: rsaKey(2048), sigOid: SIG_OIDS.rsaSha1, hash: 'sha1' });
      expect(appError(() => acceptCsr(ec))).toMatchObject({ code: 'CSR_UNSUPPORTED_SIGNATURE_ALGORITHM' });
      expect(appError(() => acceptCsr(rsa))).toMatchObject({ code: 'CSR_UNSUPPORTED_SIGNATURE_ALGORITHM' });
    });
  });

  describe('key policy', () => {
    it('rejects a weak RSA-1024 key', () => {
      const csr = makeCsr(tmp, genKey(tmp, 'rsa1024', 'rsa1024'));
      expect(appError(() => acceptCsr(csr.pem))).toMatchObject({ kind: 'bad_request', code: 'CSR_KEY_TOO_WEAK' });
    });

    it.each(['secp256k1', 'p521'] as const)('rejects an unsupported curve (%s)', (curve) => {
      const csr = makeCsr(tmp, genKey(tmp, curve, curve));
      expect(appError(() => acceptCsr(csr.pem))).toMatchObject({ code: 'CSR_UNSUPPORTED_KEY' });
    });

    it('rejects an Ed25519 key (not usable by our concentrators)', () => {
      const csr = makeCsr(tmp, genKey(tmp, 'ed25519', 'ed25519'));
      expect(appError(() => acceptCsr(csr.pem))).toMatchObject({ code: 'CSR_UNSUPPORTED_KEY' });
    });

    it('rejects an RSA modulus above 8192 bits before verifying it (CPU exhaustion)', () => {
      const n = randomBytes(9000 / 8);
      n[0] = (n[0] as number) | 0x80;
      n[n.length - 1] = (n[n.length - 1] as number) | 1;
      const csr = craftCsr({ signingKey: ecKey('P-256'), spki: rsaSpki(n, Buffer.from([1, 0, 1])), sigOid: SIG_OIDS.rsaSha256 });
      expect(appError(() => acceptCsr(csr))).toMatchObject({ code: 'CSR_UNSUPPORTED_KEY' });
    });

    it('rejects an RSA key with an even or trivial public exponent', () => {
      const n = createPublicKey(rsaKey(2048)).export({ format: 'jwk' }).n as string;
      for (const e of [Buffer.from([1]), Buffer.from([1, 0, 0])]) {
        const csr = craftCsr({ signingKey: ecKey('P-256'), spki: rsaSpki(Buffer.from(n, 'base64url'), e), sigOid: SIG_OIDS.rsaSha256 });
        expect(appError(() => acceptCsr(csr))).toMatchObject({ code: 'CSR_UNSUPPORTED_KEY' });
      }
    });

    it('rejects an EC point that is not on the curve (invalid-curve attack)', () => {
      const spki = Buffer.from(createPublicKey(ecKey('P-256')).export({ type: 'spki', format: 'der' }));
      spki[spki.length - 1] = (spki[spki.length - 1] as number) ^ 0x01;
      const csr = craftCsr({ signingKey: ecKey('P-256'), spki });
      expect(appError(() => acceptCsr(csr))).toMatchObject({ kind: 'bad_request', code: 'CSR_MALFORMED' });
    });
  });

  describe('size and encoding', () => {
    it('rejects an oversized CSR (> 16 KiB) before parsing, as string and as bytes', () => {
      const big = p256.pem + ' '.repeat(17 * 1024);
      expect(appError(() => acceptCsr(big))).toMatchObject({ code: 'CSR_TOO_LARGE' });
      expect(appError(() => acceptCsr(Buffer.alloc(16 * 1024 + 1, 0x30)))).toMatchObject({ code: 'CSR_TOO_LARGE' });
      expect(appError(() => acceptCsr(p256.der, { maxBytes: 100 }))).toMatchObject({ code: 'CSR_TOO_LARGE' });
    });

    it('rejects a CSR inflated by a huge requested-extension attribute (size cap holds for DER too)', () => {
      const huge = Buffer.alloc(20_000, 0x41);
      const csr = craftCsr({ signingKey: ecKey('P-256'), extensionRequest: seq(seq(oid('1.2.3.4'), seq(huge))) });
      expect(appError(() => acceptCsr(csr))).toMatchObject({ code: 'CSR_TOO_LARGE' });
    });

    it('rejects garbage DER and an empty body', () => {
      for (const bad of [Buffer.from('hello world'), Buffer.alloc(0), randomBytes(300), Buffer.from([0x30, 0x80, 0x00, 0x00])]) {
        expect(appError(() => acceptCsr(bad))).toMatchObject({ kind: 'bad_request', code: 'CSR_MALFORMED' });
      }
    });

    it('rejects every truncation of a valid DER CSR', () => {
      for (let len = 0; len < p256.der.length; len++) {
        const e = appError(() => acceptCsr(p256.der.subarray(0, len)));
        expect(e.kind).toBe('bad_request');
        expect(e.code).toBe('CSR_MALFORMED');
      }
    });

    it('rejects trailing bytes after the CSR (smuggled data)', () => {
      expect(appError(() => acceptCsr(Buffer.concat([p256.der, Buffer.from([0x00])])))).toMatchObject({ code: 'CSR_MALFORMED' });
    });

    it('rejects a non-minimal length encoding (BER, not DER)', () => {
      const der = p256.der;
      // Re-encode the outer length in the long form with a leading zero octet.
      const inner = der.subarray(2 + (der[1]! & 0x80 ? der[1]! & 0x7f : 0));
      const ber = Buffer.concat([Buffer.from([0x30, 0x83, 0x00, inner.length >> 8, inner.length & 0xff]), inner]);
      expect(appError(() => acceptCsr(ber))).toMatchObject({ code: 'CSR_MALFORMED' });
    });

    it('rejects truncated PEM, PEM with the wrong label, two PEM blocks and invalid base64', () => {
      const lines = p256.pem.trim().split('\n');
      const cases = [
        lines.slice(0, -1).join('\n'),
        lines.slice(0, 3).join('\n') + '\n-----END CERTIFICATE REQUEST-----\n',
        p256.pem.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'),
        p256.pem + p256.pem,
        p256.pem.replace(/[A-Za-z]/, '!'),
        'Certificate Request:\n    Data: ...\n' + p256.pem,
        toPem(Buffer.from('garbage'), 'CERTIFICATE REQUEST'),
        '',
      ];
      for (const c of cases) {
        expect(appError(() => acceptCsr(c))).toMatchObject({ kind: 'bad_request', code: expect.stringMatching(/^CSR_(MALFORMED|TOO_LARGE)$/) });
      }
    });

    it('never throws anything but a bad_request AppError for mutated CSRs (bit-flip fuzz)', () => {
      let accepted = 0;
      for (let i = 0; i < 400; i++) {
        const der = Buffer.from(p256.der);
        const pos = (i * 7919) % der.length;
        der[pos] = (der[pos] as number) ^ (1 << (i % 8));
        try {
          acceptCsr(der);
          accepted++;
        } catch (e) {
          expect(e).toBeInstanceOf(AppError);
          expect((e as AppError).kind).toBe('bad_request');
        }
      }
      // A flip can only be accepted where the CSR is not covered by the signature or key checks, which is nowhere.
      expect(accepted).toBe(0);
    });
  });
});
