import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { AuditLog } from '../../../src/audit/audit-log';
import { hashBody, link } from '../../../src/audit/chain';
import { type ExportSource, exportAudit } from '../../../src/audit/export';
import { createPseudonymiser, type Pseudonymiser } from '../../../src/audit/pseudonym';
import { checkpointMessage, trailerMessage } from '../../../src/audit/signing';
import { createProgressBar, type ExportVerifyProgress, verifyExportFile, verifyRange } from '../../../src/audit/verify';
import type { AuditEntry } from '../../../src/domain/types';
import { canonicalJson } from '../../../src/lib/canonical-json';
import { ManualClock } from '../../../src/lib/clock';
import { T0, adminInput, decisionInput, newSigner, keysOf, relinkFrom } from '../../unit/audit/fixtures';
import { type TempSqlite, allEntries, rawDb, tempSqlite } from './helpers';

const signer = newSigner();
const keys = keysOf(signer);
const pubPem = signer.publicKeyPem;

let db: TempSqlite;
let witness: ReturnType<AuditLog['latestCheckpoint']>;

beforeAll(async () => {
  db = tempSqlite('dg-audit-export-');
  const clock = new ManualClock(T0);
  const log = await AuditLog.open({ store: db.store.audit, signer, clock, spoolDir: path.join(db.dir, 'spool'), checkpointEveryEntries: 10 });
  for (let i = 0; i < 60; i++) {
    clock.advance(1000);
    await log.append(i % 10 === 9 ? adminInput(i) : decisionInput(i, i === 4 ? { user: '=HYPERLINK("http://x")' } : {}));
  }
  await log.close();
  witness = log.latestCheckpoint();
});
afterAll(async () => db.cleanup());

async function exportText(source: ExportSource, format: 'ndjson' | 'csv' = 'ndjson', pseudonymiser?: Pseudonymiser): Promise<string> {
  let out = '';
  for await (const chunk of exportAudit({ store: db.store.audit, signer, format, source, pseudonymiser, nowMs: T0 + 3_600_000, pageSize: 7 })) out += chunk;
  return out;
}

async function verifyText(text: string, pem = pubPem, onProgress?: (p: ExportVerifyProgress) => void) {
  const file = path.join(db.dir, `export-${randomBytes(4).toString('hex')}.ndjson`);
  writeFileSync(file, text);
  return verifyExportFile(file, pem, onProgress);
}

const lines = (text: string) => text.replace(/\n$/, '').split('\n');
const join = (ls: string[]) => `${ls.join('\n')}\n`;
/** Entry lines of an export as AuditEntry-like objects (for re-linking by an attacker). */
const asEntries = (ls: string[]): AuditEntry[] =>
  ls.map((l) => {
    const m = /^\{"hash":"([0-9a-f]{64})","entry":(.*)\}$/.exec(l) as RegExpExecArray;
    const body = m[2] as string;
    const b = JSON.parse(body);
    return { seq: b.seq, hash: m[1] as string, body, prevHash: b.prevHash } as AuditEntry;
  });
const asLines = (es: AuditEntry[]) => es.map((e) => `{"hash":"${e.hash}","entry":${e.body}}`);
const seqOfLine = (l: string) => JSON.parse(l).entry.seq as number;

