/** ≥ 10,000 mutated inputs per certificate/CSR parser and the EK verifier: only AppError(bad_request|forbidden) or success. */
import { normalizeEkCertificate, parseCertificate, parseTrustAnchors, toPem, verifyCsr, verifyEkCertificate } from '../../../src/attestation';
import { fuzz } from '../tpm/fuzz-helpers';
import { NOW, makeSeeds, type Seeds } from './fuzz-seeds';

const N = 10_000;

describe('certificate and CSR fuzzing', () => {
  let S: Seeds;
  beforeAll(async () => {
    S = await makeSeeds();
  });

  it('certificate parsing (NV normalisation + X.509 decode) survives 10,000 mutations', () => {
    const r = fuzz([S.ek.der, S.aik.der, S.inter.der], N, (b) => parseCertificate(normalizeEkCertificate(b)));
    expect(r.rejected).toBeGreaterThan(0);
  });

  it('PEM trust-anchor bundles survive 10,000 mutations', () => {
    fuzz([Buffer.from(S.root.pem + S.inter.pem)], N, (b) => parseTrustAnchors(b.toString('latin1')));
  });

  it('verifyEkCertificate survives 10,000 mutations (bad_request or forbidden only)', () => {
    const r = fuzz([S.ek.der], N, (b) => verifyEkCertificate(b, S.anchors, NOW, { intermediates: [S.inter.der] }), ['bad_request', 'forbidden']);
    expect(r.byCode.get('EK_CERT_UNTRUSTED') ?? 0).toBeGreaterThan(0);
  });

  it('verifyCsr survives 10,000 mutations of DER and PEM', () => {
    expect(verifyCsr(S.csr).spki).toBeDefined();
    fuzz([S.csr], N, (b) => verifyCsr(b), ['bad_request', 'forbidden']);
    fuzz([Buffer.from(toPem(S.csr, 'CERTIFICATE REQUEST'))], N, (b) => verifyCsr(b.toString('latin1')), ['bad_request', 'forbidden']);
  });
});
