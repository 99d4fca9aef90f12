/**
 * CA benchmark: issuance, OCSP and CRL throughput, each printed beside a floor measured in the same run (raw
 * `crypto.sign`, or the HSM signer alone) and the ratio between the two.
 *
 * Run: `node -r @swc-node/register bench/ca.ts [--seconds 2] [--no-softhsm]`, or call `runCaBench()` (the
 * `npm run bench -- ca` entry). Needs nothing but Node; the SoftHSM2 figures need `softhsm2-util` and the module.
 */
// @peculiar/x509 (used only for the comparison figure) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import { X509CertificateGenerator, cryptoProvider } from '@peculiar/x509';
import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, webcrypto, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Pkcs11Token,
  assembleAuthority,
  createCaHierarchy,
  createKeyObjectSigner,
  createOcspResponder,
  loadFileSigner,
  memoryKeyProvider,
  type CaHierarchy,
  type CertificateAuthority,
  type CrlEntry,
} from '../src/ca';
import { bitString, derNull, explicit, integerFromUnsigned, octetString, oid, seq, set, utf8String } from '../src/ca/der';
import { DeviceCertificateIssuer } from '../src/ca/issuer';
import {
  KU,
  OID,
  authorityKeyIdExt,
  basicConstraintsExt,
  encodeName,
  keyIdentifier,
  keyUsageExt,
  parseCertificate,
  signCertificate,
  subjectKeyIdExt,
  subjectPublicKeyBits,
} from '../src/ca/x509';
import { caConfigSchema } from '../src/config/sections/ca';

export interface CaBenchOptions {
  /** Seconds per measurement (default 2). */
  readonly seconds?: number;
  /** Measure the SoftHSM2 signer (default: when softhsm2-util and the module exist). */
  readonly softhsm?: boolean;
  /** `npm run bench -- ca --no-softhsm` arrives as this. */
  readonly noSofthsm?: boolean;
  /** Where lines go (default console.log). */
  readonly print?: (line: string) => void;
}

const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const DEVICE_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
const PUBLIC_URL = 'https://devicegate.bench';

/** Run `op` back to back (with `concurrency` in flight) for `ms` after a short warm-up; returns ops per second. */
async function rate(op: () => unknown, ms: number, concurrency = 1): Promise<number> {
  const warmUntil = Date.now() + Math.min(300, ms / 4);
  while (Date.now() < warmUntil) await op();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Median wall time of `runs` runs of `op`, in ms. */
async function timeMs(op: () => Promise<unknown>, runs = 3): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await op();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

/** A P-256 PKCS#10 CSR signed by `key` (what a TPM or Secure Enclave client sends). */
function p256Csr(key: KeyObject): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const cri = seq(Buffer.from([0x02, 0x01, 0x00]), seq(set(seq(oid('2.5.4.3'), utf8String('device')))), spki, Buffer.from([0xa0, 0x00]));
  return seq(cri, seq(oid('1.2.840.10045.4.3.2')), bitString(sign('sha256', cri, key)));
}

/** An OCSP request for `serials` of the issuing CA, optionally with a 16-byte nonce. */
function ocspRequest(h: CaHierarchy, serial: Buffer, nonce: boolean): Buffer {
  const nameHash = createHash('sha1').update(h.issuing.cert.subjectName).digest();
  const keyHash = createHash('sha1').update(subjectPublicKeyBits(h.issuing.cert.spki)).digest();
  const certId = seq(seq(oid('1.3.14.3.2.26'), derNull()), octetString(nameHash), octetString(keyHash), integerFromUnsigned(serial));
  const ext = nonce ? [explicit(2, seq(seq(oid('1.3.6.1.5.5.7.48.1.2'), octetString(octetString(randomBytes(16))))))] : [];
  return seq(seq(seq(seq(certId)), ...ext));
}

function softhsmToken(dir: string): { conf: string; label: string; pin: string } | null {
  if (!existsSync(SOFTHSM_MODULE)) return null;
  const tokens = path.join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'dg-bench', '--so-pin', '12345678', '--pin', '1234'], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    encoding: 'utf8',
  });
  if (r.status !== 0) return null;
  return { conf, label: 'dg-bench', pin: '1234' };
}

/**
 * Run the CA benchmark and return the figures (also printed). Keys: `*PerSec` are throughputs, `*Ms` times,
 * `*Ratio` = measured / floor (issuance, OCSP) or time / floor time (CRL).
 */
