import type { Database } from 'better-sqlite3';
import { StoreUnavailableError } from '../errors';
import { mapSqliteError } from './db-errors';

interface Pending {
  readonly op: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Group commit for every write of the SQLite store. With `synchronous=FULL` each commit costs one fsync, so one
 * transaction per operation caps the whole gateway at the disk's fsync rate (~100/s on a busy disk). Writes are
 * therefore queued and run together in one IMMEDIATE transaction on the next turn of the event loop, each inside its
 * own SAVEPOINT: an operation that throws (e.g. AlreadyExists) is rolled back alone, the others commit, and every
 * caller's promise settles only after the COMMIT (and its fsync) returned, so "resolved" still means "durable".
 * Operations run in submission order, so compare-and-set semantics (exactly one winner) are unchanged.
 */
export class WriteBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly db: Database,
    private readonly isClosed: () => boolean,
  ) {}

  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.isClosed()) {
        reject(new StoreUnavailableError('sqlite (closed)'));
        return;
      }
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // The next turn of the event loop: writes issued by every request handled in this turn share the commit,
        // and a lone write waits for nothing but its own fsync.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs everything queued now (also used by close()). */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.isClosed()) {
      for (const p of batch) p.reject(new StoreUnavailableError('sqlite (closed)'));
      return;
    }
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      const err = toStoreError(e);
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of batch) {
      this.db.exec('SAVEPOINT op');
      try {
        const value = p.op();
        this.db.exec('RELEASE op');
        results.push({ ok: true, value });
      } catch (e) {
        this.db.exec('ROLLBACK TO op');
        this.db.exec('RELEASE op');
        results.push({ ok: false, value: e });
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (e) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // the failed COMMIT may already have ended the transaction
      }
      const err = toStoreError(e);
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const r = results[i] as { ok: boolean; value: unknown };
      if (r.ok) p.resolve(r.value);
      else p.reject(r.value);
    });
  }
}

function toStoreError(e: unknown): unknown {
  try {
    mapSqliteError(e, 'write');
  } catch (mapped) {
    return mapped instanceof StoreUnavailableError ? mapped : new StoreUnavailableError('sqlite', { cause: e });
  }
  return e;
}
