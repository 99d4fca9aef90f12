/**
 * `npm run bench -- audit [--events 200000] [--devices 5000] [--days 90] [--concurrency 1024] [--offline true]
 *  [--backends sqlite,redis]`
 *
 * Generates a realistic audit log (90 % connection decisions, 10 % admin/enrollment events over `days` days and
 * `devices` devices) through `AuditLog` on each back-end (SQLite, and Redis on a private `redis-server` with AOF) and
 * measures, each beside a floor measured in the same run:
 *   - append throughput through AuditLog (validation, canonical JSON, SHA-256, group commit, checkpoints)
 *       vs. the same rows written bare, same batch size: SQLite INSERTs with the same schema and indexes
 *       (synchronous=FULL), Redis pipelined HSETs;
 *   - verifyRange rows/s vs. SHA-256 alone over the same bodies read from the same store;
 *   - NDJSON and CSV export rows/s vs. reading the same rows with store.range alone;
 *   - offline verification of the exported file (`verifyExportFile`) rows/s;
 *   - filtered query latency (one device, one day, first page of 100) p50/p95/p99 (SQLite: vs. the same SQL on a
 *     bare connection).
 * Issue targets: query p95 ≤ 50 ms, export ≥ 100k rows/s, verify ≥ 200k rows/s. Use `--events 10000000` for the
 * full-size run (SQLite only by default: about 10 GB of disk under the OS temp dir, removed afterwards unless
 * `--keep true`; Redis would need 25–40 GB of memory: 200k entries took 0.77 GB of `used_memory`, floor copy included).
 */
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import Redis from 'ioredis';
import { AuditLog } from '../src/audit/audit-log';
import { hashBody } from '../src/audit/chain';
import type { AuditEventInput } from '../src/audit/events';
import { exportAudit } from '../src/audit/export';
import { AuditPublicKeys, createAuditSigner } from '../src/audit/signing';
import { verifyExportFile, verifyRange } from '../src/audit/verify';
import type { AuditEntry } from '../src/domain/types';
import { systemClock } from '../src/lib/clock';
import { openRedisStore } from '../src/store/redis';
import { openSqliteStore } from '../src/store/sqlite';
import type { Store } from '../src/store/types';
import { startRedisServer } from '../test/helpers/redis-server';
import { type Figure, median, percentile, printFigures } from './lib/measure';
import { xorshift } from '../test/helpers/prng';

export interface AuditBenchOptions {
  events?: number;
  devices?: number;
  users?: number;
  days?: number;
  /** Appends kept in flight (concurrent requests of a busy gateway). */
  concurrency?: number;
  /** Verify the exported NDJSON file offline too (writes the file to disk). Default: on up to 2 M events. */
  offline?: boolean;
  /** Keep the temp dir. */
  keep?: boolean;
  querySamples?: number;
  /** Comma-separated back-ends: `sqlite`, `redis` (default both up to 2 M events, SQLite alone above: Redis holds
   * everything in memory, 2–4 GB per million events with its indexes). */
  backends?: string;
}

export interface AuditBenchResult {
  readonly backend: 'sqlite' | 'redis';
  readonly events: number;
  readonly entries: number;
  readonly figures: Figure[];
  readonly query: { p50: number; p95: number; p99: number; bareP95: number | null; avgRows: number };
  readonly batch: { commits: number; avgEntries: number; maxEntries: number; conflicts: number };
  readonly dbBytes: number;
}

