import type { Database } from 'better-sqlite3';

/**
 * Schema migrations, applied in order inside one immediate transaction each; `PRAGMA user_version` records the last
 * applied one. Append new migrations; never edit an applied one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    serial_number TEXT NOT NULL UNIQUE,
    asset_tag TEXT,
    model TEXT,
    platform TEXT NOT NULL,
    owner TEXT,
    department TEXT,
    status TEXT NOT NULL,
    status_reason TEXT,
    ek_hash TEXT UNIQUE,
    ek_cert_pem TEXT,
    attestation_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX devices_created ON devices (created_at, id);
  CREATE INDEX devices_status ON devices (status, created_at, id);

  CREATE TABLE enrollment_tokens (
    token_hash TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    spent_at INTEGER
  ) STRICT;
  CREATE INDEX enrollment_tokens_device ON enrollment_tokens (device_id);

  CREATE TABLE certificates (
    serial_hex TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    pem TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    issued_via TEXT NOT NULL
  ) STRICT;
  CREATE INDEX certificates_device ON certificates (device_id, issued_at);

  CREATE TABLE revocations (
    rev_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    serial_hex TEXT NOT NULL UNIQUE,
    device_id TEXT,
    reason TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    revoked_by TEXT NOT NULL
  ) STRICT;

  CREATE TABLE nonces (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX nonces_expiry ON nonces (expires_at);

  CREATE TABLE audit_entries (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    time INTEGER NOT NULL,
    type TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    device_id TEXT,
    user TEXT,
    decision TEXT,
    reason TEXT,
    concentrator TEXT
  ) STRICT;
  CREATE INDEX audit_time ON audit_entries (time);
  CREATE INDEX audit_device ON audit_entries (device_id, time) WHERE device_id IS NOT NULL;
  CREATE INDEX audit_user ON audit_entries (user, time) WHERE user IS NOT NULL;
  CREATE INDEX audit_type ON audit_entries (type, time);
  CREATE INDEX audit_reason ON audit_entries (reason, time) WHERE reason IS NOT NULL;
  CREATE INDEX audit_concentrator ON audit_entries (concentrator, time) WHERE concentrator IS NOT NULL;

  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
  ) STRICT;

  CREATE TABLE rate_limits (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
  ) STRICT, WITHOUT ROWID;
  `,
  // 2: every connection decision reads a device's summary by id; this covering index answers it from a small index
  // instead of the wide device row (EK certificate, attestation key), which with 100,000 devices is mostly not cached.
  `
  CREATE INDEX devices_decision_summary ON devices (id, status, platform, owner, department);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to the latest schema; refuses a database written by a newer devicegate. */
export function migrate(db: Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this devicegate supports (${MIGRATIONS.length}); upgrade devicegate`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v] as string;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
