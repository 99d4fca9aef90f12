import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors';
import type { Store, StoreEvents, StoreHealth } from '../types';
import { SqliteAuditStore } from './audit';
import { BackgroundCheckpointer } from './checkpointer';
import { SqliteApiTokenStore, SqliteEnrollmentTokenStore } from './credentials';
import { SqliteDeviceStore } from './devices';
import { SqliteNonceStore, SqliteRateLimitStore } from './ephemeral';
import { migrate } from './migrations';
import { SqliteCertificateStore, SqliteRevocationStore } from './pki';
import { WriteBatcher } from './write-batcher';

/** Page cache per connection (KiB). */
const PAGE_CACHE_KIB = 64 * 1024;
/** Memory-mapped window of the database file (bytes); pages beyond it are read with read(). */
const MMAP_BYTES = 1024 * 1024 * 1024;

export interface SqliteStoreOptions {
  /** Database file; its directory is created. `:memory:` is allowed for throwaway use. */
  readonly path: string;
  /**
   * `FULL` (default): a write resolves only once the WAL holding it is on disk (fdatasync after every group commit,
   * run off the event loop); `NORMAL` survives process crashes but may lose the last commits on power loss.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** How long a writer waits for another process's write lock (CLI and server share the file). */
  readonly busyTimeoutMs?: number;
}

/**
 * The embedded default back-end: one better-sqlite3 connection in WAL mode. Writes are group-committed (see
 * WriteBatcher): each runs in its own savepoint inside an IMMEDIATE transaction shared with the writes queued in the
 * same turn of the event loop, so the CLI and the server can share the file safely and throughput is not capped at
 * one fsync per operation. Events are delivered in-process only: SQLite mode serves one gateway process (several
 * instances share Redis instead).
 */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  if (options.path !== ':memory:') mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    db.pragma('journal_mode = WAL');
    // FULL durability is provided by the write batcher's WAL barrier below rather than by SQLite's own per-commit
    // fsync, which would block the event loop for the whole disk flush. NORMAL still syncs around checkpoints.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // SQLite's default page cache is 2 MB: with 100k devices and a growing audit table, every lookup and every
    // index insert then costs read() calls into the OS cache. Memory-mapped reads skip those copies.
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    db.pragma(`mmap_size = ${MMAP_BYTES}`);
    migrate(db);
  } catch (cause) {
    throw new StoreUnavailableError(`sqlite (${options.path})`, { cause });
  }

  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const events: StoreEvents = {
    async publish(topic, message) {
      // Deferred so a publisher never runs subscribers inside its own transaction or call stack.
      setImmediate(() => emitter.emit(topic, message));
    },
    async subscribe(topic, handler) {
      emitter.on(topic, handler);
      return async () => {
        emitter.off(topic, handler);
      };
    },
  };

  let closed = false;
  const wal = options.path !== ':memory:' && options.synchronous !== 'NORMAL' ? walBarrier(options.path) : null;
  const checkpointer = options.path !== ':memory:' ? new BackgroundCheckpointer(db, path.resolve(options.path)) : null;
  const writer = new WriteBatcher(db, () => closed, wal?.barrier ?? null, checkpointer ? () => checkpointer.noteCommit() : null);
  return {
    backend: 'sqlite',
    devices: new SqliteDeviceStore(db, writer),
    enrollmentTokens: new SqliteEnrollmentTokenStore(db, writer),
    certificates: new SqliteCertificateStore(db, writer),
    revocations: new SqliteRevocationStore(db, writer),
    nonces: new SqliteNonceStore(db, writer),
    audit: new SqliteAuditStore(db, writer),
    apiTokens: new SqliteApiTokenStore(db, writer),
    rateLimits: new SqliteRateLimitStore(db, writer),
    events,
    async ping(): Promise<StoreHealth> {
      if (closed) return { ok: false, backend: 'sqlite', detail: 'closed' };
      try {
        db.prepare('SELECT 1').get();
        return { ok: true, backend: 'sqlite' };
      } catch (e) {
        return { ok: false, backend: 'sqlite', detail: (e as Error).message };
      }
    },
    async startupWarnings(): Promise<string[]> {
      const warnings: string[] = [];
      if (options.synchronous === 'NORMAL') {
        warnings.push('sqlite synchronous=NORMAL: the newest audit entries may be lost on power failure');
      }
      return warnings;
    },
    async close(): Promise<void> {
      if (closed) return;
      // Writes already queued still commit, and become durable, before the connection closes.
      writer.flush();
      closed = true;
      await writer.drain();
      await checkpointer?.close();
      await wal?.close();
      emitter.removeAllListeners();
      db.close();
    },
  };
}

/**
 * fdatasync of the database's `-wal` file, which is where a WAL-mode commit lands. fsync acts on the file, not on the
 * descriptor, so our own descriptor flushes what SQLite's connection wrote. The file keeps its inode while any
 * connection is open (checkpoints rewind or truncate it in place), so one descriptor opened at the first barrier
 * serves the connection's lifetime.
 */
function walBarrier(dbPath: string): { barrier: () => Promise<void>; close: () => Promise<void> } {
  const walPath = `${path.resolve(dbPath)}-wal`;
  let handle: Promise<FileHandle> | null = null;
  return {
    barrier: async () => {
      const current = (handle ??= open(walPath, 'r+'));
      try {
        await (await current).datasync();
      } catch (e) {
        // The next barrier starts from a fresh descriptor.
        handle = null;
        void current.then((h) => h.close()).catch(() => undefined);
        throw e;
      }
    },
    close: async () => {
      if (handle === null) return;
      const h = handle;
      handle = null;
      await (await h).close().catch(() => undefined);
    },
  };
}
