/**
 * `npm run bench -- store`: consume-once and audit append throughput of both store back-ends, each beside a floor
 * measured in the same run: a bare better-sqlite3 statement of the same shape, and a bare ioredis command.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import type { AuditEntry } from '../src/domain/types';
import { openRedisStore } from '../src/store/redis';
import { openSqliteStore } from '../src/store/sqlite';
import type { AuditHead, Store } from '../src/store/types';
import { startRedisServer } from '../test/helpers/redis-server';
import { opsPerSecond, opsPerSecondConcurrent, printFigures, type Figure } from './lib/measure';

interface StoreBenchOptions {
  ops?: number;
  concurrency?: number;
}

function auditEntry(seq: number, prevHash: string): AuditEntry {
  const hash = randomUUID().replace(/-/g, '').padEnd(64, '0');
  return {
    seq,
    eventId: randomUUID(),
    time: Date.now(),
    type: 'vpn.decision',
    prevHash,
    hash,
    body: JSON.stringify({ seq, type: 'vpn.decision', decision: 'allow', reason: 'OK', device: 'dev-1' }),
    deviceId: 'dev-1',
    user: 'erika',
    decision: 'allow',
    reason: 'OK',
    concentrator: 'ovpn-1',
  };
}

async function storeFigures(label: string, store: Store, ops: number, concurrency: number): Promise<{ consume: number; append: number }> {
  const now = Date.now();
  // Pre-fill outside the timed loop: consume-once is what the enrollment finish step does per device.
  for (let r = 0; r < 3; r++) {
    for (let i = 0; i < ops; i++) await store.nonces.put(`b${r * ops + i}`, 'v', 600_000, now);
  }
  const consume =
    store.backend === 'redis'
      ? await opsPerSecondConcurrent(ops, concurrency, (i) => store.nonces.consume(`b${i}`, now))
      : await opsPerSecond(ops, (i) => store.nonces.consume(`b${i}`, now));
  let head: AuditHead | null = await store.audit.head();
  // Appends are a chain: one at a time (the audit log batches them, measured in the audit bench).
  const append = await opsPerSecond(ops, async () => {
    const e = auditEntry((head?.seq ?? 0) + 1, head?.hash ?? '0'.repeat(64));
    await store.audit.appendIfHead(head, [e]);
    head = { seq: e.seq, hash: e.hash };
  });
  process.stderr.write(`${label}: consume ${Math.round(consume)}/s, append ${Math.round(append)}/s\n`);
  return { consume, append };
}

export async function runStoreBench(opts: StoreBenchOptions = {}): Promise<Figure[]> {
  const ops = opts.ops ?? 5000;
  const concurrency = opts.concurrency ?? 32;
  const figures: Figure[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-bench-store-'));
  try {
    // SQLite floor: the same statements on a bare connection with the same pragmas (WAL, synchronous=FULL).
    const db = new Database(path.join(dir, 'floor.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE n (key TEXT PRIMARY KEY, value TEXT, expires_at INTEGER) STRICT');
    db.exec('CREATE TABLE a (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, body TEXT) STRICT');
    const ins = db.prepare('INSERT INTO n VALUES (?, ?, ?)');
    for (let i = 0; i < ops * 3; i++) ins.run(`b${i}`, 'v', Date.now() + 600_000);
    const del = db.prepare('DELETE FROM n WHERE key = ? RETURNING value, expires_at');
    const sqliteConsumeFloor = await opsPerSecond(ops, (i) => del.get(`b${i}`));
    const insA = db.prepare('INSERT INTO a VALUES (?, ?, ?)');
    let floorSeq = 0;
    const sqliteAppendFloor = await opsPerSecond(ops, () => insA.run(++floorSeq, randomUUID(), '{"x":1}'));
    db.close();

    const sqlite = openSqliteStore({ path: path.join(dir, 'store.db') });
    const s = await storeFigures('sqlite', sqlite, ops, concurrency);
    await sqlite.close();
    figures.push(
      { name: 'sqlite floor: DELETE…RETURNING', opsPerSec: sqliteConsumeFloor },
      { name: 'sqlite nonces.consume', opsPerSec: s.consume, baseline: 'sqlite floor: DELETE…RETURNING' },
      { name: 'sqlite floor: INSERT (autocommit, FULL)', opsPerSec: sqliteAppendFloor },
      { name: 'sqlite audit.appendIfHead (1 entry)', opsPerSec: s.append, baseline: 'sqlite floor: INSERT (autocommit, FULL)' },
    );

    let server;
    try {
      server = await startRedisServer();
    } catch (e) {
      process.stderr.write(`redis part skipped: cannot start redis-server (${(e as Error).message}); apt-get install -y redis-server\n`);
    }
    if (server) {
      try {
        const bare = new Redis(server.url);
        for (let i = 0; i < ops * 3; i++) await bare.set(`f${i}`, 'v', 'PX', 600_000);
        const redisConsumeFloor = await opsPerSecondConcurrent(ops, concurrency, (i) => bare.getdel(`f${i}`));
        let hs = 0;
        const redisAppendFloor = await opsPerSecond(ops, () => bare.hset('floor:a', String(++hs), '{"x":1}'));
        await bare.quit();
        const redis = await openRedisStore({ url: server.url, keyPrefix: 'bench', commandTimeoutMs: 5000, connectTimeoutMs: 2000 });
        const r = await storeFigures('redis', redis, ops, concurrency);
        await redis.close();
        figures.push(
          { name: `redis floor: GETDEL (${concurrency} in flight)`, opsPerSec: redisConsumeFloor },
          { name: `redis nonces.consume (${concurrency} in flight)`, opsPerSec: r.consume, baseline: `redis floor: GETDEL (${concurrency} in flight)` },
          { name: 'redis floor: HSET (sequential)', opsPerSec: redisAppendFloor },
          { name: 'redis audit.appendIfHead (1 entry, sequential)', opsPerSec: r.append, baseline: 'redis floor: HSET (sequential)' },
        );
      } finally {
        await server.cleanup();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printFigures(`store back-ends (${ops} ops per round, median of 3 rounds)`, figures);
  return figures;
}
