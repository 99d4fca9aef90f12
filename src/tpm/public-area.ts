import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { CURVE_INFO, HASH_INFO, TPMA_OBJECT, TPMA_OBJECT_RESERVED, TPM_ALG } from './constants';
import { guardTpm, tpmMalformed, tpmUnsupported } from './errors';
import { TpmReader, TpmWriter, tpm2b } from './marshal';

/** TPMT_SYM_DEF_OBJECT: the symmetric algorithm of a storage/EK key, or `{ algorithm: NULL }`. */
export interface SymDefObject {
  readonly algorithm: number;
  readonly keyBits?: number;
  readonly mode?: number;
}

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME: signing or encryption scheme, `{ scheme: NULL }` when unrestricted. */
export interface AsymScheme {
  readonly scheme: number;
  readonly hashAlg?: number;
  /** ECDAA only. */
  readonly count?: number;
}

/** TPMT_KDF_SCHEME of an ECC key. */
export interface KdfScheme {
  readonly scheme: number;
  readonly hashAlg?: number;
}

interface PublicBase {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  readonly symmetric: SymDefObject;
  readonly scheme: AsymScheme;
}

/** An RSA TPMT_PUBLIC. `exponent` is the wire value (0 means 65537). */
export interface RsaPublic extends PublicBase {
  readonly type: typeof TPM_ALG.RSA;
  readonly keyBits: number;
  readonly exponent: number;
  readonly modulus: Buffer;
}

/** An ECC TPMT_PUBLIC. */
export interface EccPublic extends PublicBase {
  readonly type: typeof TPM_ALG.ECC;
  readonly curveId: number;
  readonly kdf: KdfScheme;
  readonly x: Buffer;
  readonly y: Buffer;
}

/** A decoded TPMT_PUBLIC of an asymmetric key. */
export type TpmtPublic = RsaPublic | EccPublic;

/** A parsed TPMT_PUBLIC together with its exact wire bytes (names are hashed over these, never a re-encoding). */
export interface ParsedPublic {
  readonly public: TpmtPublic;
  readonly raw: Buffer;
}

const MAX_DIGEST = 64;
const MAX_RSA_KEY_BYTES = 512;
const MAX_ECC_KEY_BYTES = 66;
/** sizeof(TPMT_PUBLIC) with the maximum RSA key, the TPM2B_PUBLIC limit. */
export const MAX_PUBLIC_SIZE = 2 + 2 + 4 + 2 + MAX_DIGEST + 6 + 4 + 2 + 4 + 2 + MAX_RSA_KEY_BYTES;

const SYM_ALGS = new Set<number>([TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA]);
const RSA_SCHEMES = new Set<number>([TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP, TPM_ALG.RSAES]);
const ECC_SCHEMES = new Set<number>([
  TPM_ALG.ECDSA,
  TPM_ALG.ECDAA,
  TPM_ALG.SM2,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.ECDH,
  TPM_ALG.ECMQV,
]);
const KDF_SCHEMES = new Set<number>([TPM_ALG.KDF1_SP800_56A, TPM_ALG.KDF2, TPM_ALG.KDF1_SP800_108, TPM_ALG.MGF1]);
const RSA_KEY_BITS = new Set([1024, 2048, 3072, 4096]);

function readHashAlg(r: TpmReader, field: string, allowNull = false): number {
  const alg = r.u16(field);
  if (allowNull && alg === TPM_ALG.NULL) return alg;
  if (HASH_INFO[alg] === undefined) throw tpmUnsupported(r.structure, 'hash algorithm', alg);
  return alg;
}

