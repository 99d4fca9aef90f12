/**
 * Real Windows Hello `tpm` attestations (SimpleWebAuthn captures) and FIDO conformance fakes (fido2-net-lib),
 * read at run time from ../shared/vectors, never copied. Frozen clocks come from each vector's provenance.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../../../src/domain/errors';
import {
  decodeCbor,
  parseTrustAnchors,
  verifyTpmAttestationStatement,
  verifyWebAuthnTpmRegistration,
  type TrustAnchor,
} from '../../../src/attestation';
import { describeWith, sharedDir, sharedVectors } from '../../helpers/requirements';

const V = path.join(sharedDir, 'vectors');
const read = (f: string): string => readFileSync(path.join(V, f), 'utf8');

interface SwaVector {
  response: { attestationObject: string; clientDataJSON: string };
  expectedChallenge: string;
  verifyAt?: string;
}

function rejectsWith(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe(code);
}

describeWith([sharedVectors], 'WebAuthn tpm statement: real Windows Hello vectors', () => {
  let roots: TrustAnchor[];
  beforeAll(() => {
    roots = parseTrustAnchors(read('tpm-vendor-roots.pem'));
  });

  const cases: Array<[string, string | null, string]> = [
    ['swa-tpm-winhello-stm-st33-rsa.json', null, 'STMicroelectronics'],
    ['swa-tpm-winhello-ntc-npct75x-rsa-nonspec-san.json', null, 'Nuvoton Technology'],
    // No verifyAt in provenance: valid until 2027-06-10; freeze inside that window.
    ['swa-tpm-winhello-ntc-npct75x-ecc.json', '2026-11-26T00:00:00Z', 'Nuvoton Technology'],
  ];

  it.each(cases)('verifies %s at its frozen clock, anchored at the vendor roots', (file, at, vendor) => {
    const v = JSON.parse(read(file)) as SwaVector;
    const nowMs = Date.parse(v.verifyAt ?? at!);
    const clientDataJSON = Buffer.from(v.response.clientDataJSON, 'base64url');
    const res = verifyWebAuthnTpmRegistration({
      attestationObject: Buffer.from(v.response.attestationObject, 'base64url'),
      clientDataJSON,
      roots,
      nowMs,
    });
    expect(res.statement.vendor).toBe(vendor);
    expect(res.clientData.challenge).toBe(v.expectedChallenge);
    expect(res.statement.chainSha256.length).toBeGreaterThanOrEqual(2);
  });

  it('rejects the STM vector after its AIK expired (clock not frozen)', () => {
    const v = JSON.parse(read('swa-tpm-winhello-stm-st33-rsa.json')) as SwaVector;
    rejectsWith(
      () =>
        verifyWebAuthnTpmRegistration({
          attestationObject: Buffer.from(v.response.attestationObject, 'base64url'),
          clientDataJSON: Buffer.from(v.response.clientDataJSON, 'base64url'),
          roots,
          nowMs: Date.parse('2025-03-22T00:00:00Z'),
        }),
      'AIK_CERT_UNTRUSTED',
    );
  });

  it('rejects a Windows Hello vector whose clientDataJSON was swapped (extraData replay)', () => {
    const v = JSON.parse(read('swa-tpm-winhello-stm-st33-rsa.json')) as SwaVector;
    const other = JSON.parse(read('swa-tpm-winhello-ntc-npct75x-rsa-nonspec-san.json')) as SwaVector;
    rejectsWith(
      () =>
        verifyWebAuthnTpmRegistration({
          attestationObject: Buffer.from(v.response.attestationObject, 'base64url'),
          clientDataJSON: Buffer.from(other.response.clientDataJSON, 'base64url'),
          roots,
          nowMs: Date.parse(v.verifyAt!),
        }),
      'ATTEST_NONCE_MISMATCH',
    );
  });

  it('rejects RS1 when the policy bans SHA-1', () => {
    const v = JSON.parse(read('swa-tpm-winhello-stm-st33-rsa.json')) as SwaVector;
    rejectsWith(
      () =>
        verifyWebAuthnTpmRegistration({
          attestationObject: Buffer.from(v.response.attestationObject, 'base64url'),
          clientDataJSON: Buffer.from(v.response.clientDataJSON, 'base64url'),
          roots,
          nowMs: Date.parse(v.verifyAt!),
          allowedAlgs: [-257, -7],
        }),
      'ATTSTMT_ALG_NOT_ALLOWED',
    );
  });
});

describeWith([sharedVectors], 'WebAuthn tpm statement: FIDO conformance fakes (fido2-net-lib)', () => {
  let roots: TrustAnchor[];
  beforeAll(() => {
    roots = parseTrustAnchors(read('tpm-vendor-roots.pem'));
  });
  const files = ['fido2netlib-attestationTPMSHA1Response.json', 'fido2netlib-attestationTPMSHA256Response.json'];

  it.each(files)('rejects %s when only the real vendor roots are trusted (fake root)', (file) => {
    const v = JSON.parse(read(file)) as { response: { attestationObject: string; clientDataJSON: string } };
    let caught: unknown;
    try {
      verifyWebAuthnTpmRegistration({
        attestationObject: Buffer.from(v.response.attestationObject, 'base64url'),
        clientDataJSON: Buffer.from(v.response.clientDataJSON, 'base64url'),
        roots,
        nowMs: Date.parse('2025-01-30T00:00:00Z'),
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('AIK_CERT_UNTRUSTED');
  });

  it.each(files)('rejects %s for the FIDO test vendor id:FFFFF1D0 even when its own CA is trusted', (file) => {
    const v = JSON.parse(read(file)) as { response: { attestationObject: string; clientDataJSON: string } };
    const obj = decodeCbor(Buffer.from(v.response.attestationObject, 'base64url')) as Map<string, unknown>;
    const attStmt = obj.get('attStmt') as Map<string, unknown>;
    const x5c = attStmt.get('x5c') as Buffer[];
    // Trust the fake intermediate itself (partial chain) so that only the vendor check can reject.
    const fakeAnchors = parseTrustAnchors(`-----BEGIN CERTIFICATE-----\n${x5c[1]!.toString('base64')}\n-----END CERTIFICATE-----\n`);
    let caught: unknown;
    try {
      verifyWebAuthnTpmRegistration({
        attestationObject: Buffer.from(v.response.attestationObject, 'base64url'),
        clientDataJSON: Buffer.from(v.response.clientDataJSON, 'base64url'),
        roots: fakeAnchors,
        nowMs: Date.parse('2025-01-30T00:00:00Z'),
      });
    } catch (e) {
      caught = e;
    }
    expect((caught as AppError).code).toBe('AIK_VENDOR_NOT_ALLOWED');
  });
});

describeWith([sharedVectors], 'WebAuthn tpm statement: typed statement input', () => {
  it('rejects a statement with ver 1.0', () => {
    const v = JSON.parse(read('swa-tpm-winhello-stm-st33-rsa.json')) as SwaVector;
    const obj = decodeCbor(Buffer.from(v.response.attestationObject, 'base64url')) as Map<string, unknown>;
    const attStmt = new Map(obj.get('attStmt') as Map<string, unknown>);
    attStmt.set('ver', '1.0');
    rejectsWith(
      () =>
        verifyTpmAttestationStatement({
          attStmt: attStmt as never,
          expectedExtraData: Buffer.alloc(32),
          roots: parseTrustAnchors(read('tpm-vendor-roots.pem')),
          nowMs: Date.parse(v.verifyAt!),
        }),
      'ATTSTMT_VERSION',
    );
  });
});
