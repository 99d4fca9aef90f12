import * as asn1js from 'asn1js';
import { createHash, randomBytes, verify as cryptoVerify } from 'node:crypto';
import * as pkijs from 'pkijs';
import {
  OCSP_MALFORMED_REQUEST,
  createOcspResponder,
  decodeOcspGetPath,
  type CaHierarchy,
  type CertificateAuthority,
  type OcspCertStatus,
  type OcspResponder,
} from '../../../src/ca';
import { children, content, readTop, type DerNode } from '../../../src/ca/der';
import { unavailable } from '../../../src/domain/errors';
import { DEVICE_ID, NOW, craftCsr, ecKey, testCa, bs } from './fixtures';

const NONCE_OID = '1.3.6.1.5.5.7.48.1.2';

/** An OCSP request built by pkijs (an independent encoder) for `certDer` issued by `issuerDer`. */
async function ocspRequest(
  certs: ReadonlyArray<{ cert: Buffer; issuer: Buffer }>,
  opts: { hash?: 'SHA-1' | 'SHA-256'; nonce?: Buffer } = {},
): Promise<Buffer> {
  const req = new pkijs.OCSPRequest();
  for (const { cert, issuer } of certs) {
    const one = new pkijs.OCSPRequest();
    await one.createForCertificate(pkijs.Certificate.fromBER(bs(cert)), {
      hashAlgorithm: opts.hash ?? 'SHA-1',
      issuerCertificate: pkijs.Certificate.fromBER(bs(issuer)),
    });
    req.tbsRequest.requestList.push(...one.tbsRequest.requestList);
  }
  if (opts.nonce) {
    req.tbsRequest.requestExtensions = [
      new pkijs.Extension({ extnID: NONCE_OID, extnValue: new asn1js.OctetString({ valueHex: opts.nonce }).toBER() }),
    ];
  }
  return Buffer.from(req.toSchema(true).toBER());
}

interface Decoded {
  status: number;
  basic?: pkijs.BasicOCSPResponse;
  answers: Array<{ kind: 'good' | 'revoked' | 'unknown'; serial: string; thisUpdate: number; nextUpdate?: number; revokedAt?: number; reason?: number }>;
  nonce?: Buffer;
  producedAt?: number;
}

/** Decode a response with pkijs (independent parser). */
function decode(der: Buffer): Decoded {
  const resp = pkijs.OCSPResponse.fromBER(bs(der));
  const status = resp.responseStatus.valueBlock.valueDec;
  if (!resp.responseBytes) return { status, answers: [] };
  expect(resp.responseBytes.responseType).toBe('1.3.6.1.5.5.7.48.1.1');
  const basic = pkijs.BasicOCSPResponse.fromBER(bs(resp.responseBytes.response.valueBlock.valueHexView));
  const answers = basic.tbsResponseData.responses.map((r) => {
    const tag = (r.certStatus as asn1js.BaseBlock).idBlock.tagNumber;
    const kind = (['good', 'revoked', 'unknown'] as const)[tag]!;
    const out: Decoded['answers'][number] = {
      kind,
      serial: Buffer.from(r.certID.serialNumber.valueBlock.valueHexView).toString('hex'),
      thisUpdate: r.thisUpdate.getTime(),
      ...(r.nextUpdate ? { nextUpdate: r.nextUpdate.getTime() } : {}),
    };
    if (kind === 'revoked') {
      const inner = (r.certStatus as asn1js.Constructed).valueBlock.value;
      out.revokedAt = (inner[0] as asn1js.GeneralizedTime).toDate().getTime();
      if (inner[1]) out.reason = ((inner[1] as asn1js.Constructed).valueBlock.value[0] as asn1js.Enumerated).valueBlock.valueDec;
    }
    return out;
  });
  const nonceExt = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === NONCE_OID);
  return {
    status,
    basic,
    answers,
    producedAt: basic.tbsResponseData.producedAt.getTime(),
    ...(nonceExt ? { nonce: Buffer.from(nonceExt.extnValue.valueBlock.valueHexView) } : {}),
  };
}

