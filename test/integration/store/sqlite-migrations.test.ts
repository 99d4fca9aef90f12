/**
 * Schema migrations on a real database file: a database written at schema version 1 (before the device-summary
 * index) is brought up to date when devicegate opens it, keeps its rows, and the decision read uses the new index.
 * A database from a newer devicegate is refused rather than misread.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../../../src/store/sqlite/migrations';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { Device } from '../../../src/domain/types';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

const device: Device = {
  id: '0c6f7e1e-5d0b-4f8e-9a55-2f7b1a7c9e01',
  serialNumber: 'SN-1',
  assetTag: null,
  model: null,
  platform: 'windows',
  owner: 'anna',
  department: 'Bürgeramt',
  status: 'active',
  statusReason: null,
  tpm: null,
  attestationKey: null,
  createdAt: T0,
  updatedAt: T0,
  version: 1,
};

describe('SQLite schema migrations', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-migrate-'));
    file = path.join(dir, 'devicegate.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Turns a current database back into what schema version 1 left on disk. */
  function downgradeToVersion1(): void {
    const db = new Database(file);
    db.exec('DROP INDEX devices_decision_summary');
    db.pragma('user_version = 1');
    db.close();
  }

  it('upgrades a version-1 database on open, keeping its devices, and answers the decision read from the new index', async () => {
    const first = openSqliteStore({ path: file });
    await first.devices.create(device);
    await first.close();
    downgradeToVersion1();

    const store = openSqliteStore({ path: file });
    try {
      expect(await store.devices.getSummary(device.id)).toEqual({ id: device.id, status: 'active', platform: 'windows', owner: 'anna', department: 'Bürgeramt' });
      expect(await store.devices.get(device.id)).toEqual(device);
    } finally {
      await store.close();
    }
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT id, status, platform, owner, department FROM devices INDEXED BY devices_decision_summary WHERE id = ?').all('x') as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toContain('COVERING INDEX devices_decision_summary');
    db.close();
  });

  it('refuses a database written by a newer devicegate (downgrade)', async () => {
    await openSqliteStore({ path: file }).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    let error: unknown;
    try {
      openSqliteStore({ path: file });
    } catch (e) {
      error = e;
    }
    expect((error as Error | undefined)?.cause).toBeInstanceOf(Error);
    expect(((error as Error).cause as Error).message).toMatch(/newer than this devicegate supports/);
  });
});
