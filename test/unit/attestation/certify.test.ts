import { AppError } from '../../../src/domain/errors';
import { checkAkPublic, makeCredentialChallenge, verifyActivatedSecret, verifyCertify } from '../../../src/attestation';
import { TPMA_OBJECT, TPM_ST } from '../../../src/tpm';
import { SOFT_AK_ATTRS, SOFT_KEY_ATTRS, softAttest, softEcKey, softRsaKey, softSign, type SoftKey } from './soft-tpm';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return (e as AppError).code;
  }
  throw new Error('expected a rejection');
}

describe('verifyCertify (software-built structures reach every branch)', () => {
  const nonce = Buffer.alloc(32, 0x42);
  let ak: SoftKey;
  let key: SoftKey;
  beforeAll(() => {
    ak = softRsaKey(SOFT_AK_ATTRS);
    key = softEcKey(SOFT_KEY_ATTRS);
  });
  const run = (over: Partial<Parameters<typeof verifyCertify>[0]> = {}, attest = softAttest(key, nonce)) =>
    verifyCertify({ attest, signature: softSign(ak, attest), certifiedPubArea: key.raw, akPubArea: ak.raw, nonce, ...over });

  it('accepts a correct Certify and returns the key SPKI', () => {
    const r = run();
    expect(r.keySpki.equals(key.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(r.keyAlgorithm).toBe('ecc-p256');
  });

  it('accepts an ECC AK', () => {
    const eccAk = softEcKey(SOFT_AK_ATTRS);
    const attest = softAttest(key, nonce);
    expect(verifyCertify({ attest, signature: softSign(eccAk, attest), certifiedPubArea: key.raw, akPubArea: eccAk.raw, nonce }).keyAlgorithm).toBe('ecc-p256');
  });

  it('rejects certifyInfo without TPM_GENERATED_VALUE (not produced by a TPM)', () => {
    const attest = softAttest(key, nonce, { magic: 0xff544348 });
    expect(code(() => run({ signature: softSign(ak, attest) }, attest))).toBe('ATTEST_NOT_TPM_GENERATED');
  });

  it('rejects an attestation that is not TPM_ST_ATTEST_CERTIFY (a creation attestation)', () => {
    const attest = softAttest(key, nonce, { type: TPM_ST.ATTEST_CREATION });
    expect(code(() => run({}, attest))).toBe('ATTEST_TYPE_INVALID');
  });

  it('rejects a nonce mismatch (replayed Certify)', () => {
    expect(code(() => run({ nonce: Buffer.alloc(32, 0x43) }))).toBe('ATTEST_NONCE_MISMATCH');
  });

  it('rejects a shorter nonce that is a prefix of extraData', () => {
    expect(code(() => run({ nonce: nonce.subarray(0, 16) }))).toBe('ATTEST_NONCE_MISMATCH');
  });

  it('rejects an attested name that is not H(pubArea) (key substitution)', () => {
    const other = softEcKey(SOFT_KEY_ATTRS);
    expect(code(() => run({ certifiedPubArea: other.raw }))).toBe('ATTEST_NAME_MISMATCH');
  });

  it('rejects a signature by another AK', () => {
    const attest = softAttest(key, nonce);
    const other = softRsaKey(SOFT_AK_ATTRS);
    expect(code(() => run({ signature: softSign(other, attest) }, attest))).toBe('ATTEST_SIGNATURE_INVALID');
  });

  it('rejects a SHA-1 signature unless allowed', () => {
    const attest = softAttest(key, nonce);
    const sig = softSign(ak, attest, 'sha1');
    expect(code(() => run({ signature: sig }, attest))).toBe('ATTEST_SIGNATURE_INVALID');
    expect(run({ signature: sig, allowSha1: true }, attest).keyAlgorithm).toBe('ecc-p256');
  });

  it('rejects a key without fixedTPM (software key)', () => {
    const soft = softEcKey(TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign);
    const attest = softAttest(soft, nonce);
    expect(code(() => verifyCertify({ attest, signature: softSign(ak, attest), certifiedPubArea: soft.raw, akPubArea: ak.raw, nonce }))).toBe('KEY_ATTRIBUTES_INVALID');
  });

  it('rejects a key without sensitiveDataOrigin (imported key)', () => {
    const imported = softEcKey(SOFT_KEY_ATTRS & ~TPMA_OBJECT.sensitiveDataOrigin);
    const attest = softAttest(imported, nonce);
    expect(code(() => verifyCertify({ attest, signature: softSign(ak, attest), certifiedPubArea: imported.raw, akPubArea: ak.raw, nonce }))).toBe('KEY_ATTRIBUTES_INVALID');
  });

  it('rejects a restricted certified key', () => {
    const restricted = softEcKey(SOFT_AK_ATTRS);
    const attest = softAttest(restricted, nonce);
    expect(code(() => verifyCertify({ attest, signature: softSign(ak, attest), certifiedPubArea: restricted.raw, akPubArea: ak.raw, nonce }))).toBe('KEY_RESTRICTED');
  });

  it('rejects a device key algorithm outside the policy', () => {
    const p384 = softEcKey(SOFT_KEY_ATTRS, 'P-384');
    const attest = softAttest(p384, nonce);
    expect(code(() => verifyCertify({ attest, signature: softSign(ak, attest), certifiedPubArea: p384.raw, akPubArea: ak.raw, nonce, keyAlgorithms: ['ecc-p256'] }))).toBe('KEY_ALG_NOT_ALLOWED');
  });

  it('rejects a signer that is not restricted (forged attestation by an ordinary key)', () => {
    const attest = softAttest(key, nonce);
    expect(code(() => verifyCertify({ attest, signature: softSign(key, attest), certifiedPubArea: key.raw, akPubArea: key.raw, nonce }))).toBe('AK_ATTRIBUTES_INVALID');
  });
});

describe('checkAkPublic', () => {
  it('accepts a restricted signing key and computes its name itself', () => {
    const ak = softRsaKey(SOFT_AK_ATTRS);
    const r = checkAkPublic(ak.raw);
    expect(r.name.equals(ak.name)).toBe(true);
    expect(r.algorithm).toBe('rsa-2048');
  });

  it.each([
    ['restricted', TPMA_OBJECT.restricted],
    ['fixedTPM', TPMA_OBJECT.fixedTPM],
    ['fixedParent', TPMA_OBJECT.fixedParent],
    ['sensitiveDataOrigin', TPMA_OBJECT.sensitiveDataOrigin],
    ['sign', TPMA_OBJECT.sign],
  ])('rejects an AK without %s', (_n, bit) => {
    const ak = softEcKey(SOFT_AK_ATTRS & ~bit);
    expect(code(() => checkAkPublic(ak.raw))).toBe('AK_ATTRIBUTES_INVALID');
  });

  it('rejects an AK that can also decrypt', () => {
    const ak = softEcKey(SOFT_AK_ATTRS | TPMA_OBJECT.decrypt);
    expect(code(() => checkAkPublic(ak.raw))).toBe('AK_ATTRIBUTES_INVALID');
  });

  it('rejects an AK algorithm outside the policy', () => {
    expect(code(() => checkAkPublic(softEcKey(SOFT_AK_ATTRS).raw, ['rsa-2048']))).toBe('AK_ALG_NOT_ALLOWED');
  });
});

describe('credential challenge', () => {
  const ekRsa = (attrs = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt) => {
    const k = softRsaKey(attrs);
    return { ...k.pub, symmetric: { algorithm: 0x0006, keyBits: 128, mode: 0x0043 }, scheme: { scheme: 0x0010 } } as typeof k.pub;
  };

  it('makes a 32-byte secret, a TPM2B_ID_OBJECT body and a 256-byte OAEP secret for an RSA-2048 EK', () => {
    const c = makeCredentialChallenge(ekRsa(), Buffer.alloc(34, 1));
    expect(c.secret).toHaveLength(32);
    expect(c.encryptedSecret).toHaveLength(256);
    expect(c.credentialBlob.readUInt16BE(0)).toBe(32); // integrityHMAC size
    expect(c.credentialBlob).toHaveLength(2 + 32 + 2 + 32); // HMAC + encrypted TPM2B(secret)
  });

  it('refuses to make a credential for a key that is not a restricted decryption key (not an EK)', () => {
    expect(code(() => makeCredentialChallenge(ekRsa(SOFT_AK_ATTRS), Buffer.alloc(34, 1)))).toBe('TPM_STRUCTURE_MALFORMED');
  });

  it('rejects a different activated secret, also of another length, in constant time', () => {
    expect(code(() => verifyActivatedSecret(Buffer.alloc(32, 1), Buffer.alloc(32, 2)))).toBe('CREDENTIAL_SECRET_MISMATCH');
    expect(code(() => verifyActivatedSecret(Buffer.alloc(31, 1), Buffer.alloc(32, 1)))).toBe('CREDENTIAL_SECRET_MISMATCH');
    expect(() => verifyActivatedSecret(Buffer.alloc(32, 1), Buffer.alloc(32, 1))).not.toThrow();
  });
});
