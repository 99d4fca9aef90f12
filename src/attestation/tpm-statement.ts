import { createHash, verify as cryptoVerify } from 'node:crypto';
import { constantTimeEqual } from '../lib/constant-time';
import {
  TPMA_OBJECT,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST,
  computeName,
  describeAttributes,
  parseAttest,
  parsePublic,
  parseSignature,
  publicToSpki,
  verifyTpmSignature,
  type TpmtPublic,
} from '../tpm';
import { parseAuthenticatorData } from './authenticator-data';
import { decodeCbor, type CborValue } from './cbor';
import { coseKeyToSpki } from './cose';
import { attestationMalformed, attestationRejected } from './errors';
import { DEFAULT_KEY_ALGORITHMS, keyAlgorithmOf, type KeyAlgorithm } from './key-policy';
import { spkiEqual } from './spki';
import { FIDO_TEST_VENDOR_ID, TCG_VENDOR_IDS, parseVendorId } from './tcg-vendors';
import {
  OID,
  hasEmptySubject,
  parseCertificate,
  readTpmSan,
  validateChain,
  type ParsedCertificate,
  type TpmSanAttributes,
  type TrustAnchor,
} from './x509';

/** COSE algorithms of the statement's `alg`: hash and key family. */
const COSE_ALGS: Readonly<Record<number, { hash: string; tpmHash: number; family: 'rsa' | 'ec' }>> = {
  [-257]: { hash: 'sha256', tpmHash: TPM_ALG.SHA256, family: 'rsa' }, // RS256
  [-258]: { hash: 'sha384', tpmHash: TPM_ALG.SHA384, family: 'rsa' }, // RS384
  [-259]: { hash: 'sha512', tpmHash: TPM_ALG.SHA512, family: 'rsa' }, // RS512
  [-65535]: { hash: 'sha1', tpmHash: TPM_ALG.SHA1, family: 'rsa' }, // RS1
  [-7]: { hash: 'sha256', tpmHash: TPM_ALG.SHA256, family: 'ec' }, // ES256
  [-35]: { hash: 'sha384', tpmHash: TPM_ALG.SHA384, family: 'ec' }, // ES384
};

/** step-ca's set: RS256, ES256 and RS1 (Windows Hello AIKs sign with SHA-1). */
export const DEFAULT_STATEMENT_ALGS: readonly number[] = [-257, -7, -65535];

/** The `attStmt` of fmt `tpm` (WebAuthn §8.3, ACME device-attest-01). */
export interface TpmAttestationStatement {
  readonly ver: string;
  readonly alg: number;
  readonly x5c: readonly Buffer[];
  readonly certInfo: Buffer;
  readonly pubArea: Buffer;
  readonly sig: Buffer;
}

/** Inputs of `verifyTpmAttestationStatement`. Exactly one of `attToBeSigned` / `expectedExtraData`. */
export interface TpmStatementInput {
  /** The attStmt as decoded from CBOR (a Map) or already typed. */
  readonly attStmt: CborValue | TpmAttestationStatement;
  /** WebAuthn: authenticatorData ‖ clientDataHash; extraData must be H_alg of it. */
  readonly attToBeSigned?: Buffer;
  /** ACME device-attest-01: SHA-256(keyAuthorization), compared as is. */
  readonly expectedExtraData?: Buffer;
  /** SPKI of the credential/CSR key; must equal the pubArea key when given (A.7). */
  readonly credentialPublicKey?: Buffer;
  /** AAGUID from authenticatorData; must match the AIK's 1.3.6.1.4.1.45724.1.1.4 extension when both exist. */
  readonly aaguid?: Buffer;
  /** Configured AIK trust anchors (e.g. Microsoft TPM Root CA 2014). */
  readonly roots: readonly TrustAnchor[];
  readonly nowMs: number;
  readonly allowedAlgs?: readonly number[];
  readonly keyAlgorithms?: readonly KeyAlgorithm[];
}

