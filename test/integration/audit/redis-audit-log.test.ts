import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditLog } from '../../../src/audit/audit-log';
import { exportAudit } from '../../../src/audit/export';
import { verifyExportStream, verifyRange } from '../../../src/audit/verify';
import { systemClock } from '../../../src/lib/clock';
import { openRedisStore } from '../../../src/store/redis';
import type { Store } from '../../../src/store/types';
import { type RedisServerHandle, redisServer, startRedisServer } from '../../helpers/redis-server';
import { describeWith } from '../../helpers/requirements';
import { decisionInput, keysOf, newSigner } from '../../unit/audit/fixtures';
import { allEntries } from './helpers';

const signer = newSigner();
const keys = keysOf(signer);

describeWith([redisServer], 'AuditLog on Redis: two gateway instances, one chain, outage and replay', () => {
  let redis: RedisServerHandle;
  let dir: string;
  const stores: Store[] = [];
  const logs: AuditLog[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-audit-redis-'));
  });
  afterAll(async () => {
    for (const l of logs) await l.close().catch(() => undefined);
    for (const s of stores) await s.close().catch(() => undefined);
    await redis.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const instance = async (name: string): Promise<{ store: Store; log: AuditLog }> => {
    const store = await openRedisStore({ url: redis.url, keyPrefix: 'dg-audit-test:', commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
    const log = await AuditLog.open({ store: store.audit, signer, clock: systemClock, spoolDir: path.join(dir, name), checkpointEveryEntries: 50, spoolRetryMs: 60_000 });
    stores.push(store);
    logs.push(log);
    return { store, log };
  };

  it('keeps one verifiable chain across instances, spools through a Redis restart and replays without duplicates', async () => {
    const a = await instance('a');
    const b = await instance('b');
    const burst = (from: number) =>
      Promise.all([
        ...Array.from({ length: 100 }, (_, i) => a.log.append(decisionInput(from + i))),
        ...Array.from({ length: 100 }, (_, i) => b.log.append(decisionInput(from + 1000 + i))),
      ]);
    const first = await burst(0);
    expect(first.every((r) => r.durable === 'store')).toBe(true);

    await redis.stop(); // a real outage: the server process is gone
    const during = await burst(5000);
    expect(during.every((r) => r.durable === 'spool')).toBe(true);
    expect(a.log.mode).toBe('spooling');
    expect(b.log.mode).toBe('spooling');

    await redis.start(); // AOF brings the data back; ioredis reconnects by itself
    for (let i = 0; i < 50 && !(await a.store.ping()).ok; i++) await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 50 && !(await b.store.ping()).ok; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await a.log.replayNow()).toBe(true);
    expect(await b.log.replayNow()).toBe(true);
    const after = await burst(9000);
    expect(after.every((r) => r.durable === 'store')).toBe(true);

    const stored = (await allEntries(a.store.audit)).filter((e) => e.type !== 'audit.checkpoint');
    const expected = [...first, ...during, ...after].map((r) => r.eventId);
    expect(stored).toHaveLength(expected.length);
    expect(new Set(stored.map((e) => e.eventId))).toEqual(new Set(expected));
    expect(await verifyRange(a.store.audit, undefined, undefined, { keys, anchors: [a.log.latestCheckpoint(), b.log.latestCheckpoint()].filter((c) => c !== null) })).toMatchObject({ ok: true, startAnchor: 'genesis' });

    const chunks: string[] = [];
    for await (const c of exportAudit({ store: b.store.audit, signer, format: 'ndjson', source: { mode: 'range' }, nowMs: Date.now() })) chunks.push(c);
    expect(await verifyExportStream(chunks, keys)).toMatchObject({ ok: true });
  });
});
