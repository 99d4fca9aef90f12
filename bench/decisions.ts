/**
 * `npm run bench -- decisions [--devices 100000] [--connections 50] [--duration 10] [--warmup 3] [--backends sqlite,redis]
 *  [--express true] [--rounds 3]`
 *
 * Drives `POST /v1/decisions` of the real app with autocannon against a store holding `devices` devices, each with a
 * certificate record: 90 % of the requests are allows (active devices), 10 % denies (half suspended devices, half
 * fingerprints devicegate never issued), each request for a device picked at random, as the OpenVPN management
 * adapter sends it (colon fingerprint, decimal + hex serial, issuer and subject DN, CN, peer, session).
 *
 * Baseline in the same run, same store, same load: a floor server, bare `node:http` that parses the JSON body, does
 * ONE store lookup (the certificate by fingerprint) and ONE audit append (a `vpn.decision` of the same shape through
 * the same AuditLog with the same group commit) and answers a small JSON body. No auth, no validation, no policy.
 *
 * Each server runs in its own child process (so autocannon, in this process, does not share its event loop), is
 * warmed up for `warmup` seconds (caches, JIT, audit batching), then measured for `duration` seconds. Optional
 * `--express true` also measures the same app through the Express route (`/v1/decisions/` misses the fast path).
 * Floor and app are measured alternately `rounds` times per back-end (each on a fresh copy of the seeded SQLite file);
 * the reported ratio is the median of the rounds' ratios, because one run on this 2-vCPU machine varies by ±15 %.
 * Issue 5 target: ≥ 0.6× the floor, p99 ≤ 5 ms at 50 connections.
 *
 * Child mode (internal): `node -r ./scripts/ts-register.js bench/decisions.ts --serve <app|floor> <json>`. Set
 * DG_BENCH_CPU_PROF=<dir> to write a V8 CPU profile of every server child into <dir>.
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load';
import { newTimeOrderedId } from '../src/lib/ids';
import type { Config } from '../src/config/schema';
import type { CertificateRecord, Device } from '../src/domain/types';
import { createApp } from '../src/http/app';
import { systemClock } from '../src/lib/clock';
import { createLogger } from '../src/lib/logger';
import { createMetrics } from '../src/metrics/registry';
import { buildServices } from '../src/services';
import { cliPrincipal } from '../src/services/actors';
import { openAuditTrail } from '../src/services/audit-trail';
import { openStore } from '../src/store';
import { instrumentStore } from '../src/store/metrics';
import { openRedisStore } from '../src/store/redis';
import { openSqliteStore } from '../src/store/sqlite';
import type { Store } from '../src/store/types';
import { startRedisServer } from '../test/helpers/redis-server';

const ROOT = path.resolve(__dirname, '..');

/** Options of `npm run bench -- decisions`. */
export interface DecisionsBenchOptions {
  readonly devices?: number;
  readonly connections?: number;
  /** Measured seconds per server. */
  readonly duration?: number;
  /** Unmeasured warm-up seconds per server. */
  readonly warmup?: number;
  /** Comma-separated: `sqlite`, `redis`. */
  readonly backends?: string;
  /** Also measure the Express route (no fast path). */
  readonly express?: boolean;
  /** Floor/app pairs measured alternately per back-end; the ratio reported is the median of the rounds' ratios. */
  readonly rounds?: number;
}

/** One measured server. */
export interface DecisionsFigure {
  readonly backend: 'sqlite' | 'redis';
  readonly server: 'floor' | 'app' | 'app-express';
  /** 1-based round of the floor/app pair this figure belongs to. */
  readonly round: number;
  readonly requestsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  /** CPU time (user + system) of the server process per answered request during the measured run, in ms. */
  readonly cpuMsPerRequest: number | null;
  /** Mean entries per audit group commit during the run (from the server's /metrics). */
  readonly auditBatch: number | null;
  /** requestsPerSec / floor's requestsPerSec of the same backend. */
  readonly ratio: number | null;
}

export interface DecisionsBenchResult {
  readonly devices: number;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly figures: DecisionsFigure[];
}

interface ChildConfig {
  readonly backend: 'sqlite' | 'redis';
  readonly dataDir: string;
  readonly redisUrl?: string;
}