const DAY = 86_400_000;
const REASONS = ['CERT_REVOKED', 'DEVICE_NOT_REGISTERED', 'POSTURE_STALE', 'CERT_UNKNOWN'] as const;
const CONCENTRATORS = [
  { id: 'ovpn-gw-01', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14' },
  { id: 'ovpn-gw-02', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14' },
  { id: 'radius-01', kind: 'freeradius', hook: 'radius-authorize' },
  { id: 'swan-01', kind: 'strongswan', hook: 'ike-authorize' },
] as const;


function generator(opts: Required<Pick<AuditBenchOptions, 'events' | 'devices' | 'users' | 'days'>>, start: number) {
  const rand = xorshift(42);
  const step = (opts.days * DAY) / opts.events;
  const admin = { kind: 'user', id: 'it-admin-1@stadt.example', roles: ['it-admin'] } as const;
  return (i: number): AuditEventInput => {
    const timeMs = Math.floor(start + i * step);
    const dev = Math.floor(rand() * opts.devices);
    const deviceId = `dev-${dev.toString().padStart(6, '0')}`;
    const user = `user${(dev % opts.users).toString().padStart(5, '0')}@stadt.example`;
    const r = rand();
    if (r < 0.9) {
      const deny = rand() < 0.05;
      const conc = CONCENTRATORS[dev % CONCENTRATORS.length] as (typeof CONCENTRATORS)[number];
      return {
        type: 'vpn.decision',
        timeMs,
        data: {
          requestId: randomUUID(),
          decisionId: randomUUID(),
          event: rand() < 0.7 ? 'reauth' : 'connect',
          decision: deny ? 'deny' : 'allow',
          reason: deny ? (REASONS[Math.floor(rand() * REASONS.length)] as string) : 'OK',
          deviceId,
          user,
          peer: { ip: `10.${(dev >> 8) & 255}.${dev & 255}.${1 + Math.floor(rand() * 250)}`, port: 1024 + Math.floor(rand() * 60000) },
          concentrator: { ...conc },
          cert: { sha256: createHash('sha256').update(deviceId).digest('hex'), serialHex: (0x100000 + dev).toString(16), cn: deviceId },
          ids: { username: user },
          session: { ovpnCid: i % 100_000, ovpnKid: 1 },
          latencyMs: Math.round(rand() * 4000) / 100,
          policyVersion: '2026-11-26.3',
        },
      };
    }
    const k = Math.floor(rand() * 6);
    switch (k) {
      case 0:
        return { type: 'device.status_change', timeMs, actor: admin, data: { deviceId, from: 'active', to: 'suspended', reason: 'reported lost' } };
      case 1:
        return {
          type: 'cert.issue',
          timeMs,
          data: { deviceId, serialHex: (0x200000 + i).toString(16), sha256: createHash('sha256').update(`c${i}`).digest('hex'), notBefore: new Date(timeMs).toISOString(), notAfter: new Date(timeMs + 7 * DAY).toISOString(), via: 'renew' },
        };
      case 2:
        return { type: 'admin.login', timeMs, actor: admin, data: { user: admin.id, method: 'saml', outcome: 'success', roles: ['it-admin'] } };
      case 3:
        return { type: 'api_token.use', timeMs, actor: { kind: 'token', id: 'tok-ovpn-01', role: 'concentrator' }, data: { tokenId: 'tok-ovpn-01', route: 'POST /v1/decisions' } };
      case 4:
        return { type: 'device.enroll.start', timeMs, data: { deviceId, peer: { ip: '198.51.100.7' }, platform: 'windows' } };
      default:
        return { type: 'cert.revoke', timeMs, actor: admin, data: { deviceId, serialHex: (0x100000 + dev).toString(16), reason: 'superseded' } };
    }
  };
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** Runs the audit benchmark on each back-end and prints its figures; see the file comment. */
export async function runAuditBench(opts: AuditBenchOptions = {}): Promise<AuditBenchResult[]> {
  const events = opts.events ?? 200_000;
  const backends = String(opts.backends ?? (events <= 2_000_000 ? 'sqlite,redis' : 'sqlite'))
    .split(',')
    .map((b) => b.trim()) as ('sqlite' | 'redis')[];
  const results: AuditBenchResult[] = [];
  for (const backend of backends) results.push(await runOn(backend, opts));
  return results;
}

/** Where the benchmark writes: the store under test, a bare-write floor of the same rows, the same query bare. */
interface BenchTarget {
  readonly store: Store;
  /** Writes `rows` with nothing but the back-end's own bulk write (no chain, no validation), in batches of `batch`. */
  bareWrite(rows: readonly AuditEntry[], batch: number): Promise<void>;
  /** The filtered query as bare back-end calls, or null where there is no lower-level equivalent. */
  bareQuery: ((deviceId: string, from: number, to: number) => Promise<unknown>) | null;
  bytes(): Promise<number>;
  close(): Promise<void>;
}

async function sqliteTarget(dir: string): Promise<BenchTarget> {
  const dbPath = path.join(dir, 'audit.sqlite');
  const store = openSqliteStore({ path: dbPath, synchronous: 'FULL' });
  const floor = new Database(path.join(dir, 'floor.sqlite'));
  floor.pragma('journal_mode = WAL');
  floor.pragma('synchronous = FULL');
  floor.exec(`CREATE TABLE audit_entries (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, time INTEGER NOT NULL, type TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL, device_id TEXT, user TEXT, decision TEXT, reason TEXT, concentrator TEXT) STRICT;
    CREATE INDEX audit_time ON audit_entries (time);
    CREATE INDEX audit_device ON audit_entries (device_id, seq) WHERE device_id IS NOT NULL;
    CREATE INDEX audit_user ON audit_entries (user, seq) WHERE user IS NOT NULL;
    CREATE INDEX audit_type ON audit_entries (type, seq);
    CREATE INDEX audit_reason ON audit_entries (reason, seq) WHERE reason IS NOT NULL;
    CREATE INDEX audit_concentrator ON audit_entries (concentrator, seq) WHERE concentrator IS NOT NULL;`);
  const ins = floor.prepare(
    'INSERT INTO audit_entries VALUES (@seq, @eventId, @time, @type, @prevHash, @hash, @body, @deviceId, @user, @decision, @reason, @concentrator)',
  );
  const insertBatch = floor.transaction((rows: readonly AuditEntry[]) => {
    for (const r of rows) ins.run(r);
  });
  let bare: Database.Database | null = null;
  let bareStmt: Database.Statement | null = null;
  return {
    store,
    async bareWrite(rows, batch) {
      for (let k = 0; k < rows.length; k += batch) insertBatch.immediate(rows.slice(k, k + batch));
    },
    async bareQuery(deviceId, from, to) {
      bare ??= new Database(dbPath, { readonly: true });
      bareStmt ??= bare.prepare('SELECT * FROM audit_entries WHERE device_id = ? AND time >= ? AND time < ? ORDER BY seq DESC LIMIT 101');
      return bareStmt.all(deviceId, from, to);
    },
    async bytes() {
      return ['', '-wal'].reduce((n, sfx) => {
        try {
          return n + statSync(dbPath + sfx).size;
        } catch {
          return n;
        }
      }, 0);
    },
    async close() {
      bare?.close();
      floor.close();
      await store.close();
    },
  };
}

async function redisTarget(): Promise<BenchTarget> {
  const server = await startRedisServer();
  const store = await openRedisStore({ url: server.url, keyPrefix: 'dg', commandTimeoutMs: 60_000, connectTimeoutMs: 5000 });
  const raw = new Redis(server.url);
  return {
    store,
    async bareWrite(rows, batch) {
      for (let k = 0; k < rows.length; k += batch) {
        const p = raw.pipeline();
        for (const r of rows.slice(k, k + batch)) p.hset('floor:entries', String(r.seq), JSON.stringify(r));
        await p.exec();
      }
    },
    bareQuery: null,
    async bytes() {
      const info = await raw.info('memory');
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    },
    async close() {
      raw.disconnect();
      await store.close();
      await server.cleanup();
    },
  };
}

async function runOn(backend: 'sqlite' | 'redis', opts: AuditBenchOptions): Promise<AuditBenchResult> {
  const o = {
    events: opts.events ?? 200_000,
    devices: opts.devices ?? 5000,
    users: opts.users ?? 3000,
    days: opts.days ?? 90,
    concurrency: opts.concurrency ?? 1024,
    querySamples: opts.querySamples ?? 400,
  };
  const offline = opts.offline ?? o.events <= 2_000_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), `dg-bench-audit-${backend}-`));
  const target = backend === 'sqlite' ? await sqliteTarget(dir) : await redisTarget();
  const store = target.store;
  const { privateKey } = generateKeyPairSync('ed25519');
  const signer = createAuditSigner(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const keys = new AuditPublicKeys([signer.publicKeyPem]);
  const figures: Figure[] = [];
  const start = Date.UTC(2026, 7, 1);
  const gen = generator(o, start);
  log(`audit bench (${backend}): ${o.events.toLocaleString('en-US')} events, ${o.devices} devices, ${o.days} days, concurrency ${o.concurrency}, dir ${dir}`);

  try {
    // ---- append through AuditLog ----------------------------------------------------------------------------
    const batches: number[] = [];
    let conflicts = 0;
    const audit = await AuditLog.open({
      store: store.audit,
      signer,
      clock: systemClock,
      spoolDir: path.join(dir, 'spool'),
      checkpointEveryEntries: 1000,
      hooks: { onCommit: (c) => batches.push(c.entries), onConflict: () => (conflicts += 1) },
    });
    let inflight = 0;
    let wake: (() => void) | null = null;
    const state: { failure: Error | null } = { failure: null };
    const done = (): void => {
      inflight -= 1;
      if (wake) {
        const w = wake;
        wake = null;
        w();
      }
    };
    const t0 = performance.now();
    for (let i = 0; i < o.events; i++) {
      while (inflight >= o.concurrency) await new Promise<void>((r) => (wake = r));
      if (state.failure) throw state.failure;
      inflight += 1;
      audit.append(gen(i)).then(done, (e: unknown) => {
        state.failure = e instanceof Error ? e : new Error(String(e));
        done();
      });
      if (i > 0 && i % 1_000_000 === 0) log(`  appended ${i.toLocaleString('en-US')} (${Math.round(i / ((performance.now() - t0) / 1000))}/s)`);
    }
    await audit.flush();
    if (state.failure) throw state.failure;
    const appendSecs = (performance.now() - t0) / 1000;
    await audit.close();
    const head = (await store.audit.head()) as { seq: number; hash: string };
    const entries = head.seq;
    figures.push({
      name: 'append via AuditLog (events/s)',
      opsPerSec: o.events / appendSecs,
      baseline: backend === 'sqlite' ? 'bare INSERT floor (rows/s)' : 'bare pipelined HSET floor (rows/s)',
    });
    const avgBatch = batches.reduce((a, b) => a + b, 0) / Math.max(1, batches.length);
    log(`  append: ${Math.round(o.events / appendSecs)}/s, ${batches.length} commits, avg ${avgBatch.toFixed(1)} entries/commit`);

    // ---- floor: the same rows written bare (no chain, no validation), same batch size ----------------------------
    const floorRows = Math.min(entries, 500_000);
    const batchSize = Math.max(1, Math.round(avgBatch));
    let floorSecs = 0;
    for (let next = 1; next <= floorRows; ) {
      const rows = await store.audit.range(next, Math.min(floorRows, next + 20_000 - 1), 20_000);
      const tf = performance.now();
      await target.bareWrite(rows, batchSize);
      floorSecs += (performance.now() - tf) / 1000;
      next += rows.length;
    }
    const floorName = backend === 'sqlite' ? 'bare INSERT floor (rows/s)' : 'bare pipelined HSET floor (rows/s)';
    figures.push({ name: floorName, opsPerSec: floorRows / floorSecs });

    // ---- verify ------------------------------------------------------------------------------------------------
    const tv = performance.now();
    const vr = await verifyRange(store.audit, undefined, undefined, { keys, pageSize: 5000 });
    const verifySecs = (performance.now() - tv) / 1000;
    if (!vr.ok) throw new Error(`verification failed: ${vr.code} at ${vr.brokenSeq}`);
    figures.push({ name: 'verifyRange (rows/s)', opsPerSec: entries / verifySecs, baseline: 'store.range + SHA-256 only (rows/s)' });
    const th = performance.now();
    for (let next = 1; next <= entries; ) {
      const rows = await store.audit.range(next, entries, 5000);
      for (const r of rows) hashBody(r.body);
      next += rows.length;
    }
    figures.push({ name: 'store.range + SHA-256 only (rows/s)', opsPerSec: entries / ((performance.now() - th) / 1000) });

    // ---- export --------------------------------------------------------------------------------------------------
    const tr = performance.now();
    for (let next = 1; next <= entries; ) next += (await store.audit.range(next, entries, 1000)).length;
    figures.push({ name: 'store.range read only (rows/s)', opsPerSec: entries / ((performance.now() - tr) / 1000) });
    const exportFile = path.join(dir, 'export.ndjson');
    const te = performance.now();
    let exportBytes = 0;
    const sink = offline ? createWriteStream(exportFile, { highWaterMark: 1 << 20 }) : null;
    for await (const chunk of exportAudit({ store: store.audit, signer, format: 'ndjson', source: { mode: 'range' }, nowMs: Date.now() })) {
      exportBytes += chunk.length;
      if (sink && !sink.write(chunk)) await new Promise<void>((r) => sink.once('drain', () => r()));
    }
    if (sink) {
      await new Promise<void>((resolve, reject) => {
        sink.once('error', reject);
        sink.end(() => resolve());
      });
    }
    figures.push({ name: `NDJSON export${offline ? ' to file' : ''} (rows/s)`, opsPerSec: entries / ((performance.now() - te) / 1000), baseline: 'store.range read only (rows/s)' });
    const tc = performance.now();
    for await (const chunk of exportAudit({ store: store.audit, signer, format: 'csv', source: { mode: 'range' }, nowMs: Date.now() })) void chunk;
    figures.push({ name: 'CSV export (rows/s)', opsPerSec: entries / ((performance.now() - tc) / 1000), baseline: 'store.range read only (rows/s)' });

    if (offline) {
      const to = performance.now();
      const fr = await verifyExportFile(exportFile, signer.publicKeyPem);
      if (!fr.ok) throw new Error(`offline verification failed: ${fr.code}`);
      figures.push({ name: 'offline verifyExportFile (rows/s)', opsPerSec: entries / ((performance.now() - to) / 1000), baseline: 'store.range + SHA-256 only (rows/s)' });
      log(`  export file ${(statSync(exportFile).size / 1e6).toFixed(0)} MB`);
      rmSync(exportFile, { force: true });
    }
    void exportBytes;

    // ---- filtered query: one device, one day -----------------------------------------------------------------------
    const rand = xorshift(7);
    const lat: number[] = [];
    const bareLat: number[] = [];
    let rows = 0;
    for (let sample = 0; sample < o.querySamples; sample++) {
      const deviceId = `dev-${Math.floor(rand() * o.devices).toString().padStart(6, '0')}`;
      const day = start + Math.floor(rand() * o.days) * DAY;
      const tq = performance.now();
      const page = await store.audit.query({ deviceId, fromTime: day, toTime: day + DAY }, { limit: 100 });
      lat.push(performance.now() - tq);
      rows += page.items.length;
      if (target.bareQuery) {
        const tb = performance.now();
        await target.bareQuery(deviceId, day, day + DAY);
        bareLat.push(performance.now() - tb);
      }
    }
    const query = {
      p50: median(lat),
      p95: percentile(lat, 95),
      p99: percentile(lat, 99),
      bareP95: bareLat.length ? percentile(bareLat, 95) : null,
      avgRows: rows / o.querySamples,
    };

    const dbBytes = await target.bytes();
    printFigures(`audit (${backend === 'sqlite' ? 'SQLite' : 'Redis'}, ${o.events.toLocaleString('en-US')} events → ${entries.toLocaleString('en-US')} entries incl. checkpoints)`, figures);
    process.stdout.write(
      [
        '',
        `filtered query, one device × one day, first page (limit 100), ${o.querySamples} samples, avg ${query.avgRows.toFixed(1)} rows:`,
        `  p50 ${query.p50.toFixed(2)} ms, p95 ${query.p95.toFixed(2)} ms, p99 ${query.p99.toFixed(2)} ms${query.bareP95 === null ? '' : ` (same SQL on a bare connection: p95 ${query.bareP95.toFixed(2)} ms)`}`,
        `group commit: ${batches.length} commits, avg ${avgBatch.toFixed(1)} entries/commit, max ${Math.max(...batches)}, conflicts ${conflicts}`,
        `${backend === 'sqlite' ? 'database size' : 'redis used_memory'} ${(dbBytes / 1e6).toFixed(0)} MB`,
        `targets: query p95 ≤ 50 ms ${query.p95 <= 50 ? 'met' : 'MISSED'}; export ≥ 100k rows/s ${(figures.find((f) => f.name.startsWith('NDJSON'))?.opsPerSec ?? 0) >= 100_000 ? 'met' : 'MISSED'}; verify ≥ 200k rows/s ${(figures.find((f) => f.name.startsWith('verifyRange'))?.opsPerSec ?? 0) >= 200_000 ? 'met' : 'MISSED'}`,
        '',
      ].join('\n'),
    );
    return {
      backend,
      events: o.events,
      entries,
      figures,
      query,
      batch: { commits: batches.length, avgEntries: avgBatch, maxEntries: Math.max(...batches), conflicts },
      dbBytes,
    };
  } finally {
    await target.close();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}
