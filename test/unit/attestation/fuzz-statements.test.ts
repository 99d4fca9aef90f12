/** ≥ 10,000 mutated inputs per CBOR/WebAuthn parser and per statement/Certify verifier input. */
import { coseKeyToSpki, decodeCbor, parseAuthenticatorData, readTpmStatement, verifyCertify, verifyTpmAttestationStatement } from '../../../src/attestation';
import { fuzz } from '../tpm/fuzz-helpers';
import { NOW, makeSeeds, type Seeds } from './fuzz-seeds';

const N = 10_000;

describe('CBOR, statement and Certify fuzzing', () => {
  let S: Seeds;
  beforeAll(async () => {
    S = await makeSeeds();
  });

  it('decodeCbor survives 10,000 mutations', () => {
    expect(decodeCbor(S.attObj)).toBeInstanceOf(Map);
    const r = fuzz([S.attObj], N, (b) => decodeCbor(b));
    expect(r.byCode.get('CBOR_MALFORMED')).toBeGreaterThan(0);
  });

  it('parseAuthenticatorData and coseKeyToSpki survive 10,000 mutations', () => {
    expect(coseKeyToSpki(parseAuthenticatorData(S.authData).credentialPublicKey!)).toBeDefined();
    fuzz([S.authData], N, (b) => {
      const a = parseAuthenticatorData(b);
      if (a.credentialPublicKey !== undefined) coseKeyToSpki(a.credentialPublicKey);
    });
  });

  it('the tpm statement (CBOR → attStmt → verifier) survives 10,000 mutations', () => {
    const toBeSigned = S.toBeSigned;
    const check = (b: Buffer) => {
      const obj = decodeCbor(b);
      const st = readTpmStatement(obj instanceof Map ? (obj.get('attStmt') ?? null) : obj);
      return verifyTpmAttestationStatement({ attStmt: st, attToBeSigned: toBeSigned, roots: S.anchors, nowMs: NOW });
    };
    expect(check(S.attObj).vendor).toBe('Infineon');
    const r = fuzz([S.attObj], N, check, ['bad_request', 'forbidden']);
    expect(r.rejected).toBeGreaterThan(0);
  });

  it('verifyCertify survives 10,000 mutations of each of attest, signature and pubArea', () => {
    const { attest, signature, nonce } = S;
    const base = { attest, signature, certifiedPubArea: S.key.raw, akPubArea: S.ak.raw, nonce };
    expect(verifyCertify(base).keyAlgorithm).toBe('ecc-p256');
    const kinds = ['bad_request', 'forbidden'];
    fuzz([attest], N, (b) => verifyCertify({ ...base, attest: b }), kinds);
    fuzz([signature], N, (b) => verifyCertify({ ...base, signature: b }), kinds);
    fuzz([S.key.raw], N, (b) => verifyCertify({ ...base, certifiedPubArea: b }), kinds);
  });
});
