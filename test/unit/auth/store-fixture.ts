/** A throwaway real SQLite store per suite (no fakes: the NonceStore under test is the production one). */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { Store } from '../../../src/store/types';

export interface TempStore {
  readonly store: Store;
  readonly path: string;
  /** Another connection to the same file: a second gateway instance. */
  openAnother(): Store;
  close(): Promise<void>;
}

export function openTempStore(): TempStore {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-auth-'));
  const file = path.join(dir, 'store.db');
  const store = openSqliteStore({ path: file, synchronous: 'NORMAL' });
  const others: Store[] = [];
  return {
    store,
    path: file,
    openAnother() {
      const s = openSqliteStore({ path: file, synchronous: 'NORMAL' });
      others.push(s);
      return s;
    },
    async close() {
      for (const s of others) await s.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
