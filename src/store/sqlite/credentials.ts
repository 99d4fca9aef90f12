import type { WriteBatcher } from './write-batcher';
import type { Database, Statement } from 'better-sqlite3';
import type { ApiToken, EnrollmentToken, Role } from '../../domain/types';
import { ConflictError, NotFoundError } from '../errors';
import type { ApiTokenStore, EnrollmentTokenStore } from '../types';
import { mapSqliteError } from './db-errors';

interface TokenRow {
  token_hash: string;
  device_id: string;
  created_at: number;
  expires_at: number;
  created_by: string;
  spent_at: number | null;
}

const tokenFromRow = (r: TokenRow): EnrollmentToken => ({
  tokenHash: r.token_hash,
  deviceId: r.device_id,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  createdBy: r.created_by,
  spentAt: r.spent_at,
});

export class SqliteEnrollmentTokenStore implements EnrollmentTokenStore {
  private readonly insert: Statement;
  private readonly select: Statement;
  private readonly markSpent: Statement;

  constructor(
    db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.insert = db.prepare(
      'INSERT INTO enrollment_tokens (token_hash, device_id, created_at, expires_at, created_by, spent_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.select = db.prepare('SELECT * FROM enrollment_tokens WHERE token_hash = ?');
    this.markSpent = db.prepare(
      'UPDATE enrollment_tokens SET spent_at = @now WHERE token_hash = @hash AND device_id = @device AND spent_at IS NULL AND expires_at > @now RETURNING *',
    );
  }

  create(t: EnrollmentToken): Promise<void> {
    return this.writer.run(() => {
      try {
        this.insert.run(t.tokenHash, t.deviceId, t.createdAt, t.expiresAt, t.createdBy, t.spentAt);
      } catch (e) {
        mapSqliteError(e, 'enrollment token');
      }
    });
  }

  async get(tokenHash: string): Promise<EnrollmentToken | null> {
    const row = this.select.get(tokenHash) as TokenRow | undefined;
    return row ? tokenFromRow(row) : null;
  }

  spend(tokenHash: string, deviceId: string, now: number): Promise<EnrollmentToken> {
    return this.writer.run(() => {
      // One conditional UPDATE is the compare-and-set: only the caller whose statement flips spent_at wins.
      const row = this.markSpent.get({ hash: tokenHash, device: deviceId, now }) as TokenRow | undefined;
      if (row) return tokenFromRow(row);
      if (!this.select.get(tokenHash)) throw new NotFoundError('enrollment token');
      throw new ConflictError('enrollment token (spent, expired or bound to another device)');
    });
  }
}

interface ApiTokenRow {
  id: string;
  name: string;
  role: string;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

const apiTokenFromRow = (r: ApiTokenRow): ApiToken => ({
  id: r.id,
  name: r.name,
  role: r.role as Role,
  secretHash: r.secret_hash,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

export class SqliteApiTokenStore implements ApiTokenStore {
  private readonly insert: Statement;
  private readonly select: Statement;
  private readonly all: Statement;
  private readonly revokeStmt: Statement;

  constructor(
    db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.insert = db.prepare(
      'INSERT INTO api_tokens (id, name, role, secret_hash, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.select = db.prepare('SELECT * FROM api_tokens WHERE id = ?');
    this.all = db.prepare('SELECT * FROM api_tokens ORDER BY created_at, id');
    this.revokeStmt = db.prepare('UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?');
  }

  create(t: ApiToken): Promise<void> {
    return this.writer.run(() => {
      try {
        this.insert.run(t.id, t.name, t.role, t.secretHash, t.createdAt, t.expiresAt, t.revokedAt);
      } catch (e) {
        mapSqliteError(e, `API token ${t.name}`);
      }
    });
  }

  async get(id: string): Promise<ApiToken | null> {
    const row = this.select.get(id) as ApiTokenRow | undefined;
    return row ? apiTokenFromRow(row) : null;
  }

  async list(): Promise<ApiToken[]> {
    return (this.all.all() as ApiTokenRow[]).map(apiTokenFromRow);
  }

  revoke(id: string, now: number): Promise<void> {
    return this.writer.run(() => {
      if (this.revokeStmt.run(now, id).changes === 0) throw new NotFoundError(`API token ${id}`);
    });
  }
}
