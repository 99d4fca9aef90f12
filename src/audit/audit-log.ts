/**
 * `AuditLog`: the one writer of the audit chain in a gateway process.
 *
 * Guarantees:
 * - `append()` resolves only when the entry is durable: committed by the store (`durable: 'store'`) or, during a
 *   store outage, fsync-ed to the local spool (`durable: 'spool'`). Callers answer "allow" only after that (Vault:
 *   no audit, no access). When neither works it rejects with an `unavailable` AppError and the caller fails closed.
 * - Group commit: appends arriving while a batch is being written (or within `groupCommitWindowMs` of an idle log)
 *   go into one `appendIfHead`, so throughput scales with batch size rather than with fsyncs.
 * - Several gateway instances may share one store: a lost compare-and-set (Conflict) re-reads the head, drops
 *   events the store already has (idempotency by eventId) and re-links. The chain stays one total order.
 * - Spooled events are replayed in spool order before any new event reaches the store, and each is written at most
 *   once (existing event ids are skipped), so an outage loses nothing and duplicates nothing.
 * - Signed checkpoints: after every entry whose seq is a multiple of `checkpointEveryEntries` (position-based, so all
 *   instances agree), when `checkpointIntervalMs` passed with new entries, and on `close()`. The newest checkpoint
 *   this instance wrote is kept in `<spoolDir>/checkpoint.json` (the truncation witness for `verifyRange`).
 *
 * All work (commits, spool writes, replays, checkpoints) runs through one promise chain, so there is never more than
 * one writer per instance and the order of entries equals the order of `append()` calls.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AppError, isAppError } from '../domain/errors';
import type { AuditEntry } from '../domain/types';
import type { Clock } from '../lib/clock';
import { newTimeOrderedId } from '../lib/ids';
import { isConflict, StoreUnavailableError } from '../store/errors';
import type { AuditHead, AuditStore } from '../store/types';
import { link } from './chain';
import { type AuditEvent, type AuditEventInput, buildAuditEvent, parseAuditEvent, SYSTEM_ACTOR } from './events';
import { type AuditSigner, type SignedCheckpoint, signCheckpoint } from './signing';
import { Spool } from './spool';

/** Metrics and logging callbacks (prom-client and pino stay outside src/audit). Exceptions in hooks are ignored. */
export interface AuditLogHooks {
  /** A batch reached the store. `events`: caller events in it; `entries`: including checkpoints. */
  onCommit?(info: { events: number; entries: number; attempts: number; durationMs: number }): void;
  /** A compare-and-set lost against another writer. */
  onConflict?(): void;
  /** Events written to the spool because the store is unavailable. */
  onSpool?(info: { events: number }): void;
  /** Spooled events moved into the store (`duplicates` were already there and skipped). */
  onReplay?(info: { events: number; duplicates: number; quarantined: number }): void;
  onModeChange?(mode: AuditLogMode): void;
  onCheckpoint?(checkpoint: SignedCheckpoint): void;
  /** Background failures (replay, witness write) that no caller is waiting for. */
  onError?(error: unknown, context: string): void;
}

/** Where appends go: the store, or the local spool while the store is unavailable or a spool is replayed. */
export type AuditLogMode = 'direct' | 'spooling';

/** Construction options; defaults match the `audit` config section. */
export interface AuditLogOptions {
  readonly store: AuditStore;
  readonly signer: AuditSigner;
  readonly clock: Clock;
  /** Local, per-instance directory for the spool and the checkpoint witness. */
  readonly spoolDir: string;
  readonly checkpointEveryEntries?: number;
  readonly checkpointIntervalMs?: number;
  readonly groupCommitWindowMs?: number;
  readonly groupCommitMaxBatch?: number;
  /** First replay delay after the store failed; doubles up to `spoolRetryMaxMs`. */
  readonly spoolRetryMs?: number;
  readonly spoolRetryMaxMs?: number;
  /** Lost compare-and-sets tolerated for one batch before giving up with `AUDIT_CONTENTION`. */
  readonly maxConflictRetries?: number;
  /** Event id generator (default: a time-ordered UUIDv7 from the clock). */
  readonly newId?: () => string;
  readonly hooks?: AuditLogHooks;
}

