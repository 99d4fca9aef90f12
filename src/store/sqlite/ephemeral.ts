import type { WriteBatcher } from './write-batcher';
import type { Database, Statement } from 'better-sqlite3';
import { AlreadyExistsError } from '../errors';
import type { NonceStore, RateLimitStore } from '../types';

/** Expired rows are swept every this many writes, so the tables stay small without a timer. */
const SWEEP_EVERY = 512;

export class SqliteNonceStore implements NonceStore {
  private readonly select: Statement;
  private readonly insertNew: Statement;
  private readonly upsert: Statement;
  private readonly take: Statement;
  private readonly remove: Statement;
  private readonly sweep: Statement;
  private writes = 0;

  constructor(
    db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.select = db.prepare('SELECT value, expires_at FROM nonces WHERE key = ?');
    // A live row blocks the insert; an expired row is replaced. One statement, so it is atomic across processes.
    this.insertNew = db.prepare(
      'INSERT INTO nonces (key, value, expires_at) VALUES (@key, @value, @exp) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at WHERE nonces.expires_at <= @now',
    );
    this.upsert = db.prepare(
      'INSERT INTO nonces (key, value, expires_at) VALUES (@key, @value, @exp) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
    );
    this.take = db.prepare('DELETE FROM nonces WHERE key = ? RETURNING value, expires_at');
    this.remove = db.prepare('DELETE FROM nonces WHERE key = ?');
    this.sweep = db.prepare('DELETE FROM nonces WHERE expires_at <= ?');
  }

  put(key: string, value: string, ttlMs: number, now: number, options: { overwrite?: boolean } = {}): Promise<void> {
    return this.writer.run(() => {
      const params = { key, value, exp: now + ttlMs, now };
      if (options.overwrite) this.upsert.run(params);
      else if (this.insertNew.run(params).changes === 0) throw new AlreadyExistsError(`nonce ${key}`);
      if (++this.writes % SWEEP_EVERY === 0) this.sweep.run(now);
    });
  }

  async get(key: string, now: number): Promise<string | null> {
    const row = this.select.get(key) as { value: string; expires_at: number } | undefined;
    return row && row.expires_at > now ? row.value : null;
  }

  consume(key: string, now: number): Promise<string | null> {
    return this.writer.run(() => {
      // DELETE ... RETURNING: the row goes away in the same statement that reads it, so only one caller gets it.
      const row = this.take.get(key) as { value: string; expires_at: number } | undefined;
      return row && row.expires_at > now ? row.value : null;
    });
  }

  delete(key: string): Promise<void> {
    return this.writer.run(() => {
      this.remove.run(key);
    });
  }
}

export class SqliteRateLimitStore implements RateLimitStore {
  private readonly bump: Statement;
  private readonly sweep: Statement;
  private writes = 0;

  constructor(
    db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.bump = db.prepare(
      'INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1) ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING count',
    );
    this.sweep = db.prepare('DELETE FROM rate_limits WHERE window_start < ?');
  }

  hit(key: string, windowMs: number, now: number): Promise<number> {
    return this.writer.run(() => {
      const windowStart = now - (now % windowMs);
      const { count } = this.bump.get(key, windowStart) as { count: number };
      // Windows older than a day are of no use to any limiter.
      if (++this.writes % SWEEP_EVERY === 0) this.sweep.run(now - 86_400_000);
      return count;
    });
  }
}