function readSymmetric(r: TpmReader): SymDefObject {
  const algorithm = r.u16('symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return { algorithm };
  if (!SYM_ALGS.has(algorithm)) throw tpmUnsupported(r.structure, 'symmetric algorithm', algorithm);
  const keyBits = r.u16('symmetric.keyBits');
  const mode = r.u16('symmetric.mode');
  if (![128, 192, 256].includes(keyBits)) throw tpmMalformed(r.structure, `symmetric key size ${keyBits}`);
  if (mode !== TPM_ALG.CFB) throw tpmUnsupported(r.structure, 'symmetric mode', mode);
  return { algorithm, keyBits, mode };
}

function readRsaScheme(r: TpmReader): AsymScheme {
  const scheme = r.u16('scheme.scheme');
  if (scheme === TPM_ALG.NULL) return { scheme };
  if (!RSA_SCHEMES.has(scheme)) throw tpmUnsupported(r.structure, 'RSA scheme', scheme);
  // TPMS_ENC_SCHEME_RSAES is an empty structure; every other RSA scheme carries a hash.
  if (scheme === TPM_ALG.RSAES) return { scheme };
  return { scheme, hashAlg: readHashAlg(r, 'scheme.hashAlg') };
}

function readEccScheme(r: TpmReader): AsymScheme {
  const scheme = r.u16('scheme.scheme');
  if (scheme === TPM_ALG.NULL) return { scheme };
  if (!ECC_SCHEMES.has(scheme)) throw tpmUnsupported(r.structure, 'ECC scheme', scheme);
  const hashAlg = readHashAlg(r, 'scheme.hashAlg');
  if (scheme === TPM_ALG.ECDAA) return { scheme, hashAlg, count: r.u16('scheme.count') };
  return { scheme, hashAlg };
}

function readKdf(r: TpmReader): KdfScheme {
  const scheme = r.u16('kdf.scheme');
  if (scheme === TPM_ALG.NULL) return { scheme };
  if (!KDF_SCHEMES.has(scheme)) throw tpmUnsupported(r.structure, 'KDF scheme', scheme);
  return { scheme, hashAlg: readHashAlg(r, 'kdf.hashAlg') };
}

/**
 * Decodes a TPMT_PUBLIC (Part 2 §12.2.4) of an RSA or ECC key.
 *
 * Guarantees: the whole buffer is consumed (no trailing bytes), every size field respects the spec maximum, reserved
 * attribute bits are clear, the unique field has the size the parameters announce (`keyBits/8` for RSA, at most
 * the coordinate size for ECC), and algorithms are known. Otherwise throws `TPM_STRUCTURE_MALFORMED` or
 * `TPM_ALG_UNSUPPORTED` (AppError kind `bad_request`). It does not judge whether the key is acceptable: that is
 * policy (`checkAkPublic`, `verifyCertify`).
 */
export function parsePublic(buf: Buffer, structure = 'TPMT_PUBLIC'): ParsedPublic {
  const r = new TpmReader(buf, structure);
  const type = r.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) throw tpmUnsupported(structure, 'public key type', type);
  const nameAlg = readHashAlg(r, 'nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  if ((objectAttributes & TPMA_OBJECT_RESERVED) !== 0) {
    throw tpmMalformed(structure, 'reserved objectAttributes bits are set');
  }
  const authPolicy = r.tpm2b('authPolicy', MAX_DIGEST);
  if (authPolicy.length !== 0 && authPolicy.length !== HASH_INFO[nameAlg]!.size) {
    throw tpmMalformed(structure, 'authPolicy size does not match nameAlg');
  }
  const symmetric = readSymmetric(r);
  let pub: TpmtPublic;
  if (type === TPM_ALG.RSA) {
    const scheme = readRsaScheme(r);
    const keyBits = r.u16('keyBits');
    if (!RSA_KEY_BITS.has(keyBits)) throw tpmMalformed(structure, `RSA keyBits ${keyBits}`);
    const exponent = r.u32('exponent');
    if (exponent !== 0 && (exponent < 3 || exponent % 2 === 0)) throw tpmMalformed(structure, 'RSA exponent');
    const modulus = r.tpm2b('unique.rsa', MAX_RSA_KEY_BYTES);
    if (modulus.length !== 0 && modulus.length !== keyBits / 8) {
      throw tpmMalformed(structure, `RSA modulus is ${modulus.length} bytes, keyBits says ${keyBits / 8}`);
    }
    pub = { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, keyBits, exponent, modulus };
  } else {
    const scheme = readEccScheme(r);
    const curveId = r.u16('curveID');
    const curve = CURVE_INFO[curveId];
    if (curve === undefined) throw tpmUnsupported(structure, 'ECC curve', curveId);
    const kdf = readKdf(r);
    const x = r.tpm2b('unique.ecc.x', MAX_ECC_KEY_BYTES);
    const y = r.tpm2b('unique.ecc.y', MAX_ECC_KEY_BYTES);
    if (x.length > curve.size || y.length > curve.size) throw tpmMalformed(structure, 'ECC point larger than the curve');
    pub = { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, curveId, kdf, x, y };
  }
  r.end();
  return { public: pub, raw: Buffer.from(buf) };
}

