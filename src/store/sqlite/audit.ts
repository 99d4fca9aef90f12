import type { WriteBatcher } from './write-batcher';
import type { Database, Statement } from 'better-sqlite3';
import type { AuditEntry } from '../../domain/types';
import { decodeCursor, encodeCursor } from '../cursor';
import { ConflictError } from '../errors';
import type { AuditFilter, AuditHead, AuditStore, Page, PageRequest } from '../types';
import { mapSqliteError } from './db-errors';

/** Every column, in the order `fromRaw` reads them. */
const COLUMNS = 'seq, event_id, time, type, prev_hash, hash, body, device_id, user, decision, reason, concentrator';

type RawRow = [number, string, number, string, string, string, string, string | null, string | null, string | null, string | null, string | null];

/**
 * Rows are read as arrays (better-sqlite3 `raw` mode) and turned into objects here: building a keyed object per row
 * in the driver costs about four times as much, and was the ceiling of export and verification (~100k rows/s).
 */
const fromRaw = (r: RawRow): AuditEntry => ({
  seq: r[0],
  eventId: r[1],
  time: r[2],
  type: r[3],
  prevHash: r[4],
  hash: r[5],
  body: r[6],
  deviceId: r[7],
  user: r[8],
  decision: r[9],
  reason: r[10],
  concentrator: r[11],
});

/**
 * The head lives in `meta` rather than being read from the newest row so that it survives retention deleting
 * every row and so that the compare-and-set is one indexed read.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly readHead: Statement;
  private readonly writeHead: Statement;
  private readonly insert: Statement;
  private readonly rangeStmt: Statement;
  private readonly firstStmt: Statement;
  private readonly deleteStmt: Statement;

  constructor(
    private readonly db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.readHead = db.prepare("SELECT value FROM meta WHERE key = 'audit_head'");
    this.writeHead = db.prepare(
      "INSERT INTO meta (key, value) VALUES ('audit_head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.insert = db.prepare(
      'INSERT INTO audit_entries (seq, event_id, time, type, prev_hash, hash, body, device_id, user, decision, reason, concentrator) VALUES (@seq, @eventId, @time, @type, @prevHash, @hash, @body, @deviceId, @user, @decision, @reason, @concentrator)',
    );
    this.rangeStmt = db.prepare(`SELECT ${COLUMNS} FROM audit_entries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`).raw(true);
    this.firstStmt = db.prepare('SELECT min(seq) AS s FROM audit_entries');
    this.deleteStmt = db.prepare('DELETE FROM audit_entries WHERE seq < ?');
  }

  private currentHead(): AuditHead | null {
    const row = this.readHead.get() as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as AuditHead) : null;
  }

  async head(): Promise<AuditHead | null> {
    return this.currentHead();
  }

  appendIfHead(expected: AuditHead | null, entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    // Head check and inserts share one write-batcher savepoint: the compare-and-set cannot interleave.
    return this.writer.run(() => {
      const head = this.currentHead();
      if (!sameHead(head, expected)) throw new ConflictError('audit head');
      checkLinkage(expected, entries);
      for (const e of entries) {
        try {
          this.insert.run(e);
        } catch (err) {
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
            throw new ConflictError(`audit event ${e.eventId} (duplicate event id)`, { cause: err });
          }
          mapSqliteError(err, 'audit entry');
        }
      }
      const last = entries[entries.length - 1] as AuditEntry;
      this.writeHead.run(JSON.stringify({ seq: last.seq, hash: last.hash }));
    });
  }

  async existingEventIds(eventIds: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    // Chunks stay below SQLite's bound-parameter limit.
    for (let i = 0; i < eventIds.length; i += 500) {
      const chunk = eventIds.slice(i, i + 500);
      const rows = this.db
        .prepare(`SELECT event_id FROM audit_entries WHERE event_id IN (${chunk.map(() => '?').join(',')})`)
        .all(...chunk) as { event_id: string }[];
      for (const r of rows) found.add(r.event_id);
    }
    return found;
  }

  async range(fromSeq: number, toSeq: number, limit: number): Promise<AuditEntry[]> {
    return (this.rangeStmt.all(fromSeq, toSeq, limit) as RawRow[]).map(fromRaw);
  }

  async query(filter: AuditFilter, page: PageRequest): Promise<Page<AuditEntry>> {
    const parts: string[] = [];
    const params: Record<string, unknown> = {};
    const eq = (column: string, name: string, value: string | undefined): void => {
      if (value === undefined) return;
      parts.push(`${column} = @${name}`);
      params[name] = value;
    };
    eq('type', 'type', filter.type);
    eq('device_id', 'deviceId', filter.deviceId);
    eq('user', 'user', filter.user);
    eq('decision', 'decision', filter.decision);
    eq('reason', 'reason', filter.reason);
    eq('concentrator', 'concentrator', filter.concentrator);
    if (filter.fromTime !== undefined) {
      parts.push('time >= @fromTime');
      params.fromTime = filter.fromTime;
    }
    if (filter.toTime !== undefined) {
      parts.push('time < @toTime');
      params.toTime = filter.toTime;
    }
    if (page.cursor) {
      const [time, seq] = decodeCursor(page.cursor, ['number', 'number']);
      parts.push('(time < @cTime OR (time = @cTime AND seq < @cSeq))');
      params.cTime = time;
      params.cSeq = seq;
    }
    params.limit = page.limit + 1;
    const where = parts.length ? parts.join(' AND ') : '1';
    const rows = this.db
      .prepare(`SELECT ${COLUMNS} FROM audit_entries WHERE ${where} ORDER BY time DESC, seq DESC LIMIT @limit`)
      .raw(true)
      .all(params) as RawRow[];
    const more = rows.length > page.limit;
    const items = rows.slice(0, page.limit).map(fromRaw);
    const last = items[items.length - 1];
    return { items, nextCursor: more && last ? encodeCursor([last.time, last.seq]) : null };
  }

  async firstSeq(): Promise<number | null> {
    return (this.firstStmt.get() as { s: number | null }).s;
  }

  deletePrefix(beforeSeq: number): Promise<number> {
    return this.writer.run(() => {
      return this.deleteStmt.run(beforeSeq).changes;
    });
  }
}

function sameHead(a: AuditHead | null, b: AuditHead | null): boolean {
  if (a === null || b === null) return a === b;
  return a.seq === b.seq && a.hash === b.hash;
}

/** The store refuses a batch that does not continue the head: a cheap second guard behind the chain code. */
function checkLinkage(expected: AuditHead | null, entries: readonly AuditEntry[]): void {
  let prevSeq = expected ? expected.seq : 0;
  let prevHash = expected ? expected.hash : null;
  for (const e of entries) {
    if (e.seq !== prevSeq + 1 || (prevHash !== null && e.prevHash !== prevHash)) {
      throw new ConflictError(`audit entry ${e.seq} does not continue the chain`);
    }
    prevSeq = e.seq;
    prevHash = e.hash;
  }
}
