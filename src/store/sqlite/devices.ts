import type { WriteBatcher } from './write-batcher';
import type { Database, Statement } from 'better-sqlite3';
import type { Device, DeviceStatus, DeviceSummary, Platform } from '../../domain/types';
import { decodeCursor, encodeCursor } from '../cursor';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../errors';
import type { DeviceFilter, DevicePatch, DeviceStore, Page, PageRequest } from '../types';
import { mapSqliteError } from './db-errors';

interface DeviceRow {
  id: string;
  serial_number: string;
  asset_tag: string | null;
  model: string | null;
  platform: string;
  owner: string | null;
  department: string | null;
  status: string;
  status_reason: string | null;
  ek_hash: string | null;
  ek_cert_pem: string | null;
  attestation_key: string | null;
  created_at: number;
  updated_at: number;
  version: number;
}

const COLUMNS =
  'id, serial_number, asset_tag, model, platform, owner, department, status, status_reason, ek_hash, ek_cert_pem, attestation_key, created_at, updated_at, version';

function toRow(d: Device): DeviceRow {
  return {
    id: d.id,
    serial_number: d.serialNumber,
    asset_tag: d.assetTag,
    model: d.model,
    platform: d.platform,
    owner: d.owner,
    department: d.department,
    status: d.status,
    status_reason: d.statusReason,
    ek_hash: d.tpm?.ekPublicSha256 ?? null,
    ek_cert_pem: d.tpm?.ekCertificatePem ?? null,
    attestation_key: d.attestationKey,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    version: d.version,
  };
}

function fromRow(r: DeviceRow): Device {
  return {
    id: r.id,
    serialNumber: r.serial_number,
    assetTag: r.asset_tag,
    model: r.model,
    platform: r.platform as Platform,
    owner: r.owner,
    department: r.department,
    status: r.status as DeviceStatus,
    statusReason: r.status_reason,
    tpm: r.ek_hash === null ? null : { ekPublicSha256: r.ek_hash, ekCertificatePem: r.ek_cert_pem ?? undefined },
    attestationKey: r.attestation_key,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    version: r.version,
  };
}

function whereClause(filter: DeviceFilter): { sql: string; params: Record<string, unknown> } {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  if (filter.status !== undefined) {
    parts.push('status = @status');
    params.status = filter.status;
  }
  if (filter.platform !== undefined) {
    parts.push('platform = @platform');
    params.platform = filter.platform;
  }
  if (filter.owner !== undefined) {
    parts.push('owner = @owner');
    params.owner = filter.owner;
  }
  if (filter.department !== undefined) {
    parts.push('department = @department');
    params.department = filter.department;
  }
  if (filter.search !== undefined && filter.search !== '') {
    // instr() over lower() instead of LIKE so that `%` and `_` in user input are literal.
    parts.push(
      "(instr(lower(serial_number), @search) > 0 OR instr(lower(coalesce(asset_tag, '')), @search) > 0 OR instr(lower(coalesce(model, '')), @search) > 0 OR instr(lower(coalesce(owner, '')), @search) > 0)",
    );
    params.search = filter.search.toLowerCase();
  }
  return { sql: parts.length ? parts.join(' AND ') : '1', params };
}

export class SqliteDeviceStore implements DeviceStore {
  private readonly insert: Statement;
  private readonly byId: Statement;
  private readonly summaryById: Statement;
  private readonly bySerial: Statement;
  private readonly byEk: Statement;
  private readonly updateRow: Statement;
  private readonly upsertRow: Statement;