function configFor(c: ChildConfig): Config {
  // DEVICEGATE_* variables of the bench's own environment reach both servers (e.g. audit group-commit settings).
  const overrides = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DEVICEGATE_')));
  return loadConfig({
    env: {
      ...overrides,
      DEVICEGATE_DATA_DIR: c.dataDir,
      DEVICEGATE_LOG__LEVEL: 'warn',
      DEVICEGATE_CA__DEV_DIR: path.join(c.dataDir, 'ca'),
      DEVICEGATE_STORE__BACKEND: c.backend,
      ...(c.redisUrl ? { DEVICEGATE_STORE__REDIS__URL: c.redisUrl } : {}),
    },
    rootDir: ROOT,
    cwd: ROOT,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes: the app and the floor server
// ---------------------------------------------------------------------------------------------------------------

async function serveApp(c: ChildConfig): Promise<http.Server> {
  const config = configFor(c);
  const metrics = createMetrics();
  const logger = createLogger(config.log.level);
  const store = instrumentStore(await openStore(config), metrics.storeOperationDuration);
  const services = await buildServices({ config, store, clock: systemClock, logger, metrics });
  return http.createServer(createApp({ config, store, clock: systemClock, logger, metrics, services }));
}

async function serveFloor(c: ChildConfig): Promise<http.Server> {
  const config = configFor(c);
  const metrics = createMetrics();
  const logger = createLogger(config.log.level);
  const store = await openStore(config);
  const audit = await openAuditTrail({ config, store, clock: systemClock, logger, metrics });
  return http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => res.end(text));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (ch: Buffer) => chunks.push(ch));
    req.on('end', () => {
      void (async () => {
        const started = performance.now();
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          request_id: string;
          gateway: { id: string; hook: string; version: string };
          event: 'connect';
          peer: { ip: string; port: number };
          cert: { sha256: string; serial: { hex: string }; issuer_dn: string; subject_dn: string; cn: string };
          session: { ovpn_cid: number; ovpn_kid: number };
        };
        const sha = body.cert.sha256.replace(/:/g, '').toLowerCase();
        const record = await store.certificates.getBySha256(sha);
        const decisionId = newTimeOrderedId();
        const decision = record ? 'allow' : 'deny';
        await audit.log.append({
          type: 'vpn.decision',
          eventId: decisionId,
          data: {
            requestId: body.request_id,
            decisionId,
            event: body.event,
            decision,
            reason: record ? 'OK' : 'CERT_UNKNOWN',
            deviceId: record?.deviceId ?? null,
            user: null,
            peer: body.peer,
            concentrator: { id: body.gateway.id, kind: 'openvpn', hook: body.gateway.hook, version: body.gateway.version },
            // The same fields devicegate records, so both servers write entries of the same size.
            cert: { sha256: sha, serialHex: body.cert.serial.hex.replace(/:/g, ''), issuerDn: body.cert.issuer_dn, subjectDn: body.cert.subject_dn, cn: body.cert.cn },
            session: { ovpnCid: body.session.ovpn_cid, ovpnKid: body.session.ovpn_kid },
            latencyMs: performance.now() - started,
            policyVersion: '1',
          },
        });
        const text = JSON.stringify({ decision, decision_id: decisionId, device_id: record?.deviceId ?? null });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      })().catch((e: unknown) => {
        res.writeHead(500);
        res.end(String(e));
      });
    });
  });
}

