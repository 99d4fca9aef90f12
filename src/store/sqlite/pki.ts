import type { WriteBatcher } from './write-batcher';
import type { Database, Statement } from 'better-sqlite3';
import type { CertificateRecord, Revocation, RevocationReason } from '../../domain/types';
import { decodeCursor, encodeCursor } from '../cursor';
import type { CertificateStore, CertificateWithRevocation, Page, PageRequest, RevocationStore } from '../types';
import { mapSqliteError } from './db-errors';

interface CertRow {
  serial_hex: string;
  device_id: string;
  sha256: string;
  not_before: number;
  not_after: number;
  pem: string;
  issued_at: number;
  issued_via: string;
}

const certFromRow = (r: CertRow): CertificateRecord => ({
  serialHex: r.serial_hex,
  deviceId: r.device_id,
  sha256: r.sha256,
  notBefore: r.not_before,
  notAfter: r.not_after,
  pem: r.pem,
  issuedAt: r.issued_at,
  issuedVia: r.issued_via,
});

export class SqliteCertificateStore implements CertificateStore {
  private readonly insert: Statement;
  private readonly bySerial: Statement;
  private readonly bySha: Statement;
  private readonly byDevice: Statement;
  private readonly byShaWithRevocation: Statement;

  constructor(
    db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.insert = db.prepare(
      'INSERT INTO certificates (serial_hex, device_id, sha256, not_before, not_after, pem, issued_at, issued_via) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.bySerial = db.prepare('SELECT * FROM certificates WHERE serial_hex = ?');
    this.bySha = db.prepare('SELECT * FROM certificates WHERE sha256 = ?');
    this.byDevice = db.prepare(
      'SELECT * FROM certificates WHERE device_id = ? ORDER BY issued_at DESC, serial_hex DESC',
    );
    this.byShaWithRevocation = db.prepare(
      `SELECT c.*, r.rev_seq, r.device_id AS r_device_id, r.reason AS r_reason, r.revoked_at AS r_revoked_at, r.revoked_by AS r_revoked_by
       FROM certificates c LEFT JOIN revocations r ON r.serial_hex = c.serial_hex WHERE c.sha256 = ?`,
    );
  }

  put(c: CertificateRecord): Promise<void> {
    return this.writer.run(() => {
      try {
        this.insert.run(c.serialHex, c.deviceId, c.sha256, c.notBefore, c.notAfter, c.pem, c.issuedAt, c.issuedVia);
      } catch (e) {
        mapSqliteError(e, `certificate ${c.serialHex}`);
      }
    });
  }

  async getBySerial(serialHex: string): Promise<CertificateRecord | null> {
    const row = this.bySerial.get(serialHex) as CertRow | undefined;
    return row ? certFromRow(row) : null;
  }

  async getBySha256(sha256: string): Promise<CertificateRecord | null> {
    const row = this.bySha.get(sha256) as CertRow | undefined;
    return row ? certFromRow(row) : null;
  }

  async getBySha256WithRevocation(sha256: string): Promise<CertificateWithRevocation | null> {
    const row = this.byShaWithRevocation.get(sha256) as
      | (CertRow & { rev_seq: number | null; r_device_id: string | null; r_reason: string; r_revoked_at: number; r_revoked_by: string })
      | undefined;
    if (!row) return null;
    const certificate = certFromRow(row);
    const revocation =
      row.rev_seq === null
        ? null
        : revocationFromRow({ rev_seq: row.rev_seq, serial_hex: row.serial_hex, device_id: row.r_device_id, reason: row.r_reason, revoked_at: row.r_revoked_at, revoked_by: row.r_revoked_by });
    return { certificate, revocation };
  }

  async listByDevice(deviceId: string): Promise<CertificateRecord[]> {
    return (this.byDevice.all(deviceId) as CertRow[]).map(certFromRow);
  }
}

interface RevocationRow {
  rev_seq: number;
  serial_hex: string;
  device_id: string | null;
  reason: string;
  revoked_at: number;
  revoked_by: string;
}

const revocationFromRow = (r: RevocationRow): Revocation => ({
  serialHex: r.serial_hex,
  deviceId: r.device_id,
  reason: r.reason as RevocationReason,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
});

export class SqliteRevocationStore implements RevocationStore {
  private readonly insert: Statement;
  private readonly select: Statement;
  private readonly page: Statement;
  private readonly countStmt: Statement;
  private readonly bumpGeneration: Statement;
  private readonly readGeneration: Statement;

  constructor(
    db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.insert = db.prepare(
      'INSERT INTO revocations (serial_hex, device_id, reason, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)',
    );
    this.select = db.prepare('SELECT * FROM revocations WHERE serial_hex = ?');
    this.page = db.prepare('SELECT * FROM revocations WHERE rev_seq > ? ORDER BY rev_seq LIMIT ?');
    this.countStmt = db.prepare('SELECT count(*) AS n FROM revocations');
    this.bumpGeneration = db.prepare(
      "INSERT INTO meta (key, value) VALUES ('revocation_generation', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
    );
    this.readGeneration = db.prepare("SELECT value FROM meta WHERE key = 'revocation_generation'");
  }

  revoke(r: Revocation): Promise<void> {
    return this.writer.run(() => {
      // The write batcher's savepoint makes the insert and the generation bump one atomic step.
      try {
        this.insert.run(r.serialHex, r.deviceId, r.reason, r.revokedAt, r.revokedBy);
      } catch (e) {
        mapSqliteError(e, `revocation of ${r.serialHex}`);
      }
      this.bumpGeneration.run();
    });
  }

  async get(serialHex: string): Promise<Revocation | null> {
    const row = this.select.get(serialHex) as RevocationRow | undefined;
    return row ? revocationFromRow(row) : null;
  }

  async list(page: PageRequest): Promise<Page<Revocation>> {
    const after = page.cursor ? (decodeCursor(page.cursor, ['number'])[0] as number) : 0;
    const rows = this.page.all(after, page.limit + 1) as RevocationRow[];
    const more = rows.length > page.limit;
    const kept = rows.slice(0, page.limit);
    const last = kept[kept.length - 1];
    return { items: kept.map(revocationFromRow), nextCursor: more && last ? encodeCursor([last.rev_seq]) : null };
  }

  async count(): Promise<number> {
    return (this.countStmt.get() as { n: number }).n;
  }

  async generation(): Promise<number> {
    const row = this.readGeneration.get() as { value: string } | undefined;
    return row ? Number(row.value) : 0;
  }
}
