/**
 * OCSP responder core (RFC 6960), signed by a delegated OCSP-signing certificate. Pure apart from the status lookup
 * callback and the signer: the HTTP layer passes the request bytes, `now` and the current revocation generation.
 *
 * Speed: responses are assembled from pre-encoded DER pieces. Per certID the SingleResponse (status, thisUpdate,
 * nextUpdate) is cached and, for requests without a nonce, the whole signed response too. Both are dropped when the
 * caller's revocation `generation` changes, so a revocation is visible on the very next request; `unknown` answers
 * are never cached, so a freshly issued serial turns `good` at once.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { isAppError } from '../domain/errors';
import type { RevocationReason } from '../domain/types';
import { CRL_REASON_CODE } from './crl';
import {
  DerError,
  TAG,
  bitString,
  children,
  content,
  decodeOid,
  expectTag,
  explicit,
  generalizedTime,
  integerBytes,
  octetString,
  oid,
  raw,
  readTop,
  seq,
  tlv,
  type DerNode,
} from './der';
import type { Signer } from './signer';
import { OID, parseCertificate, subjectPublicKeyBits } from './x509';

/** What the caller's store says about one serial of our issuing CA. */
export type OcspCertStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAtMs: number; readonly reason: RevocationReason }
  | { readonly status: 'unknown' };

/** Status lookup by serial (lower-case hex of the INTEGER content, as `IssuedCertificate.serialHex`). */
export type OcspStatusLookup = (serialHex: string) => OcspCertStatus | Promise<OcspCertStatus>;

/** RFC 6960 §4.2.1 OCSPResponseStatus names. */
export type OcspResponseStatus = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater';

/** The outcome of one request: the DER to send (always with HTTP 200) plus facts for logs and metrics. */
export interface OcspResult {
  readonly der: Buffer;
  readonly responseStatus: OcspResponseStatus;
  /** One entry per certID answered (empty unless successful). */
  readonly answers: ReadonlyArray<{ readonly serialHex: string | null; readonly status: OcspCertStatus['status'] }>;
  readonly nonce: boolean;
  /** True when the complete signed response came from the cache. */
  readonly fromCache: boolean;
}

/** Options of `createOcspResponder`. */
export interface OcspResponderOptions {
  /** DER of the issuing CA whose certificates we answer for. */
  readonly issuerCertDer: Buffer;
  /** DER of the delegated OCSP signer certificate (EKU OCSPSigning, issued by the issuing CA). */
  readonly signerCertDer: Buffer;
  readonly signer: Signer;
  readonly lookup: OcspStatusLookup;
  /** nextUpdate − thisUpdate of each SingleResponse. */
  readonly responseValiditySeconds: number;
  /** How long a built answer is reused while the generation is unchanged. Must be below the validity. */
  readonly cacheSeconds: number;
  /** Cache size bound (oldest entries are evicted first). */
  readonly maxCacheEntries?: number;
  /** Requests above this size get `malformedRequest` (default 8 KiB). */
  readonly maxRequestBytes?: number;
  /** Requests with more certIDs get `malformedRequest` (default 16). */
  readonly maxCertIdsPerRequest?: number;
  /** Called with unexpected errors that became `internalError`/`tryLater` (the responder never throws). */
  readonly onError?: (err: unknown) => void;
}

/** Answers OCSP requests; see `createOcspResponder`. */
export interface OcspResponder {
  /** Answer one DER request. Never throws; garbage gets `malformedRequest`. */
  respond(requestDer: Buffer, ctx: { readonly nowMs: number; readonly generation: number }): Promise<OcspResult>;
  /** Drop every cached answer (e.g. after a restore). */
  clearCache(): void;
}

const statusDer = (code: number): Buffer => Buffer.from([0x30, 0x03, 0x0a, 0x01, code]);
/** `OCSPResponse { responseStatus malformedRequest(1) }`. */
export const OCSP_MALFORMED_REQUEST = statusDer(1);
/** `OCSPResponse { responseStatus internalError(2) }`. */
export const OCSP_INTERNAL_ERROR = statusDer(2);
/** `OCSPResponse { responseStatus tryLater(3) }`. */
export const OCSP_TRY_LATER = statusDer(3);

const SUCCESSFUL = Buffer.from([TAG.ENUMERATED, 0x01, 0x00]);