async function childMain(kind: string, json: string): Promise<void> {
  const c = JSON.parse(json) as ChildConfig;
  const server = kind === 'floor' ? await serveFloor(c) : await serveApp(c);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
  process.on('SIGTERM', () => {
    // Closing (not just exiting) lets a --cpu-prof profile be written.
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

async function startChild(kind: 'app' | 'floor', c: ChildConfig): Promise<{ port: number; child: ChildProcess }> {
  const prof = process.env.DG_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DG_BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '-r', path.join(ROOT, 'scripts/ts-register.js'), __filename, '--serve', kind, JSON.stringify(c)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code}) before it was ready`)));
  });
  return { port, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Data set
// ---------------------------------------------------------------------------------------------------------------

interface Planned {
  readonly body: string;
  readonly expect: 'allow' | 'deny';
}

function serialDerHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

/**
 * Writes `n` devices with one certificate each (95 % active, 5 % suspended) and returns the request bodies: 90 %
 * allows, 5 % suspended devices, 5 % unknown fingerprints, shuffled.
 */
async function populate(store: Store, n: number, issuerDn: string, nowMs: number): Promise<Planned[]> {
  const devices: Device[] = [];
  const certs: CertificateRecord[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    devices.push({
      id,
      serialNumber: `BENCH-${i.toString().padStart(7, '0')}`,
      assetTag: null,
      model: 'ThinkPad T14',
      platform: 'linux',
      owner: `user${i}`,
      department: 'amt-10',
      status: i % 20 === 19 ? 'suspended' : 'active',
      statusReason: null,
      tpm: null,
      attestationKey: 'bench',
      createdAt: nowMs,
      updatedAt: nowMs,
      version: 1,
    });
    certs.push({
      serialHex: serialDerHex(),
      deviceId: id,
      sha256: createHash('sha256').update(randomBytes(32)).digest('hex'),
      notBefore: nowMs - 86_400_000,
      notAfter: nowMs + 30 * 86_400_000,
      pem: '',
      issuedAt: nowMs - 86_400_000,
      issuedVia: 'enroll',
    });
  }
  for (let i = 0; i < n; i += 5000) await store.devices.upsertManyBySerial(devices.slice(i, i + 5000));
  for (let i = 0; i < n; i += 500) await Promise.all(certs.slice(i, i + 500).map((c) => store.certificates.put(c)));

  const body = (c: { sha256: string; serialHex: string; deviceId: string }): string =>
    JSON.stringify({
      request_id: randomUUID(),
      gateway: { id: 'ovpn-gw-01', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14' },
      event: 'connect',
      peer: { ip: `10.${(Math.random() * 255) | 0}.${(Math.random() * 255) | 0}.7`, port: 40000 + ((Math.random() * 20000) | 0) },
      cert: {
        sha256: c.sha256.match(/../g)!.join(':'),
        serial: { dec: BigInt(`0x${c.serialHex}`).toString(10), hex: c.serialHex.match(/../g)!.join(':') },
        issuer_dn: issuerDn,
        subject_dn: `CN=${c.deviceId}`,
        cn: c.deviceId,
      },
      session: { ovpn_cid: (Math.random() * 100000) | 0, ovpn_kid: 1 },
      client_hints: { IV_PLAT: 'linux', IV_VER: '2.6.14' },
    });
  const planned: Planned[] = [];
  const active = certs.filter((_, i) => devices[i]!.status === 'active');
  const suspended = certs.filter((_, i) => devices[i]!.status === 'suspended');
  const total = n;
  for (let i = 0; i < total; i++) {
    const r = i % 20;
    if (r < 18) planned.push({ body: body(active[(Math.random() * active.length) | 0]!), expect: 'allow' });
    else if (r === 18) planned.push({ body: body(suspended[(Math.random() * suspended.length) | 0]!), expect: 'deny' });
    else planned.push({ body: body({ sha256: randomBytes(32).toString('hex'), serialHex: serialDerHex(), deviceId: randomUUID() }), expect: 'deny' });
  }
  for (let i = planned.length - 1; i > 0; i--) {
    const j = (Math.random() * (i + 1)) | 0;
    [planned[i], planned[j]] = [planned[j]!, planned[i]!];
  }
  return planned;
}

/** Sends a sample of planned requests one by one and checks each answer (a benchmark of wrong answers is worthless). */
async function checkAnswers(port: number, urlPath: string, token: string | null, planned: readonly Planned[], sample: number): Promise<void> {
  for (let i = 0; i < sample; i++) {
    const p = planned[i]!;
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(p.body);
    });
    const decision = res.status === 200 ? (JSON.parse(res.text) as { decision: string }).decision : `http-${res.status}`;
    if (decision !== p.expect && !(urlPath === '/floor' && p.expect === 'deny')) {
      throw new Error(`answer check failed on ${urlPath}: expected ${p.expect}, got ${decision}: ${res.text.slice(0, 300)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------------------------

/** utime + stime of a process in clock ticks (Linux /proc; 100 ticks per second), or null elsewhere. */
function cpuTicks(pid: number | undefined): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/** Sum and count of the `devicegate_audit_batch_size` histogram of a server, or null. */
async function auditBatches(port: number): Promise<{ sum: number; count: number } | null> {
  const text = await new Promise<string>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => resolve(t));
    }).on('error', () => resolve(''));
  });
  const sum = /^devicegate_audit_batch_size_sum (\S+)$/m.exec(text);
  const count = /^devicegate_audit_batch_size_count (\S+)$/m.exec(text);
  return sum && count ? { sum: Number(sum[1]), count: Number(count[1]) } : null;
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