/** Decodes a TPM2B_PUBLIC (u16 size + TPMT_PUBLIC), e.g. the output of `tpm2_createek -u` / `tpm2_readpublic -o`. */
export function parsePublicTpm2b(buf: Buffer): ParsedPublic {
  const r = new TpmReader(buf, 'TPM2B_PUBLIC');
  const inner = r.tpm2b('publicArea', MAX_PUBLIC_SIZE);
  r.end();
  if (inner.length === 0) throw tpmMalformed('TPM2B_PUBLIC', 'empty publicArea');
  return parsePublic(inner, 'TPM2B_PUBLIC.publicArea');
}

/** Encodes a TPMT_PUBLIC; `parsePublic(marshalPublic(p)).public` deep-equals `p`. Used for key templates. */
export function marshalPublic(p: TpmtPublic): Buffer {
  const w = new TpmWriter().u16(p.type).u16(p.nameAlg).u32(p.objectAttributes).tpm2b(p.authPolicy);
  w.u16(p.symmetric.algorithm);
  if (p.symmetric.algorithm !== TPM_ALG.NULL) w.u16(p.symmetric.keyBits ?? 0).u16(p.symmetric.mode ?? TPM_ALG.CFB);
  w.u16(p.scheme.scheme);
  if (p.scheme.hashAlg !== undefined) w.u16(p.scheme.hashAlg);
  if (p.scheme.count !== undefined) w.u16(p.scheme.count);
  if (p.type === TPM_ALG.RSA) {
    w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
  } else {
    w.u16(p.curveId).u16(p.kdf.scheme);
    if (p.kdf.hashAlg !== undefined) w.u16(p.kdf.hashAlg);
    w.tpm2b(p.x).tpm2b(p.y);
  }
  return w.toBuffer();
}

/** TPM2B_PUBLIC encoding of a TPMT_PUBLIC (raw bytes). */
export function publicToTpm2b(raw: Buffer): Buffer {
  return tpm2b(raw);
}

/**
 * The TPM name of an object: nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC bytes) (Part 1 §16). Computed over the exact
 * bytes received, so a verifier compares what the TPM hashed.
 */
export function computeName(parsed: ParsedPublic): Buffer {
  const info = HASH_INFO[parsed.public.nameAlg]!;
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(parsed.public.nameAlg);
  return Buffer.concat([alg, createHash(info.name).update(parsed.raw).digest()]);
}

