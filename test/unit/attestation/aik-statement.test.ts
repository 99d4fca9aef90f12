/**
 * The `tpm` attestation statement against a generated AIK PKI: every AIK certificate profile rule of
 * attestation.md §3.1 A.4 gets an accepting and a rejecting case. Real Windows Hello captures are in
 * tpm-statement-vectors.test.ts.
 */
import { createHash, webcrypto } from 'node:crypto';
import { AppError } from '../../../src/domain/errors';
import { parseTrustAnchors, verifyTpmAttestationStatement, type TrustAnchor } from '../../../src/attestation';
import { TPM_ALG, marshalSignature } from '../../../src/tpm';
import { aaguidExtension, ekuExtension, issue, rawExtension, sanDirectoryName, tpmName, type Issued } from './pki';
import { SOFT_AK_ATTRS, SOFT_KEY_ATTRS, softAttest, softEcKey, type SoftKey } from './soft-tpm';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const KU_CA = 0x20 | 0x40;
const GOOD_SAN = { manufacturer: 'id:49465800', model: 'SLB9670', version: 'id:0007003D' };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return (e as AppError).code;
  }
  throw new Error('expected a rejection');
}

describe('verifyTpmAttestationStatement with generated AIK certificates', () => {
  let root: Issued;
  let inter: Issued;
  let roots: TrustAnchor[];
  let key: SoftKey;
  const toBeSigned = Buffer.from('authenticatorData||clientDataHash');
  const extra = createHash('sha256').update(toBeSigned).digest();

  beforeAll(async () => {
    root = await issue({ subject: 'CN=Test AIK Root', ca: true, keyUsage: KU_CA });
    inter = await issue({ subject: 'CN=Test AIK CA', issuer: root, ca: true, keyUsage: KU_CA });
    roots = parseTrustAnchors(root.pem);
    key = softEcKey(SOFT_KEY_ATTRS);
  });

  async function aik(over: { subject?: string; eku?: string[] | null; san?: Buffer | null; ca?: boolean; notAfter?: Date; extra?: ReturnType<typeof aaguidExtension>[] } = {}): Promise<Issued> {
    const exts = [];
    if (over.eku !== null) exts.push(ekuExtension(...(over.eku ?? ['2.23.133.8.3'])));
    if (over.san !== null) exts.push(rawExtension('2.5.29.17', true, sanDirectoryName(over.san ?? tpmName(GOOD_SAN))));
    exts.push(...(over.extra ?? []));
    return issue({ subject: over.subject ?? '', issuer: inter, ca: over.ca ?? false, extensions: exts, ...(over.notAfter ? { notAfter: over.notAfter } : {}) });
  }

  async function statement(cert: Issued, opts: { tpmtSig?: boolean; certified?: SoftKey } = {}) {
    const certified = opts.certified ?? key;
    const certInfo = softAttest(certified, extra);
    const p1363 = Buffer.from(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, cert.keys.privateKey, certInfo));
    const r = p1363.subarray(0, 32);
    const s = p1363.subarray(32);
    const sig = opts.tpmtSig
      ? marshalSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r, s })
      : (await import('../../../src/tpm')).ecdsaRsToDer(r, s);
    return { ver: '2.0', alg: -7, x5c: [cert.der, inter.der], certInfo, pubArea: certified.raw, sig };
  }

  const verify = (attStmt: object, over: Record<string, unknown> = {}) =>
    verifyTpmAttestationStatement({
      attStmt: attStmt as never,
      attToBeSigned: toBeSigned,
      credentialPublicKey: key.publicKey.export({ type: 'spki', format: 'der' }),
      roots,
      nowMs: NOW,
      ...over,
    });

  it('accepts a spec-layout SAN (three RDNs) with a raw DER signature', async () => {
    const r = verify(await statement(await aik()));
    expect(r.vendor).toBe('Infineon');
    expect(r.tpm).toEqual(GOOD_SAN);
  });

  it('accepts the one-RDN SAN layout and a TPMT_SIGNATURE sig', async () => {
    const r = verify(await statement(await aik({ san: tpmName(GOOD_SAN, 'single') }), { tpmtSig: true }));
    expect(r.tpm.model).toBe('SLB9670');
  });

  it('accepts the ACME form: extraData compared as given (SHA-256 of keyAuthorization)', async () => {
    const st = await statement(await aik());
    expect(verifyTpmAttestationStatement({ attStmt: st, expectedExtraData: extra, roots, nowMs: NOW }).vendor).toBe('Infineon');
  });

  it('rejects an AIK certificate with a non-empty subject', async () => {
    expect(code(() => verify(stmtCache.subject!))).toBe('AIK_CERT_PROFILE');
  });

  it('rejects an AIK certificate without EKU 2.23.133.8.3', async () => {
    expect(code(() => verify(stmtCache.noEku!))).toBe('AIK_CERT_PROFILE');
  });

  it('rejects an AIK certificate that is a CA', async () => {
    expect(code(() => verify(stmtCache.ca!))).toBe('AIK_CERT_PROFILE');
  });

  it('rejects an AIK certificate without the TPM SAN', async () => {
    expect(code(() => verify(stmtCache.noSan!))).toBe('AIK_CERT_PROFILE');
  });

  it('rejects the FIDO conformance vendor id:FFFFF1D0', async () => {
    expect(code(() => verify(stmtCache.fido!))).toBe('AIK_VENDOR_NOT_ALLOWED');
  });

  it('rejects a manufacturer outside the TCG vendor registry', async () => {
    expect(code(() => verify(stmtCache.unknownVendor!))).toBe('AIK_VENDOR_NOT_ALLOWED');
  });

  it('rejects an expired AIK certificate', async () => {
    expect(code(() => verify(stmtCache.expired!))).toBe('AIK_CERT_UNTRUSTED');
  });

  it('rejects an AIK chain to an unconfigured root, even if x5c carries that root', async () => {
    const rogueRoot = await issue({ subject: 'CN=Test AIK Root', ca: true, keyUsage: KU_CA });
    const rogueInter = await issue({ subject: 'CN=Test AIK CA', issuer: rogueRoot, ca: true, keyUsage: KU_CA });
    const rogueAik = await issue({ subject: '', issuer: rogueInter, extensions: [ekuExtension('2.23.133.8.3'), rawExtension('2.5.29.17', true, sanDirectoryName(tpmName(GOOD_SAN)))] });
    const st = await statement(rogueAik);
    expect(code(() => verify({ ...st, x5c: [rogueAik.der, rogueInter.der, rogueRoot.der] }))).toBe('AIK_CERT_UNTRUSTED');
  });

  it('rejects an AAGUID that differs from the AIK certificate extension', async () => {
    const st = await statement(await aik({ extra: [aaguidExtension(Buffer.alloc(16, 1))] }));
    expect(code(() => verify(st, { aaguid: Buffer.alloc(16, 2) }))).toBe('AAGUID_MISMATCH');
    expect(verify(st, { aaguid: Buffer.alloc(16, 1) }).vendor).toBe('Infineon');
  });

  it('rejects a pubArea that is not the credential key', async () => {
    const other = softEcKey(SOFT_KEY_ATTRS);
    expect(code(() => verify(stmtCache.good!, { credentialPublicKey: other.publicKey.export({ type: 'spki', format: 'der' }) }))).toBe('CREDENTIAL_KEY_MISMATCH');
  });

  it('rejects extraData for other client data', async () => {
    expect(code(() => verify(stmtCache.good!, { attToBeSigned: Buffer.from('other') }))).toBe('ATTEST_NONCE_MISMATCH');
  });

  it('rejects a signature by a different key than the AIK', async () => {
    const st = stmtCache.good!;
    const other = await statement(await aik());
    expect(code(() => verify({ ...st, sig: other.sig }))).toBe('ATTEST_SIGNATURE_INVALID');
  });

  it('rejects a restricted attested key', async () => {
    const restricted = softEcKey(SOFT_AK_ATTRS);
    const st = await statement(await aik(), { certified: restricted });
    expect(code(() => verify(st, { credentialPublicKey: restricted.publicKey.export({ type: 'spki', format: 'der' }) }))).toBe('KEY_RESTRICTED');
  });

  it('rejects an alg outside the allowed set and needs exactly one extraData expectation', async () => {
    expect(code(() => verify({ ...stmtCache.good!, alg: -8 }))).toBe('ATTSTMT_ALG_NOT_ALLOWED');
    expect(code(() => verifyTpmAttestationStatement({ attStmt: stmtCache.good! as never, roots, nowMs: NOW }))).toBe('ATTSTMT_MALFORMED');
  });

  const stmtCache: Record<string, object> = {};
  beforeAll(async () => {
    stmtCache.good = await statement(await aik());
    stmtCache.noEku = await statement(await aik({ eku: ['1.3.6.1.5.5.7.3.2'] }));
    stmtCache.ca = await statement(await aik({ ca: true }));
    stmtCache.noSan = await statement(await aik({ san: null }));
    stmtCache.fido = await statement(await aik({ san: tpmName({ ...GOOD_SAN, manufacturer: 'id:FFFFF1D0' }) }));
    stmtCache.unknownVendor = await statement(await aik({ san: tpmName({ ...GOOD_SAN, manufacturer: 'id:12345678' }) }));
    stmtCache.expired = await statement(await aik({ notAfter: new Date('2026-01-01T00:00:00Z') }));
    stmtCache.subject = await statement(await aik({ subject: 'CN=aik' }));
  });
});
