/** ≥ 10,000 mutated inputs per TPM parser: only success or AppError(bad_request) may come out. */
import {
  TPM_ALG,
  akTemplate,
  deviceKeyTemplate,
  ecdsaDerToRs,
  ekRsaTemplate,
  marshalCertifyAttest,
  marshalPublic,
  marshalSignature,
  parseAttest,
  parsePublic,
  parsePublicTpm2b,
  parseSignature,
  publicKeyOf,
  publicToTpm2b,
  srkTemplate,
  unwrapTpm2b,
} from '../../../src/tpm';
import { SOFT_KEY_ATTRS, softEcKey, softRsaKey } from '../attestation/soft-tpm';
import { fuzz } from './fuzz-helpers';

const N = 10_000;

describe('TPM parser fuzzing', () => {
  const rsa = softRsaKey(SOFT_KEY_ATTRS);
  const ec = softEcKey(SOFT_KEY_ATTRS);
  const publics = [ekRsaTemplate(), srkTemplate(), akTemplate('rsa'), akTemplate('ecc'), deviceKeyTemplate(), rsa.raw, ec.raw];
  const attest = marshalCertifyAttest({
    magic: 0xff544347,
    type: 0x8017,
    qualifiedSigner: Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 1)]),
    extraData: Buffer.alloc(32, 2),
    clockInfo: { clock: 5n, resetCount: 1, restartCount: 2, safe: true },
    firmwareVersion: 7n,
    certify: { name: ec.name, qualifiedName: rsa.name },
  });
  const quote = Buffer.from(
    'ff5443478018' + '0022000b' + '11'.repeat(32) + '0020' + '22'.repeat(32) + '00'.repeat(17) + '0000000000000001' + '00000001000b03ff0000' + '0020' + '33'.repeat(32),
    'hex',
  );
  const sigs = [
    marshalSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, sig: Buffer.alloc(256, 9) }),
    marshalSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: Buffer.alloc(32, 1), s: Buffer.alloc(32, 2) }),
    marshalSignature({ sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA384, sig: Buffer.alloc(384, 3) }),
  ];

  it('parsePublic (+ key conversion) survives 10,000 mutations', () => {
    const r = fuzz(publics, N, (b) => {
      const p = parsePublic(b);
      if (p.public.type === TPM_ALG.ECC ? p.public.x.length > 0 : p.public.modulus.length > 0) publicKeyOf(p.public);
    });
    expect(r.ok + r.rejected).toBe(N);
    expect(r.rejected).toBeGreaterThan(N / 2);
  });

  it('parsePublicTpm2b survives 10,000 mutations', () => {
    const r = fuzz(publics.map(publicToTpm2b), N, (b) => parsePublicTpm2b(b));
    expect(r.rejected).toBeGreaterThan(0);
  });

  it('parseAttest survives 10,000 mutations of certify and quote attestations', () => {
    expect(parseAttest(quote).quote?.pcrSelect).toHaveLength(1);
    const r = fuzz([attest, quote], N, (b) => parseAttest(b));
    expect(r.byCode.get('TPM_STRUCTURE_MALFORMED')).toBeGreaterThan(0);
  });

  it('parseSignature survives 10,000 mutations', () => {
    const r = fuzz(sigs, N, (b) => parseSignature(b));
    expect(r.ok).toBeGreaterThan(0);
  });

  it('ecdsaDerToRs and unwrapTpm2b survive 10,000 mutations each', () => {
    const der = Buffer.from('3044022011' + '11'.repeat(31) + '022022' + '22'.repeat(31), 'hex');
    expect(fuzz([der], N, (b) => ecdsaDerToRs(b)).rejected).toBeGreaterThan(0);
    expect(fuzz([publicToTpm2b(attest)], N, (b) => unwrapTpm2b(b, 'TPM2B_ATTEST', 1024)).rejected).toBeGreaterThan(0);
  });

  it('marshal(parse(x)) == x for every mutated input that parses (no silent re-interpretation)', () => {
    fuzz(publics, N, (b) => {
      const p = parsePublic(b);
      if (!marshalPublic(p.public).equals(b)) throw new Error('re-encoding differs');
    });
  });
});
