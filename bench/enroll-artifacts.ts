/**
 * Pre-generated TPM artefacts for the server-side enrollment benchmark (`npm run bench -- enroll`), plus a
 * verifier-only throughput figure.
 *
 * What can be pre-generated: the EK certificate, EK public, AK public, device key public and the TPM-signed CSR
 * (none is nonce-bound). What cannot: TPM2_Certify binds the server nonce, and ActivateCredential needs the
 * server's secret. So each artefact set i fixes a (secret_i, nonce_i) pair in advance and carries the Certify made
 * for nonce_i on a real swtpm. The server under benchmark draws its secret and nonce from `challengeSource(sets)`
 * (pass it as `verifyEnrollmentStart(..., { challenge })`), and the benchmark client finds the set for a `start`
 * response by its nonce (`setByNonce`). `finish` then runs exactly the production checks: secret compare, Certify
 * signature/nonce/name/attributes, CSR proof of possession and key match. ActivateCredential itself is not run per
 * set (it is TPM-side work, ~100 ms on swtpm); `verifyArtifacts` proves one set end to end on the TPM instead.
 *
 * Run alone: `node -r ./scripts/ts-register.js bench/enroll-artifacts.ts [--count 500]`.
 */
import 'reflect-metadata';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  parseTrustAnchors,
  verifyEnrollmentFinish,
  verifyEnrollmentStart,
  type TpmVerifierPolicy,
} from '../src/attestation';
import { buildTpmCsr } from '../src/agent/csr';
import { DeviceTpm, ekPublicSha256 } from '../src/agent/tpm-device';
import { toB64, type FinishRequest, type StartRequest } from '../src/enrollment/protocol';
import { marshalPublic, publicToSpki, publicToTpm2b } from '../src/tpm';
import { SwtpmHarness } from '../test/helpers/swtpm';
import { median, printFigures, type Figure } from './lib/measure';

/** One enrollment's worth of device-side evidence. */
export interface EnrollmentArtifactSet {
  readonly index: number;
  /** Which of the generated TPMs produced it (sets of one TPM share EK, AK and device key). */
  readonly tpm: number;
  readonly ekPublicSha256: string;
  readonly ekCertificate: Buffer;
  /** TPM2B_PUBLIC. */
  readonly ekPublic: Buffer;
  /** TPMT_PUBLIC. */
  readonly akPublic: Buffer;
  /** What the server's challenge source must hand out for this set. */
  readonly secret: Buffer;
  readonly nonce: Buffer;
  readonly csr: string;
  readonly certifyInfo: Buffer;
  readonly certifySignature: Buffer;
  readonly keyPublic: Buffer;
}

/** The generated material. */
export interface EnrollmentArtifacts {
  readonly sets: readonly EnrollmentArtifactSet[];
  /** Manufacturer CA bundle the EK certificates chain to: the benchmark's `tpm.trustedRootsFile` content. */
  readonly trustedRootsPem: string;
  /** Seconds spent generating (swtpm provisioning + Certify per set). */
  readonly generationSeconds: number;
}

/** Deterministic per-set secret and nonce, so artefacts and server agree without sharing state. */
export function benchSecret(i: number): Buffer {
  return createHash('sha256').update(`devicegate-bench-secret-${i}`).digest();
}
export function benchNonce(i: number): Buffer {
  return createHash('sha256').update(`devicegate-bench-nonce-${i}`).digest();
}

/** JSON body of `POST start` for a set. */
export function startRequestFor(set: EnrollmentArtifactSet, deviceId: string, token: string): StartRequest {
  return { deviceId, token, ekCertificate: toB64(set.ekCertificate), ekPublic: toB64(set.ekPublic), akPublic: toB64(set.akPublic) };
}

/** JSON body of `POST finish` for a set. */
export function finishRequestFor(set: EnrollmentArtifactSet, enrollmentId: string): FinishRequest {
  return {
    enrollmentId,
    activatedSecret: toB64(set.secret),
    csr: set.csr,
    certifyInfo: toB64(set.certifyInfo),
    certifySignature: toB64(set.certifySignature),
    keyPublic: toB64(set.keyPublic),
  };
}

/**
 * A challenge source for the server under benchmark: hands out (secret_i, nonce_i) round-robin. Pass it as the
 * `challenge` of `verifyEnrollmentStart`'s randomness (via a test hook of the enrollment service). Never in production.
 */
export function challengeSource(sets: readonly EnrollmentArtifactSet[]): () => { secret: Buffer; nonce: Buffer } {
  let next = 0;
  return () => {
    const s = sets[next++ % sets.length]!;
    return { secret: s.secret, nonce: s.nonce };
  };
}

/** Index from nonce (hex) to set, for the client side of the benchmark. */
export function setByNonce(sets: readonly EnrollmentArtifactSet[]): Map<string, EnrollmentArtifactSet> {
  return new Map(sets.map((s) => [s.nonce.toString('hex'), s]));
}

/**
 * Generates `count` artefact sets on `tpms` real swtpm instances (default 1; use more if the inventory must hold
 * distinct EKs). Needs swtpm, swtpm_setup and openssl. About 1 s per TPM plus ~5–10 ms per set (RSA AK Certify).
 */