/** Check the BasicOCSPResponse signature with node:crypto over the exact tbsResponseData bytes. */
function signatureValid(der: Buffer, h: CaHierarchy): boolean {
  const [, bytesField] = children(readTop(der)) as [DerNode, DerNode];
  const [, octets] = children(children(bytesField)[0]!) as [DerNode, DerNode];
  const basic = readTop(content(octets));
  const [tbs, , sig] = children(basic) as [DerNode, DerNode, DerNode];
  return cryptoVerify('sha256', tbs.buf.subarray(tbs.start, tbs.end), h.ocsp.cert.publicKey, content(sig).subarray(1));
}

describe('OCSP responder core', () => {
  let ca: CertificateAuthority;
  let h: CaHierarchy;
  let good: Buffer;
  let revoked: Buffer;
  let unknown: Buffer;
  let serials: { good: string; revoked: string; unknown: string };
  let statuses: Map<string, OcspCertStatus>;
  let calls: string[];
  const lookup = (s: string): OcspCertStatus => {
    calls.push(s);
    return statuses.get(s) ?? { status: 'unknown' };
  };
  const newResponder = (over: Partial<Parameters<typeof createOcspResponder>[0]> = {}): OcspResponder =>
    createOcspResponder({
      issuerCertDer: h.issuing.der,
      signerCertDer: h.ocsp.der,
      signer: h.ocsp.signer,
      lookup,
      responseValiditySeconds: 3600,
      cacheSeconds: 300,
      ...over,
    });
  const issue = async (): Promise<{ der: Buffer; serialHex: string }> =>
    ca.issue({ csr: craftCsr({ signingKey: ecKey('P-256') }), deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });

  beforeAll(async () => {
    ({ ca, h } = await testCa());
    const g = await issue();
    const r = await issue();
    const u = await issue();
    good = g.der;
    revoked = r.der;
    unknown = u.der;
    serials = { good: g.serialHex, revoked: r.serialHex, unknown: u.serialHex };
  });
  beforeEach(() => {
    calls = [];
    statuses = new Map<string, OcspCertStatus>([
      [serials.good, { status: 'good' }],
      [serials.revoked, { status: 'revoked', revokedAtMs: NOW - 3_600_000, reason: 'keyCompromise' }],
    ]);
  });

  it.each(['SHA-1', 'SHA-256'] as const)('answers good, revoked and unknown for %s certIDs, signed by the delegated signer', async (hash) => {
    const responder = newResponder();
    for (const [der, kind] of [
      [good, 'good'],
      [revoked, 'revoked'],
      [unknown, 'unknown'],
    ] as const) {
      const req = await ocspRequest([{ cert: der, issuer: h.issuing.der }], { hash });
      const res = await responder.respond(req, { nowMs: NOW, generation: 1 });
      expect(res.responseStatus).toBe('successful');
      const d = decode(res.der);
      expect(d.status).toBe(0);
      expect(d.answers).toHaveLength(1);
      expect(d.answers[0]!.kind).toBe(kind);
      expect(d.answers[0]!.thisUpdate).toBe(NOW);
      expect(d.answers[0]!.nextUpdate).toBe(NOW + 3600_000);
      expect(signatureValid(res.der, h)).toBe(true);
      if (kind === 'revoked') {
        expect(d.answers[0]!.revokedAt).toBe(NOW - 3_600_000);
        expect(d.answers[0]!.reason).toBe(1);
      }
      // The signer certificate travels with the response, and the responder ID is its key hash.
      expect(Buffer.from(d.basic!.certs![0]!.toSchema().toBER()).equals(h.ocsp.der)).toBe(true);
      const keyBits = Buffer.from(pkijs.Certificate.fromBER(bs(h.ocsp.der)).subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
      const rid = d.basic!.tbsResponseData.responderID as asn1js.OctetString;
      expect(Buffer.from(rid.valueBlock.valueHexView).equals(createHash('sha1').update(keyBits).digest())).toBe(true);
    }
  });

  it('echoes the nonce byte for byte and omits it when the request has none', async () => {
    const responder = newResponder();
    const nonce = randomBytes(32);
    const withNonce = decode((await responder.respond(await ocspRequest([{ cert: good, issuer: h.issuing.der }], { nonce }), { nowMs: NOW, generation: 1 })).der);
    expect(withNonce.nonce && Buffer.from(withNonce.nonce).equals(Buffer.from(new asn1js.OctetString({ valueHex: nonce }).toBER()))).toBe(true);
    const without = decode((await responder.respond(await ocspRequest([{ cert: good, issuer: h.issuing.der }]), { nowMs: NOW, generation: 1 })).der);
    expect(without.nonce).toBeUndefined();
  });

  it('answers every certID of a multi-certificate request in order', async () => {
    const req = await ocspRequest([
      { cert: revoked, issuer: h.issuing.der },
      { cert: good, issuer: h.issuing.der },
      { cert: unknown, issuer: h.issuing.der },
    ]);
    const res = await newResponder().respond(req, { nowMs: NOW, generation: 1 });
    expect(decode(res.der).answers.map((a) => a.kind)).toEqual(['revoked', 'good', 'unknown']);
    expect(res.answers.map((a) => a.serialHex)).toEqual([serials.revoked, serials.good, serials.unknown]);
  });

  it('answers unknown for a certID of another issuer without consulting the store (issuer hash mismatch)', async () => {
    const other = await testCa();
    const foreign = await other.ca.issue({ csr: craftCsr({ signingKey: ecKey('P-256') }), deviceId: DEVICE_ID, nowMs: NOW, issuedVia: 'enroll' });
    // The store would say "good" for this serial if asked.
    statuses.set(foreign.serialHex, { status: 'good' });
    for (const hash of ['SHA-1', 'SHA-256'] as const) {
      const req = await ocspRequest([{ cert: foreign.der, issuer: other.h.issuing.der }], { hash });
      const res = await newResponder().respond(req, { nowMs: NOW, generation: 1 });
      expect(decode(res.der).answers[0]!.kind).toBe('unknown');
    }
    // Same subject name, different key: the issuerKeyHash alone must also be checked.
    const req = await ocspRequest([{ cert: good, issuer: other.h.issuing.der }]);
    const res = await newResponder().respond(req, { nowMs: NOW, generation: 1 });
    expect(decode(res.der).answers[0]!.kind).toBe('unknown');
    expect(calls).toEqual([]);
  });

  it('answers unknown for a certID with an unsupported hash algorithm (MD5)', async () => {
    const req = Buffer.from(await ocspRequest([{ cert: good, issuer: h.issuing.der }]));
    // Swap the SHA-1 OID (1.3.14.3.2.26) for MD5 (1.2.840.113549.2.5) in place; both are short OIDs.
    const sha1 = Buffer.from('06052b0e03021a', 'hex');
    const at = req.indexOf(sha1);
    expect(at).toBeGreaterThan(0);
    const md5 = Buffer.from('06082a864886f70d0205', 'hex');
    const swapped = rewrap(Buffer.concat([req.subarray(0, at), md5, req.subarray(at + sha1.length)]), md5.length - sha1.length);
    const res = await newResponder().respond(swapped, { nowMs: NOW, generation: 1 });
    expect(res.responseStatus).toBe('successful');
    expect(decode(res.der).answers[0]!.kind).toBe('unknown');
  });

  describe('caching', () => {
    it('serves an identical pre-signed answer without asking the store again while the generation is unchanged', async () => {
      const responder = newResponder();
      const req = await ocspRequest([{ cert: good, issuer: h.issuing.der }]);
      const a = await responder.respond(req, { nowMs: NOW, generation: 5 });
      const b = await responder.respond(req, { nowMs: NOW + 60_000, generation: 5 });
      expect(b.fromCache).toBe(true);
      expect(b.der.equals(a.der)).toBe(true);
      expect(calls).toEqual([serials.good]);
    });

    it('does not serve a cached good answer after a revocation (generation bump invalidates it)', async () => {
      const responder = newResponder();
      const req = await ocspRequest([{ cert: good, issuer: h.issuing.der }]);
      expect(decode((await responder.respond(req, { nowMs: NOW, generation: 5 })).der).answers[0]!.kind).toBe('good');
      statuses.set(serials.good, { status: 'revoked', revokedAtMs: NOW + 1000, reason: 'cessationOfOperation' });
      const after = await responder.respond(req, { nowMs: NOW + 2000, generation: 6 });
      expect(after.fromCache).toBe(false);
      const d = decode(after.der);
      expect(d.answers[0]!.kind).toBe('revoked');
      expect(d.answers[0]!.reason).toBe(5);
    });

    it('rebuilds an answer older than cacheSeconds', async () => {
      const responder = newResponder({ cacheSeconds: 10 });
      const req = await ocspRequest([{ cert: good, issuer: h.issuing.der }]);
      await responder.respond(req, { nowMs: NOW, generation: 1 });
      const later = await responder.respond(req, { nowMs: NOW + 11_000, generation: 1 });
      expect(later.fromCache).toBe(false);
      expect(decode(later.der).answers[0]!.thisUpdate).toBe(NOW + 11_000);
      expect(calls).toHaveLength(2);
    });

    it('never caches unknown, so a freshly issued serial becomes good at once', async () => {
      const responder = newResponder();
      const req = await ocspRequest([{ cert: unknown, issuer: h.issuing.der }]);
      expect(decode((await responder.respond(req, { nowMs: NOW, generation: 1 })).der).answers[0]!.kind).toBe('unknown');
      statuses.set(serials.unknown, { status: 'good' });
      expect(decode((await responder.respond(req, { nowMs: NOW + 1000, generation: 1 })).der).answers[0]!.kind).toBe('good');
    });

    it('signs every nonce response afresh but reuses the cached status piece', async () => {
      const responder = newResponder();
      const r1 = await responder.respond(await ocspRequest([{ cert: revoked, issuer: h.issuing.der }], { nonce: randomBytes(16) }), { nowMs: NOW, generation: 1 });
      const n2 = randomBytes(16);
      const r2 = await responder.respond(await ocspRequest([{ cert: revoked, issuer: h.issuing.der }], { nonce: n2 }), { nowMs: NOW + 5000, generation: 1 });
      expect(r2.fromCache).toBe(false);
      expect(r2.der.equals(r1.der)).toBe(false);
      expect(decode(r2.der).nonce!.subarray(2).equals(n2)).toBe(true);
      expect(decode(r2.der).producedAt).toBe(NOW + 5000);
      expect(signatureValid(r2.der, h)).toBe(true);
      expect(calls).toEqual([serials.revoked]);
    });

    it('bounds the cache (oldest entries evicted)', async () => {
      const responder = newResponder({ maxCacheEntries: 1 });
      const reqGood = await ocspRequest([{ cert: good, issuer: h.issuing.der }]);
      const reqRevoked = await ocspRequest([{ cert: revoked, issuer: h.issuing.der }]);
      await responder.respond(reqGood, { nowMs: NOW, generation: 1 });
      await responder.respond(reqRevoked, { nowMs: NOW, generation: 1 });
      await responder.respond(reqGood, { nowMs: NOW, generation: 1 });
      expect(calls).toEqual([serials.good, serials.revoked, serials.good]);
    });
  });

  describe('malformed and hostile requests', () => {
    it('answers malformedRequest for garbage, empty, truncated and over-long requests and never throws', async () => {
      const responder = newResponder();
      const valid = await ocspRequest([{ cert: good, issuer: h.issuing.der }], { nonce: randomBytes(16) });
      const cases: Buffer[] = [Buffer.alloc(0), Buffer.from('GET / HTTP/1.1'), randomBytes(64), Buffer.concat([valid, Buffer.from([0])]), Buffer.alloc(9000, 0x30)];
      for (let len = 1; len < valid.length; len++) cases.push(valid.subarray(0, len));
      for (const c of cases) {
        const res = await responder.respond(c, { nowMs: NOW, generation: 1 });
        expect(res.responseStatus).toBe('malformedRequest');
        expect(res.der.equals(OCSP_MALFORMED_REQUEST)).toBe(true);
        expect(decode(res.der).status).toBe(1);
      }
      expect(calls).toEqual([]);
    });

    it('answers malformedRequest for a nonce longer than 32 octets (RFC 8954) instead of echoing it', async () => {
      const res = await newResponder().respond(await ocspRequest([{ cert: good, issuer: h.issuing.der }], { nonce: randomBytes(33) }), { nowMs: NOW, generation: 1 });
      expect(res.responseStatus).toBe('malformedRequest');
    });

    it('answers malformedRequest for more certIDs than allowed (amplification)', async () => {
      const many = Array.from({ length: 17 }, () => ({ cert: good, issuer: h.issuing.der }));
      const res = await newResponder().respond(await ocspRequest(many), { nowMs: NOW, generation: 1 });
      expect(res.responseStatus).toBe('malformedRequest');
      expect(calls).toEqual([]);
    });

    it('survives a bit-flip fuzz of a valid request: every answer is a well-formed OCSPResponse', async () => {
      const responder = newResponder();
      const valid = await ocspRequest([{ cert: good, issuer: h.issuing.der }], { nonce: randomBytes(16) });
      for (let i = 0; i < 400; i++) {
        const m = Buffer.from(valid);
        const pos = (i * 104729) % m.length;
        m[pos] = (m[pos] as number) ^ (1 << (i % 8));
        const res = await responder.respond(m, { nowMs: NOW, generation: 1 });
        expect(['successful', 'malformedRequest']).toContain(res.responseStatus);
        expect([0, 1]).toContain(decode(res.der).status);
      }
    });

    it('answers tryLater when the store is unavailable and internalError on other failures, reporting both', async () => {
      const errors: unknown[] = [];
      const req = await ocspRequest([{ cert: good, issuer: h.issuing.der }]);
      const down = newResponder({ lookup: () => Promise.reject(unavailable('STORE_UNAVAILABLE', 'down')), onError: (e) => errors.push(e) });
      const r1 = await down.respond(req, { nowMs: NOW, generation: 1 });
      expect(r1.responseStatus).toBe('tryLater');
      expect(decode(r1.der).status).toBe(3);
      const broken = newResponder({ lookup: () => { throw new Error('boom'); }, onError: (e) => errors.push(e) });
      const r2 = await broken.respond(req, { nowMs: NOW, generation: 1 });
      expect(r2.responseStatus).toBe('internalError');
      expect(decode(r2.der).status).toBe(2);
      expect(errors).toHaveLength(2);
    });
  });

  it('refuses a signer certificate that is not issued by the issuing CA (no self-appointed responders)', async () => {
    const other = await testCa();
    expect(() =>
      createOcspResponder({
        issuerCertDer: h.issuing.der,
        signerCertDer: other.h.ocsp.der,
        signer: other.h.ocsp.signer,
        lookup,
        responseValiditySeconds: 3600,
        cacheSeconds: 60,
      }),
    ).toThrow(/not issued by the issuing CA/);
  });
});

describe('decodeOcspGetPath', () => {
  const der = Buffer.from('3003020100ff', 'hex');
  const std = Buffer.from([0xfb, 0xff, 0xbf, 0x30, 0x03]).toString('base64'); // contains + and /

  it('decodes raw, percent-encoded and URL-safe base64, and a + turned into a space', () => {
    expect(decodeOcspGetPath(der.toString('base64'))!.equals(der)).toBe(true);
    expect(std).toMatch(/[+/]/);
    expect(decodeOcspGetPath(encodeURIComponent(std))!.toString('base64')).toBe(std);
    expect(decodeOcspGetPath(std)!.toString('base64')).toBe(std);
    expect(decodeOcspGetPath(Buffer.from(std, 'base64').toString('base64url'))!.toString('base64')).toBe(std);
    expect(decodeOcspGetPath(std.replace(/\+/g, ' '))!.toString('base64')).toBe(std);
  });

  it('returns null for invalid characters, broken percent-encoding, empty and oversized input', () => {
    for (const bad of ['', '!!!!', 'abc%ZZ', '%E0%A4%A', 'a'.repeat(20_000), '<script>']) {
      expect(decodeOcspGetPath(bad)).toBeNull();
    }
  });
});

/** Fix up the outer DER lengths after growing an inner element by `delta` bytes (test-only, short forms). */
function rewrap(der: Buffer, delta: number): Buffer {
  const bytes = Buffer.from(der);
  // OCSPRequest > TBSRequest > requestList > Request > CertID > AlgorithmIdentifier: bump each short-form length.
  let p = 0;
  for (let depth = 0; depth < 6; depth++) {
    const lenByte = bytes[p + 1] as number;
    if (lenByte & 0x80) {
      const n = lenByte & 0x7f;
      let len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (bytes[p + 2 + i] as number);
      len += delta;
      for (let i = n - 1; i >= 0; i--) {
        bytes[p + 2 + i] = len & 0xff;
        len >>= 8;
      }
      p += 2 + n;
    } else {
      bytes[p + 1] = lenByte + delta;
      p += 2;
    }
  }
  return bytes;
}