async function load(port: number, urlPath: string, token: string | null, planned: readonly Planned[], connections: number, seconds: number): Promise<AutocannonResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const autocannon = require('autocannon') as (o: unknown) => Promise<AutocannonResult>;
  let next = (Math.random() * planned.length) | 0;
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: urlPath,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        setupRequest: (req: { body?: string }) => {
          next = (next + 1) % planned.length;
          req.body = planned[next]!.body;
          return req;
        },
      },
    ],
  });
}

async function measure(
  backend: 'sqlite' | 'redis',
  server: DecisionsFigure['server'],
  child: ChildConfig,
  token: string,
  planned: readonly Planned[],
  o: Required<Pick<DecisionsBenchOptions, 'connections' | 'duration' | 'warmup'>>,
): Promise<Omit<DecisionsFigure, 'ratio' | 'round'>> {
  const { port, child: proc } = await startChild(server === 'floor' ? 'floor' : 'app', child);
  try {
    const urlPath = server === 'floor' ? '/floor' : server === 'app' ? '/v1/decisions' : '/v1/decisions/';
    const auth = server === 'floor' ? null : token;
    await checkAnswers(port, urlPath, auth, planned, 200);
    if (o.warmup > 0) await load(port, urlPath, auth, planned, o.connections, o.warmup);
    const before = await auditBatches(port);
    const cpu0 = cpuTicks(proc.pid);
    const r = await load(port, urlPath, auth, planned, o.connections, o.duration);
    const cpu1 = cpuTicks(proc.pid);
    const after = await auditBatches(port);
    const cpuMsPerRequest = cpu0 !== null && cpu1 !== null && r.requests.total > 0 ? Math.round(((cpu1 - cpu0) * 10 * 1000) / r.requests.total) / 1000 : null;
    const auditBatch = before && after && after.count > before.count ? Math.round(((after.sum - before.sum) / (after.count - before.count)) * 10) / 10 : null;
    const f = { backend, server, requestsPerSec: Math.round(r.requests.average), p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, auditBatch, cpuMsPerRequest };
    process.stderr.write(`  ${backend} ${server}: ${f.requestsPerSec} req/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, non-2xx ${f.non2xx}, errors ${f.errors}, audit batch ${f.auditBatch}, cpu ${f.cpuMsPerRequest} ms/req\n`);
    return f;
  } finally {
    await stopChild(proc);
  }
}

