/** Seeds for the attestation fuzz suites: a generated PKI, CSR, WebAuthn-style attestation object, Certify. */
import { createHash, generateKeyPairSync, sign, webcrypto } from 'node:crypto';
import { parseTrustAnchors, type TrustAnchor } from '../../../src/attestation';
import { certificationRequestInfo, der } from '../../../src/agent/csr';
import { ecdsaRsToDer } from '../../../src/tpm';
import { ekuExtension, issue, rawExtension, sanDirectoryName, tpmName, type Issued } from './pki';
import { SOFT_AK_ATTRS, SOFT_KEY_ATTRS, softAttest, softEcKey, softRsaKey, softSign, type SoftKey } from './soft-tpm';

export const NOW = Date.parse('2026-11-26T12:00:00Z');

/** Minimal CBOR encoder for seeds (ints, text, bytes, arrays, maps). */
export function cbor(v: unknown): Buffer {
  const head = (major: number, n: number): Buffer =>
    n < 24 ? Buffer.from([(major << 5) | n]) : n < 256 ? Buffer.from([(major << 5) | 24, n]) : n < 65536 ? Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]) : Buffer.from([(major << 5) | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') return Buffer.concat([head(3, Buffer.byteLength(v)), Buffer.from(v)]);
  if (Buffer.isBuffer(v)) return Buffer.concat([head(2, v.length), v]);
  if (Array.isArray(v)) return Buffer.concat([head(4, v.length), ...v.map(cbor)]);
  if (v instanceof Map) return Buffer.concat([head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)])]);
  throw new Error('unsupported');
}

export interface Seeds {
  root: Issued;
  inter: Issued;
  ek: Issued;
  aik: Issued;
  anchors: TrustAnchor[];
  csr: Buffer;
  attObj: Buffer;
  authData: Buffer;
  toBeSigned: Buffer;
  key: SoftKey;
  ak: SoftKey;
  nonce: Buffer;
  attest: Buffer;
  signature: Buffer;
}

export async function makeSeeds(): Promise<Seeds> {
  const key = softEcKey(SOFT_KEY_ATTRS);
  const ak = softRsaKey(SOFT_AK_ATTRS);
  const nonce = Buffer.alloc(32, 7);
  const root = await issue({ subject: 'CN=Fuzz Root', ca: true, keyUsage: 0x60 });
  const inter = await issue({ subject: 'CN=Fuzz CA', issuer: root, ca: true, keyUsage: 0x60 });
  const san = rawExtension('2.5.29.17', true, sanDirectoryName(tpmName({ manufacturer: 'id:49465800', model: 'm', version: 'id:1' })));
  const ek = await issue({ subject: 'CN=unknown', issuer: inter, extensions: [san, ekuExtension('2.23.133.8.1')] });
  const aik = await issue({ subject: '', issuer: inter, extensions: [san, ekuExtension('2.23.133.8.3')] });
  const soft = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const info = certificationRequestInfo(soft.publicKey.export({ type: 'spki', format: 'der' }), 'fuzz');
  const csr = der(0x30, info, der(0x30, Buffer.from('06082a8648ce3d040302', 'hex')), der(0x03, Buffer.from([0]), sign('sha256', info, soft.privateKey)));
  const jwk = key.publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const cose = new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x, 'base64url')], [-3, Buffer.from(jwk.y, 'base64url')]]);
  const authData = Buffer.concat([Buffer.alloc(32, 1), Buffer.from([0x41]), Buffer.alloc(4), Buffer.alloc(16, 2), Buffer.from([0, 4]), Buffer.alloc(4, 3), cbor(cose)]);
  const toBeSigned = Buffer.concat([authData, Buffer.alloc(32, 9)]);
  const certInfo = softAttest(key, createHash('sha256').update(toBeSigned).digest());
  const p1363 = Buffer.from(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, aik.keys.privateKey, certInfo));
  const statement = new Map<string, unknown>([
    ['ver', '2.0'],
    ['alg', -7],
    ['x5c', [aik.der, inter.der]],
    ['sig', ecdsaRsToDer(p1363.subarray(0, 32), p1363.subarray(32))],
    ['certInfo', certInfo],
    ['pubArea', key.raw],
  ]);
  const attObj = cbor(new Map<string, unknown>([['fmt', 'tpm'], ['attStmt', statement], ['authData', authData]]));
  const attest = softAttest(key, nonce);
  return { root, inter, ek, aik, anchors: parseTrustAnchors(root.pem), csr, attObj, authData, toBeSigned, key, ak, nonce, attest, signature: softSign(ak, attest) };
}