describe('NDJSON export, verified offline with only the public key', () => {
  let full: string;
  beforeAll(async () => {
    full = await exportText({ mode: 'range' });
  });

  it('exports the whole chain with a header and a signed trailer, and verifies', async () => {
    const ls = lines(full);
    const stored = await allEntries(db.store.audit);
    expect(JSON.parse(ls[0] as string)).toEqual({ export: { format: 'ndjson', mode: 'range', v: 1 } });
    expect(ls).toHaveLength(stored.length + 2);
    const trailer = JSON.parse(ls[ls.length - 1] as string);
    expect(trailer.trailer).toMatchObject({ count: stored.length, firstSeq: 1, lastSeq: stored.length, lastHash: stored[stored.length - 1]?.hash, mode: 'range', pseudonymised: false });
    // Each entry line carries its body byte for byte: sha256 of it is the entry hash.
    const l5 = ls[5] as string;
    const body = l5.slice(l5.indexOf('"entry":') + 8, -1);
    expect(createHash('sha256').update(body).digest('hex')).toBe(JSON.parse(l5).hash);
    const progress: ExportVerifyProgress[] = [];
    const r = await verifyText(full, pubPem, (p) => progress.push(p));
    expect(r).toMatchObject({ ok: true, checked: stored.length, startAnchor: 'genesis', mode: 'range' });
    expect(r.trailer?.count).toBe(stored.length);
    expect(progress[progress.length - 1]).toMatchObject({ bytes: Buffer.byteLength(full), totalBytes: Buffer.byteLength(full) });
  });

  it('still verifies after a tool converted the line endings to CRLF', async () => {
    expect(await verifyText(full.replace(/\n/g, '\r\n'))).toMatchObject({ ok: true });
  });

  it('rejects an altered field', async () => {
    const ls = lines(full);
    const i = ls.findIndex((l) => l.includes('"decision":"deny"'));
    ls[i] = (ls[i] as string).replace('"decision":"deny"', '"decision":"allow"');
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'HASH_MISMATCH', brokenSeq: seqOfLine(ls[i]) });
  });

  it('rejects a deleted middle entry', async () => {
    const ls = lines(full);
    const seq = seqOfLine(ls[20] as string);
    ls.splice(20, 1);
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'SEQ_GAP', brokenSeq: seq });
  });

  it('rejects a reordered pair', async () => {
    const ls = lines(full);
    const seq = seqOfLine(ls[30] as string);
    [ls[30], ls[31]] = [ls[31] as string, ls[30] as string];
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'REORDERED', brokenSeq: seq });
  });

  it('rejects an inserted forged entry, also when the chain after it is recomputed', async () => {
    const ls = lines(full);
    const entries = asEntries(ls.slice(1, -1));
    const prev = entries[24] as AuditEntry;
    const forgedBody = canonicalJson({ ...JSON.parse(prev.body), eventId: 'forged', seq: prev.seq + 1, prevHash: prev.hash });
    const forged = { seq: prev.seq + 1, hash: hashBody(forgedBody), body: forgedBody, prevHash: prev.hash } as AuditEntry;
    const naive = [ls[0] as string, ...asLines([...entries.slice(0, 25), forged, ...entries.slice(25)]), ls[ls.length - 1] as string];
    expect(await verifyText(join(naive))).toMatchObject({ ok: false, code: 'SEQ_ORDER', brokenSeq: prev.seq + 1 });
    const relinked = relinkFrom([...entries.slice(0, 25), forged, ...entries.slice(25)], 26);
    const careful = [ls[0] as string, ...asLines(relinked), ls[ls.length - 1] as string];
    expect(await verifyText(join(careful))).toMatchObject({ ok: false, code: 'CHECKPOINT_MISMATCH' });
  });

  it('rejects a truncated tail: the file cut short loses the trailer', async () => {
    const ls = lines(full);
    const cut = ls.slice(0, -6);
    const r = await verifyText(join(cut));
    expect(r).toMatchObject({ ok: false, code: 'TRAILER_MISSING', brokenSeq: seqOfLine(cut[cut.length - 1] as string) + 1 });
  });

  it('rejects a truncated tail with the trailer kept (the trailer signs the last seq, count and digest)', async () => {
    const ls = lines(full);
    const cut = [...ls.slice(0, -6), ls[ls.length - 1] as string];
    expect(await verifyText(join(cut))).toMatchObject({ ok: false, code: 'TRAILER_MISMATCH' });
  });

  it('rejects a replaced checkpoint signature (line re-hashed and the chain after it re-linked)', async () => {
    const ls = lines(full);
    const entries = asEntries(ls.slice(1, -1));
    const k = entries.findIndex((e) => e.body.includes('"type":"audit.checkpoint"'));
    const attacker = newSigner();
    const b = JSON.parse((entries[k] as AuditEntry).body);
    b.data.signature = attacker.sign(checkpointMessage(b.data));
    const body = canonicalJson(b);
    entries[k] = { ...(entries[k] as AuditEntry), body, hash: hashBody(body) };
    const forged = [ls[0] as string, ...asLines(relinkFrom(entries, k + 1)), ls[ls.length - 1] as string];
    expect(await verifyText(join(forged))).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID', brokenSeq: b.seq });
  });

  it('rejects a replaced trailer signature and a trailer signed by an untrusted key', async () => {
    const ls = lines(full);
    const t = JSON.parse(ls[ls.length - 1] as string);
    const other = JSON.parse(ls[ls.length - 1] as string);
    other.signature = newSigner().sign(trailerMessage(t.trailer));
    ls[ls.length - 1] = canonicalJson(other);
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'TRAILER_SIGNATURE_INVALID' });
    const attacker = newSigner();
    const own = { ...t.trailer, keyId: attacker.keyId };
    ls[ls.length - 1] = canonicalJson({ signature: attacker.sign(trailerMessage(own)), trailer: own });
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'UNKNOWN_KEY' });
  });

  it('rejects the file under the wrong public key', async () => {
    expect(await verifyText(full, newSigner().publicKeyPem)).toMatchObject({ ok: false, code: 'UNKNOWN_KEY' });
  });

  it('rejects lines after the trailer and a file that is not an export', async () => {
    expect(await verifyText(`${full}${lines(full)[3]}\n`)).toMatchObject({ ok: false, code: 'TRAILER_MISMATCH' });
    expect(await verifyText('hello\n')).toMatchObject({ ok: false, code: 'MALFORMED_ENTRY' });
    expect(await verifyText('')).toMatchObject({ ok: false, code: 'EMPTY' });
  });

  it('verifies a sub-range export (start vouched for by the trailer) and a checkpoint-anchored one', async () => {
    const sub = await exportText({ mode: 'range', fromSeq: 15, toSeq: 40 });
    expect(await verifyText(sub)).toMatchObject({ ok: true, firstSeq: 15, lastSeq: 40 });
    const fromCheckpoint = await exportText({ mode: 'range', fromSeq: 11 });
    expect(await verifyText(fromCheckpoint)).toMatchObject({ ok: true, startAnchor: 'checkpoint' });
  });

  it('pseudonymises user names stably, still verifies, and catches edits to pseudonymised lines', async () => {
    const p = createPseudonymiser(randomBytes(32));
    const text = await exportText({ mode: 'range' }, 'ndjson', p);
    expect(text).not.toContain('@stadt.example');
    expect(text).toContain(p.pseudonym('user', 'user1@stadt.example'));
    const again = await exportText({ mode: 'range' }, 'ndjson', p);
    expect(lines(again).slice(0, -1)).toEqual(lines(text).slice(0, -1));
    const r = await verifyText(text);
    expect(r).toMatchObject({ ok: true });
    expect(r.pseudonymisedLines).toBeGreaterThan(40);
    const ls = lines(text);
    const i = ls.findIndex((l) => l.includes('"pseudonymised":true') && l.includes('"decision":"allow"'));
    ls[i] = (ls[i] as string).replace('"decision":"allow"', '"decision":"deny"');
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'TRAILER_MISMATCH' });
  });

  it('exports a filtered query (one device) newest first; each entry and the selection verify', async () => {
    const text = await exportText({ mode: 'query', filter: { deviceId: 'dev-3' } });
    const ls = lines(text);
    const seqs = ls.slice(1, -1).map(seqOfLine);
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(ls.slice(1, -1).every((l) => JSON.parse(l).entry.data.deviceId === 'dev-3')).toBe(true);
    expect(await verifyText(text)).toMatchObject({ ok: true, mode: 'query', checked: seqs.length });
    ls.splice(1, 1);
    expect(await verifyText(join(ls))).toMatchObject({ ok: false, code: 'TRAILER_MISMATCH' });
  });
});

