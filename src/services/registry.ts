import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import type { Principal } from '../auth/permissions';
import type { AuditLog } from '../audit/audit-log';
import { AppError, badRequest, conflict, notFound } from '../domain/errors';
import { DEVICE_STATUSES, PLATFORMS, type Device, type DeviceStatus, type RevocationReason } from '../domain/types';
import type { Clock } from '../lib/clock';
import { CsvError, parseCsv } from '../lib/csv';
import { newId } from '../lib/ids';
import { isAlreadyExists, isConflict, isNotFound } from '../store/errors';
import type { DeviceFilter, Page, PageRequest, Store } from '../store/types';
import { auditActor } from './actors';

export type AuditRecorder = Pick<AuditLog, 'append'>;

/** Revokes every certificate of a device; provided by the CA service. */
export interface DeviceCertificateRevoker {
  revokeDevice(deviceId: string, reason: RevocationReason, actor: Principal): Promise<number>;
}

/** Topic on which status changes are published so every instance drops cached facts and ends live sessions. */
export const DEVICE_STATUS_TOPIC = 'device-status';

const hex64 = z
  .string()
  .trim()
  .transform((s) => s.toLowerCase().replace(/[:\s]/g, ''))
  .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits (SHA-256 of the EK public key in SPKI form)'));
const text = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .refine((v) => !/\p{Cc}/u.test(v), 'must not contain control characters');
const optionalText = (max: number) =>
  z.preprocess((v) => (v === '' || v === undefined ? null : v), text(max).nullable()).optional();

/** What IT supplies to register a device (API body and CSV row alike). */
export const deviceInputSchema = z.strictObject({
  serial_number: text(128).min(1, 'is required'),
  asset_tag: optionalText(64),
  model: optionalText(128),
  platform: z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.enum(PLATFORMS)),
  owner: optionalText(200),
  department: optionalText(200),
  ek_public_sha256: z.preprocess((v) => (v === '' ? undefined : v), hex64.optional()),
  ek_certificate_pem: z.string().max(16_384).optional(),
});
export type DeviceInput = z.input<typeof deviceInputSchema>;

/** Fields IT may change after registration. */
export const devicePatchSchema = deviceInputSchema.partial().strict();

export const statusChangeSchema = z.strictObject({
  status: z.enum(DEVICE_STATUSES),
  reason: text(500).optional(),
});

/**
 * Allowed status changes. `active` is reached by enrollment (attestation), never set by hand, except that a
 * suspended device that had been enrolled may be resumed; `revoked` and `retired` are final (retired only follows).
 */
const TRANSITIONS: Readonly<Record<DeviceStatus, readonly DeviceStatus[]>> = {
  registered: ['suspended', 'revoked', 'retired'],
  active: ['suspended', 'revoked', 'retired'],
  suspended: ['active', 'registered', 'revoked', 'retired'],
  revoked: ['retired'],
  retired: [],
};

export interface ImportRowReport {
  readonly line: number;
  readonly serial_number: string | null;
  readonly action: 'create' | 'update' | 'rejected';
  readonly reasons: string[];
}

export interface ImportReport {
  readonly dry_run: boolean;
  /** True when the rows were written (never on a dry run or a file with rejected rows). */
  readonly applied: boolean;
  readonly rows: number;
  readonly created: number;
  readonly updated: number;
  readonly rejected: number;
  readonly report: ImportRowReport[];
}

export const IMPORT_COLUMNS = [
  'serial_number',
  'asset_tag',
  'model',
  'platform',
  'owner',
  'department',
  'ek_public_sha256',
] as const;

function zodReasons(e: z.ZodError): string[] {
  return e.issues.map((i) => `${i.path.join('.') || 'row'}: ${i.message}`);
}