const HASHES: ReadonlyMap<string, string> = new Map([
  [OID.sha1, 'sha1'],
  [OID.sha256, 'sha256'],
  [OID.sha384, 'sha384'],
  [OID.sha512, 'sha512'],
]);

/** One certID from a request: its raw bytes (echoed verbatim) and what we derived from it. */
interface ParsedCertId {
  readonly raw: Buffer;
  readonly key: string;
  /** null when the certID is for another issuer, uses an unsupported hash, or has a non-positive serial. */
  readonly serialHex: string | null;
}

interface ParsedRequest {
  readonly certIds: ParsedCertId[];
  /** The nonce extension's extnValue content, to echo; null if none. */
  readonly nonce: Buffer | null;
}

interface CacheEntry {
  readonly generation: number;
  readonly builtAtMs: number;
  readonly single: Buffer;
  readonly status: OcspCertStatus['status'];
  full: Buffer | null;
}

const malformed = (why: string): never => {
  throw new DerError(why);
};

/**
 * Build an OCSP responder for one issuing CA.
 *
 * Guarantees: every successful response is a BasicOCSPResponse signed by `signer` whose responderID is the signer
 * certificate's key hash and which carries that certificate; each requested certID is echoed with `good`/`revoked`
 * as the lookup says, or `unknown` when its issuerNameHash/issuerKeyHash is not our issuing CA's (SHA-1, SHA-256,
 * SHA-384 or SHA-512 certIDs) or the lookup does not know the serial; a request nonce (1..32 octets) is echoed.
 */