/** What `append` resolves with. */
export interface AppendReceipt {
  readonly eventId: string;
  /** Where the entry is durable now. A spooled entry reaches the store on replay. */
  readonly durable: 'store' | 'spool';
  /** Chain position, when committed by this call (null when spooled or already stored earlier). */
  readonly seq: number | null;
  readonly hash: string | null;
}

/** Per-append options. */
export interface AppendOptions {
  /** Reject instead of spooling when the store is unavailable (the retention job's record must be in the chain). */
  readonly requireStore?: boolean;
}

interface Pending {
  readonly event: AuditEvent;
  readonly requireStore: boolean;
  readonly resolve: (r: AppendReceipt) => void;
  readonly reject: (e: unknown) => void;
}

const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'SQLITE_BUSY',
  'SQLITE_CANTOPEN',
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_READONLY',
]);

/**
 * True for errors that mean "the store cannot be reached right now" (spool and retry), as opposed to errors in the
 * request (reject). StoreUnavailableError is what back-ends throw; raw driver errors are recognised as a safety net.
 */
export function isStoreOutage(e: unknown): boolean {
  if (e instanceof StoreUnavailableError) return true;
  if (isAppError(e)) return e.kind === 'unavailable' && e.code === 'STORE_UNAVAILABLE';
  const err = e as { code?: unknown; name?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  if (typeof err.code === 'string' && (OUTAGE_CODES.has(err.code) || err.code.startsWith('SQLITE_IOERR_'))) return true;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return typeof err.message === 'string' && /Connection is closed|Stream isn't writeable|database connection is not open/.test(err.message);
}

const WITNESS = 'checkpoint.json';
const REPLAY_CHUNKS_PER_STEP = 8;

/** The durable, chained, checkpointed audit writer of one gateway process (see the file comment for guarantees). */
export class AuditLog {
  private readonly store: AuditStore;
  private readonly signer: AuditSigner;
  private readonly clock: Clock;
  private readonly hooks: AuditLogHooks;
  private readonly newId: () => string;
  private readonly everyEntries: number;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly maxBatch: number;
  private readonly retryMs: number;
  private readonly retryMaxMs: number;
  private readonly maxConflicts: number;

  private pending: Pending[] = [];
  private windowTimer: NodeJS.Timeout | null = null;
  private draining = false;
  private work: Promise<unknown> = Promise.resolve();
  /** undefined: unknown, re-read before the next commit. */
  private head: AuditHead | null | undefined = undefined;
  private headIsCheckpoint = false;
  private currentMode: AuditLogMode = 'direct';
  private replayOffset = 0;
  private replayTimer: NodeJS.Timeout | null = null;
  private replayDelay: number;
  private idleTimer: NodeJS.Timeout | null = null;
  private lastCheckpointAtMs: number;
  private latest: SignedCheckpoint | null;
  private closed = false;

  private constructor(
    opts: AuditLogOptions,
    private readonly spool: Spool,
    private readonly spoolDir: string,
    witness: SignedCheckpoint | null,
  ) {
    this.store = opts.store;
    this.signer = opts.signer;
    this.clock = opts.clock;
    this.hooks = opts.hooks ?? {};
    this.newId = opts.newId ?? (() => newTimeOrderedId(this.clock.nowMs()));
    this.everyEntries = opts.checkpointEveryEntries ?? 1000;
    this.intervalMs = opts.checkpointIntervalMs ?? 60_000;
    this.windowMs = opts.groupCommitWindowMs ?? 0;
    this.maxBatch = opts.groupCommitMaxBatch ?? 256;
    this.retryMs = opts.spoolRetryMs ?? 1000;
    this.retryMaxMs = opts.spoolRetryMaxMs ?? 30_000;
    this.maxConflicts = opts.maxConflictRetries ?? 100;
    this.replayDelay = this.retryMs;
    this.lastCheckpointAtMs = this.clock.nowMs();
    this.latest = witness;
    if (!Number.isInteger(this.everyEntries) || this.everyEntries < 1) throw new RangeError('checkpointEveryEntries must be ≥ 1');
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError('groupCommitMaxBatch must be ≥ 1');
  }

  /**
   * Opens the log: creates the spool directory, repairs a torn spool tail, loads the checkpoint witness, and starts
   * replaying a spool left by an earlier run (in spooling mode until it is drained).
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    const spool = await Spool.open(opts.spoolDir);
    let witness: SignedCheckpoint | null = null;
    try {
      const w = JSON.parse(await fsp.readFile(path.join(opts.spoolDir, WITNESS), 'utf8')) as Partial<SignedCheckpoint>;
      if (
        typeof w.seq === 'number' &&
        typeof w.hash === 'string' &&
        typeof w.signedAt === 'string' &&
        typeof w.keyId === 'string' &&
        typeof w.signature === 'string'
      ) {
        witness = w as SignedCheckpoint;
      }
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') opts.hooks?.onError?.(e, 'read checkpoint witness');
    }
    const log = new AuditLog(opts, spool, opts.spoolDir, witness);
    if (spool.size > 0) {
      log.setMode('spooling');
      log.scheduleReplay(0);
    }
    log.startIdleCheckpoints();
    return log;
  }

  /** `direct` (writing to the store) or `spooling` (store unavailable, or a spool still being replayed). */
  get mode(): AuditLogMode {
    return this.currentMode;
  }

  /** Bytes waiting in the spool. */
  get spooledBytes(): number {
    return this.spool.size;
  }

  /** The newest checkpoint this instance signed (persisted across restarts), or null. */
  latestCheckpoint(): SignedCheckpoint | null {
    return this.latest;
  }

  /**
   * Validates, links and durably writes one event. Rejects with `AUDIT_EVENT_INVALID` (bad_request) for an event
   * that does not match the schema, and with an `unavailable` AppError when it could be written neither to the store
   * nor to the spool, or after `close()`.
   */
  append(input: AuditEventInput, options: AppendOptions = {}): Promise<AppendReceipt> {
    if (this.closed) return Promise.reject(new AppError('unavailable', 'AUDIT_LOG_CLOSED', 'audit log is closed'));
    let event: AuditEvent;
    try {
      event = buildAuditEvent(input, { eventId: this.newId, nowMs: this.clock.nowMs() });
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return new Promise<AppendReceipt>((resolve, reject) => {
      this.pending.push({ event, requireStore: options.requireStore === true, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when every append made before the call is durable (store or spool) or has failed. */
  async flush(): Promise<void> {
    if (this.pending.length > 0) this.kick();
    // The work chain may grow while we wait (a drain re-schedules itself); wait until it is quiet.
    for (;;) {
      const tail = this.work;
      await tail.catch(() => undefined);
      if (tail === this.work && this.pending.length === 0 && !this.draining) return;
      if (this.pending.length > 0) this.kick();
    }
  }

  /** Tries to replay the spool now; true when it is empty afterwards. */
  replayNow(): Promise<boolean> {
    return this.replayAll();
  }

  /** Writes a checkpoint over the current head now (unless the head is one already); returns the newest checkpoint. */
  async checkpointNow(): Promise<SignedCheckpoint | null> {
    await this.flush();
    await this.enqueue(async () => {
      if (this.currentMode === 'direct') await this.commit([], true);
    });
    return this.latest;
  }

  /**
   * Flushes, writes a final checkpoint when the store is reachable and entries are uncovered, and releases the
   * spool. Spooled events that could not be replayed stay in the spool for the next start.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = null;
    await this.flush();
    await this.replayAll().catch((e) => this.hook('onError', e, 'final replay'));
    await this.enqueue(async () => {
      if (this.currentMode === 'direct') await this.commit([], true);
    }).catch((e) => this.hook('onError', e, 'final checkpoint'));
    if (this.replayTimer) clearTimeout(this.replayTimer);
    await this.spool.close();
  }

  // ---------------------------------------------------------------------------------------------------------------

  private hook<K extends keyof AuditLogHooks>(name: K, ...args: Parameters<NonNullable<AuditLogHooks[K]>>): void {
    const fn = this.hooks[name] as ((...a: unknown[]) => void) | undefined;
    if (!fn) return;
    try {
      fn.apply(this.hooks, args);
    } catch {
      // A metrics or logging bug must never break the audit path.
    }
  }

  private setMode(mode: AuditLogMode): void {
    if (this.currentMode === mode) return;
    this.currentMode = mode;
    this.hook('onModeChange', mode);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.work.then(fn);
    this.work = p.catch(() => undefined);
    return p;
  }

  private schedule(): void {
    if (this.pending.length >= this.maxBatch) {
      this.kick();
      return;
    }
    if (this.draining || this.windowTimer) return;
    if (this.windowMs === 0) {
      this.windowTimer = setImmediate(() => this.kick()) as unknown as NodeJS.Timeout;
    } else {
      this.windowTimer = setTimeout(() => this.kick(), this.windowMs);
    }
  }

  private kick(): void {
    if (this.windowTimer) {
      clearTimeout(this.windowTimer);
      clearImmediate(this.windowTimer as unknown as NodeJS.Immediate);
      this.windowTimer = null;
    }
    if (this.draining) return;
    this.draining = true;
    void this.enqueue(() => this.drain()).finally(() => {
      this.draining = false;
      if (this.pending.length > 0) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      await this.processBatch(batch);
    }
  }

  private async processBatch(batch: Pending[]): Promise<void> {
    if (this.currentMode === 'spooling') {
      await this.spoolBatch(batch);
      return;
    }
    try {
      const receipts = await this.commit(batch.map((p) => p.event), false);
      for (const p of batch) {
        p.resolve(receipts.get(p.event.eventId) ?? { eventId: p.event.eventId, durable: 'store', seq: null, hash: null });
      }
    } catch (e) {
      if (isStoreOutage(e)) {
        this.enterSpooling();
        await this.spoolBatch(batch);
        return;
      }
      const err = isAppError(e) ? e : new AppError('internal', 'AUDIT_APPEND_FAILED', 'audit entry could not be written', { cause: e });
      for (const p of batch) p.reject(err);
    }
  }

  private enterSpooling(): void {
    this.head = undefined;
    this.setMode('spooling');
    this.replayDelay = this.retryMs;
    this.scheduleReplay(this.replayDelay);
  }

  private async spoolBatch(batch: Pending[]): Promise<void> {
    const unavailable = new AppError('unavailable', 'AUDIT_STORE_UNAVAILABLE', 'audit store is unavailable');
    const spoolable = batch.filter((p) => {
      if (p.requireStore) p.reject(unavailable);
      return !p.requireStore;
    });
    if (spoolable.length === 0) return;
    const seen = new Set<string>();
    const events = spoolable.map((p) => p.event).filter((e) => !seen.has(e.eventId) && seen.add(e.eventId) !== undefined);
    try {
      await this.spool.append(events);
    } catch (cause) {
      // Neither the store nor the local disk took it: the caller must fail closed.
      const err = new AppError('unavailable', 'AUDIT_UNAVAILABLE', 'audit log cannot persist entries', { cause });
      for (const p of spoolable) p.reject(err);
      return;
    }
    this.hook('onSpool', { events: events.length });
    for (const p of spoolable) p.resolve({ eventId: p.event.eventId, durable: 'spool', seq: null, hash: null });
  }

  private scheduleReplay(delayMs: number): void {
    if (this.closed || this.replayTimer) return;
    this.replayTimer = setTimeout(() => {
      this.replayTimer = null;
      this.enqueue(() => this.replayStep())
        .then((r) => {
          // More to do: continue right away, but as a new work item so waiting appends get their turn in between.
          if (r === 'more') this.scheduleReplay(0);
        })
        .catch((e) => this.hook('onError', e, 'spool replay'));
    }, delayMs);
    this.replayTimer.unref();
  }

  /** Replays the whole spool, step by step; true when it is empty, false when the store failed again. */
  private async replayAll(): Promise<boolean> {
    for (;;) {
      const r = await this.enqueue(() => this.replayStep());
      if (r !== 'more') return r === 'drained';
    }
  }

  /**
   * Moves up to `REPLAY_CHUNKS_PER_STEP` batches from the spool into the store, in spool order. Only runs inside the
   * work chain. A step is bounded so that appends arriving during a long replay wait for one step, not the whole
   * spool (they go to the end of the spool meanwhile, which keeps the order).
   */
  private async replayStep(): Promise<'drained' | 'more' | 'failed'> {
    if (this.currentMode !== 'spooling') return 'drained';
    try {
      for (let step = 0; step < REPLAY_CHUNKS_PER_STEP; step++) {
        const chunk = await this.spool.read(this.replayOffset, this.maxBatch);
        if (chunk.events.length === 0 && chunk.quarantined === 0) {
          if (chunk.nextOffset >= this.spool.size) return await this.finishReplay();
          throw new AppError('internal', 'AUDIT_SPOOL_UNREADABLE', 'audit spool has an unterminated line');
        }
        const valid: AuditEvent[] = [];
        let quarantined = chunk.quarantined;
        for (const ev of chunk.events) {
          try {
            valid.push(parseAuditEvent(ev));
          } catch (e) {
            quarantined += 1;
            this.hook('onError', e, 'spooled event fails the schema; left in the spool file only');
          }
        }
        // Idempotent replay: whatever reached the store before (a reply lost after commit, an earlier partial replay,
        // a crash before the spool was emptied) is skipped by event id.
        const existing = valid.length ? await this.store.existingEventIds(valid.map((e) => e.eventId)) : new Set<string>();
        const fresh = valid.filter((e) => !existing.has(e.eventId));
        if (fresh.length > 0) await this.commit(fresh, false);
        this.replayOffset = chunk.nextOffset;
        this.hook('onReplay', { events: fresh.length, duplicates: valid.length - fresh.length, quarantined });
      }
      return 'more';
    } catch (e) {
      this.head = undefined;
      if (!isStoreOutage(e)) this.hook('onError', e, 'spool replay');
      this.replayDelay = Math.min(this.replayDelay * 2, this.retryMaxMs);
      this.scheduleReplay(this.replayDelay);
      return 'failed';
    }
  }

  private async finishReplay(): Promise<'drained'> {
    await this.spool.reset();
    this.replayOffset = 0;
    this.replayDelay = this.retryMs;
    this.setMode('direct');
    // Cover the replayed entries with a signature right away; if that fails the next commit will notice.
    await this.commit([], true).catch((e) => {
      this.head = undefined;
      this.hook('onError', e, 'checkpoint after replay');
    });
    return 'drained';
  }

  private startIdleCheckpoints(): void {
    const every = Math.max(250, Math.min(this.intervalMs, 60_000) / 4);
    this.idleTimer = setInterval(() => {
      if (this.closed || this.draining || this.currentMode !== 'direct') return;
      if (this.clock.nowMs() - this.lastCheckpointAtMs < this.intervalMs) return;
      if (!this.head || this.headIsCheckpoint) return;
      this.enqueue(async () => {
        if (this.currentMode === 'direct') await this.commit([], true);
      }).catch((e) => this.hook('onError', e, 'interval checkpoint'));
    }, every);
    this.idleTimer.unref();
  }

  /**
   * Links `events` after the head (plus due checkpoints) and appends them with compare-and-set, retrying on
   * Conflict. Returns receipts by event id. Throws store outages unchanged (the caller spools).
   */
  private async commit(events: readonly AuditEvent[], forceCheckpoint: boolean): Promise<Map<string, AppendReceipt>> {
    const started = Date.now();
    const receipts = new Map<string, AppendReceipt>();
    const seen = new Set<string>();
    let remaining = events.filter((e) => !seen.has(e.eventId) && seen.add(e.eventId) !== undefined);
    for (let attempt = 0; ; attempt++) {
      const head = this.head === undefined ? await this.refreshHead() : this.head;
      const { entries, checkpoints } = this.linkBatch(head, remaining, forceCheckpoint);
      if (entries.length === 0) return receipts;
      try {
        await this.store.appendIfHead(head, entries);
      } catch (e) {
        if (!isConflict(e)) {
          this.head = undefined;
          throw e;
        }
        this.hook('onConflict');
        if (attempt >= this.maxConflicts) {
          this.head = undefined;
          throw new AppError('unavailable', 'AUDIT_CONTENTION', 'audit log is under too much write contention', { cause: e });
        }
        await this.refreshHead();
        const existing = await this.store.existingEventIds(remaining.map((r) => r.eventId));
        if (existing.size > 0) {
          for (const id of existing) receipts.set(id, { eventId: id, durable: 'store', seq: null, hash: null });
          remaining = remaining.filter((r) => !existing.has(r.eventId));
        }
        if (attempt >= 2) await sleep(Math.floor(Math.random() * Math.min(50, 2 ** attempt)));
        continue;
      }
      const last = entries[entries.length - 1] as AuditEntry;
      this.head = { seq: last.seq, hash: last.hash };
      this.headIsCheckpoint = last.type === 'audit.checkpoint';
      for (const en of entries) {
        if (en.type !== 'audit.checkpoint') receipts.set(en.eventId, { eventId: en.eventId, durable: 'store', seq: en.seq, hash: en.hash });
      }
      if (checkpoints.length > 0) await this.noteCheckpoint(checkpoints[checkpoints.length - 1] as SignedCheckpoint, checkpoints);
      this.hook('onCommit', { events: remaining.length, entries: entries.length, attempts: attempt + 1, durationMs: Date.now() - started });
      return receipts;
    }
  }

  /** Re-reads the head, and whether it is a checkpoint (so a forced checkpoint is not written twice in a row). */
  private async refreshHead(): Promise<AuditHead | null> {
    const head = await this.store.head();
    this.head = head;
    this.headIsCheckpoint = false;
    if (head) {
      const [entry] = await this.store.range(head.seq, head.seq, 1);
      this.headIsCheckpoint = entry?.type === 'audit.checkpoint' && entry.hash === head.hash;
    }
    return head;
  }

  private linkBatch(
    head: AuditHead | null,
    events: readonly AuditEvent[],
    forceCheckpoint: boolean,
  ): { entries: AuditEntry[]; checkpoints: SignedCheckpoint[] } {
    const entries: AuditEntry[] = [];
    const checkpoints: SignedCheckpoint[] = [];
    const now = this.clock.nowMs();
    let h = head;
    let lastIsCheckpoint = this.headIsCheckpoint;
    const addCheckpoint = (covered: AuditHead): void => {
      const signedAt = new Date(now).toISOString();
      const cp = signCheckpoint(this.signer, covered.seq, covered.hash, signedAt);
      const event: AuditEvent = {
        v: 1,
        eventId: this.newId(),
        time: signedAt,
        type: 'audit.checkpoint',
        actor: SYSTEM_ACTOR,
        data: { seq: cp.seq, hash: cp.hash, signedAt: cp.signedAt, keyId: cp.keyId, signature: cp.signature },
      };
      const e = link(covered, covered.seq + 1, event);
      entries.push(e);
      checkpoints.push(cp);
      h = { seq: e.seq, hash: e.hash };
      lastIsCheckpoint = true;
    };
    for (const ev of events) {
      const e = link(h, (h?.seq ?? 0) + 1, ev);
      entries.push(e);
      h = { seq: e.seq, hash: e.hash };
      lastIsCheckpoint = false;
      // Position-based cadence: every instance puts a checkpoint after the same seqs.
      if (e.seq % this.everyEntries === 0) addCheckpoint(h);
    }
    const due = forceCheckpoint || (events.length > 0 && now - this.lastCheckpointAtMs >= this.intervalMs);
    if (due && h && !lastIsCheckpoint) addCheckpoint(h);
    return { entries, checkpoints };
  }

  private async noteCheckpoint(latest: SignedCheckpoint, all: readonly SignedCheckpoint[]): Promise<void> {
    this.lastCheckpointAtMs = this.clock.nowMs();
    this.latest = latest;
    for (const cp of all) this.hook('onCheckpoint', cp);
    // The witness survives a truncated store: verifyRange compares the store with it. Written atomically.
    const file = path.join(this.spoolDir, WITNESS);
    const tmp = `${file}.tmp`;
    try {
      const fh = await fsp.open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(latest));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, file);
    } catch (e) {
      this.hook('onError', e, 'write checkpoint witness');
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