/** Result of a verified `tpm` statement. */
export interface VerifiedTpmStatement {
  /** SPKI DER of the attested key (pubArea). */
  readonly keySpki: Buffer;
  readonly keyPublic: TpmtPublic;
  readonly tpm: Required<TpmSanAttributes>;
  readonly vendor: string;
  /** SHA-256 hex of AIK certificate … anchor. */
  readonly chainSha256: readonly string[];
}

const M = 'ATTSTMT_MALFORMED';

/** Reads the statement fields from a CBOR map; missing or mistyped fields are `ATTSTMT_MALFORMED`. */
export function readTpmStatement(v: CborValue | TpmAttestationStatement): TpmAttestationStatement {
  if (!(v instanceof Map)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && 'certInfo' in v) return v;
    throw attestationMalformed(M, 'attStmt is not a map');
  }
  const ver = v.get('ver');
  const alg = v.get('alg');
  const x5c = v.get('x5c');
  const certInfo = v.get('certInfo');
  const pubArea = v.get('pubArea');
  const sig = v.get('sig');
  if (typeof ver !== 'string' || typeof alg !== 'number') throw attestationMalformed(M, 'attStmt ver/alg missing');
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > 8 || !x5c.every((c) => Buffer.isBuffer(c))) {
    throw attestationMalformed(M, 'attStmt x5c must be 1..8 certificates');
  }
  if (!Buffer.isBuffer(certInfo) || !Buffer.isBuffer(pubArea) || !Buffer.isBuffer(sig)) {
    throw attestationMalformed(M, 'attStmt certInfo/pubArea/sig missing');
  }
  return { ver, alg, x5c: x5c, certInfo, pubArea, sig };
}

function verifyStatementSignature(aik: ParsedCertificate, alg: { hash: string; tpmHash: number; family: 'rsa' | 'ec' }, data: Buffer, sig: Buffer): boolean {
  if ((aik.publicKey.asymmetricKeyType === 'ec') !== (alg.family === 'ec')) return false;
  // WebAuthn says TPMT_SIGNATURE, Windows sends the raw signature; accept either form, same key, same data.
  try {
    const t = parseSignature(sig);
    if (t.sigAlg !== TPM_ALG.NULL && t.hashAlg === alg.tpmHash && verifyTpmSignature(aik.publicKey, data, t, new Set([alg.tpmHash]))) {
      return true;
    }
  } catch {
    // not a TPMT_SIGNATURE: raw form below
  }
  try {
    return cryptoVerify(alg.hash, data, aik.publicKey, sig);
  } catch {
    return false;
  }
}

/**
 * Verifies a `tpm` attestation statement (attestation.md §3.1 A, WebAuthn §8.3), sharing the TPM parsers of
 * enrollment. Each numbered step quotes the checklist; all inputs are parameters (roots, `nowMs`, expectations).
 * Rejections are forbidden with codes `ATTSTMT_VERSION`, `ATTSTMT_ALG_NOT_ALLOWED`, `AIK_CERT_UNTRUSTED`,
 * `AIK_CERT_PROFILE`, `AIK_VENDOR_NOT_ALLOWED`, `AAGUID_MISMATCH`, `ATTEST_*`, `CREDENTIAL_KEY_MISMATCH`,
 * `KEY_*`; undecodable input is bad_request.
 */
