import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite';
import { runStoreConformance } from './store.suite';

runStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-sqlite-'));
  const file = path.join(dir, 'devicegate.db');
  const store = openSqliteStore({ path: file });
  const others: { close(): Promise<void> }[] = [];
  return {
    store,
    // SQLite mode is one gateway process; a second handle stands for the CLI working on the same file.
    sharesEvents: false,
    async openSecond() {
      const s = openSqliteStore({ path: file });
      others.push(s);
      return s;
    },
    async cleanup() {
      await store.close();
      for (const o of others) await o.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
