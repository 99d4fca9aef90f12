/**
 * `npm run bench -- enroll`: server-side TPM enrollments per second (start + finish through the real
 * EnrollmentService: token and inventory checks, attestation, nonce store, CA issuance, store writes, audit) with
 * pre-generated TPM artefacts from a real swtpm, beside the pure verifier throughput and the issuance alone,
 * measured in the same run, so the share of attestation checks vs issuance is visible.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load';
import { systemClock } from '../src/lib/clock';
import { createLogger } from '../src/lib/logger';
import { createMetrics } from '../src/metrics/registry';
import { cliPrincipal } from '../src/services/actors';
import { buildServices } from '../src/services';
import { EnrollmentService, tpmPolicyFromConfig } from '../src/services/enrollment';
import { openStore } from '../src/store';
import { parsePublic, publicToSpki } from '../src/tpm';
import { challengeSource, finishRequestFor, generateEnrollmentArtifacts, measureVerifierThroughput, setByNonce, startRequestFor } from './enroll-artifacts';
import { median, printFigures, type Figure } from './lib/measure';

export async function runEnrollBench(opts: { count?: number; sets?: number; concurrency?: number; backend?: 'sqlite' | 'redis' } = {}): Promise<Figure[]> {
  const count = opts.count ?? 2000;
  const concurrency = opts.concurrency ?? 16;
  const artifacts = await generateEnrollmentArtifacts({ count: opts.sets ?? 200 });
  process.stderr.write(`generated ${artifacts.sets.length} TPM artefact sets in ${artifacts.generationSeconds.toFixed(1)} s\n`);
  const verifier = measureVerifierThroughput(artifacts);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-bench-enroll-'));
  try {
    writeFileSync(path.join(dir, 'roots.pem'), artifacts.trustedRootsPem);
    const config = loadConfig({
      env: {
        DEVICEGATE_DATA_DIR: dir,
        DEVICEGATE_CA__DEV_DIR: path.join(dir, 'ca'),
        DEVICEGATE_TPM__TRUSTED_ROOTS_FILE: path.join(dir, 'roots.pem'),
        DEVICEGATE_LOG__LEVEL: 'silent',
      },
      rootDir: path.resolve(__dirname, '..'),
      cwd: dir,
    });
    const store = await openStore(config);
    const metrics = createMetrics({ defaultMetrics: false });
    const logger = createLogger('silent');
    const services = await buildServices({ config, store, clock: systemClock, logger, metrics });
    // The same service as production, with one difference: secrets and nonces come from the pre-generated sets.
    const enrollment = new EnrollmentService({
      store,
      clock: systemClock,
      audit: services.audit.recorder,
      pki: services.pki,
      metrics,
      policy: tpmPolicyFromConfig(config),
      challengeTtlMs: 300_000,
      renewalNonceTtlMs: 300_000,
      renewalEnabled: true,
      randomness: { challenge: challengeSource(artifacts.sets) },
    });
    const bySet = setByNonce(artifacts.sets);
    // One TPM made all sets, so one inventory device (its EK) enrolls again and again with fresh tokens.
    const device = await services.registry.register({ serial_number: 'BENCH-1', platform: 'linux', ek_public_sha256: artifacts.sets[0]!.ekPublicSha256 }, cliPrincipal());
    const tokens: string[] = [];
    for (let i = 0; i < count + 200; i++) tokens.push((await services.registry.createEnrollmentToken(device.id, { ttlSeconds: 3600 }, cliPrincipal())).token);
    const peer = { ip: '127.0.0.1' };
    const enrollOne = async (token: string): Promise<void> => {
      const s = await enrollment.start(startRequestFor(artifacts.sets[0]!, device.id, token), peer);
      const set = bySet.get(Buffer.from(s.nonce, 'base64').toString('hex'));
      if (!set) throw new Error('nonce matches no artefact set');
      await enrollment.finish(finishRequestFor(set, s.enrollmentId), peer);
    };
    // Warm-up, then timed rounds.
    let next = 0;
    for (; next < 100; next++) await enrollOne(tokens[next]!);
    const rounds: number[] = [];
    const per = Math.floor(count / 3);
    for (let r = 0; r < 3; r++) {
      const end = next + per;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < end) await enrollOne(tokens[next++]!);
        }),
      );
      rounds.push(per / ((performance.now() - t0) / 1000));
    }
    // Issuance alone (CA + certificate record + audit), same service, same store.
    const issueRounds: number[] = [];
    const spki = publicToSpki(parsePublic(artifacts.sets[0]!.keyPublic).public);
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      let i = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (i++ < per) await services.pki.issue({ deviceId: device.id, spki, via: 'enroll' });
        }),
      );
      issueRounds.push(per / ((performance.now() - t0) / 1000));
    }
    await services.close();
    await store.close();
    const figures: Figure[] = [
      ...verifier.figures,
      { name: `CA issuance + record + audit (${concurrency} in flight, ${config.store.backend})`, opsPerSec: median(issueRounds), baseline: verifier.figures[0]!.name },
      { name: `enrollments (start + finish, ${concurrency} in flight, ${config.store.backend})`, opsPerSec: median(rounds), baseline: verifier.figures[0]!.name },
    ];
    printFigures(`TPM enrollment, server side (${count} enrollments, median of 3 rounds)`, figures);
    const verifyMs = 1000 / verifier.figures[3]!.opsPerSec;
    const issueMs = 1000 / median(issueRounds);
    const totalMs = 1000 / median(rounds);
    process.stdout.write(
      `\nper enrollment: ${totalMs.toFixed(2)} ms wall at ${concurrency} in flight; attestation checks ${verifyMs.toFixed(2)} ms CPU ` +
        `(${((verifyMs / (verifyMs + issueMs)) * 100).toFixed(0)} % of checks+issuance), issuance ${issueMs.toFixed(2)} ms; ` +
        `start is ${(verifier.startShare * 100).toFixed(0)} % of the attestation time\n`,
    );
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