export function verifyTpmAttestationStatement(input: TpmStatementInput): VerifiedTpmStatement {
  const st = readTpmStatement(input.attStmt);
  // 1. "ver == 2.0"
  if (st.ver !== '2.0') throw attestationRejected('ATTSTMT_VERSION', 'Unsupported TPM attestation version');
  // 2. "alg ∈ {RS256, ES256, RS1}" (configurable)
  const alg = COSE_ALGS[st.alg];
  if (!alg || !(input.allowedAlgs ?? DEFAULT_STATEMENT_ALGS).includes(st.alg)) {
    throw attestationRejected('ATTSTMT_ALG_NOT_ALLOWED', `Attestation algorithm ${st.alg} is not allowed`);
  }
  const attest = parseAttest(st.certInfo);
  const pub = parsePublic(st.pubArea, 'pubArea');
  const x5c = st.x5c.map((d) => parseCertificate(d, 'AIK_CERT_MALFORMED'));
  const aik = x5c[0]!;

  // 3. "x5c[0] = AIK cert; the rest are intermediates. Anchor to configured roots" (never to a root inside x5c:
  //    x5c entries are only intermediates here, anchors come from configuration).
  const path = validateChain(aik, x5c.slice(1), input.roots, input.nowMs, { code: 'AIK_CERT_UNTRUSTED' });

  // 4. AIK certificate profile (WebAuthn §8.3.1).
  const profile = (msg: string): never => {
    throw attestationRejected('AIK_CERT_PROFILE', msg);
  };
  if (aik.version !== 2) profile('The AIK certificate is not X.509 v3');
  if (!hasEmptySubject(aik)) profile('The AIK certificate subject is not empty');
  if (aik.basicConstraints?.ca) profile('The AIK certificate is a CA certificate');
  if (!aik.extKeyUsage?.includes(OID.aikCertificateEku)) profile('The AIK certificate lacks EKU 2.23.133.8.3');
  const san = readTpmSan(aik, 'AIK_CERT_MALFORMED');
  if (!san?.manufacturer || !san.model || !san.version) profile('The AIK certificate lacks the TPM manufacturer/model/version SAN');
  const vendorId = parseVendorId(san!.manufacturer);
  //    "Manufacturer must be in the TCG vendor registry; exclude id:FFFFF1D0 (FIDO test)"
  if (vendorId === null || vendorId === FIDO_TEST_VENDOR_ID || !TCG_VENDOR_IDS.has(vendorId)) {
    throw attestationRejected('AIK_VENDOR_NOT_ALLOWED', `TPM manufacturer ${san!.manufacturer} is not an allowed vendor`, {
      manufacturer: san!.manufacturer,
    });
  }
  //    "If present, 1.3.6.1.4.1.45724.1.1.4 (AAGUID) must match"
  const aaguidExt = aik.extensions.get(OID.fidoAaguid);
  if (aaguidExt && input.aaguid) {
    const inner = aaguidExt.value.length === 18 && aaguidExt.value[0] === 0x04 && aaguidExt.value[1] === 16 ? aaguidExt.value.subarray(2) : null;
    if (!inner || !inner.equals(input.aaguid)) throw attestationRejected('AAGUID_MISMATCH', 'AAGUID does not match the AIK certificate');
  }

  // 5. certInfo: magic, type, extraData, attested name.
  if (attest.magic !== TPM_GENERATED_VALUE) throw attestationRejected('ATTEST_NOT_TPM_GENERATED', 'certInfo was not generated by a TPM');
  if (attest.type !== TPM_ST.ATTEST_CERTIFY || !attest.certify) throw attestationRejected('ATTEST_TYPE_INVALID', 'certInfo is not a certify attestation');
  let expected: Buffer;
  if (input.attToBeSigned && !input.expectedExtraData) expected = createHash(alg.hash).update(input.attToBeSigned).digest();
  else if (input.expectedExtraData && !input.attToBeSigned) expected = input.expectedExtraData;
  else throw attestationMalformed(M, 'Exactly one of attToBeSigned and expectedExtraData is required');
  if (!constantTimeEqual(attest.extraData, expected)) throw attestationRejected('ATTEST_NONCE_MISMATCH', 'certInfo.extraData does not match');
  if (!constantTimeEqual(attest.certify.name, computeName(pub))) throw attestationRejected('ATTEST_NAME_MISMATCH', 'certInfo names another key than pubArea');

  // 6. "sig verifies over certInfo with the AIK public key and the hash for alg"
  if (!verifyStatementSignature(aik, alg, st.certInfo, st.sig)) throw attestationRejected('ATTEST_SIGNATURE_INVALID', 'sig does not verify with the AIK');

  // 7. "pubArea public key = credential key / CSR key"
  const keySpki = publicToSpki(pub.public);
  if (input.credentialPublicKey && !spkiEqual(keySpki, input.credentialPublicKey)) {
    throw attestationRejected('CREDENTIAL_KEY_MISMATCH', 'pubArea does not hold the credential public key');
  }

  // 8. "fixedTPM, fixedParent, sensitiveDataOrigin set; restricted clear; RSA ≥ 2048 or an approved curve"
  const attrs = pub.public.objectAttributes;
  const missing = describeAttributes((TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.sign) & ~attrs);
  if (missing.length > 0) throw attestationRejected('KEY_ATTRIBUTES_INVALID', `The attested key lacks ${missing.join(', ')}`, { missing });
  if (attrs & TPMA_OBJECT.restricted) throw attestationRejected('KEY_RESTRICTED', 'The attested key is restricted');
  const keyAlg = keyAlgorithmOf(pub.public);
  if (keyAlg === null || !(input.keyAlgorithms ?? DEFAULT_KEY_ALGORITHMS).includes(keyAlg)) {
    throw attestationRejected('KEY_ALG_NOT_ALLOWED', `Key algorithm ${keyAlg ?? 'unknown'} is not allowed`);
  }
  return {
    keySpki,
    keyPublic: pub.public,
    tpm: { manufacturer: san!.manufacturer!, model: san!.model!, version: san!.version! },
    vendor: TCG_VENDOR_IDS.get(vendorId)!,
    chainSha256: path.map((c) => c.sha256),
  };
}

