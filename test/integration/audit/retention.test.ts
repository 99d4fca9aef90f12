import path from 'node:path';
import { AuditLog } from '../../../src/audit/audit-log';
import { exportAudit } from '../../../src/audit/export';
import { type RetentionPolicy, planRetention, runRetention } from '../../../src/audit/retention';
import { verifyExportStream, verifyRange } from '../../../src/audit/verify';
import { ManualClock } from '../../../src/lib/clock';
import { T0, adminInput, decisionInput, keysOf, newSigner } from '../../unit/audit/fixtures';
import { type TempSqlite, allEntries, rawDb, tempSqlite } from './helpers';

const DAY = 86_400_000;
const signer = newSigner();
const keys = keysOf(signer);
const policy: RetentionPolicy = { days: { 'vpn.decision': 90 }, defaultDays: 365 };

describe('retention job on SQLite', () => {
  let db: TempSqlite;
  let clock: ManualClock;
  let log: AuditLog;
  /** seq of the old admin event that must outlive the old decisions */
  let adminSeq: number;

  beforeEach(async () => {
    db = tempSqlite('dg-audit-retention-');
    clock = new ManualClock(T0);
    log = await AuditLog.open({ store: db.store.audit, signer, clock, spoolDir: path.join(db.dir, 'spool'), checkpointEveryEntries: 10 });
    const old = T0 - 100 * DAY;
    for (let i = 0; i < 20; i++) await log.append(decisionInput(i, { timeMs: old + i }));
    adminSeq = (await log.append(adminInput(1, old + 50))).seq as number;
    for (let i = 20; i < 30; i++) await log.append(decisionInput(i, { timeMs: old + 100 + i }));
    for (let i = 30; i < 40; i++) await log.append(decisionInput(i, { timeMs: T0 - DAY + i }));
  });
  afterEach(async () => {
    await log.close();
    await db.cleanup();
  });

  const exportAndVerify = async () => {
    const chunks: string[] = [];
    for await (const c of exportAudit({ store: db.store.audit, signer, format: 'ndjson', source: { mode: 'range' }, nowMs: clock.nowMs() })) chunks.push(c);
    return verifyExportStream(chunks.map((c) => Buffer.from(c)), keys);
  };

  it('deletes the expired prefix up to the first entry that must be kept, leaving a chain that verifies', async () => {
    const before = await allEntries(db.store.audit);
    const plan = await planRetention(db.store.audit, policy, T0, keys);
    expect(plan.throughSeq).toBe(adminSeq - 1);
    expect(plan.stoppedAt).toMatchObject({ seq: adminSeq, type: 'device.status_change' });

    const result = await runRetention({ store: db.store.audit, log, signer, keys, policy, nowMs: T0 });
    expect(result.deleted).toBe(adminSeq - 1);
    expect(await db.store.audit.firstSeq()).toBe(adminSeq);
    const after = await allEntries(db.store.audit);
    expect(after).toHaveLength(before.length - result.deleted + 1);
    const record = after.find((e) => e.seq === result.recordSeq);
    expect(record?.type).toBe('audit.retention');
    expect(JSON.parse(record?.body as string).data).toMatchObject({ deletedThroughSeq: adminSeq - 1, deletedThroughHash: before[adminSeq - 2]?.hash, deletedCount: adminSeq - 1 });

    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true, firstSeq: adminSeq, startAnchor: 'retention' });
    expect(await exportAndVerify()).toMatchObject({ ok: true, firstSeq: adminSeq, startAnchor: 'retention' });
  });

  it('deletes again later once the kept entry expires; the newest record anchors the new start', async () => {
    await runRetention({ store: db.store.audit, log, signer, keys, policy, nowMs: T0 });
    clock.advance(300 * DAY);
    const second = await runRetention({ store: db.store.audit, log, signer, keys, policy, nowMs: clock.nowMs() });
    expect(second.deleted).toBeGreaterThan(20);
    const first = (await db.store.audit.firstSeq()) as number;
    expect(first).toBe((second.plan.throughSeq as number) + 1);
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: true, startAnchor: 'retention' });
    expect(await exportAndVerify()).toMatchObject({ ok: true });
  });

  it('writes no record and deletes nothing when nothing has expired', async () => {
    const r = await runRetention({ store: db.store.audit, log, signer, keys, policy, nowMs: T0 - 99 * DAY });
    expect(r).toMatchObject({ deleted: 0, recordSeq: null });
    expect(await db.store.audit.firstSeq()).toBe(1);
  });

  it('refuses to delete a prefix whose chain was tampered with (the evidence is kept)', async () => {
    const raw = rawDb(db.dbPath);
    const row = raw.prepare('SELECT body FROM audit_entries WHERE seq=5').get() as { body: string };
    raw.prepare('UPDATE audit_entries SET body=? WHERE seq=5').run(row.body.replace('"event":"connect"', '"event":"reauth"'));
    raw.close();
    const head = await db.store.audit.head();
    await expect(runRetention({ store: db.store.audit, log, signer, keys, policy, nowMs: T0 })).rejects.toMatchObject({
      code: 'AUDIT_RETENTION_REFUSED',
      details: { brokenSeq: 5, code: 'HASH_MISMATCH' },
    });
    expect(await db.store.audit.firstSeq()).toBe(1);
    expect(await db.store.audit.head()).toEqual(head);
  });

  it('rejects a prefix deleted outside the retention job (no signed record vouches for the new start)', async () => {
    const raw = rawDb(db.dbPath);
    raw.prepare('DELETE FROM audit_entries WHERE seq < 6').run();
    raw.close();
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: false, code: 'UNANCHORED_START', brokenSeq: 6 });
  });

  it('rejects deleting more than the signed retention record covers', async () => {
    await runRetention({ store: db.store.audit, log, signer, keys, policy, nowMs: T0 });
    const raw = rawDb(db.dbPath);
    raw.prepare('DELETE FROM audit_entries WHERE seq < ?').run(adminSeq + 3);
    raw.close();
    expect(await verifyRange(db.store.audit, undefined, undefined, { keys })).toMatchObject({ ok: false, code: 'UNANCHORED_START', brokenSeq: adminSeq + 3 });
  });
});
