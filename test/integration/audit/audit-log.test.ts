import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { AuditLog, type AppendReceipt, type AuditLogHooks } from '../../../src/audit/audit-log';
import { verifyRange } from '../../../src/audit/verify';
import { ManualClock } from '../../../src/lib/clock';
import type { AuditEntry } from '../../../src/domain/types';
import { T0, adminInput, decisionInput, keysOf, newSigner } from '../../unit/audit/fixtures';
import { FaultInjectingAuditStore, type TempSqlite, allEntries, tempSqlite } from './helpers';

const signer = newSigner();
const keys = keysOf(signer);

interface Recorded {
  commits: { events: number; entries: number; attempts: number }[];
  conflicts: number;
  spooled: number;
  replayed: { events: number; duplicates: number }[];
  modes: string[];
  errors: unknown[];
}

function recorder(): { hooks: AuditLogHooks; rec: Recorded } {
  const rec: Recorded = { commits: [], conflicts: 0, spooled: 0, replayed: [], modes: [], errors: [] };
  return {
    rec,
    hooks: {
      onCommit: (i) => rec.commits.push(i),
      onConflict: () => (rec.conflicts += 1),
      onSpool: (i) => (rec.spooled += i.events),
      onReplay: (i) => rec.replayed.push(i),
      onModeChange: (m) => rec.modes.push(m),
      onError: (e) => rec.errors.push(e),
    },
  };
}

const callerEvents = (entries: AuditEntry[]) => entries.filter((e) => e.type !== 'audit.checkpoint');

