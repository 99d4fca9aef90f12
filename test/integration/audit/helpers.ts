/**
 * Integration helpers: a real SQLite store in a temp dir, and a failure-injection wrapper around a real AuditStore
 * (the brief allows that; no fake store is used anywhere).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEntry } from '../../../src/domain/types';
import { StoreUnavailableError } from '../../../src/store/errors';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { AuditFilter, AuditHead, AuditStore, Page, PageRequest, Store } from '../../../src/store/types';

export interface TempSqlite {
  readonly dir: string;
  readonly dbPath: string;
  store: Store;
  reopen(): Store;
  cleanup(): Promise<void>;
}

export function tempSqlite(prefix = 'dg-audit-'): TempSqlite {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const dbPath = path.join(dir, 'devicegate.sqlite');
  const opened: Store[] = [];
  const t: TempSqlite = {
    dir,
    dbPath,
    store: openSqliteStore({ path: dbPath }),
    reopen() {
      const s = openSqliteStore({ path: dbPath });
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of [t.store, ...opened]) await s.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/**
 * Delegates to a real AuditStore and injects failures: `down` throws StoreUnavailableError before touching the
 * store; `lose-reply` commits an append and then throws (the reply was lost, as with a dropped Redis connection).
 * `target` can be swapped for a reopened store (the store "came back").
 */
export class FaultInjectingAuditStore implements AuditStore {
  mode: 'up' | 'down' | 'lose-reply' = 'up';
  appendCalls = 0;

  constructor(public target: AuditStore) {}

  private gate(): void {
    if (this.mode === 'down') throw new StoreUnavailableError('test-injected');
  }

  async head(): Promise<AuditHead | null> {
    this.gate();
    return this.target.head();
  }
  async appendIfHead(expected: AuditHead | null, entries: readonly AuditEntry[]): Promise<void> {
    this.gate();
    this.appendCalls += 1;
    await this.target.appendIfHead(expected, entries);
    if (this.mode === 'lose-reply') throw new StoreUnavailableError('test-injected (reply lost after commit)');
  }
  async existingEventIds(ids: readonly string[]): Promise<Set<string>> {
    this.gate();
    return this.target.existingEventIds(ids);
  }
  async range(a: number, b: number, limit: number): Promise<AuditEntry[]> {
    this.gate();
    return this.target.range(a, b, limit);
  }
  async query(f: AuditFilter, p: PageRequest): Promise<Page<AuditEntry>> {
    this.gate();
    return this.target.query(f, p);
  }
  async firstSeq(): Promise<number | null> {
    this.gate();
    return this.target.firstSeq();
  }
  async deletePrefix(before: number): Promise<number> {
    this.gate();
    return this.target.deletePrefix(before);
  }
}

/** All stored entries in seq order (test sizes only). */
export async function allEntries(store: AuditStore): Promise<AuditEntry[]> {
  const first = (await store.firstSeq()) ?? 1;
  const head = await store.head();
  if (!head) return [];
  return store.range(first, head.seq, 1_000_000);
}

/** Opens the SQLite file directly, as an attacker with file access would, to tamper with rows. */
export function rawDb(dbPath: string): Database.Database {
  return new Database(dbPath);
}