  constructor(
    private readonly db: Database,
    private readonly writer: WriteBatcher,
  ) {
    this.insert = db.prepare(
      `INSERT INTO devices (${COLUMNS}) VALUES (@id, @serial_number, @asset_tag, @model, @platform, @owner, @department, @status, @status_reason, @ek_hash, @ek_cert_pem, @attestation_key, @created_at, @updated_at, @version)`,
    );
    this.byId = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE id = ?`);
    // INDEXED BY: without ANALYZE statistics SQLite picks the primary-key index and then reads the wide row.
    this.summaryById = db.prepare('SELECT id, status, platform, owner, department FROM devices INDEXED BY devices_decision_summary WHERE id = ?');
    this.bySerial = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE serial_number = ?`);
    this.byEk = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE ek_hash = ?`);
    this.upsertRow = db.prepare(
      `UPDATE devices SET asset_tag=@asset_tag, model=@model, platform=@platform, owner=@owner, department=@department, ek_hash=@ek_hash, ek_cert_pem=coalesce(@ek_cert_pem, ek_cert_pem), updated_at=@updated_at, version=version+1 WHERE serial_number=@serial_number`,
    );
    this.updateRow = db.prepare(
      `UPDATE devices SET serial_number=@serial_number, asset_tag=@asset_tag, model=@model, platform=@platform, owner=@owner, department=@department, status=@status, status_reason=@status_reason, ek_hash=@ek_hash, ek_cert_pem=@ek_cert_pem, attestation_key=@attestation_key, updated_at=@updated_at, version=@version WHERE id=@id`,
    );
  }

  create(device: Device): Promise<void> {
    return this.writer.run(() => {
      try {
        this.insert.run(toRow(device));
      } catch (e) {
        mapSqliteError(e, `device ${device.id} / serial ${device.serialNumber}`);
      }
    });
  }

  async get(id: string): Promise<Device> {
    const row = this.byId.get(id) as DeviceRow | undefined;
    if (!row) throw new NotFoundError(`device ${id}`);
    return fromRow(row);
  }

  async getSummary(id: string): Promise<DeviceSummary | null> {
    const r = this.summaryById.get(id) as Pick<DeviceRow, 'id' | 'status' | 'platform' | 'owner' | 'department'> | undefined;
    return r ? { id: r.id, status: r.status as DeviceStatus, platform: r.platform as Platform, owner: r.owner, department: r.department } : null;
  }

  async findBySerial(serialNumber: string): Promise<Device | null> {
    const row = this.bySerial.get(serialNumber) as DeviceRow | undefined;
    return row ? fromRow(row) : null;
  }

  async findByEkHash(ekPublicSha256: string): Promise<Device | null> {
    const row = this.byEk.get(ekPublicSha256) as DeviceRow | undefined;
    return row ? fromRow(row) : null;
  }

  update(id: string, patch: DevicePatch, expectedVersion?: number): Promise<Device> {
    // Read, compare and write inside one write-batcher savepoint: the version check cannot race.
    return this.writer.run((): Device => {
      const row = this.byId.get(id) as DeviceRow | undefined;
      if (!row) throw new NotFoundError(`device ${id}`);
      if (expectedVersion !== undefined && row.version !== expectedVersion) throw new ConflictError(`device ${id}`);
      const current = fromRow(row);
      const next: Device = { ...current, ...patch, id, createdAt: current.createdAt, version: current.version + 1 };
      try {
        this.updateRow.run(toRow(next));
      } catch (e) {
        mapSqliteError(e, `device serial ${next.serialNumber} or EK`);
      }
      return next;
    });
  }

  async list(filter: DeviceFilter, page: PageRequest): Promise<Page<Device>> {
    const { sql, params } = whereClause(filter);
    let cursorSql = '';
    if (page.cursor) {
      const [createdAt, id] = decodeCursor(page.cursor, ['number', 'string']);
      cursorSql = ' AND (created_at > @c_created OR (created_at = @c_created AND id > @c_id))';
      params.c_created = createdAt;
      params.c_id = id;
    }
    params.limit = page.limit + 1;
    const rows = this.db
      .prepare(`SELECT ${COLUMNS} FROM devices WHERE ${sql}${cursorSql} ORDER BY created_at, id LIMIT @limit`)
      .all(params) as DeviceRow[];
    const more = rows.length > page.limit;
    const items = rows.slice(0, page.limit).map(fromRow);
    const last = items[items.length - 1];
    return { items, nextCursor: more && last ? encodeCursor([last.createdAt, last.id]) : null };
  }

  async count(filter: DeviceFilter = {}): Promise<number> {
    const { sql, params } = whereClause(filter);
    return (this.db.prepare(`SELECT count(*) AS n FROM devices WHERE ${sql}`).get(params) as { n: number }).n;
  }

  upsertManyBySerial(devices: readonly Device[]): Promise<{ created: number; updated: number }> {
    const serials = new Set<string>();
    for (const d of devices) {
      if (serials.has(d.serialNumber)) {
        return Promise.reject(new AlreadyExistsError(`device serial ${d.serialNumber} (twice in one import)`));
      }
      serials.add(d.serialNumber);
    }
    // All rows in one write-batcher savepoint: a failing row rolls back the whole import and nothing else.
    return this.writer.run(() => {
      let created = 0;
      let updated = 0;
      for (const d of devices) {
        const row = toRow(d);
        try {
          if (this.upsertRow.run(row).changes === 1) updated++;
          else {
            this.insert.run(row);
            created++;
          }
        } catch (e) {
          mapSqliteError(e, `device serial ${d.serialNumber} (id or EK hash already used by another device)`);
        }
      }
      return { created, updated };
    });
  }
}