export function createOcspResponder(opts: OcspResponderOptions): OcspResponder {
  const issuer = parseCertificate(opts.issuerCertDer);
  const signerCert = parseCertificate(opts.signerCertDer);
  if (!opts.signer.spki.equals(signerCert.spki)) {
    throw new Error('OCSP signer key does not match the OCSP signer certificate');
  }
  if (!signerCert.issuerName.equals(issuer.subjectName) || !new X509Certificate(opts.signerCertDer).verify(issuer.publicKey)) {
    throw new Error('OCSP signer certificate is not issued by the issuing CA (RFC 6960 §4.2.2.2 delegation)');
  }
  if (!(opts.cacheSeconds >= 0 && opts.cacheSeconds < opts.responseValiditySeconds)) {
    throw new Error('OCSP cacheSeconds must be below responseValiditySeconds');
  }
  const maxEntries = opts.maxCacheEntries ?? 100_000;
  const maxRequestBytes = opts.maxRequestBytes ?? 8 * 1024;
  const maxIds = opts.maxCertIdsPerRequest ?? 16;
  const validityMs = opts.responseValiditySeconds * 1000;
  const cacheMs = opts.cacheSeconds * 1000;

  // RFC 6960 §4.1.1: "issuerNameHash is the hash of the issuer's distinguished name ... calculated over the DER
  // encoding of the issuer's name field in the certificate being checked"; "issuerKeyHash is the hash of the
  // issuer's public key ... calculated over the value (excluding tag and length) of the subject public key field".
  const issuerKeyBits = subjectPublicKeyBits(issuer.spki);
  const expected = new Map<string, { name: Buffer; key: Buffer }>();
  for (const [algOid, h] of HASHES) {
    expected.set(algOid, {
      name: createHash(h).update(issuer.subjectName).digest(),
      key: createHash(h).update(issuerKeyBits).digest(),
    });
  }
  // ResponderID byKey [2] EXPLICIT KeyHash: "SHA-1 hash of the responder's public key" (the BIT STRING value).
  const responderId = explicit(2, octetString(createHash('sha1').update(subjectPublicKeyBits(signerCert.spki)).digest()));
  const sigAlg = opts.signer.algorithm.identifier;
  const certsField = explicit(0, seq(opts.signerCertDer));
  const basicOid = oid(OID.ocspBasic);
  const nonceOid = oid(OID.ocspNonce);

  const cache = new Map<string, CacheEntry>();

  function parseRequest(der: Buffer): ParsedRequest {
    const top = expectTag(readTop(der), TAG.SEQUENCE, 'OCSPRequest');
    const [tbsNode, sigNode, extra] = children(top, 3);
    if (extra !== undefined || (sigNode !== undefined && sigNode.tag !== 0xa0)) malformed('OCSPRequest fields');
    const fields = children(expectTag(tbsNode, TAG.SEQUENCE, 'TBSRequest'), 4);
    let i = 0;
    if (fields[i]?.tag === 0xa0) {
      const [v] = children(fields[i] as DerNode, 1);
      const vc = content(expectTag(v, TAG.INTEGER, 'version'));
      if (vc.length !== 1 || vc[0] !== 0) malformed('unsupported OCSP version');
      i++;
    }
    if (fields[i]?.tag === 0xa1) i++; // requestorName: not used for authorization
    const list = children(expectTag(fields[i++], TAG.SEQUENCE, 'requestList'), maxIds + 1);
    if (list.length === 0) malformed('empty requestList');
    if (list.length > maxIds) malformed('too many certIDs');
    let nonce: Buffer | null = null;
    if (fields[i]?.tag === 0xa2) {
      const [exts] = children(fields[i] as DerNode, 1);
      for (const ext of children(expectTag(exts, TAG.SEQUENCE, 'requestExtensions'), 32)) {
        const parts = children(expectTag(ext, TAG.SEQUENCE, 'Extension'), 3);
        const id = content(expectTag(parts[0], TAG.OID, 'extnID'));
        const value = content(expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue'));
        if (parts.length === 3) expectTag(parts[1], TAG.BOOLEAN, 'critical');
        if (id.equals(content(readTop(nonceOid)))) {
          // RFC 8954 §2.1: Nonce ::= OCTET STRING(SIZE(1..32)); longer nonces are refused rather than echoed.
          const inner = readTop(value);
          const len = inner.end - inner.contentStart;
          if (inner.tag !== TAG.OCTET_STRING || len < 1 || len > 32) malformed('nonce must be 1..32 octets');
          nonce = value;
        }
      }
      i++;
    }
    if (i !== fields.length) malformed('unexpected TBSRequest field');

    const certIds = list.map((reqNode): ParsedCertId => {
      const reqParts = children(expectTag(reqNode, TAG.SEQUENCE, 'Request'), 2);
      if (reqParts[1] !== undefined) expectTag(reqParts[1], 0xa0, 'singleRequestExtensions');
      const certId = expectTag(reqParts[0], TAG.SEQUENCE, 'CertID');
      const [alg, nameHash, keyHash, serialNode, more] = children(certId, 5);
      if (more !== undefined) malformed('CertID fields');
      const algParts = children(expectTag(alg, TAG.SEQUENCE, 'hashAlgorithm'), 2);
      const algOid = decodeOid(content(expectTag(algParts[0], TAG.OID, 'hash OID')));
      if (algParts[1] !== undefined && algParts[1].tag !== TAG.NULL) malformed('hash parameters');
      const nh = content(expectTag(nameHash, TAG.OCTET_STRING, 'issuerNameHash'));
      const kh = content(expectTag(keyHash, TAG.OCTET_STRING, 'issuerKeyHash'));
      const serial = integerBytes(serialNode as DerNode);
      const rawId = raw(certId);
      const exp = expected.get(algOid);
      const ours = exp !== undefined && exp.name.equals(nh) && exp.key.equals(kh);
      const positive = !((serial[0] as number) & 0x80) && !(serial.length === 1 && serial[0] === 0);
      return { raw: rawId, key: rawId.toString('latin1'), serialHex: ours && positive ? serial.toString('hex') : null };
    });
    return { certIds, nonce };
  }

  function encodeSingle(certIdRaw: Buffer, st: OcspCertStatus, thisUpdateMs: number): Buffer {
    let certStatus: Buffer;
    if (st.status === 'good') certStatus = Buffer.from([0x80, 0x00]);
    else if (st.status === 'unknown') certStatus = Buffer.from([0x82, 0x00]);
    else {
      const code = CRL_REASON_CODE[st.reason] ?? 0;
      // revoked [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
      certStatus = tlv(
        0xa1,
        generalizedTime(st.revokedAtMs),
        ...(code === 0 ? [] : [explicit(0, Buffer.from([TAG.ENUMERATED, 0x01, code]))]),
      );
    }
    return seq(certIdRaw, certStatus, generalizedTime(thisUpdateMs), explicit(0, generalizedTime(thisUpdateMs + validityMs)));
  }

  async function singleFor(
    id: ParsedCertId,
    nowMs: number,
    generation: number,
  ): Promise<{ entry: CacheEntry; cached: boolean }> {
    const hit = cache.get(id.key);
    if (hit && hit.generation === generation && nowMs - hit.builtAtMs < cacheMs && nowMs >= hit.builtAtMs) {
      return { entry: hit, cached: true };
    }
    const st: OcspCertStatus = id.serialHex === null ? { status: 'unknown' } : await opts.lookup(id.serialHex);
    const thisUpdate = Math.floor(nowMs / 1000) * 1000;
    const entry: CacheEntry = { generation, builtAtMs: thisUpdate, single: encodeSingle(id.raw, st, thisUpdate), status: st.status, full: null };
    if (st.status !== 'unknown') {
      if (hit) cache.delete(id.key);
      cache.set(id.key, entry);
      if (cache.size > maxEntries) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
    }
    return { entry, cached: false };
  }

  async function sign(singles: Buffer[], nonce: Buffer | null, producedAtMs: number): Promise<Buffer> {
    const tbs = seq(
      responderId,
      generalizedTime(producedAtMs),
      seq(...singles),
      ...(nonce ? [explicit(1, seq(seq(nonceOid, octetString(nonce))))] : []),
    );
    const basic = seq(tbs, sigAlg, bitString(await opts.signer.sign(tbs)), certsField);
    return seq(SUCCESSFUL, explicit(0, seq(basicOid, octetString(basic))));
  }

  return {
    clearCache: () => cache.clear(),
    async respond(requestDer, { nowMs, generation }) {
      const fail = (der: Buffer, responseStatus: OcspResponseStatus): OcspResult => ({
        der,
        responseStatus,
        answers: [],
        nonce: false,
        fromCache: false,
      });
      if (!Buffer.isBuffer(requestDer) || requestDer.length === 0 || requestDer.length > maxRequestBytes) {
        return fail(OCSP_MALFORMED_REQUEST, 'malformedRequest');
      }
      let req: ParsedRequest;
      try {
        req = parseRequest(requestDer);
      } catch {
        return fail(OCSP_MALFORMED_REQUEST, 'malformedRequest');
      }
      try {
        const results = await Promise.all(req.certIds.map((id) => singleFor(id, nowMs, generation)));
        const answers = req.certIds.map((id, k) => ({ serialHex: id.serialHex, status: results[k]!.entry.status }));
        const only = results.length === 1 ? results[0]! : null;
        if (!req.nonce && only && only.cached && only.entry.full) {
          return { der: only.entry.full, responseStatus: 'successful', answers, nonce: false, fromCache: true };
        }
        const producedAt = req.nonce || !only ? Math.floor(nowMs / 1000) * 1000 : only.entry.builtAtMs;
        const der = await sign(
          results.map((r) => r.entry.single),
          req.nonce,
          producedAt,
        );
        if (!req.nonce && only && only.entry.status !== 'unknown') only.entry.full = der;
        return { der, responseStatus: 'successful', answers, nonce: req.nonce !== null, fromCache: false };
      } catch (err) {
        opts.onError?.(err);
        if (isAppError(err) && err.kind === 'unavailable') return fail(OCSP_TRY_LATER, 'tryLater');
        return fail(OCSP_INTERNAL_ERROR, 'internalError');
      }
    },
  };
}

/**
 * Decode the `<base64>` path segment of `GET /v1/ocsp/<base64>` (RFC 6960 appendix A.1: "the base64 encoding of
 * the DER encoding of the OCSPRequest", then URL-encoded). Accepts percent-encoded and raw forms, the standard and
 * URL-safe alphabets, and a `+` turned into a space by a sloppy client. Returns null for anything else or beyond
 * `maxBytes` decoded; the route then answers `OCSP_MALFORMED_REQUEST`.
 */
export function decodeOcspGetPath(segment: string, maxBytes = 8 * 1024): Buffer | null {
  if (typeof segment !== 'string' || segment.length === 0 || segment.length > Math.ceil((maxBytes * 4) / 3) * 3 + 64) {
    return null;
  }
  let s = segment;
  if (s.includes('%')) {
    try {
      s = decodeURIComponent(s);
    } catch {
      return null;
    }
  }
  s = s.replace(/ /g, '+');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return null;
  const der = Buffer.from(s, 'base64');
  if (der.length === 0 || der.length > maxBytes) return null;
  return der;
}
