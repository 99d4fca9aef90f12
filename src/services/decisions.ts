/**
 * Connection-time decisions (issue 5): the concentrator check behind `POST /v1/decisions`, the FreeRADIUS rlm_rest
 * routes and the revocation feed.
 *
 * One decision: `normalizeDecisionRequest(body)` → `gatherFacts(identity, event, lookups, …)` → `decide(facts,
 * policy, now)` → `toDecisionResponse(decision, id)` → audit `vpn.decision` (and `vpn.session_end` for a
 * disconnect report with counters) → answer. The audit entry is durable (store or fsync-ed spool) before any answer
 * leaves; if it cannot be written, an allow becomes a deny with INTERNAL_ERROR (Vault: no audit, no access).
 *
 * Revocation reaches live sessions through the `cert-revoked` and `device-status` store events (published by the
 * CA service and the registry on every instance, delivered across instances by Redis PUBLISH/SUBSCRIBE): each
 * instance drops its cached facts for the named certificate/device and forwards a notice to every connected
 * revocation-feed subscriber (the OpenVPN management adapter, which kills the matching sessions).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { isRlmRestSection, rlmRestReply, rlmRestToDecisionRequest, type RlmRestReply, type RlmRestSection } from '../adapters/freeradius/rlm-rest';
import type { AuditEventData, AuditEventInput } from '../audit/events';
import type { Principal } from '../auth/permissions';
import { type Dn, parseDn } from '../concentrator/dn';
import { type FactLookups, gatherFacts } from '../concentrator/gather-facts';
import { type NormalizedIdentity, normalizeDecisionRequest } from '../concentrator/normalize';
import { toDecisionResponse } from '../concentrator/response';
import type { DecisionRequest, DecisionResponse } from '../concentrator/schemas';
import type { SerialForms } from '../concentrator/serial';
import type { Config } from '../config/schema';
import { isAppError } from '../domain/errors';
import type { CertificateRecord, DeviceSummary, Revocation } from '../domain/types';
import type { Clock } from '../lib/clock';
import { newTimeOrderedId } from '../lib/ids';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import { decide, type PolicyDecision } from '../policy/decide';
import { type DecisionPolicy, policyFromConfig } from '../policy/policy';
import type { Store } from '../store/types';
import { CERT_REVOKED_TOPIC, type PkiService } from './pki';
import { type AuditRecorder, DEVICE_STATUS_TOPIC } from './registry';

// ---------------------------------------------------------------------------------------------------------------
// Fact lookups with caches
// ---------------------------------------------------------------------------------------------------------------

/** Longest time a cached "not revoked" or "device is active" fact is used without re-reading the store. */
export const FACT_CACHE_TTL_MS = 1000;
/** Upper bound of entries per cache (a few hundred bytes each). */
export const FACT_CACHE_MAX_ENTRIES = 262_144;

/** A Map used as a bounded cache: the oldest insertion goes first when full. */
class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(k: K): V | undefined {
    return this.map.get(k);
  }
  set(k: K, v: V): void {
    if (this.map.size >= this.max && !this.map.has(k)) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(k, v);
  }
  delete(k: K): void {
    this.map.delete(k);
  }
  clear(): void {
    this.map.clear();
  }
  get size(): number {
    return this.map.size;
  }
}

/** Sizes of the fact caches. */
export interface FactCacheStats {
  readonly certificates: number;
  readonly revocations: number;
  readonly devices: number;
}