function leftPad(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

/**
 * node:crypto public key of a TPMT_PUBLIC. Throws `TPM_STRUCTURE_MALFORMED` if the key material is absent or
 * invalid (a template's empty unique field, an ECC point not on the curve).
 */
export function publicKeyOf(p: TpmtPublic): KeyObject {
  if (p.type === TPM_ALG.RSA) {
    if (p.modulus.length === 0) throw tpmMalformed('TPMT_PUBLIC', 'empty RSA modulus');
    const eb = Buffer.alloc(4);
    eb.writeUInt32BE(p.exponent === 0 ? 65537 : p.exponent);
    const first = eb.findIndex((v) => v !== 0);
    return guardTpm('TPMT_PUBLIC', 'invalid RSA key', () =>
      createPublicKey({
        key: { kty: 'RSA', n: p.modulus.toString('base64url'), e: eb.subarray(first).toString('base64url') },
        format: 'jwk',
      }),
    );
  }
  const curve = CURVE_INFO[p.curveId];
  if (curve === undefined) throw tpmUnsupported('TPMT_PUBLIC', 'ECC curve', p.curveId);
  if (p.x.length === 0 || p.y.length === 0) throw tpmMalformed('TPMT_PUBLIC', 'empty ECC point');
  return guardTpm('TPMT_PUBLIC', 'ECC point is not on the curve', () =>
    createPublicKey({
      key: {
        kty: 'EC',
        crv: curve.jwk,
        x: leftPad(p.x, curve.size).toString('base64url'),
        y: leftPad(p.y, curve.size).toString('base64url'),
      },
      format: 'jwk',
    }),
  );
}

function derTlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function derUnsignedInteger(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return derTlv(0x02, (v[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

/** AlgorithmIdentifier rsaEncryption with NULL parameters. */
const RSA_ALG_ID = Buffer.from('300d06092a864886f70d0101010500', 'hex');
/** AlgorithmIdentifier id-ecPublicKey with the named-curve OID, by TPM curve id. */
const EC_ALG_ID: Readonly<Record<number, Buffer>> = {
  0x0003: Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex'),
  0x0004: Buffer.from('301006072a8648ce3d020106052b81040022', 'hex'),
  0x0005: Buffer.from('301006072a8648ce3d020106052b81040023', 'hex'),
};

/** DER SubjectPublicKeyInfo of an RSA key (canonical: minimal INTEGERs, NULL parameters). */
export function rsaSpki(modulus: Buffer, exponent: number): Buffer {
  const e = Buffer.alloc(4);
  e.writeUInt32BE(exponent === 0 ? 65537 : exponent);
  const rsaKey = derTlv(0x30, Buffer.concat([derUnsignedInteger(modulus), derUnsignedInteger(e)]));
  return derTlv(0x30, Buffer.concat([RSA_ALG_ID, derTlv(0x03, Buffer.concat([Buffer.from([0]), rsaKey]))]));
}

/** DER SubjectPublicKeyInfo of a NIST-curve key (canonical: named curve, uncompressed point). */
export function ecSpki(curveId: number, x: Buffer, y: Buffer): Buffer {
  const curve = CURVE_INFO[curveId];
  const alg = EC_ALG_ID[curveId];
  if (curve === undefined || alg === undefined) throw tpmUnsupported('TPMT_PUBLIC', 'ECC curve', curveId);
  if (x.length > curve.size || y.length > curve.size) throw tpmMalformed('TPMT_PUBLIC', 'ECC point larger than the curve');
  const point = Buffer.concat([Buffer.from([0, 0x04]), leftPad(x, curve.size), leftPad(y, curve.size)]);
  return derTlv(0x30, Buffer.concat([alg, derTlv(0x03, point)]));
}

/**
 * SubjectPublicKeyInfo DER of a TPMT_PUBLIC, in exactly the canonical form OpenSSL exports; the form CSRs,
 * certificates and the inventory's EK hash use. Built byte by byte (an OpenSSL export costs ~0.3 ms); it does not
 * check that an ECC point is on the curve; `publicKeyOf` does, and every verifier imports the key it relies on.
 */
export function publicToSpki(p: TpmtPublic): Buffer {
  if (p.type === TPM_ALG.RSA) {
    if (p.modulus.length === 0) throw tpmMalformed('TPMT_PUBLIC', 'empty RSA modulus');
    return rsaSpki(p.modulus, p.exponent);
  }
  if (p.x.length === 0 || p.y.length === 0) throw tpmMalformed('TPMT_PUBLIC', 'empty ECC point');
  return ecSpki(p.curveId, p.x, p.y);
}

/** Names of the TPMA_OBJECT bits set in `attrs`, for messages and audit details. */
export function describeAttributes(attrs: number): string[] {
  return Object.entries(TPMA_OBJECT)
    .filter(([, bit]) => (attrs & bit) !== 0)
    .map(([name]) => name);
}

/** True when every bit of `bits` is set in `attrs`. */
export function hasAttributes(attrs: number, bits: number): boolean {
  return (attrs & bits) === bits;
}
