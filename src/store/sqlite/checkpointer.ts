import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';

/** Commits after which a long-lived store moves checkpoints to the background thread (short-lived CLI runs never do). */
const START_AFTER_COMMITS = 200;
/** Background checkpoints run at most this often; between them WAL frames accumulate and pages rewritten coalesce. */
const MIN_INTERVAL_MS = 100;
/**
 * Once the background thread checkpoints, SQLite's own auto-checkpoint (which runs inside COMMIT, on the event loop)
 * fires only every ~16 MB of WAL (4 KiB pages). It is still needed: a PASSIVE checkpoint racing a steady writer never
 * catches the WAL's tail, and SQLite rewinds the WAL only after a checkpoint that did. The writer's own checkpoint
 * does (nothing is appended while it runs) and is cheap, because it copies only what the thread has not copied yet.
 */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 4096;

/**
 * The thread's whole program. A second connection to the same file, doing only PASSIVE checkpoints: they copy WAL
 * frames into the database file (with the fsyncs around it) without taking the write lock, so the gateway's writer
 * keeps committing meanwhile. Source text rather than a file so it runs the same from `dist/`, ts-node and jest.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 0 });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  let result;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    result = { ok: true, busy: r.busy, log: r.log, checkpointed: r.checkpointed };
  } catch (e) {
    result = { ok: false, error: String(e && e.message || e) };
  }
  parentPort.postMessage(result);
});
`;

export interface CheckpointResult {
  readonly ok: boolean;
  readonly busy?: number;
  readonly log?: number;
  readonly checkpointed?: number;
  readonly error?: string;
}

/**
 * Moves WAL checkpoints off the event loop. SQLite's auto-checkpoint runs inside the COMMIT that crosses the threshold
 * and copies up to a thousand pages into the database file, fsyncs included, while every request waits; with the
 * audit table's indexes that happened every few group commits and cost about a third of the gateway's throughput.
 *
 * The checkpointer starts after a few hundred commits (a CLI run never needs it), then lifts the connection's
 * auto-checkpoint threshold to a fallback bound and asks a worker thread for a PASSIVE checkpoint at most every
 * `MIN_INTERVAL_MS` while writes keep coming. Durability does not depend on it: commits are durable in the WAL.
 */
export class BackgroundCheckpointer {
  private worker: Worker | null = null;
  private commits = 0;
  private requested = false;
  private lastRequestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private completed = 0;
  private lastResult: CheckpointResult | null = null;

  constructor(
    private readonly db: Database,
    private readonly dbPath: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Background checkpoints finished so far (observability and tests). */
  get checkpoints(): number {
    return this.completed;
  }

  get last(): CheckpointResult | null {
    return this.lastResult;
  }

  get running(): boolean {
    return this.worker !== null;
  }

  /** Called after every COMMIT. */
  noteCommit(): void {
    if (this.closed) return;
    this.commits++;
    if (this.worker === null) {
      if (this.commits < START_AFTER_COMMITS) return;
      this.start();
    }
    this.request();
  }

  private start(): void {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path: this.dbPath, driver: require.resolve('better-sqlite3') },
    });
    worker.unref();
    worker.on('message', (r: CheckpointResult) => {
      this.requested = false;
      this.completed++;
      this.lastResult = r;
    });
    worker.on('error', (e: Error) => {
      // Without the thread SQLite's own auto-checkpoint takes over again (on the event loop, but bounded).
      this.lastResult = { ok: false, error: e.message };
      this.worker = null;
      this.requested = false;
      if (!this.closed) this.db.pragma('wal_autocheckpoint = 1000');
    });
    this.worker = worker;
    this.db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
  }

  private request(): void {
    if (this.requested || this.timer !== null || this.worker === null) return;
    const wait = this.lastRequestAt + MIN_INTERVAL_MS - this.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.request();
      }, wait);
      this.timer.unref();
      return;
    }
    this.requested = true;
    this.lastRequestAt = this.now();
    this.worker.postMessage('checkpoint');
  }

  /** Stops the thread after its current checkpoint; the connection's own close then checkpoints the rest. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const worker = this.worker;
    this.worker = null;
    if (worker === null) return;
    // Referenced again while we wait: an unreferenced worker's exit would not keep an otherwise idle process alive,
    // and close() would never settle.
    worker.ref();
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.postMessage('close');
    });
  }
}