/** Runs the benchmark (see the file comment) and prints the figures. */
export async function runDecisionsBench(opts: DecisionsBenchOptions = {}): Promise<DecisionsBenchResult> {
  const o = {
    devices: opts.devices ?? 100_000,
    connections: opts.connections ?? 50,
    duration: opts.duration ?? 10,
    warmup: opts.warmup ?? 3,
    backends: String(opts.backends ?? 'sqlite,redis').split(',').map((s) => s.trim()) as ('sqlite' | 'redis')[],
    express: opts.express === true || String(opts.express) === 'true',
    rounds: Math.max(1, Number(opts.rounds ?? 3)),
  };
  const figures: DecisionsFigure[] = [];
  const medians: string[] = [];
  for (const backend of o.backends) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `dg-bench-decisions-${backend}-`));
    const redis = backend === 'redis' ? await startRedisServer() : null;
    try {
      const child: ChildConfig = { backend, dataDir: backend === 'sqlite' ? path.join(dataDir, 'seed') : dataDir, ...(redis ? { redisUrl: redis.url } : {}) };
      const config = configFor(child);
      process.stderr.write(`${backend}: writing ${o.devices} devices with certificates…\n`);
      const raw =
        backend === 'redis'
          ? await openRedisStore({ url: redis!.url, keyPrefix: config.store.redis.keyPrefix, commandTimeoutMs: 10_000, connectTimeoutMs: 5000 })
          : openSqliteStore({ path: config.sqlitePath, synchronous: 'NORMAL' });
      const metrics = createMetrics({ defaultMetrics: false });
      // Built once here so the dev CA exists (its subject is the issuer the requests name) and to create the token.
      const services = await buildServices({ config, store: raw, clock: systemClock, logger: createLogger('warn'), metrics });
      const issuerDn = new X509Certificate(services.pki.ca.issuingCertPem).subject.split('\n').join(', ');
      const { token } = await services.apiTokens.create({ name: 'bench-ovpn', role: 'concentrator' }, cliPrincipal());
      const planned = await populate(raw, o.devices, issuerDn, Date.now());
      await services.close();
      await raw.close();

      // SQLite: each server starts from its own copy of the seeded file, so neither inherits the other's audit rows.
      const fresh = (name: string): ChildConfig => {
        if (backend !== 'sqlite') return child;
        const dir = path.join(dataDir, name);
        cpSync(path.join(dataDir, 'seed'), dir, { recursive: true });
        return { ...child, dataDir: dir };
      };
      // Rounds alternate floor and app, so a slow phase of the (shared, 2-vCPU) machine hits both of a pair.
      const ratios: number[] = [];
      for (let round = 1; round <= o.rounds; round++) {
        const floor = await measure(backend, 'floor', fresh(`floor-${round}`), token, planned, o);
        const app = await measure(backend, 'app', fresh(`app-${round}`), token, planned, o);
        ratios.push(app.requestsPerSec / floor.requestsPerSec);
        figures.push({ ...floor, round, ratio: 1 }, { ...app, round, ratio: app.requestsPerSec / floor.requestsPerSec });
        if (o.express && round === 1) {
          const ex = await measure(backend, 'app-express', fresh('app-express'), token, planned, o);
          figures.push({ ...ex, round, ratio: ex.requestsPerSec / floor.requestsPerSec });
        }
      }
      const sorted = [...ratios].sort((a, b) => a - b);
      medians.push(
        `${backend}: median ratio of the fast path to the floor over ${o.rounds} round(s): ${(sorted[Math.floor((sorted.length - 1) / 2)] as number).toFixed(2)}× (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      );
    } finally {
      await redis?.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const lines = [
    '',
    `## POST /v1/decisions, ${o.devices.toLocaleString('en-US')} devices, 90 % allow / 10 % deny, ${o.connections} connections, ${o.duration} s (after ${o.warmup} s warm-up)`,
    '',
    '| back-end | round | server | req/s | p50 ms | p99 ms | non-2xx | errors | server CPU ms/req | entries per audit commit | ratio to floor |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...figures.map(
      (f) =>
        `| ${f.backend} | ${f.round} | ${f.server === 'floor' ? 'floor (node:http, 1 lookup + 1 audit append)' : f.server === 'app' ? 'devicegate (fast path)' : 'devicegate (Express route)'} | ${f.requestsPerSec.toLocaleString('en-US')} | ${f.p50Ms} | ${f.p99Ms} | ${f.non2xx} | ${f.errors + f.timeouts} | ${f.cpuMsPerRequest ?? '?'} | ${f.auditBatch ?? '?'} | ${f.ratio === null ? '' : `${f.ratio.toFixed(2)}×`} |`,
    ),
    '',
    ...medians,
    '',
    'Target: devicegate ≥ 0.60× the floor of the same back-end, p99 ≤ 5 ms.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  return { devices: o.devices, connections: o.connections, durationSeconds: o.duration, figures };
}

if (require.main === module && process.argv[2] === '--serve') {
  childMain(process.argv[3] ?? 'app', process.argv[4] ?? '{}').catch((e: unknown) => {
    process.stderr.write(`bench child failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
