/**
 * WAL checkpoints of a long-lived SQLite store run on a worker thread (a second connection doing PASSIVE
 * checkpoints), not inside COMMIT on the event loop. These tests drive a real database through enough commits to
 * start the thread and check that it really checkpoints, that the WAL stays bounded, that the connection's own
 * auto-checkpoint is demoted to a fallback, and that close() stops the thread and leaves a consistent database.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BackgroundCheckpointer, FALLBACK_AUTOCHECKPOINT_PAGES } from '../../../src/store/sqlite/checkpointer';

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('SQLite background checkpointer', () => {
  let dir: string;
  let file: string;
  let db: Database.Database;
  let ckpt: BackgroundCheckpointer;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-ckpt-'));
    file = path.join(dir, 'x.db');
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t (v)');
  });
  afterEach(async () => {
    await ckpt.close();
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const commit = (i: number): void => {
    db.prepare('INSERT INTO t VALUES (?, ?)').run(i, `${'v'.repeat(200)}${i}`);
  };

  it('a short-lived store (a CLI run) never starts the thread and keeps SQLite auto-checkpoint', async () => {
    ckpt = new BackgroundCheckpointer(db, file);
    for (let i = 0; i < 50; i++) {
      commit(i);
      ckpt.noteCommit();
    }
    expect(ckpt.running).toBe(false);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await ckpt.close();
  });

  it('a long-lived store checkpoints on the thread and the WAL stays bounded', async () => {
    ckpt = new BackgroundCheckpointer(db, file);
    for (let i = 0; i < 5000; i++) {
      commit(i);
      ckpt.noteCommit();
      if (i % 250 === 0) await new Promise((r) => setTimeout(r, 120)); // let the throttled requests through
    }
    expect(ckpt.running).toBe(true);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(FALLBACK_AUTOCHECKPOINT_PAGES);
    await until(() => ckpt.checkpoints >= 3);
    expect(ckpt.last).toMatchObject({ ok: true });
    expect(ckpt.last?.checkpointed).toBeGreaterThan(0);
    // 5000 single-row commits write ~60 MB of WAL frames; checkpointed, the WAL is rewound and stays near the
    // fallback threshold.
    expect(statSync(`${file}-wal`).size).toBeLessThan(2 * FALLBACK_AUTOCHECKPOINT_PAGES * 4096);
    await ckpt.close();
    expect(ckpt.running).toBe(false);
    db.close();
    const reopened = new Database(file, { readonly: true });
    expect(reopened.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 5000 });
    expect(reopened.pragma('integrity_check', { simple: true })).toBe('ok');
    reopened.close();
  });

  it('close() settles in a process with nothing else to do (the unreferenced thread must not strand it)', () => {
    // Regression: waiting for an unreferenced worker's exit let an idle process end with close() pending, so a CLI
    // or benchmark stopped silently with exit code 0 after its first long write run.
    const script = path.join(dir, 'close.ts');
    const root = path.resolve(__dirname, '../../..');
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(path.join(root, 'src/store/sqlite'))};
async function main(): Promise<void> {
  const store = openSqliteStore({ path: ${JSON.stringify(path.join(dir, 'cli.db'))} });
  for (let i = 0; i < 300; i++) await store.nonces.put('k' + i, 'v', 60000, Date.now());
  await store.close();
  process.stdout.write('closed\\n');
}
void main();
`,
    );
    const r = spawnSync(process.execPath, ['-r', path.join(root, 'scripts/ts-register.js'), script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('closed\n');
    expect(r.status).toBe(0);
  });
});