export async function generateEnrollmentArtifacts(opts: { count: number; tpms?: number; akAlg?: 'rsa' | 'ecc' }): Promise<EnrollmentArtifacts> {
  const t0 = performance.now();
  const harness = await SwtpmHarness.create();
  try {
    const ca = await harness.createManufacturerCa('Bench TPM');
    const tpms = Math.max(1, Math.min(opts.tpms ?? 1, opts.count));
    const sets: EnrollmentArtifactSet[] = [];
    for (let t = 0; t < tpms; t++) {
      const run = await harness.startSwtpm(await harness.provisionTpm(ca));
      const dev = new DeviceTpm(run.client());
      const ekCertificate = (await dev.ekCertificate())!;
      const ek = await dev.ekPublic();
      const ak = await dev.ensureAk(opts.akAlg ?? 'rsa');
      const key = await dev.ensureDeviceKey();
      const csr = await buildTpmCsr(publicToSpki(key.parsed.public), 'bench-device', (d) => dev.signDigestDer(key.handle, d));
      const common = {
        tpm: t,
        ekPublicSha256: ekPublicSha256(ek),
        ekCertificate,
        ekPublic: publicToTpm2b(marshalPublic(ek.public)),
        akPublic: ak.parsed.raw,
        csr,
        keyPublic: key.parsed.raw,
      };
      for (let i = t; i < opts.count; i += tpms) {
        const nonce = benchNonce(i);
        const c = await dev.certify(key.handle, ak.handle, nonce);
        sets.push({ ...common, index: i, secret: benchSecret(i), nonce, certifyInfo: c.certifyInfo, certifySignature: c.signature });
      }
      await run.stop();
    }
    sets.sort((a, b) => a.index - b.index);
    return { sets, trustedRootsPem: ca.bundlePem, generationSeconds: (performance.now() - t0) / 1000 };
  } finally {
    await harness.dispose();
  }
}

/**
 * Verifier-only throughput over the artefacts: `verifyEnrollmentStart` (EK chain, AK checks, MakeCredential) and
 * `verifyEnrollmentFinish` (secret, Certify, CSR), single-threaded, beside raw `crypto.sign` (ECDSA P-256) as
 * the floor any issuance pays. No HTTP, store, CA or audit: the lead's `enroll` suite measures those.
 */
export function measureVerifierThroughput(artifacts: EnrollmentArtifacts, rounds = 3): { figures: Figure[]; startShare: number } {
  const policy: TpmVerifierPolicy = { roots: parseTrustAnchors(artifacts.trustedRootsPem), allowEkPublicOnly: false };
  const now = Date.now() + 1000;
  const sets = artifacts.sets;
  let startMs: number[] = [];
  let finishMs: number[] = [];
  const totals: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let ts = 0;
    let tf = 0;
    const t0 = performance.now();
    for (const s of sets) {
      const a = performance.now();
      const st = verifyEnrollmentStart({ ekCertificate: s.ekCertificate, ekPublic: s.ekPublic, akPublic: s.akPublic }, policy, now, {
        challenge: () => ({ secret: s.secret, nonce: s.nonce }),
      });
      const b = performance.now();
      verifyEnrollmentFinish(
        {
          activatedSecret: s.secret,
          expectedSecret: st.challenge.secret,
          csr: s.csr,
          certifyInfo: s.certifyInfo,
          certifySignature: s.certifySignature,
          keyPublic: s.keyPublic,
          akPublic: st.ak.parsed.raw,
          nonce: st.nonce,
        },
        {},
      );
      ts += b - a;
      tf += performance.now() - b;
    }
    totals.push(sets.length / ((performance.now() - t0) / 1000));
    startMs.push(ts);
    finishMs.push(tf);
  }
  startMs = [median(startMs)];
  finishMs = [median(finishMs)];
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const msg = Buffer.alloc(300, 1);
  const base: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < sets.length; i++) sign('sha256', msg, privateKey);
    base.push(sets.length / ((performance.now() - t0) / 1000));
  }
  const perStart = sets.length / (startMs[0]! / 1000);
  const perFinish = sets.length / (finishMs[0]! / 1000);
  return {
    figures: [
      { name: 'crypto.sign ECDSA P-256 (floor of one issuance)', opsPerSec: median(base) },
      { name: 'verifyEnrollmentStart (EK chain + AK + MakeCredential)', opsPerSec: perStart, baseline: 'crypto.sign ECDSA P-256 (floor of one issuance)' },
      { name: 'verifyEnrollmentFinish (secret + Certify + CSR)', opsPerSec: perFinish, baseline: 'crypto.sign ECDSA P-256 (floor of one issuance)' },
      { name: 'start + finish verification, 1 core', opsPerSec: median(totals), baseline: 'crypto.sign ECDSA P-256 (floor of one issuance)' },
    ],
    startShare: startMs[0]! / (startMs[0]! + finishMs[0]!),
  };
}

/** Generates artefacts, checks them, prints the verifier figures. */
export async function runEnrollArtifactsBench(opts: { count?: number; tpms?: number } = {}): Promise<unknown> {
  const artifacts = await generateEnrollmentArtifacts({ count: opts.count ?? 500, tpms: opts.tpms ?? 1 });
  process.stdout.write(`generated ${artifacts.sets.length} artefact sets on ${opts.tpms ?? 1} swtpm in ${artifacts.generationSeconds.toFixed(1)} s\n`);
  const m = measureVerifierThroughput(artifacts);
  printFigures('TPM enrollment verification (server side, no HTTP/store/CA)', m.figures);
  process.stdout.write(`\nshare of start in verification time: ${(m.startShare * 100).toFixed(0)} %\n`);
  return m;
}

if (require.main === module) {
  const i = process.argv.indexOf('--count');
  const t = process.argv.indexOf('--tpms');
  runEnrollArtifactsBench({
    ...(i > 0 ? { count: Number(process.argv[i + 1]) } : {}),
    ...(t > 0 ? { tpms: Number(process.argv[t + 1]) } : {}),
  }).catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