/** A decoded WebAuthn registration response (attestationObject + clientDataJSON). */
export interface WebAuthnTpmRegistration {
  readonly statement: VerifiedTpmStatement;
  readonly clientData: { readonly type?: string; readonly challenge?: string; readonly origin?: string };
  readonly rpIdHash: Buffer;
}

/**
 * WebAuthn glue around `verifyTpmAttestationStatement`: decodes the attestationObject (fmt must be `tpm`),
 * computes attToBeSigned = authData ‖ SHA-256(clientDataJSON), and binds pubArea to the credential public key and
 * AAGUID of authData. Challenge/origin/rpId checks stay with the relying party (returned for it).
 */
export function verifyWebAuthnTpmRegistration(input: {
  readonly attestationObject: Buffer;
  readonly clientDataJSON: Buffer;
  readonly roots: readonly TrustAnchor[];
  readonly nowMs: number;
  readonly allowedAlgs?: readonly number[];
}): WebAuthnTpmRegistration {
  const obj = decodeCbor(input.attestationObject);
  if (!(obj instanceof Map)) throw attestationMalformed(M, 'attestationObject is not a map');
  if (obj.get('fmt') !== 'tpm') throw attestationMalformed(M, 'attestation format is not tpm');
  const authDataRaw = obj.get('authData');
  if (!Buffer.isBuffer(authDataRaw)) throw attestationMalformed(M, 'authData missing');
  const authData = parseAuthenticatorData(authDataRaw);
  if (authData.credentialPublicKey === undefined) throw attestationMalformed(M, 'authData has no attested credential');
  let clientData: WebAuthnTpmRegistration['clientData'];
  try {
    clientData = JSON.parse(input.clientDataJSON.toString('utf8')) as WebAuthnTpmRegistration['clientData'];
  } catch (e) {
    throw attestationMalformed('CLIENT_DATA_MALFORMED', 'clientDataJSON is not JSON', e);
  }
  const clientDataHash = createHash('sha256').update(input.clientDataJSON).digest();
  const statement = verifyTpmAttestationStatement({
    attStmt: obj.get('attStmt') ?? null,
    attToBeSigned: Buffer.concat([authDataRaw, clientDataHash]),
    credentialPublicKey: coseKeyToSpki(authData.credentialPublicKey),
    ...(authData.aaguid ? { aaguid: authData.aaguid } : {}),
    roots: input.roots,
    nowMs: input.nowMs,
    ...(input.allowedAlgs ? { allowedAlgs: input.allowedAlgs } : {}),
  });
  return { statement, clientData, rpIdHash: authData.rpIdHash };
}