/** SHA-256 (hex) of the SubjectPublicKeyInfo of the public key in an EK certificate. */
export function ekHashFromCertificate(pem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (cause) {
    throw badRequest('INVALID_EK_CERTIFICATE', 'ek_certificate_pem is not a readable X.509 certificate.', { cause });
  }
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/**
 * The device inventory: IT registers official hardware, imports it in bulk, changes its status and hands out one-time
 * enrollment tokens. Every change is audited with the acting person or token.
 */
export class DeviceRegistry {
  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly audit: AuditRecorder;
      readonly clock: Clock;
      readonly enrollmentTokenTtlSeconds: number;
      readonly revoker?: DeviceCertificateRevoker | undefined;
    },
  ) {}

  private parseInput(body: unknown): z.output<typeof deviceInputSchema> {
    const r = deviceInputSchema.safeParse(body);
    if (!r.success) {
      throw badRequest('INVALID_DEVICE', 'The device data is invalid.', { details: { problems: zodReasons(r.error) } });
    }
    return r.data;
  }

  private tpmFrom(input: { ek_public_sha256?: string | undefined; ek_certificate_pem?: string | undefined }): Device['tpm'] {
    const fromCert = input.ek_certificate_pem ? ekHashFromCertificate(input.ek_certificate_pem) : undefined;
    if (fromCert && input.ek_public_sha256 && fromCert !== input.ek_public_sha256) {
      throw badRequest('EK_MISMATCH', 'ek_public_sha256 does not match the public key of ek_certificate_pem.');
    }
    const hash = input.ek_public_sha256 ?? fromCert;
    return hash ? { ekPublicSha256: hash, ekCertificatePem: input.ek_certificate_pem } : null;
  }

  async register(body: unknown, actor: Principal): Promise<Device> {
    const input = this.parseInput(body);
    const now = this.deps.clock.nowMs();
    const device: Device = {
      id: newId(),
      serialNumber: input.serial_number,
      assetTag: input.asset_tag ?? null,
      model: input.model ?? null,
      platform: input.platform,
      owner: input.owner ?? null,
      department: input.department ?? null,
      status: 'registered',
      statusReason: null,
      tpm: this.tpmFrom(input),
      attestationKey: null,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    try {
      await this.deps.store.devices.create(device);
    } catch (e) {
      if (isAlreadyExists(e)) {
        throw conflict('DEVICE_EXISTS', 'A device with this serial number or EK is already registered.', { cause: e });
      }
      throw e;
    }
    await this.deps.audit.append({
      type: 'device.register',
      actor: auditActor(actor),
      data: { deviceId: device.id, serialNumber: device.serialNumber, platform: device.platform, owner: device.owner, department: device.department },
    });
    return device;
  }

  async get(id: string): Promise<Device> {
    try {
      return await this.deps.store.devices.get(id);
    } catch (e) {
      if (isNotFound(e)) throw notFound('DEVICE_NOT_FOUND', 'No such device.', { cause: e });
      throw e;
    }
  }

  async list(filter: DeviceFilter, page: PageRequest): Promise<Page<Device>> {
    return this.deps.store.devices.list(filter, page);
  }

  async update(id: string, body: unknown, actor: Principal): Promise<Device> {
    const r = devicePatchSchema.safeParse(body);
    if (!r.success) throw badRequest('INVALID_DEVICE', 'The device data is invalid.', { details: { problems: zodReasons(r.error) } });
    const p = r.data;
    const current = await this.get(id);
    const tpm = p.ek_public_sha256 !== undefined || p.ek_certificate_pem !== undefined ? this.tpmFrom(p) : current.tpm;
    if (current.attestationKey && tpm?.ekPublicSha256 !== current.tpm?.ekPublicSha256) {
      // The enrolled TPM is the device's identity; a new TPM means a new enrollment (retire and register again).
      throw conflict('DEVICE_ENROLLED', 'The EK of an enrolled device cannot change; retire it and register it again.');
    }
    try {
      const updated = await this.deps.store.devices.update(
        id,
        {
          ...(p.serial_number !== undefined ? { serialNumber: p.serial_number } : {}),
          ...(p.asset_tag !== undefined ? { assetTag: p.asset_tag } : {}),
          ...(p.model !== undefined ? { model: p.model } : {}),
          ...(p.platform !== undefined ? { platform: p.platform } : {}),
          ...(p.owner !== undefined ? { owner: p.owner } : {}),
          ...(p.department !== undefined ? { department: p.department } : {}),
          tpm,
          updatedAt: this.deps.clock.nowMs(),
        },
        current.version,
      );
      await this.deps.audit.append({
        type: 'device.register',
        actor: auditActor(actor),
        data: { deviceId: id, serialNumber: updated.serialNumber, platform: updated.platform, owner: updated.owner, department: updated.department },
      });
      // Platform, owner and department feed the connection policy: drop cached facts everywhere.
      await this.deps.store.events
        .publish(DEVICE_STATUS_TOPIC, JSON.stringify({ device_id: id, status: updated.status }))
        .catch(() => undefined);
      return updated;
    } catch (e) {
      if (isAlreadyExists(e)) throw conflict('DEVICE_EXISTS', 'Another device has this serial number or EK.', { cause: e });
      if (isConflict(e)) throw conflict('DEVICE_CHANGED', 'The device changed meanwhile; reload and try again.', { cause: e });
      throw e;
    }
  }

  async changeStatus(id: string, body: unknown, actor: Principal): Promise<Device> {
    const r = statusChangeSchema.safeParse(body);
    if (!r.success) throw badRequest('INVALID_STATUS_CHANGE', 'The status change is invalid.', { details: { problems: zodReasons(r.error) } });
    return this.setStatus(id, r.data.status, r.data.reason ?? null, actor);
  }

  /** Retire = the DELETE of the API: the record stays for the audit trail, its certificates are revoked. */
  async retire(id: string, actor: Principal, reason: string | null = null): Promise<Device> {
    return this.setStatus(id, 'retired', reason, actor);
  }

  private async setStatus(id: string, to: DeviceStatus, reason: string | null, actor: Principal): Promise<Device> {
    const current = await this.get(id);
    if (current.status === to) return current;
    if (!TRANSITIONS[current.status].includes(to)) {
      throw conflict('INVALID_TRANSITION', `A ${current.status} device cannot become ${to}.`, {
        details: { from: current.status, to, allowed: TRANSITIONS[current.status] },
      });
    }
    if (to === 'active' && !current.attestationKey) {
      throw conflict('DEVICE_NOT_ENROLLED', 'Only a device that completed enrollment can be resumed to active; resume it to registered.');
    }
    if (to === 'registered' && current.attestationKey) {
      throw conflict('DEVICE_ENROLLED', 'An enrolled device resumes to active, not registered.');
    }
    let updated: Device;
    try {
      updated = await this.deps.store.devices.update(id, { status: to, statusReason: reason, updatedAt: this.deps.clock.nowMs() }, current.version);
    } catch (e) {
      if (isConflict(e)) throw conflict('DEVICE_CHANGED', 'The device changed meanwhile; reload and try again.', { cause: e });
      throw e;
    }
    await this.deps.audit.append({
      type: 'device.status_change',
      actor: auditActor(actor),
      data: { deviceId: id, from: current.status, to, reason },
    });
    if ((to === 'revoked' || to === 'retired') && this.deps.revoker) {
      await this.deps.revoker.revokeDevice(id, to === 'retired' ? 'cessationOfOperation' : 'privilegeWithdrawn', actor);
    }
    // Best effort: decisions read the store anyway; the event only shortens how long caches and sessions live.
    await this.deps.store.events.publish(DEVICE_STATUS_TOPIC, JSON.stringify({ device_id: id, status: to })).catch(() => undefined);
    return updated;
  }

  /** Parses, validates and (unless `dryRun` or any row is rejected) writes a CSV inventory, atomically. */
  async importCsv(csv: string, options: { dryRun: boolean }, actor: Principal): Promise<ImportReport> {
    let rows;
    try {
      rows = parseCsv(csv);
    } catch (e) {
      if (e instanceof CsvError) throw badRequest('INVALID_CSV', e.message, { cause: e });
      throw e;
    }
    const [header, ...data] = rows;
    if (!header) throw badRequest('INVALID_CSV', 'The file is empty; the first line must name the columns.');
    const columns = header.fields.map((f) => f.trim().toLowerCase());
    const unknown = columns.filter((c) => !(IMPORT_COLUMNS as readonly string[]).includes(c));
    const missing = ['serial_number', 'platform'].filter((c) => !columns.includes(c));
    if (unknown.length || missing.length || new Set(columns).size !== columns.length) {
      throw badRequest('INVALID_CSV_HEADER', `The header must name columns from: ${IMPORT_COLUMNS.join(', ')}.`, {
        details: { unknown, missing, duplicates: columns.filter((c, i) => columns.indexOf(c) !== i) },
      });
    }
    const now = this.deps.clock.nowMs();
    const report: ImportRowReport[] = [];
    const devices: Device[] = [];
    const seenSerials = new Map<string, number>();
    const seenEks = new Map<string, number>();
    for (const row of data) {
      const obj: Record<string, string> = {};
      columns.forEach((c, i) => (obj[c] = row.fields[i] ?? ''));
      const reasons: string[] = [];
      if (row.fields.length !== columns.length) reasons.push(`expected ${columns.length} fields, found ${row.fields.length}`);
      const parsed = deviceInputSchema.safeParse(obj);
      if (!parsed.success) reasons.push(...zodReasons(parsed.error));
      const serial = parsed.success ? parsed.data.serial_number : obj.serial_number?.trim() || null;
      if (serial) {
        const first = seenSerials.get(serial);
        if (first !== undefined) reasons.push(`serial_number repeats line ${first}`);
        else seenSerials.set(serial, row.line);
      }
      if (parsed.success && parsed.data.ek_public_sha256) {
        const first = seenEks.get(parsed.data.ek_public_sha256);
        if (first !== undefined) reasons.push(`ek_public_sha256 repeats line ${first}`);
        else seenEks.set(parsed.data.ek_public_sha256, row.line);
      }
      let action: ImportRowReport['action'] = 'rejected';
      if (parsed.success && reasons.length === 0) {
        const d = parsed.data;
        const existing = await this.deps.store.devices.findBySerial(d.serial_number);
        const ekOwner = d.ek_public_sha256 ? await this.deps.store.devices.findByEkHash(d.ek_public_sha256) : null;
        if (ekOwner && ekOwner.serialNumber !== d.serial_number) reasons.push(`ek_public_sha256 belongs to device ${ekOwner.serialNumber}`);
        if (existing?.attestationKey && (d.ek_public_sha256 ?? null) !== (existing.tpm?.ekPublicSha256 ?? null)) {
          reasons.push('the EK of an enrolled device cannot change');
        }
        if (existing && (existing.status === 'retired' || existing.status === 'revoked')) {
          reasons.push(`device is ${existing.status}; it cannot be updated by import`);
        }
        if (reasons.length === 0) {
          action = existing ? 'update' : 'create';
          devices.push({
            id: existing?.id ?? newId(),
            serialNumber: d.serial_number,
            assetTag: d.asset_tag ?? null,
            model: d.model ?? null,
            platform: d.platform,
            owner: d.owner ?? null,
            department: d.department ?? null,
            status: existing?.status ?? 'registered',
            statusReason: existing?.statusReason ?? null,
            tpm: d.ek_public_sha256 ? { ekPublicSha256: d.ek_public_sha256, ekCertificatePem: existing?.tpm?.ekCertificatePem } : null,
            attestationKey: existing?.attestationKey ?? null,
            createdAt: existing?.createdAt ?? now,
            updatedAt: now,
            version: existing?.version ?? 1,
          });
        }
      }
      report.push({ line: row.line, serial_number: serial, action, reasons });
    }
    const rejected = report.filter((r) => r.action === 'rejected').length;
    const created = report.filter((r) => r.action === 'create').length;
    const updated = report.filter((r) => r.action === 'update').length;
    const result: ImportReport = {
      dry_run: options.dryRun,
      applied: false,
      rows: report.length,
      created,
      updated,
      rejected,
      report,
    };
    if (options.dryRun) return result;
    if (rejected > 0) {
      throw new AppError('bad_request', 'IMPORT_REJECTED', `${rejected} of ${report.length} rows were rejected; nothing was written.`, {
        details: { ...result },
      });
    }
    try {
      await this.deps.store.devices.upsertManyBySerial(devices);
    } catch (e) {
      if (isAlreadyExists(e)) {
        throw conflict('IMPORT_CONFLICT', 'The inventory changed during the import; nothing was written. Run it again.', { cause: e });
      }
      throw e;
    }
    await this.deps.audit.append({
      type: 'device.import',
      actor: auditActor(actor),
      data: { rows: report.length, created, updated, rejected: 0, fileSha256: createHash('sha256').update(csv).digest('hex') },
    });
    return { ...result, applied: true };
  }

  /**
   * A one-time enrollment token for a registered device: 256 random bits, only its SHA-256 is stored, shown once.
   */
  async createEnrollmentToken(
    deviceId: string,
    options: { ttlSeconds?: number | undefined },
    actor: Principal,
  ): Promise<{ token: string; deviceId: string; expiresAt: number }> {
    const device = await this.get(deviceId);
    if (device.status !== 'registered' && device.status !== 'active') {
      throw conflict('DEVICE_NOT_ENROLLABLE', `A ${device.status} device cannot enroll.`);
    }
    const ttl = options.ttlSeconds ?? this.deps.enrollmentTokenTtlSeconds;
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > 7 * 86_400) {
      throw badRequest('INVALID_TTL', 'ttl_seconds must be an integer between 60 and 604800.');
    }
    const token = `et_${randomBytes(32).toString('base64url')}`;
    const now = this.deps.clock.nowMs();
    const expiresAt = now + ttl * 1000;
    await this.deps.store.enrollmentTokens.create({
      tokenHash: hashEnrollmentToken(token),
      deviceId,
      createdAt: now,
      expiresAt,
      createdBy: auditActor(actor).id,
      spentAt: null,
    });
    await this.deps.audit.append({
      type: 'enroll_token.create',
      actor: auditActor(actor),
      data: { deviceId, expiresAt: new Date(expiresAt).toISOString() },
    });
    return { token, deviceId, expiresAt };
  }
}

/** SHA-256 hex of an enrollment token, the only form in which it is stored. */
export const hashEnrollmentToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** The API representation of a device (snake_case). */
export function deviceToApi(d: Device): Record<string, unknown> {
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
    tpm: d.tpm ? { ek_public_sha256: d.tpm.ekPublicSha256, ek_certificate: Boolean(d.tpm.ekCertificatePem) } : null,
    enrolled: d.attestationKey !== null,
    created_at: new Date(d.createdAt).toISOString(),
    updated_at: new Date(d.updatedAt).toISOString(),
    version: d.version,
  };
}
