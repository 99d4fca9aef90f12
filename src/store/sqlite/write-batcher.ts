import type { Database } from 'better-sqlite3';
import { StoreUnavailableError } from '../errors';
import { mapSqliteError } from './db-errors';

interface Pending {
  readonly op: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

interface Outcome {
  readonly pending: Pending;
  readonly ok: boolean;
  readonly value: unknown;
}

/**
 * Makes everything committed so far durable (for the WAL: fdatasync of the `-wal` file). Runs off the event loop;
 * resolves when the data is on disk.
 */
export type DurabilityBarrier = () => Promise<void>;

/**
 * Group commit for every write of the SQLite store. Writes are queued and run together in one IMMEDIATE transaction
 * on the next turn of the event loop, each inside its own SAVEPOINT: an operation that throws (e.g. AlreadyExists) is
 * rolled back alone, the others commit. Operations run in submission order, so compare-and-set semantics (exactly one
 * winner) are unchanged.
 *
 * Durability: with a `barrier` (the connection then runs `synchronous=NORMAL`, so COMMIT itself does not fsync),
 * every caller's promise settles only after the barrier that started after its COMMIT returned, i.e. after the WAL
 * frames of its transaction reached the disk. That is what `synchronous=FULL` guarantees, but the fsync runs on the
 * libuv thread pool instead of blocking the event loop, and while it runs the next batch is already being built and
 * committed (one barrier in flight, the next one shared by every batch committed meanwhile). Without a barrier
 * (`:memory:`, or `synchronous=NORMAL` chosen by the operator) a write settles right after its COMMIT.
 */
export class WriteBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  /** Batches committed while a barrier is in flight; they wait for the next barrier. */
  private awaitingBarrier: Outcome[][] = [];
  private barrierInFlight: Promise<void> | null = null;
  private barriers = 0;

  constructor(
    private readonly db: Database,
    private readonly isClosed: () => boolean,
    private readonly barrier: DurabilityBarrier | null = null,
    private readonly afterCommit: (() => void) | null = null,
  ) {}

  /** How many durability barriers completed (observability and tests). */
  get barrierCount(): number {
    return this.barriers;
  }

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

  /** Commits everything queued now (also used by close()); callers settle once it is durable. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.isClosed()) {
      for (const p of batch) p.reject(new StoreUnavailableError('sqlite (closed)'));
      return;
    }
    const outcomes: Outcome[] = [];
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
        outcomes.push({ pending: p, ok: true, value });
      } catch (e) {
        this.db.exec('ROLLBACK TO op');
        this.db.exec('RELEASE op');
        outcomes.push({ pending: p, ok: false, value: e });
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
    this.afterCommit?.();
    if (this.barrier === null) {
      settle(outcomes);
      return;
    }
    this.awaitingBarrier.push(outcomes);
    if (this.barrierInFlight === null) this.startBarrier();
  }

  /** Resolves when every batch committed so far has been made durable (or rejected). */
  async drain(): Promise<void> {
    while (this.barrierInFlight !== null) await this.barrierInFlight;
  }

  private startBarrier(): void {
    const barrier = this.barrier as DurabilityBarrier;
    const covered = this.awaitingBarrier;
    this.awaitingBarrier = [];
    this.barrierInFlight = barrier().then(
      () => {
        this.barriers++;
        for (const outcomes of covered) settle(outcomes);
      },
      (cause: unknown) => {
        // The commit is in the WAL but the disk did not confirm it: nobody may treat it as durable (an allow must not
        // be answered on an audit entry that a power cut could take back).
        const err = new StoreUnavailableError('sqlite (WAL sync failed)', { cause });
        for (const outcomes of covered) for (const o of outcomes) o.pending.reject(err);
      },
    ).finally(() => {
      this.barrierInFlight = null;
      if (this.awaitingBarrier.length > 0) this.startBarrier();
    });
  }
}

function settle(outcomes: readonly Outcome[]): void {
  for (const o of outcomes) {
    if (o.ok) o.pending.resolve(o.value);
    else o.pending.reject(o.value);
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