describe('AuditLog on SQLite', () => {
  let db: TempSqlite;
  let clock: ManualClock;
  const logs: AuditLog[] = [];
  const open = async (over: Partial<Parameters<typeof AuditLog.open>[0]> = {}) => {
    const log = await AuditLog.open({
      store: db.store.audit,
      signer,
      clock,
      spoolDir: path.join(db.dir, 'spool'),
      checkpointEveryEntries: 100,
      checkpointIntervalMs: 60_000,
      spoolRetryMs: 60_000, // replays are triggered explicitly with replayNow() in these tests
      ...over,
    });
    logs.push(log);
    return log;
  };

  beforeEach(() => {
    db = tempSqlite();
    clock = new ManualClock(T0);
  });
  afterEach(async () => {
    for (const l of logs.splice(0)) await l.close().catch(() => undefined);
    await db.cleanup();
  });

  it('group commit: 500 concurrent appends become two atomic batches with consecutive seqs, and the chain verifies', async () => {
    const { hooks, rec } = recorder();
    const log = await open({ hooks, groupCommitMaxBatch: 256 });
    const receipts = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(decisionInput(i))));
    expect(receipts.every((r) => r.durable === 'store')).toBe(true);
    // All 500 were pending before the window closed: one full batch of 256, then the remaining 244.
    expect(rec.commits.map((c) => c.events)).toEqual([256, 244]);
    const seqs = receipts.map((r) => r.seq as number);
    expect(new Set(seqs).size).toBe(500);
    const stored = await allEntries(db.store.audit);
    // Entries appear in append order, with a checkpoint right after every seq that is a multiple of 100.
    expect(callerEvents(stored).map((e) => e.eventId)).toEqual(receipts.map((r) => r.eventId));
    expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
    expect(stored.filter((e) => e.type === 'audit.checkpoint').map((e) => e.seq)).toEqual([101, 201, 301, 401, 501]);
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true, checked: stored.length, checkpoints: 5 });
  });

  it('resolves append only once the entry is in the store', async () => {
    const log = await open();
    const r = await log.append(adminInput(1));
    expect(r).toMatchObject({ durable: 'store', seq: 1 });
    const [e] = await db.store.audit.range(1, 1, 1);
    expect(e?.eventId).toBe(r.eventId);
    expect(e?.hash).toBe(r.hash);
  });

  it('writes a time-based checkpoint once the interval has passed with new entries', async () => {
    const log = await open({ checkpointIntervalMs: 10_000 });
    await log.append(decisionInput(1));
    clock.advance(10_001);
    await log.append(decisionInput(2));
    const stored = await allEntries(db.store.audit);
    expect(stored.map((e) => e.type)).toEqual(['vpn.decision', 'vpn.decision', 'audit.checkpoint']);
    expect(log.latestCheckpoint()).toMatchObject({ seq: 2, hash: stored[1]?.hash, signedAt: new Date(T0 + 10_001).toISOString() });
  });

  it('close() covers the tail with a checkpoint and persists it as the truncation witness', async () => {
    const log = await open();
    for (let i = 0; i < 7; i++) await log.append(decisionInput(i));
    await log.close();
    const stored = await allEntries(db.store.audit);
    expect(stored[stored.length - 1]?.type).toBe('audit.checkpoint');
    const witness = JSON.parse(readFileSync(path.join(db.dir, 'spool', 'checkpoint.json'), 'utf8'));
    expect(witness).toMatchObject({ seq: 7, hash: stored[6]?.hash, keyId: signer.keyId });
    // A second open/close without new entries does not stack another checkpoint on the first.
    const again = await open();
    expect(again.latestCheckpoint()).toEqual(witness);
    await again.close();
    expect(await allEntries(db.store.audit)).toHaveLength(stored.length);
  });

  it('retries on a lost compare-and-set when another instance moved the head (two connections, one file)', async () => {
    const { hooks, rec } = recorder();
    const a = await open({ hooks });
    const other = db.reopen();
    const b = await open({ store: other.audit, spoolDir: path.join(db.dir, 'spool-b') });
    await a.append(decisionInput(1)); // a caches head 1
    await b.append(decisionInput(2)); // b moves the head behind a's back
    const r = await a.append(decisionInput(3)); // a's cached head is stale: Conflict, re-read, re-link
    expect(rec.conflicts).toBe(1);
    expect(r.seq).toBe(3);
    // Concurrent bursts from both instances keep one total order.
    await Promise.all([...Array.from({ length: 150 }, (_, i) => a.append(decisionInput(100 + i))), ...Array.from({ length: 150 }, (_, i) => b.append(decisionInput(300 + i)))]);
    const stored = await allEntries(db.store.audit);
    expect(callerEvents(stored)).toHaveLength(303);
    expect(new Set(stored.map((e) => e.eventId)).size).toBe(stored.length);
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true });
  });

  it('is idempotent by event id: re-appending a stored event does not duplicate it', async () => {
    const log = await open();
    const first = await log.append(decisionInput(1, { eventId: 'f0b5c4c2-7d5e-4a53-9d3c-4f1f9a1b2c3d' }));
    const again = await log.append(decisionInput(1, { eventId: 'f0b5c4c2-7d5e-4a53-9d3c-4f1f9a1b2c3d' }));
    expect(first.seq).toBe(1);
    expect(again).toMatchObject({ durable: 'store', seq: null });
    const [x, y] = await Promise.all([log.append(decisionInput(2, { eventId: 'same' })), log.append(decisionInput(2, { eventId: 'same' }))]);
    expect(x.eventId).toBe(y.eventId);
    expect(callerEvents(await allEntries(db.store.audit))).toHaveLength(2);
  });

  it('spools during a store outage (real SQLite connection closed), then replays in order when the store returns', async () => {
    const { hooks, rec } = recorder();
    const faulty = new FaultInjectingAuditStore(db.store.audit);
    const log = await open({ store: faulty, hooks });
    const before = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(decisionInput(i))));
    expect(before.every((r) => r.durable === 'store')).toBe(true);

    await db.store.close(); // the database goes away: real driver errors from now on
    const during: AppendReceipt[] = [];
    for (let i = 0; i < 3; i++) during.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => log.append(decisionInput(100 + i * 10 + k))))));
    expect(during.every((r) => r.durable === 'spool')).toBe(true);
    expect(log.mode).toBe('spooling');
    expect(rec.spooled).toBe(30);
    const spoolText = readFileSync(path.join(db.dir, 'spool', 'spool.ndjson'), 'utf8');
    expect(spoolText.trim().split('\n')).toHaveLength(30);

    // Still down: a replay attempt fails and keeps everything.
    expect(await log.replayNow()).toBe(false);
    expect(log.mode).toBe('spooling');

    // The store comes back (reconnect): replay moves the spool into the chain, in order.
    db.store = db.reopen();
    faulty.target = db.store.audit;
    expect(await log.replayNow()).toBe(true);
    expect(log.mode).toBe('direct');
    expect(log.spooledBytes).toBe(0);
    const after = await log.append(decisionInput(999));
    expect(after.durable).toBe('store');

    const stored = callerEvents(await allEntries(db.store.audit));
    expect(stored.map((e) => e.eventId)).toEqual([...before, ...during, after].map((r) => r.eventId));
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true });
    expect(rec.modes).toEqual(['spooling', 'direct']);
  });

  it('keeps append order when appends arrive while a long spool is being replayed', async () => {
    const faulty = new FaultInjectingAuditStore(db.store.audit);
    const log = await open({ store: faulty, groupCommitMaxBatch: 4 });
    faulty.mode = 'down';
    const spooled = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(decisionInput(i))));
    faulty.mode = 'up';
    // The replay runs in bounded steps; these appends get their turn between steps and must land after the spool.
    const replay = log.replayNow();
    const late = await Promise.all(Array.from({ length: 5 }, (_, i) => log.append(decisionInput(100 + i))));
    expect(await replay).toBe(true);
    await log.flush();
    expect(await log.replayNow()).toBe(true);
    const stored = callerEvents(await allEntries(db.store.audit));
    expect(stored.map((e) => e.eventId)).toEqual([...spooled, ...late].map((r) => r.eventId));
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true });
  });

  it('replays idempotently: a batch committed before its reply was lost is not written twice', async () => {
    const { hooks, rec } = recorder();
    const faulty = new FaultInjectingAuditStore(db.store.audit);
    const log = await open({ store: faulty, hooks });
    await log.append(decisionInput(0));
    faulty.mode = 'lose-reply';
    const lost = await Promise.all(Array.from({ length: 5 }, (_, i) => log.append(decisionInput(10 + i))));
    expect(lost.every((r) => r.durable === 'spool')).toBe(true);
    faulty.mode = 'up';
    expect(await log.replayNow()).toBe(true);
    const stored = callerEvents(await allEntries(db.store.audit));
    expect(stored).toHaveLength(6);
    expect(new Set(stored.map((e) => e.eventId)).size).toBe(6);
    expect(rec.replayed.reduce((n, r) => n + r.duplicates, 0)).toBe(5);
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true });
  });

  it('replays a spool left by an earlier process at the next start, after repairing a torn tail', async () => {
    const faulty = new FaultInjectingAuditStore(db.store.audit);
    const first = await open({ store: faulty });
    await first.append(decisionInput(0));
    faulty.mode = 'down';
    const spooled = await Promise.all(Array.from({ length: 8 }, (_, i) => first.append(decisionInput(i + 1))));
    await first.close(); // store still down: the spool stays on disk, as after a crash
    // A crash in the middle of a later append left half a line.
    const { appendFileSync } = await import('node:fs');
    appendFileSync(path.join(db.dir, 'spool', 'spool.ndjson'), 'deadbeefdeadbeef {"v":1,"even');

    const second = await open(); // store is up for the new process
    expect(second.mode).toBe('spooling');
    expect(await second.replayNow()).toBe(true);
    const stored = callerEvents(await allEntries(db.store.audit));
    expect(stored.map((e) => e.eventId).slice(1)).toEqual(spooled.map((r) => r.eventId));
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true });
  });

  it('rejects instead of spooling when the caller requires the store (retention record) during an outage', async () => {
    const faulty = new FaultInjectingAuditStore(db.store.audit);
    const log = await open({ store: faulty });
    faulty.mode = 'down';
    await expect(log.append(adminInput(1), { requireStore: true })).rejects.toMatchObject({ kind: 'unavailable', code: 'AUDIT_STORE_UNAVAILABLE' });
    expect(existsSync(path.join(db.dir, 'spool', 'spool.ndjson'))).toBe(true);
    expect(log.spooledBytes).toBe(0);
  });

  it('fails closed when neither the store nor the spool can persist (disk full)', async () => {
    const spoolDir = path.join(db.dir, 'full-spool');
    mkdirSync(spoolDir);
    symlinkSync('/dev/full', path.join(spoolDir, 'spool.ndjson'));
    const faulty = new FaultInjectingAuditStore(db.store.audit);
    const log = await open({ store: faulty, spoolDir });
    faulty.mode = 'down';
    await expect(log.append(decisionInput(1))).rejects.toMatchObject({ kind: 'unavailable', code: 'AUDIT_UNAVAILABLE' });
  });

  it('rejects an event that does not match the schema without writing anything', async () => {
    const log = await open();
    await expect(log.append({ type: 'cert.revoke', data: { deviceId: 'd', serialHex: '0a', reason: 'keyCompromise' } })).rejects.toMatchObject({
      kind: 'bad_request',
      code: 'AUDIT_EVENT_INVALID',
    });
    expect(await db.store.audit.head()).toBeNull();
  });

  it('rejects appends after close', async () => {
    const log = await open();
    await log.close();
    await expect(log.append(decisionInput(1))).rejects.toMatchObject({ code: 'AUDIT_LOG_CLOSED' });
  });
});
