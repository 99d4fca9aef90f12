/**
 * The store: one small interface per aggregate (Teleport's backend pattern). Two back-ends implement all of it
 * (`sqlite/`, `redis/`) and pass the same conformance suite (`test/conformance/store.suite.ts`).
 *
 * Rules every back-end follows:
 * - Errors are the typed kinds of `./errors` (NotFound, AlreadyExists, Conflict, StoreUnavailable).
 * - Time comes from the caller (`now` arguments, epoch ms), never from the database clock, so TTLs are testable with
 *   a fake clock and several gateway instances agree.
 * - Operations documented as atomic are atomic across gateway instances sharing the back-end.
 * - Records are returned as fresh plain objects; callers may not mutate what they pass in afterwards.
 */
import type {
  ApiToken,
  AuditEntry,
  CertificateRecord,
  Device,
  DeviceStatus,
  DeviceSummary,
  EnrollmentToken,
  Platform,
  Revocation,
} from '../domain/types';

/** Cursor pagination: `cursor` is opaque to callers; `null` means "no more pages". */
export interface PageRequest {
  readonly cursor?: string | null | undefined;
  /** 1..1000; back-ends clamp nothing, callers validate. */
  readonly limit: number;
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export interface DeviceFilter {
  readonly status?: DeviceStatus | undefined;
  readonly platform?: Platform | undefined;
  readonly owner?: string | undefined;
  readonly department?: string | undefined;
  /** Case-insensitive substring match on serial number, asset tag, model and owner. */
  readonly search?: string | undefined;
}

/** Fields an update may change; `id`, `createdAt` and `version` are managed by the store. */
export type DevicePatch = Partial<Omit<Device, 'id' | 'createdAt' | 'version'>> & { readonly updatedAt: number };

export interface DeviceStore {
  /** AlreadyExists when the id or the serial number is taken. */
  create(device: Device): Promise<void>;
  /** NotFound when absent. */
  get(id: string): Promise<Device>;
  /** What a connection decision reads of a device (no key material, no certificates); null when absent. */
  getSummary(id: string): Promise<DeviceSummary | null>;
  findBySerial(serialNumber: string): Promise<Device | null>;
  findByEkHash(ekPublicSha256: string): Promise<Device | null>;
  /**
   * Applies `patch` and increments `version`. With `expectedVersion`, Conflict when the stored version differs.
   * AlreadyExists when the patch changes the serial number or EK hash to one another device has.
   */
  update(id: string, patch: DevicePatch, expectedVersion?: number): Promise<Device>;
  /** Ordered by creation time, then id. */
  list(filter: DeviceFilter, page: PageRequest): Promise<Page<Device>>;
  count(filter?: DeviceFilter): Promise<number>;
  /**
   * Atomic bulk upsert keyed by serial number (CSV import): either every row is written or none. Rows whose serial
   * exists update that device (keeping its id, status and createdAt); others are created with the given id.
   * AlreadyExists when two rows share a serial number, or a row's id or EK hash belongs to another device.
   */
  upsertManyBySerial(devices: readonly Device[]): Promise<{ created: number; updated: number }>;
}

export interface EnrollmentTokenStore {
  /** AlreadyExists when the hash is taken. */
  create(token: EnrollmentToken): Promise<void>;
  /** The token, spent or not, expired or not; null when unknown. Callers judge expiry with their clock. */
  get(tokenHash: string): Promise<EnrollmentToken | null>;
  /**
   * Marks the token spent, atomically and exactly once across all instances. NotFound when unknown; Conflict when
   * already spent or expired at `now`, or bound to another device than `deviceId`.
   */
  spend(tokenHash: string, deviceId: string, now: number): Promise<EnrollmentToken>;
}

export interface CertificateWithRevocation {
  readonly certificate: CertificateRecord;
  readonly revocation: Revocation | null;
}

export interface CertificateStore {
  /** AlreadyExists when the serial is taken. */
  put(record: CertificateRecord): Promise<void>;
  getBySerial(serialHex: string): Promise<CertificateRecord | null>;
  getBySha256(sha256: string): Promise<CertificateRecord | null>;
  /**
   * The certificate with this SHA-256 together with its revocation (null: not revoked), read in one round trip: the
   * first two facts of every connection decision. Null when there is no such certificate.
   */
  getBySha256WithRevocation(sha256: string): Promise<CertificateWithRevocation | null>;
  /** Newest first. */
  listByDevice(deviceId: string): Promise<CertificateRecord[]>;
}

export interface RevocationStore {
  /** AlreadyExists when this serial is already revoked (the first reason and time stand). */
  revoke(revocation: Revocation): Promise<void>;
  get(serialHex: string): Promise<Revocation | null>;
  /** All revocations in revocation order, paged (CRL generation reads them all). */
  list(page: PageRequest): Promise<Page<Revocation>>;
  count(): Promise<number>;
  /** A number that changes whenever a revocation is added; caches (CRL, OCSP) compare it to know they are stale. */
  generation(): Promise<number>;
}

export interface NonceStore {
  /**
   * Stores `value` under `key` until `now + ttlMs`. AlreadyExists when a live (unexpired) entry has that key, unless
   * `overwrite` is set. Used for enrollment nonces, SAML request ids and sessions.
   */
  put(key: string, value: string, ttlMs: number, now: number, options?: { overwrite?: boolean }): Promise<void>;
  /** The live value or null; does not consume. */
  get(key: string, now: number): Promise<string | null>;
  /** Returns the live value and deletes it, atomically: among any number of concurrent callers exactly one wins. */
  consume(key: string, now: number): Promise<string | null>;
  delete(key: string): Promise<void>;
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditFilter {
  readonly fromTime?: number | undefined;
  readonly toTime?: number | undefined;
  readonly type?: string | undefined;
  readonly deviceId?: string | undefined;
  readonly user?: string | undefined;
  readonly decision?: string | undefined;
  readonly reason?: string | undefined;
  readonly concentrator?: string | undefined;
}

export interface AuditStore {
  /** The last entry's seq and hash, or null for an empty log. */
  head(): Promise<AuditHead | null>;
  /**
   * Appends `entries` (consecutive seqs starting at `expected.seq + 1`, or at the first retained seq for an empty
   * log) atomically, only if the head is still `expected`. Conflict when the head moved (the caller re-links and
   * retries) or when an entry's eventId is already stored (appends are idempotent by event id: the caller drops
   * the duplicates and retries). Durable when the promise resolves.
   */
  appendIfHead(expected: AuditHead | null, entries: readonly AuditEntry[]): Promise<void>;
  /** Which of these event ids are already stored (idempotent replay of a spool). */
  existingEventIds(eventIds: readonly string[]): Promise<Set<string>>;
  /** Entries with fromSeq <= seq <= toSeq in seq order, at most `limit`. */
  range(fromSeq: number, toSeq: number, limit: number): Promise<AuditEntry[]>;
  /** Filtered query, newest first (time descending, then seq descending), paged. */
  query(filter: AuditFilter, page: PageRequest): Promise<Page<AuditEntry>>;
  /** The lowest retained seq (after retention deletes a prefix), or null for an empty log. */
  firstSeq(): Promise<number | null>;
  /**
   * Deletes every entry with seq < `beforeSeq` (retention). Only the retention job calls this; no API route does.
   * Returns the number deleted.
   */
  deletePrefix(beforeSeq: number): Promise<number>;
}

export interface ApiTokenStore {
  /** AlreadyExists when the id or name is taken. */
  create(token: ApiToken): Promise<void>;
  get(id: string): Promise<ApiToken | null>;
  list(): Promise<ApiToken[]>;
  /** NotFound when absent. */
  revoke(id: string, now: number): Promise<void>;
}

export interface RateLimitStore {
  /**
   * Counts one hit for `key` in the fixed window of `windowMs` containing `now`, and returns the count in that window
   * including this hit. Atomic across instances.
   */
  hit(key: string, windowMs: number, now: number): Promise<number>;
}

/**
 * Cross-instance notifications (e.g. "device X revoked" so every gateway drops cached facts and ends live sessions).
 * Redis uses PUBLISH/SUBSCRIBE; SQLite, which serves one process, delivers in-process. Delivery is best effort:
 * correctness never depends on it (decisions read the store), only latency does.
 */
export interface StoreEvents {
  publish(topic: string, message: string): Promise<void>;
  /** Returns a function that removes the subscription. */
  subscribe(topic: string, handler: (message: string) => void): Promise<() => Promise<void>>;
}

export type StoreBackend = 'sqlite' | 'redis';

export interface StoreHealth {
  readonly ok: boolean;
  readonly backend: StoreBackend;
  readonly detail?: string | undefined;
}

export interface Store {
  readonly backend: StoreBackend;
  readonly devices: DeviceStore;
  readonly enrollmentTokens: EnrollmentTokenStore;
  readonly certificates: CertificateStore;
  readonly revocations: RevocationStore;
  readonly nonces: NonceStore;
  readonly audit: AuditStore;
  readonly apiTokens: ApiTokenStore;
  readonly rateLimits: RateLimitStore;
  readonly events: StoreEvents;
  /** Round-trip to the back-end; used by `/readyz`. Never throws. */
  ping(): Promise<StoreHealth>;
  /** Warnings worth printing at start-up (e.g. Redis without AOF persistence). */
  startupWarnings(): Promise<string[]>;
  close(): Promise<void>;
}