/** Minimal RFC 4180 parser for the assertions below. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  return rows;
}

describe('CSV export', () => {
  it('has one row per entry, verbatim bodies, neutralised formulas and a signed trailer row', async () => {
    const rows = parseCsv(await exportText({ mode: 'range' }, 'csv'));
    const stored = await allEntries(db.store.audit);
    expect(rows[0]).toEqual(['seq', 'time', 'type', 'event_id', 'actor', 'device_id', 'user', 'decision', 'reason', 'concentrator', 'peer_ip', 'prev_hash', 'hash', 'body']);
    expect(rows).toHaveLength(stored.length + 2);
    for (const r of rows.slice(1, -1)) expect(hashBody(r[13] as string)).toBe(r[12]);
    const evil = rows.find((r) => (r[13] as string).includes('HYPERLINK')) as string[];
    expect(evil[6]).toBe(`'=HYPERLINK("http://x")`);
    const adminRow = rows.find((r) => r[2] === 'device.status_change') as string[];
    expect(adminRow[4]).toMatch(/^user:admin\d@stadt\.example$/);
    const decisionRow = rows.find((r) => r[2] === 'vpn.decision') as string[];
    expect(decisionRow[4]).toBe('');
    expect(decisionRow[10]).toMatch(/^203\.0\.113\.\d+$/);
    expect(decisionRow[1]).toBe(JSON.parse(decisionRow[13] as string).time);
    const last = rows[rows.length - 1] as string[];
    expect(last[2]).toBe('audit.export.trailer');
    const t = JSON.parse(last[13] as string);
    expect(keys.check(t.trailer.keyId, trailerMessage(t.trailer), t.signature)).toBe('ok');
    expect(t.trailer).toMatchObject({ format: 'csv', count: stored.length });
  });
});

describe('progress bar', () => {
  it('draws on a TTY and stays silent when output is piped', () => {
    const out: string[] = [];
    let now = 0;
    const bar = createProgressBar({ isTTY: true, columns: 80, write: (s: string) => out.push(s) }, () => now);
    now = 2000;
    bar.update({ bytes: 50, totalBytes: 100, entries: 200_000 });
    now = 4000;
    bar.update({ bytes: 100, totalBytes: 100, entries: 400_000 });
    bar.done();
    expect(out[0]).toMatch(/^\r\[#+\.+\] 50\.0% 200\.0k entries 100\.0k\/s ETA 2s$/);
    expect(out[1]).toMatch(/^\r\[#+\] 100\.0% 400\.0k entries/);
    expect(out[out.length - 1]).toBe('\n');
    const piped: string[] = [];
    const quiet = createProgressBar({ isTTY: false, write: (s: string) => piped.push(s) });
    quiet.update({ bytes: 1, totalBytes: 2, entries: 1 });
    quiet.done();
    expect(piped).toEqual([]);
  });
});

describe('verifyRange over a tampered SQLite file', () => {
  let t: TempSqlite;
  let cp: NonNullable<typeof witness>;
  let raw: Database.Database;

  // Each test tampers with its own copy of the database file.
  beforeEach(async () => {
    t = tempSqlite('dg-audit-tamper-');
    await t.store.close();
    rmSync(t.dbPath, { force: true });
    // VACUUM INTO copies a consistent snapshot including what is still in the WAL.
    const src = rawDb(db.dbPath);
    src.prepare('VACUUM INTO ?').run(t.dbPath);
    src.close();
    t.store = t.reopen();
    raw = rawDb(t.dbPath);
    cp = witness as NonNullable<typeof witness>;
  });
  afterEach(async () => {
    raw.close();
    await t.cleanup();
  });

  const run = (anchors = [cp]) => verifyRange(t.store.audit, undefined, undefined, { keys, anchors });
  const rows = () => raw.prepare('SELECT * FROM audit_entries ORDER BY seq').all() as { seq: number; body: string; decision: string | null }[];
  /** Rewrites rows from index `from` on with a re-linked chain (an attacker with file access but no key). */
  const writeBack = (entries: AuditEntry[], from: number) => {
    const up = raw.prepare('UPDATE audit_entries SET body=@body, hash=@hash, prev_hash=@prevHash, event_id=@eventId WHERE seq=@seq');
    raw.transaction(() => {
      for (const e of entries.slice(from)) up.run({ body: e.body, hash: e.hash, prevHash: e.prevHash, eventId: `${e.eventId}`, seq: e.seq });
      const last = entries[entries.length - 1] as AuditEntry;
      raw.prepare("UPDATE meta SET value=? WHERE key='audit_head'").run(JSON.stringify({ seq: last.seq, hash: last.hash }));
    })();
  };

  it('accepts the untampered copy', async () => {
    expect(await run()).toMatchObject({ ok: true, startAnchor: 'genesis' });
  });

  it('rejects an altered field in a stored body', async () => {
    const r = rows().find((x) => x.decision === 'deny') as { seq: number; body: string };
    raw.prepare('UPDATE audit_entries SET body=? WHERE seq=?').run(r.body.replace('"decision":"deny"', '"decision":"allow"'), r.seq);
    expect(await run()).toMatchObject({ ok: false, code: 'HASH_MISMATCH', brokenSeq: r.seq });
  });

  it('rejects an altered indexed column (who was it?)', async () => {
    raw.prepare("UPDATE audit_entries SET user='someone-else' WHERE seq=12").run();
    expect(await run()).toMatchObject({ ok: false, code: 'FIELD_MISMATCH', brokenSeq: 12 });
  });

  it('rejects a deleted middle entry', async () => {
    raw.prepare('DELETE FROM audit_entries WHERE seq=33').run();
    expect(await run()).toMatchObject({ ok: false, code: 'SEQ_GAP', brokenSeq: 33 });
  });

  it('rejects a reordered pair of rows', async () => {
    raw.transaction(() => {
      raw.prepare('UPDATE audit_entries SET seq=-1 WHERE seq=20').run();
      raw.prepare('UPDATE audit_entries SET seq=20 WHERE seq=21').run();
      raw.prepare('UPDATE audit_entries SET seq=21 WHERE seq=-1').run();
    })();
    expect(await run()).toMatchObject({ ok: false, code: 'REORDERED', brokenSeq: 20 });
  });

  it('rejects an inserted forged entry with everything after it renumbered and re-linked', async () => {
    const entries = await allEntries(t.store.audit);
    const k = entries.findIndex((e) => e.seq === 25);
    const prev = entries[k] as AuditEntry;
    const b = JSON.parse(prev.body);
    delete b.seq;
    delete b.prevHash;
    const forged = link({ seq: prev.seq, hash: prev.hash }, prev.seq + 1, { ...b, eventId: 'forged-event', data: { ...b.data, deviceId: 'dev-evil' } });
    const rewritten = relinkFrom([...entries.slice(0, k + 1), forged, ...entries.slice(k + 1)], k + 2);
    const ins = raw.prepare(
      'INSERT INTO audit_entries (seq, event_id, time, type, prev_hash, hash, body, device_id, user, decision, reason, concentrator) VALUES (@seq, @eventId, @time, @type, @prevHash, @hash, @body, @deviceId, @user, @decision, @reason, @concentrator)',
    );
    raw.transaction(() => {
      raw.prepare('DELETE FROM audit_entries WHERE seq > ?').run(prev.seq);
      for (const e of rewritten.slice(k + 1)) ins.run(e);
      const last = rewritten[rewritten.length - 1] as AuditEntry;
      raw.prepare("UPDATE meta SET value=? WHERE key='audit_head'").run(JSON.stringify({ seq: last.seq, hash: last.hash }));
    })();
    expect((await allEntries(t.store.audit)).length).toBe(entries.length + 1);
    expect(await run([])).toMatchObject({ ok: false, code: 'CHECKPOINT_MISMATCH' });
  });

  it('rejects a truncated tail (newest rows and head pointer rolled back) thanks to the checkpoint witness', async () => {
    const keep = 45;
    const row = raw.prepare('SELECT hash FROM audit_entries WHERE seq=?').get(keep) as { hash: string };
    raw.prepare('DELETE FROM audit_entries WHERE seq>?').run(keep);
    raw.prepare("UPDATE meta SET value=? WHERE key='audit_head'").run(JSON.stringify({ seq: keep, hash: row.hash }));
    // The chain that is left is internally consistent: only the witness tells that entries are missing.
    expect(await run([])).toMatchObject({ ok: true });
    expect(await run()).toMatchObject({ ok: false, code: 'TRUNCATED', brokenSeq: keep + 1 });
  });

  it('rejects a truncated tail behind an untouched head pointer even without a witness', async () => {
    raw.prepare('DELETE FROM audit_entries WHERE seq>60').run();
    expect(await run([])).toMatchObject({ ok: false, code: 'TRUNCATED', brokenSeq: 61 });
  });

  it('rejects a replaced checkpoint signature (row re-hashed and the chain after it re-linked)', async () => {
    const entries = await allEntries(t.store.audit);
    const k = entries.findIndex((e) => e.type === 'audit.checkpoint');
    const b = JSON.parse((entries[k] as AuditEntry).body);
    b.data.signature = newSigner().sign(checkpointMessage(b.data));
    const body = canonicalJson(b);
    entries[k] = { ...(entries[k] as AuditEntry), body, hash: hashBody(body) };
    writeBack(relinkFrom(entries, k + 1), k);
    expect(await run()).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID', brokenSeq: b.seq });
  });

  it('rejects a forged witness anchor', async () => {
    const forged = { ...cp, hash: 'f'.repeat(64) };
    expect(await run([forged])).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID' });
  });

  it('verifies a sub-range against its stored predecessor and rejects malformed bounds', async () => {
    expect(await verifyRange(t.store.audit, 20, 30, { keys })).toMatchObject({ ok: true, startAnchor: 'predecessor', fromSeq: 20, toSeq: 30, checked: 11 });
    await expect(verifyRange(t.store.audit, 0, 3, { keys })).rejects.toMatchObject({ code: 'AUDIT_RANGE_INVALID', kind: 'bad_request' });
    await expect(verifyRange(t.store.audit, 9, 3, { keys })).rejects.toMatchObject({ code: 'AUDIT_RANGE_INVALID' });
  });
});