/**
 * The `FactLookups` of gatherFacts over the store, with small caches.
 *
 * Why caches: a concentrator re-asks for the same devices in bursts (reconnect storms after a gateway restart,
 * REAUTH at reneg-sec), and each decision would otherwise cost three store reads before its audit append.
 *
 * Why they are safe:
 * - Certificate records are immutable once issued (the store has neither update nor delete), so a found record is
 *   cached without expiry. A miss is never cached.
 * - A revocation is final (removeFromCRL is refused), so "revoked" is cached without expiry.
 * - "Not revoked" and "device is active", the facts that can later turn into a deny, live at most `ttlMs` (1 s) and
 *   are dropped as soon as a `cert-revoked` / `device-status` event names them. Store events are best effort by
 *   contract, so the ttl alone already bounds staleness: a revocation or suspension denies the next decision on
 *   every instance within 1 s even if its event is lost, and at once when it arrives.
 * - Denying facts (suspended, registered, retired devices, unknown certificates) are never cached, so a device that
 *   IT resumes or that just finished enrollment is allowed on its next attempt.
 *
 * Guarantees: a lookup reads the store or returns a value that is immutable or at most `ttlMs` old; store errors
 * propagate (gatherFacts turns them into a deny).
 */
export class CachedFactLookups implements FactLookups {
  private readonly certsBySha = new BoundedMap<string, CertificateRecord>(FACT_CACHE_MAX_ENTRIES);
  private readonly certsBySerial = new BoundedMap<string, CertificateRecord>(FACT_CACHE_MAX_ENTRIES);
  private readonly revoked = new BoundedMap<string, Revocation>(FACT_CACHE_MAX_ENTRIES);
  private readonly notRevokedUntil = new BoundedMap<string, number>(FACT_CACHE_MAX_ENTRIES);
  private readonly activeDevices = new BoundedMap<string, { readonly device: DeviceSummary; readonly until: number }>(FACT_CACHE_MAX_ENTRIES);
  /** Reads in flight, shared by concurrent decisions for the same certificate or device. */
  private readonly inflightRevocations = new Map<string, Promise<Revocation | null>>();
  private readonly inflightDevices = new Map<string, Promise<DeviceSummary | null>>();
  /**
   * Bumped by every invalidation. A read that started before an invalidation may have seen the state before the
   * revocation was written; its result is returned to the decision that asked (it started earlier) but not cached.
   */
  private epoch = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly ttlMs: number = FACT_CACHE_TTL_MS,
  ) {}

  async certificateBySha256(sha256: string): Promise<CertificateRecord | null> {
    const cached = this.certsBySha.get(sha256);
    if (cached) {
      this.found(cached);
      return cached;
    }
    // Not cached: the certificate and its revocation come in one store read, and the revocation is remembered as
    // revocation() would remember it (so found() below does not read it again).
    const now = this.clock.nowMs();
    const epoch = this.epoch;
    const both = await this.store.certificates.getBySha256WithRevocation(sha256);
    if (!both) return null;
    const serialHex = both.certificate.serialHex;
    if (both.revocation) {
      this.revoked.set(serialHex, both.revocation);
      this.notRevokedUntil.delete(serialHex);
    } else if (this.ttlMs > 0 && epoch === this.epoch) {
      this.notRevokedUntil.set(serialHex, now + this.ttlMs);
    }
    this.found(both.certificate);
    return both.certificate;
  }

  async certificateBySerial(serial: SerialForms): Promise<CertificateRecord | null> {
    const record = this.certsBySerial.get(serial.der) ?? (await this.store.certificates.getBySerial(serial.der));
    if (record) this.found(record);
    return record;
  }

  revocation(serialHex: string): Promise<Revocation | null> {
    const revoked = this.revoked.get(serialHex);
    if (revoked) return Promise.resolve(revoked);
    const now = this.clock.nowMs();
    const until = this.notRevokedUntil.get(serialHex);
    if (until !== undefined && until > now) return Promise.resolve(null);
    const inflight = this.inflightRevocations.get(serialHex);
    if (inflight) return inflight;
    const epoch = this.epoch;
    const p = this.store.revocations
      .get(serialHex)
      .then((r) => {
        if (r) {
          this.revoked.set(serialHex, r);
          this.notRevokedUntil.delete(serialHex);
        } else if (this.ttlMs > 0 && epoch === this.epoch) {
          this.notRevokedUntil.set(serialHex, now + this.ttlMs);
        }
        return r;
      })
      .finally(() => {
        if (this.inflightRevocations.get(serialHex) === p) this.inflightRevocations.delete(serialHex);
      });
    this.inflightRevocations.set(serialHex, p);
    return p;
  }

  device(id: string): Promise<DeviceSummary | null> {
    const now = this.clock.nowMs();
    const hit = this.activeDevices.get(id);
    if (hit && hit.until > now) return Promise.resolve(hit.device);
    const inflight = this.inflightDevices.get(id);
    if (inflight) return inflight;
    const epoch = this.epoch;
    const p = this.store.devices
      .getSummary(id)
      .then((d) => {
        if (d && d.status === 'active' && this.ttlMs > 0 && epoch === this.epoch) this.activeDevices.set(id, { device: d, until: now + this.ttlMs });
        else this.activeDevices.delete(id);
        return d;
      })
      .finally(() => {
        if (this.inflightDevices.get(id) === p) this.inflightDevices.delete(id);
      });
    this.inflightDevices.set(id, p);
    return p;
  }

  /** Something about the device changed: its next decision reads the store. */
  invalidateDevice(deviceId: string): void {
    this.epoch++;
    this.activeDevices.delete(deviceId);
    this.inflightDevices.delete(deviceId);
  }

  /** The certificate was revoked: its next decision reads the revocation from the store. */
  invalidateCertificate(serialHex: string): void {
    this.epoch++;
    this.notRevokedUntil.delete(serialHex);
    this.inflightRevocations.delete(serialHex);
  }

  /** Drops every cached fact that could turn into a deny. */
  invalidateAll(): void {
    this.epoch++;
    this.notRevokedUntil.clear();
    this.activeDevices.clear();
    this.inflightRevocations.clear();
    this.inflightDevices.clear();
  }

  stats(): FactCacheStats {
    return { certificates: this.certsBySha.size, revocations: this.notRevokedUntil.size + this.revoked.size, devices: this.activeDevices.size };
  }

  /**
   * A certificate record was found: remember it (it is immutable) and start reading its revocation and its device
   * now, in parallel, since gatherFacts asks for both next (one store round trip of latency instead of two).
   * Errors of these prefetches surface when gatherFacts awaits them.
   */
  private found(record: CertificateRecord): void {
    this.certsBySha.set(record.sha256.toLowerCase(), record);
    this.certsBySerial.set(record.serialHex, record);
    this.revocation(record.serialHex).catch(() => undefined);
    this.device(record.deviceId).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Revocation feed hub
// ---------------------------------------------------------------------------------------------------------------

/** One revocation notice as the feed sends it (`data:` of an SSE message; see docker/openvpn/README.md). */
export interface RevocationFeedData {
  readonly device_id?: string;
  readonly cert_sha256?: string;
  readonly reason: string;
}

/** A notice with its SSE event id (`<instance>.<seq>`). */
export interface RevocationFeedEvent {
  readonly id: string;
  readonly data: RevocationFeedData;
}

/** A subscription to the feed. */
export interface RevocationFeedSubscription {
  /** Events after the subscriber's `Last-Event-ID` that this instance still holds (empty when it cannot resume). */
  readonly replay: readonly RevocationFeedEvent[];
  /** True when `Last-Event-ID` was one of ours and every later event could be replayed. */
  readonly resumed: boolean;
  close(): void;
}

/** How many recent notices an instance keeps for `Last-Event-ID` replay. */
export const FEED_REPLAY_EVENTS = 1024;
/** Concurrent feed subscribers per instance (one per OpenVPN management daemon is the normal case). */
export const FEED_MAX_SUBSCRIBERS = 512;

const DEVICE_STATUS_REASON: Readonly<Record<string, string>> = {
  suspended: 'DEVICE_SUSPENDED',
  revoked: 'DEVICE_REVOKED',
  retired: 'DEVICE_RETIRED',
  registered: 'DEVICE_NOT_ENROLLED',
};

const HEX64 = /^[0-9a-f]{64}$/;
const SERIAL_HEX = /^[0-9a-f]{1,66}$/;
const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fans revocation notices out to feed subscribers and keeps the last `FEED_REPLAY_EVENTS` for `Last-Event-ID`
 * resume. Event ids are `<instance>.<seq>`: instance-local, because the store events carry no global sequence. A
 * subscriber resuming on another instance (or after more than the buffered events) gets no replay, and the
 * OpenVPN adapter re-checks every live session after any reconnect, which covers the gap.
 *
 * Guarantees: `publish` never throws; a subscriber is never given an event twice; events reach subscribers in the
 * order they were published on this instance.
 */
export class RevocationHub {
  private readonly instance = randomBytes(4).toString('hex');
  private seq = 0;
  private readonly recent: RevocationFeedEvent[] = [];
  private readonly listeners = new Map<(e: RevocationFeedEvent) => void, () => void>();
  private closed = false;

  /** Number of connected subscribers. */
  get subscribers(): number {
    return this.listeners.size;
  }

  /** True while another subscriber may join. */
  get acceptsSubscribers(): boolean {
    return !this.closed && this.listeners.size < FEED_MAX_SUBSCRIBERS;
  }

  publish(data: RevocationFeedData): void {
    if (this.closed) return;
    const e: RevocationFeedEvent = { id: `${this.instance}.${++this.seq}`, data };
    this.recent.push(e);
    if (this.recent.length > FEED_REPLAY_EVENTS) this.recent.shift();
    for (const l of [...this.listeners.keys()]) {
      try {
        l(e);
      } catch {
        // a broken subscriber must not stop the others
      }
    }
  }

  /** `onClose` runs when the hub closes (service shutdown), so the route can end the stream. */
  subscribe(
    lastEventId: string | null | undefined,
    listener: (e: RevocationFeedEvent) => void,
    onClose: () => void = () => undefined,
  ): RevocationFeedSubscription {
    let replay: RevocationFeedEvent[] = [];
    let resumed = false;
    const m = typeof lastEventId === 'string' ? /^([0-9a-f]{8})\.(\d{1,15})$/.exec(lastEventId.trim()) : null;
    if (m && m[1] === this.instance) {
      const after = Number(m[2]);
      const oldest = this.recent[0] ? Number(this.recent[0].id.split('.')[1]) : this.seq + 1;
      if (after <= this.seq && after >= oldest - 1) {
        replay = this.recent.filter((e) => Number(e.id.split('.')[1]) > after);
        resumed = true;
      }
    }
    this.listeners.set(listener, onClose);
    return {
      replay,
      resumed,
      close: () => {
        this.listeners.delete(listener);
      },
    };
  }

  /** Translates a `device-status` store event; null when nothing needs killing (the device became active). */
  static fromDeviceStatus(message: string): { deviceId: string; data: RevocationFeedData | null } | null {
    const m = parseJsonObject(message);
    const id = m?.device_id;
    const status = m?.status;
    if (typeof id !== 'string' || !DEVICE_ID.test(id) || typeof status !== 'string') return null;
    const reason = DEVICE_STATUS_REASON[status];
    return { deviceId: id.toLowerCase(), data: reason ? { device_id: id.toLowerCase(), reason } : null };
  }

  /**
   * Translates a `cert-revoked` store event. The notice names only the certificate: after a renewal the device's
   * older certificate is revoked (superseded) while its session with the new one must survive.
   */
  static fromCertRevoked(message: string): { serialHex: string | null; data: RevocationFeedData | null } | null {
    const m = parseJsonObject(message);
    if (!m) return null;
    const sha = typeof m.cert_sha256 === 'string' ? m.cert_sha256.toLowerCase() : null;
    const serial = typeof m.serial_hex === 'string' && SERIAL_HEX.test(m.serial_hex) ? m.serial_hex : null;
    return { serialHex: serial, data: sha && HEX64.test(sha) ? { cert_sha256: sha, reason: 'CERT_REVOKED' } : null };
  }

  close(): void {
    this.closed = true;
    const closers = [...this.listeners.values()];
    this.listeners.clear();
    for (const c of closers) {
      try {
        c();
      } catch {
        // ignore
      }
    }
  }
}

function parseJsonObject(s: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Audit records
// ---------------------------------------------------------------------------------------------------------------

const ipSchema = z.union([z.ipv4(), z.ipv6()]);
const clip = (s: string | null | undefined, max: number): string | undefined =>
  typeof s === 'string' && s.length > 0 ? s.slice(0, max) : undefined;
const AUDIT_SERIAL = /^[0-9a-f]{1,64}$/;

type DecisionData = AuditEventData<'vpn.decision'>;
type SessionEndData = AuditEventData<'vpn.session_end'>;

function auditPeer(request: DecisionRequest): DecisionData['peer'] {
  const ip = request.peer?.ip;
  if (typeof ip !== 'string' || !ipSchema.safeParse(ip).success) return null;
  const port = request.peer?.port;
  return typeof port === 'number' ? { ip, port } : { ip };
}

function auditConcentrator(request: DecisionRequest, principal: Principal): DecisionData['concentrator'] {
  const g = request.gateway;
  return {
    id: g.id.slice(0, 200),
    kind: g.kind,
    ...(g.hook ? { hook: g.hook.slice(0, 64) } : {}),
    ...(g.version ? { version: g.version.slice(0, 64) } : {}),
    credential: principal.name.slice(0, 200),
  };
}

function auditCert(request: DecisionRequest, identity: NormalizedIdentity): DecisionData['cert'] {
  const c = request.cert;
  const serial = identity.serial ? (AUDIT_SERIAL.test(identity.serial.der) ? identity.serial.der : identity.serial.canonical) : undefined;
  const uris = (c?.san?.uri ?? []).filter((u) => u.length > 0).slice(0, 20).map((u) => u.slice(0, 500));
  const notAfter =
    identity.notAfterMs !== null && Number.isFinite(identity.notAfterMs) && Math.abs(identity.notAfterMs) < 8.64e15
      ? new Date(identity.notAfterMs).toISOString()
      : undefined;
  const out: Record<string, unknown> = {};
  if (identity.sha256) out.sha256 = identity.sha256;
  if (serial && AUDIT_SERIAL.test(serial)) out.serialHex = serial;
  const issuer = clip(c?.issuer_dn, 500);
  if (issuer) out.issuerDn = issuer;
  const subject = clip(c?.subject_dn, 500);
  if (subject) out.subjectDn = subject;
  const cn = clip(identity.cn, 500);
  if (cn) out.cn = cn;
  if (uris.length) out.sanUris = uris;
  if (notAfter) out.notAfter = notAfter;
  return Object.keys(out).length ? out : undefined;
}

function auditIds(request: DecisionRequest): DecisionData['ids'] {
  const ids = request.ids;
  const out: Record<string, string> = {};
  const ike = clip(ids?.ike_remote_id, 500);
  if (ike) out.ikeRemoteId = ike;
  const eap = clip(ids?.eap_identity, 500);
  if (eap) out.eapIdentity = eap;
  const user = clip(ids?.username, 500);
  if (user) out.username = user;
  return Object.keys(out).length ? out : undefined;
}

function auditSession(request: DecisionRequest): DecisionData['session'] {
  const s = request.session;
  const out: Record<string, unknown> = {};
  if (typeof s?.ovpn_cid === 'number') out.ovpnCid = s.ovpn_cid;
  if (typeof s?.ovpn_kid === 'number') out.ovpnKid = s.ovpn_kid;
  const ike = clip(s?.ike_unique_id, 64);
  if (ike) out.ikeUniqueId = ike;
  const acct = clip(s?.acct_session_id, 128);
  if (acct) out.acctSessionId = acct;
  return Object.keys(out).length ? out : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------------------------

export interface DecisionServiceDeps {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly audit: AuditRecorder;
  readonly pki: PkiService;
}

/** Who asks and how the request is known to the logs. */
export interface DecisionContext {
  /** The authenticated concentrator (API token of role `concentrator`). */
  readonly principal: Principal;
  /** HTTP request id (`X-Request-Id`); used as the audit `requestId` when the body has no `request_id`. */
  readonly requestId: string;
  /** `performance.now()` when the request arrived (for `latencyMs`); default: when `decide` is called. */
  readonly startedAt?: number | undefined;
}

/** Connection-time decisions (see the file comment). */
export interface DecisionService {
  /**
   * Decides one `POST /v1/decisions` body. Throws only AppError `bad_request` (malformed request, never audited);
   * every other outcome resolves to a response, audited as `vpn.decision` before it resolves. `decision` is `allow`
   * only when the policy allowed it AND the audit entry is durable.
   */
  decide(body: unknown, ctx: DecisionContext): Promise<DecisionResponse>;
  /**
   * One FreeRADIUS rlm_rest call (`section` from the URL). Never throws and never answers 404: `authorize` gets
   * 200 (allow) or 401 (everything else); `post-auth` and `accounting` get 204 (an accounting Stop is audited as a
   * disconnect report with `vpn.session_end`).
   */
  freeradius(section: string, body: unknown, ctx: DecisionContext): Promise<RlmRestReply>;
  /** Revocation notices for `GET /v1/decisions/revocations/stream`. */
  readonly revocations: RevocationHub;
  /** Sizes of the fact caches (tests, diagnostics). */
  cacheStats(): FactCacheStats;
  /** Unsubscribes from store events and disconnects feed subscribers. */
  close(): Promise<void>;
}

/** Subject DN of the issuing (device) CA: certificates whose issuer is anything else are CERT_NOT_OURS. */
function issuingCaSubject(pki: PkiService): Dn {
  return parseDn(new X509Certificate(pki.ca.issuingCertPem).subject);
}

const DENY_INTERNAL = (base: PolicyDecision): PolicyDecision => ({
  allow: false,
  reasonCode: 'INTERNAL_ERROR',
  deviceId: base.deviceId,
  ttlSeconds: 0,
  policyVersion: base.policyVersion,
  notes: [],
});

/** rlm_rest sends octets as `0x…`; our Class is `dec:<decision id>`. */
function decisionIdFromClass(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const raw = (body as Record<string, unknown>)['Class'];
  const v = Array.isArray((raw as { value?: unknown })?.value) ? ((raw as { value: unknown[] }).value[0]) : raw;
  if (typeof v !== 'string') return undefined;
  const text = /^0x([0-9a-fA-F]{2,400})$/.test(v) ? Buffer.from(v.slice(2), 'hex').toString('latin1') : v;
  const m = /^dec:([0-9a-f-]{36})$/.exec(text);
  return m ? m[1] : undefined;
}

class DefaultDecisionService implements DecisionService {
  readonly revocations = new RevocationHub();
  private readonly facts: CachedFactLookups;
  private readonly policy: DecisionPolicy;
  private readonly ourIssuers: readonly Dn[];
  private readonly unsubscribers: (() => Promise<void>)[] = [];
  private readonly subscribed: Promise<void>;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly deps: DecisionServiceDeps) {
    this.facts = new CachedFactLookups(deps.store, deps.clock);
    this.policy = policyFromConfig(deps.config.decisions);
    this.ourIssuers = [issuingCaSubject(deps.pki)];
    if (this.policy.usernameRule === 'department') {
      deps.logger.warn(
        'decisions.usernameRule is "department" but no directory lookup is configured: every connection will be denied (INTERNAL_ERROR)',
      );
    }
    this.subscribed = this.subscribe();
  }

  private async subscribe(): Promise<void> {
    const { store, logger } = this.deps;
    try {
      this.unsubscribers.push(
        await store.events.subscribe(DEVICE_STATUS_TOPIC, (message) => {
          const e = RevocationHub.fromDeviceStatus(message);
          if (!e) return;
          this.facts.invalidateDevice(e.deviceId);
          if (e.data) this.revocations.publish(e.data);
        }),
      );
      this.unsubscribers.push(
        await store.events.subscribe(CERT_REVOKED_TOPIC, (message) => {
          const e = RevocationHub.fromCertRevoked(message);
          if (!e) return;
          if (e.serialHex) this.facts.invalidateCertificate(e.serialHex);
          else this.facts.invalidateAll();
          if (e.data) this.revocations.publish(e.data);
        }),
      );
    } catch (err) {
      // Without events, caches still expire within FACT_CACHE_TTL_MS; only live-session kills wait for the retry.
      logger.error({ err }, 'cannot subscribe to revocation events; retrying in 5 s');
      for (const u of this.unsubscribers.splice(0)) await u().catch(() => undefined);
      if (!this.closed) {
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, 5000);
          this.retryTimer.unref();
        });
        if (!this.closed) return this.subscribe();
      }
    }
  }

  cacheStats(): FactCacheStats {
    return this.facts.stats();
  }

  async decide(body: unknown, ctx: DecisionContext): Promise<DecisionResponse> {
    const startedAt = ctx.startedAt ?? performance.now();
    const { request, identity } = normalizeDecisionRequest(body);
    return this.decideNormalized(request, identity, ctx, startedAt, undefined);
  }

  private async decideNormalized(
    request: DecisionRequest,
    identity: NormalizedIdentity,
    ctx: DecisionContext,
    startedAt: number,
    sessionDecisionId: string | undefined,
  ): Promise<DecisionResponse> {
    const { clock, logger, metrics, config } = this.deps;
    const nowMs = clock.nowMs();
    const facts = await gatherFacts(identity, request.event, this.facts, {
      ourIssuers: this.ourIssuers,
      needUserDepartments: this.policy.usernameRule === 'department',
      deadlineMs: config.decisions.decisionDeadlineMs,
      posture: null,
    });
    if (facts.status === 'unavailable') logger.warn({ requestId: ctx.requestId, detail: facts.detail }, 'decision facts unavailable: denying');
    let decision = decide(facts, this.policy, nowMs);
    const decisionId = newTimeOrderedId(nowMs);
    let response = toDecisionResponse(decision, decisionId);
    const latencyMs = Math.max(0, performance.now() - startedAt);
    try {
      await this.record(request, identity, response, ctx, latencyMs, nowMs, sessionDecisionId);
    } catch (err) {
      // No audit, no access: the entry could be written neither to the store nor to the spool.
      logger.error({ err, requestId: ctx.requestId, decisionId }, 'decision could not be audited');
      if (response.decision === 'allow') {
        decision = DENY_INTERNAL(decision);
        response = toDecisionResponse(decision, decisionId);
      }
    }
    metrics.decisions.inc({ decision: response.decision, reason: response.reason_code });
    return response;
  }

  private async record(
    request: DecisionRequest,
    identity: NormalizedIdentity,
    response: DecisionResponse,
    ctx: DecisionContext,
    latencyMs: number,
    nowMs: number,
    sessionDecisionId: string | undefined,
  ): Promise<void> {
    const full: DecisionData = {
      requestId: (request.request_id || ctx.requestId || response.decision_id).slice(0, 200),
      decisionId: response.decision_id,
      event: request.event,
      decision: response.decision,
      reason: response.reason_code,
      deviceId: response.device_id,
      user: identity.username ? identity.username.slice(0, 500) : null,
      peer: auditPeer(request),
      concentrator: auditConcentrator(request, ctx.principal),
      latencyMs: Math.min(3_600_000, Math.round(latencyMs * 1000) / 1000),
      policyVersion: response.policy_version.slice(0, 64),
    };
    const cert = auditCert(request, identity);
    if (cert) full.cert = cert;
    const ids = auditIds(request);
    if (ids) full.ids = ids;
    const session = auditSession(request);
    if (session) full.session = session;

    const appends: Promise<unknown>[] = [this.appendDecision(full, nowMs)];
    const s = request.session;
    if (request.event === 'disconnect' && s && (typeof s.bytes_sent === 'number' || typeof s.bytes_received === 'number' || typeof s.duration_seconds === 'number')) {
      // Counters the concentrator did not send are recorded as 0 (the schema requires all three).
      const end: SessionEndData = {
        deviceId: response.device_id,
        user: full.user,
        peer: full.peer,
        concentrator: full.concentrator,
        durationSeconds: s.duration_seconds ?? 0,
        bytesSent: s.bytes_sent ?? 0,
        bytesReceived: s.bytes_received ?? 0,
        ...(sessionDecisionId ? { decisionId: sessionDecisionId } : {}),
        ...(session ? { session } : {}),
      };
      appends.push(
        this.deps.audit.append({ type: 'vpn.session_end', timeMs: nowMs, data: end }).catch((err: unknown) => {
          // A lost session-end report denies nothing: log it, keep the decision.
          this.deps.logger.error({ err, decisionId: response.decision_id }, 'session end could not be audited');
        }),
      );
    }
    await Promise.all(appends);
  }

  /**
   * Appends the decision. A schema rejection (an identifier the audit schema does not take, a bug on our side)
   * must not turn a valid decision into an unaudited one: the entry is retried with the request details left out.
   */
  private async appendDecision(data: DecisionData, nowMs: number): Promise<void> {
    const input: AuditEventInput = { type: 'vpn.decision', eventId: data.decisionId, timeMs: nowMs, data };
    try {
      await this.deps.audit.append(input);
    } catch (e) {
      if (!(isAppError(e) && e.code === 'AUDIT_EVENT_INVALID')) throw e;
      this.deps.logger.warn({ details: e.details, decisionId: data.decisionId }, 'decision audit entry rejected by the schema; recording it without request details');
      const { cert: _c, ids: _i, session: _s, ...minimal } = data;
      await this.deps.audit.append({ type: 'vpn.decision', eventId: data.decisionId, timeMs: nowMs, data: { ...minimal, peer: null } });
    }
  }

  async freeradius(section: string, body: unknown, ctx: DecisionContext): Promise<RlmRestReply> {
    const startedAt = ctx.startedAt ?? performance.now();
    if (!isRlmRestSection(section)) {
      // A typo in mods-available/rest must not become 404 → notfound (→ Accept in the stock check-eap-tls).
      return rlmRestReply('authorize', { error: new Error('unknown rlm_rest section') });
    }
    const s: RlmRestSection = section;
    if (s === 'post-auth') return rlmRestReply(s, { error: null });
    try {
      const raw = rlmRestToDecisionRequest(body, { section: s, gatewayId: ctx.principal.name.slice(0, 128), requestId: ctx.requestId });
      const { request, identity } = normalizeDecisionRequest(raw);
      if (s === 'accounting') {
        // Start and Interim-Update are no decisions; a Stop is the disconnect report of the session.
        if (request.event === 'disconnect') await this.decideNormalized(request, identity, ctx, startedAt, decisionIdFromClass(body));
        return rlmRestReply(s, { error: null });
      }
      return rlmRestReply(s, { response: await this.decideNormalized(request, identity, ctx, startedAt, undefined) });
    } catch (error) {
      if (!isAppError(error) || error.kind !== 'bad_request') this.deps.logger.error({ err: error }, 'FreeRADIUS decision failed');
      else this.deps.logger.info({ code: error.code, requestId: ctx.requestId }, 'FreeRADIUS request rejected as malformed');
      return rlmRestReply(s, { error });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.revocations.close();
    // Subscribing may still be waiting for the store; do not hang shutdown on it.
    await Promise.race([this.subscribed, new Promise((r) => setTimeout(r, 1000).unref())]);
    for (const u of this.unsubscribers.splice(0)) await u().catch(() => undefined);
  }
}

/**
 * Builds the decision service. The policy comes from `config.decisions` (policy version, allowed platforms, username
 * rule, maximum certificate age, ttl), the trust anchor of "ours" from the CA service's issuing certificate, the
 * deadline from `decisions.decisionDeadlineMs`. Subscribes to the `device-status` and `cert-revoked` store events.
 */
export function createDecisionService(deps: DecisionServiceDeps): DecisionService {
  return new DefaultDecisionService(deps);
}