export async function runCaBench(opts: CaBenchOptions = {}): Promise<Record<string, number>> {
  const ms = (opts.seconds ?? 2) * 1000;
  const print = opts.print ?? ((l: string) => console.log(l));
  const out: Record<string, number> = {};
  const nowMs = Date.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'devicegate-bench-'));
  try {
    const config = caConfigSchema.parse({});
    const h = await createCaHierarchy({ nowMs, keys: memoryKeyProvider(), algorithm: 'ec-p256' });
    // The file signer is loaded from a PKCS#8 PEM file, as `source: file` does.
    const keyPath = path.join(tmp, 'issuing.key.pem');
    writeFileSync(keyPath, h.issuing.privateKey!.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const fileSigner = await loadFileSigner(keyPath);
    const ca: CertificateAuthority = assembleAuthority({
      source: 'file',
      isDev: false,
      root: h.root,
      issuing: { cert: h.issuing.cert, signer: fileSigner },
      ocsp: h.ocsp,
      config,
      publicUrl: PUBLIC_URL,
    });
    const csrs = Array.from({ length: 64 }, () => p256Csr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    let c = 0;
    const issueWith = (issue: CertificateAuthority['issue']) => () =>
      issue({ csr: csrs[c++ % csrs.length], deviceId: DEVICE_ID, nowMs, issuedVia: 'enroll' });

    // Floor: raw crypto.sign over a buffer the size of a device certificate TBS.
    const sample = await ca.issue({ csr: csrs[0], deviceId: DEVICE_ID, nowMs, issuedVia: 'enroll' });
    const tbsLike = sample.der.subarray(4, sample.der.length - 80);
    const issuingKey = h.issuing.privateKey!;
    out.rawSignP256PerSec = await rate(() => sign('sha256', tbsLike, issuingKey), ms);
    out.rawSignP256AsyncPerSec = await rate(() => new Promise((r) => sign('sha256', tbsLike, issuingKey, r)), ms, 16);

    print('devicegate CA benchmark (node ' + process.version + ', ' + os.cpus().length + ' cores)');
    print(`  raw crypto.sign P-256 (sync, 1 core)            ${out.rawSignP256PerSec.toFixed(0).padStart(8)} signs/s   (floor)`);
    print(`  raw crypto.sign P-256 (async, 16 in flight)     ${out.rawSignP256AsyncPerSec.toFixed(0).padStart(8)} signs/s`);

    // Second floor: what any CSR-based issuance must do in OpenSSL (validate the device key, verify the proof of
    // possession, sign), with nothing else: import (JWK, incl. OpenSSL's point check) + verify + sign.
    const popKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const popJwk = popKey.publicKey.export({ format: 'jwk' });
    const popSig = sign('sha256', tbsLike, popKey.privateKey);
    out.rawVerifyP256PerSec = await rate(() => verify('sha256', tbsLike, popKey.publicKey, popSig), ms);
    out.cryptoFloorPerSec = await rate(() => {
      const pub = createPublicKey({ key: popJwk, format: 'jwk' });
      verify('sha256', tbsLike, pub, popSig);
      return sign('sha256', tbsLike, issuingKey);
    }, ms);
    print(`  raw crypto.verify P-256 (sync)                  ${out.rawVerifyP256PerSec.toFixed(0).padStart(8)} verifies/s`);
    print(`  crypto floor: key import + verify + sign        ${out.cryptoFloorPerSec.toFixed(0).padStart(8)} /s        (floor for CSR issuance)`);

    out.issueFileKeyPerSec = await rate(issueWith(ca.issue), ms);
    out.issueFileKeyConc16PerSec = await rate(issueWith(ca.issue), ms, 16);
    out.issueFileKeyRatio = out.issueFileKeyPerSec / out.rawSignP256PerSec;
    out.issueFileKeyRatioToCryptoFloor = out.issueFileKeyPerSec / out.cryptoFloorPerSec;
    print(
      `  issue P-256 CSR, file key (sequential)          ${out.issueFileKeyPerSec.toFixed(0).padStart(8)} certs/s   ratio to raw sign ${out.issueFileKeyRatio.toFixed(3)}, to crypto floor ${out.issueFileKeyRatioToCryptoFloor.toFixed(3)}`,
    );
    print(`  issue P-256 CSR, file key (16 in flight)        ${out.issueFileKeyConc16PerSec.toFixed(0).padStart(8)} certs/s`);

    // For comparison: @peculiar/x509 building a similar certificate with WebCrypto.
    cryptoProvider.set(webcrypto as unknown as Crypto);
    const wcKey = await webcrypto.subtle.importKey(
      'pkcs8',
      issuingKey.export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    const leafPub = await webcrypto.subtle.importKey('spki', createPublicKey(issuingKey).export({ type: 'spki', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
    out.peculiarIssuePerSec = await rate(
      () =>
        X509CertificateGenerator.create({
          serialNumber: randomBytes(16).toString('hex').replace(/^./, '1'),
          subject: `CN=${DEVICE_ID}`,
          issuer: 'CN=devicegate Issuing CA',
          notBefore: new Date(nowMs),
          notAfter: new Date(nowMs + 86400_000),
          signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
          publicKey: leafPub,
          signingKey: wcKey,
        }),
      Math.min(ms, 1000),
    );
    print(`  (@peculiar/x509 generator, no extensions)       ${out.peculiarIssuePerSec.toFixed(0).padStart(8)} certs/s   for comparison`);

    // SoftHSM2: the issuing key inside a token.
    const wantHsm = opts.noSofthsm !== true && (opts.softhsm ?? existsSync(SOFTHSM_MODULE));
    if (wantHsm) {
      const t = softhsmToken(path.join(tmp, 'hsm'));
      if (!t) print('  SoftHSM2: token could not be created; skipped');
      else {
        // Read by libsofthsm2 at C_Initialize; restored afterwards so a caller's own token config is untouched.
        const previousConf = process.env.SOFTHSM2_CONF;
        process.env.SOFTHSM2_CONF = t.conf;
        const token = Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: t.label, pin: t.pin });
        try {
          const hsmSigner = await token.generateKeyPair('bench-issuing', 'ec-p256');
          // An issuing CA certificate for the token key, signed by the bench root.
          const hsmIssuingDer = await signCertificate(
            {
              serial: randomBytes(16).fill(0x11, 0, 1),
              issuerName: h.root.cert.subjectName,
              subjectName: encodeName([{ oid: OID.commonName, value: 'devicegate bench HSM issuing CA' }]),
              notBeforeMs: nowMs - 3600_000,
              notAfterMs: nowMs + 365 * 86400_000,
              spki: hsmSigner.spki,
              extensions: [
                basicConstraintsExt(true, 0),
                keyUsageExt([KU.keyCertSign, KU.cRLSign]),
                subjectKeyIdExt(keyIdentifier(hsmSigner.spki)),
                authorityKeyIdExt(h.root.cert.keyId),
              ],
            },
            h.root.signer,
          );
          const issuer = new DeviceCertificateIssuer(
            { cert: parseCertificate(hsmIssuingDer), signer: hsmSigner },
            { publicUrl: PUBLIC_URL, defaultValiditySeconds: 86400, maxValiditySeconds: 86400, backdateSeconds: 300 },
          );
          out.hsmSignerFloorPerSec = await rate(() => hsmSigner.sign(tbsLike), ms);
          out.hsmSignerFloorConc16PerSec = await rate(() => hsmSigner.sign(tbsLike), ms, 16);
          out.issueSoftHsmPerSec = await rate(issueWith((r) => issuer.issue(r)), ms);
          out.issueSoftHsmConc16PerSec = await rate(issueWith((r) => issuer.issue(r)), ms, 16);
          out.issueSoftHsmRatio = out.issueSoftHsmPerSec / out.hsmSignerFloorPerSec;
          out.issueSoftHsmRatioToRawSign = out.issueSoftHsmPerSec / out.rawSignP256PerSec;
          print(`  SoftHSM2 signer alone (CKM_ECDSA, sequential)   ${out.hsmSignerFloorPerSec.toFixed(0).padStart(8)} signs/s   (HSM floor)`);
          print(`  SoftHSM2 signer alone (16 in flight, 4 sess.)   ${out.hsmSignerFloorConc16PerSec.toFixed(0).padStart(8)} signs/s`);
          print(
            `  issue P-256 CSR, SoftHSM2 key (sequential)      ${out.issueSoftHsmPerSec.toFixed(0).padStart(8)} certs/s   ratio to HSM floor ${out.issueSoftHsmRatio.toFixed(3)}, to raw sign ${out.issueSoftHsmRatioToRawSign.toFixed(3)}`,
          );
          print(`  issue P-256 CSR, SoftHSM2 key (16 in flight)    ${out.issueSoftHsmConc16PerSec.toFixed(0).padStart(8)} certs/s`);
        } finally {
          await token.close();
          if (previousConf === undefined) delete process.env.SOFTHSM2_CONF;
          else process.env.SOFTHSM2_CONF = previousConf;
        }
      }
    }

    // OCSP: 1,000 known serials, a quarter revoked.
    const serials = Array.from({ length: 1000 }, () => {
      const s = randomBytes(16);
      s[0] = ((s[0] as number) & 0x7f) | 1;
      return s;
    });
    const revoked = new Set(serials.filter((_, i) => i % 4 === 0).map((s) => s.toString('hex')));
    const known = new Set(serials.map((s) => s.toString('hex')));
    const responder = createOcspResponder({
      issuerCertDer: h.issuing.der,
      signerCertDer: h.ocsp.der,
      signer: createKeyObjectSigner(h.ocsp.privateKey!),
      lookup: (s) =>
        revoked.has(s) ? { status: 'revoked', revokedAtMs: nowMs, reason: 'keyCompromise' } : known.has(s) ? { status: 'good' } : { status: 'unknown' },
      responseValiditySeconds: 3600,
      cacheSeconds: 300,
    });
    const plain = serials.map((s) => ocspRequest(h, s, false));
    const withNonce = serials.map((s) => ocspRequest(h, s, true));
    let k = 0;
    const ocspKey = h.ocsp.privateKey!;
    const sampleResp = await responder.respond(withNonce[0] as Buffer, { nowMs, generation: 1 });
    const ocspTbsLike = sampleResp.der.subarray(30, sampleResp.der.length - 700);
    out.rawSignOcspPerSec = await rate(() => sign('sha256', ocspTbsLike, ocspKey), ms);
    out.ocspNoNoncePerSec = await rate(() => responder.respond(plain[k++ % plain.length] as Buffer, { nowMs, generation: 1 }), ms);
    out.ocspNoncePerSec = await rate(() => responder.respond(withNonce[k++ % withNonce.length] as Buffer, { nowMs, generation: 1 }), ms);
    out.ocspNonceConc16PerSec = await rate(() => responder.respond(withNonce[k++ % withNonce.length] as Buffer, { nowMs, generation: 1 }), ms, 16);
    let gen = 2;
    // Cold: every request after a revocation, so every answer is looked up, encoded and signed.
    out.ocspNoNonceColdPerSec = await rate(() => responder.respond(plain[k++ % plain.length] as Buffer, { nowMs, generation: gen++ }), ms);
    out.ocspNoNonceRatio = out.ocspNoNoncePerSec / out.rawSignOcspPerSec;
    out.ocspNonceRatio = out.ocspNoncePerSec / out.rawSignOcspPerSec;
    print(`  raw crypto.sign P-256 over OCSP tbs (sync)      ${out.rawSignOcspPerSec.toFixed(0).padStart(8)} signs/s   (floor)`);
    print(
      `  OCSP without nonce (cached, 1000 serials)       ${out.ocspNoNoncePerSec.toFixed(0).padStart(8)} resp/s    ratio to raw sign ${out.ocspNoNonceRatio.toFixed(3)}`,
    );
    print(`  OCSP without nonce (cold: generation bumped)    ${out.ocspNoNonceColdPerSec.toFixed(0).padStart(8)} resp/s`);
    print(
      `  OCSP with nonce (signed per request)            ${out.ocspNoncePerSec.toFixed(0).padStart(8)} resp/s    ratio to raw sign ${out.ocspNonceRatio.toFixed(3)}`,
    );
    print(`  OCSP with nonce (16 in flight)                  ${out.ocspNonceConc16PerSec.toFixed(0).padStart(8)} resp/s`);

    // CRL: 10k and 100k entries, beside one raw crypto.sign over a TBS of the same size.
    for (const n of [10_000, 100_000]) {
      const entries: CrlEntry[] = Array.from({ length: n }, (_, i) => ({
        serialHex: (serials[i % serials.length] as Buffer).toString('hex').slice(0, 24) + i.toString(16).padStart(8, '0'),
        revokedAtMs: nowMs - i * 1000,
        reason: i % 5 === 0 ? 'unspecified' : 'keyCompromise',
      }));
      let size = 0;
      const gen = await timeMs(async () => {
        size = (await ca.buildCrl({ entries, crlNumber: n, nowMs })).der.length;
      });
      const blob = randomBytes(size);
      const floor = await timeMs(async () => sign('sha256', blob, issuingKey));
      const label = n === 10_000 ? 'crl10k' : 'crl100k';
      out[`${label}Ms`] = gen;
      out[`${label}RawSignMs`] = floor;
      out[`${label}Bytes`] = size;
      out[`${label}Ratio`] = gen / floor;
      print(
        `  CRL ${String(n).padStart(6)} entries (${(size / 1024).toFixed(0)} KiB)           ${gen.toFixed(1).padStart(8)} ms        raw sign of same size ${floor.toFixed(1)} ms, ratio ${(gen / floor).toFixed(1)}`,
      );
    }
    await ca.close();
    await fileSigner.close();
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const secIdx = args.indexOf('--seconds');
  runCaBench({
    ...(secIdx >= 0 ? { seconds: Number(args[secIdx + 1]) } : {}),
    ...(args.includes('--no-softhsm') ? { softhsm: false } : {}),
  }).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
