/**
 * The one canonical audit event schema (version 1).
 *
 * Every entry in the audit log is an `AuditEvent`: an envelope (`v`, `eventId`, `time`, `type`, `actor`) and a
 * type-specific `data` object. Objects are strict (unknown keys are refused) so nothing unplanned, in particular no
 * personal data nobody decided to log, slips into a record that can never be edited afterwards (GDPR Art. 5(1)(c)).
 *
 * Versioning: `v` is part of every hashed body. A later schema adds a new `v` and keeps parsing the old ones; a type
 * name, once used, never changes meaning (Teleport's stable event codes).
 */
import { z } from 'zod';
import { badRequest } from '../domain/errors';
import { DEVICE_STATUSES, PLATFORMS, REVOCATION_REASONS, ROLES } from '../domain/types';

/** Current schema version written into every new event. */
export const AUDIT_EVENT_VERSION = 1 as const;

/** UTC ISO 8601 with exactly three fractional digits and `Z` (BSI OPS.1.1.5.A4: one uniform time format). */
export const ISO_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const isoMs = z.string().regex(ISO_MS_RE, 'UTC ISO 8601 with milliseconds, e.g. 2026-11-26T12:00:00.000Z');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex SHA-256');
const id = z.string().min(1).max(200);
const shortText = z.string().max(500);
const CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const code = z.string().regex(CODE_RE, 'an UPPER_SNAKE code');
const count = z.number().int().min(0);
const ip = z.union([z.ipv4(), z.ipv6()]);

/** Who did it: a signed-in person, an API token, or devicegate itself (scheduled jobs, start-up). */
export const actorSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('user'), id, roles: z.array(z.enum(ROLES)).max(10).readonly().optional() }),
  z.strictObject({ kind: z.literal('token'), id, role: z.enum(ROLES) }),
  z.strictObject({ kind: z.literal('system'), id: z.literal('system') }),
]);
/** The `actor` of an event. */
export type AuditActor = z.infer<typeof actorSchema>;

/** The actor of scheduled jobs and start-up events. */
export const SYSTEM_ACTOR: AuditActor = { kind: 'system', id: 'system' };

const concentrator = z.strictObject({
  id,
  kind: z.enum(['openvpn', 'freeradius', 'strongswan', 'other']),
  hook: z.string().max(64).optional(),
  version: z.string().max(64).optional(),
  /**
   * Name of the API token or mTLS principal that authenticated the request. Everything else here is what the caller
   * claims about itself; this is who it proved to be (a stolen token shows up under its own name).
   */
  credential: z.string().max(200).optional(),
});
const peer = z.strictObject({ ip, port: z.number().int().min(0).max(65535).optional() });
const certIdentity = z.strictObject({
  sha256: hex64.optional(),
  serialHex: z.string().regex(/^[0-9a-f]{1,64}$/).optional(),
  issuerDn: shortText.optional(),
  subjectDn: shortText.optional(),
  cn: shortText.optional(),
  sanUris: z.array(shortText).max(20).optional(),
  notAfter: isoMs.optional(),
});
const requestIds = z.strictObject({
  ikeRemoteId: shortText.optional(),
  eapIdentity: shortText.optional(),
  username: shortText.optional(),
});
const session = z.strictObject({
  ovpnCid: count.optional(),
  ovpnKid: count.optional(),
  ikeUniqueId: z.string().max(64).optional(),
  acctSessionId: z.string().max(128).optional(),
});

/**
 * Per-type `data` schemas and whether the event needs an `actor` (admin and system actions always name one;
 * connection and enrollment events are caused by a device, named in `data`).
 */
const DEFS = {
  /** A connection decision answered to a concentrator (connect, re-auth, disconnect check). */
  'vpn.decision': {
    actor: 'forbidden',
    data: z.strictObject({
      requestId: id,
      decisionId: id,
      event: z.enum(['connect', 'reauth', 'disconnect']),
      decision: z.enum(['allow', 'deny', 'pending']),
      reason: code,
      deviceId: id.nullable(),
      user: shortText.nullable(),
      peer: peer.nullable(),
      concentrator,
      cert: certIdentity.optional(),
      ids: requestIds.optional(),
      session: session.optional(),
      /** Time from request received to decision, in ms. */
      latencyMs: z.number().min(0).max(3_600_000),
      policyVersion: z.string().max(64).optional(),
    }),
  },
  /** A VPN session ended (OpenVPN client-disconnect, RADIUS Accounting-Stop). */
  'vpn.session_end': {
    actor: 'forbidden',
    data: z.strictObject({
      decisionId: id.optional(),
      deviceId: id.nullable(),
      user: shortText.nullable(),
      peer: peer.nullable(),
      concentrator,
      session: session.optional(),
      durationSeconds: z.number().min(0),
      bytesSent: count,
      bytesReceived: count,
      reason: code.optional(),
    }),
  },
  'device.enroll.start': {
    actor: 'forbidden',
    data: z.strictObject({ deviceId: id, peer: peer.nullable(), platform: z.enum(PLATFORMS).optional() }),
  },
  /** Attestation verified: the key is bound to the registered TPM. */
  'device.enroll.attest': {
    actor: 'forbidden',
    data: z.strictObject({
      deviceId: id,
      format: z.string().max(64),
      ekPublicSha256: hex64.optional(),
      akName: z.string().max(200).optional(),
    }),
  },
  'device.enroll.complete': {
    actor: 'forbidden',
    data: z.strictObject({ deviceId: id, certSerialHex: z.string().regex(/^[0-9a-f]{1,64}$/) }),
  },
  'device.enroll.fail': {
    actor: 'forbidden',
    data: z.strictObject({
      deviceId: id.nullable(),
      step: z.enum(['token', 'nonce', 'attestation', 'registry', 'policy', 'csr', 'issue']),
      reason: code,
      peer: peer.nullable(),
    }),
  },
  'cert.issue': {
    actor: 'optional',
    data: z.strictObject({
      deviceId: id,
      serialHex: z.string().regex(/^[0-9a-f]{1,64}$/),
      sha256: hex64,
      notBefore: isoMs,
      notAfter: isoMs,
      via: z.enum(['enroll', 'renew', 'manual']),
    }),
  },
  'cert.renew': {
    actor: 'optional',
    data: z.strictObject({
      deviceId: id,
      serialHex: z.string().regex(/^[0-9a-f]{1,64}$/),
      previousSerialHex: z.string().regex(/^[0-9a-f]{1,64}$/),
      sha256: hex64,
      notAfter: isoMs,
    }),
  },
  'cert.revoke': {
    actor: 'required',
    data: z.strictObject({
      deviceId: id.nullable(),
      serialHex: z.string().regex(/^[0-9a-f]{1,64}$/),
      reason: z.enum(REVOCATION_REASONS),
    }),
  },
  'device.register': {
    actor: 'required',
    data: z.strictObject({
      deviceId: id,
      serialNumber: z.string().min(1).max(128),
      platform: z.enum(PLATFORMS),
      owner: shortText.nullable().optional(),
      department: shortText.nullable().optional(),
    }),
  },
  'device.import': {
    actor: 'required',
    data: z.strictObject({
      rows: count,
      created: count,
      updated: count,
      rejected: count,
      fileSha256: hex64.optional(),
    }),
  },
  'device.status_change': {
    actor: 'required',
    data: z.strictObject({
      deviceId: id,
      from: z.enum(DEVICE_STATUSES),
      to: z.enum(DEVICE_STATUSES),
      reason: shortText.nullable(),
    }),
  },
  'enroll_token.create': {
    actor: 'required',
    data: z.strictObject({ deviceId: id, expiresAt: isoMs }),
  },
  'api_token.create': {
    actor: 'required',
    data: z.strictObject({ tokenId: id, name: z.string().max(200), role: z.enum(ROLES), expiresAt: isoMs.nullable() }),
  },
  /** A request authenticated with an API token (the token is the actor). */
  'api_token.use': {
    actor: 'required',
    data: z.strictObject({ tokenId: id, route: z.string().max(200).optional() }),
  },
  'api_token.revoke': {
    actor: 'required',
    data: z.strictObject({ tokenId: id }),
  },
  /** A sign-in to the admin/auditor UI or CLI, successful or not (a failed one has no actor, only `user`). */
  'admin.login': {
    actor: 'optional',
    data: z.strictObject({
      user: shortText,
      method: z.enum(['saml', 'token', 'cli']),
      outcome: z.enum(['success', 'failure']),
      roles: z.array(z.enum(ROLES)).max(10).readonly(),
      reason: code.optional(),
      peer: peer.nullable().optional(),
    }),
  },
  /** A console session ended by its user (sign-out). Expiry is not an event: the session simply stops working. */
  'admin.logout': {
    actor: 'required',
    data: z.strictObject({
      user: shortText,
      method: z.enum(['saml']),
      sessionSeconds: z.number().min(0).max(31_536_000),
      peer: peer.nullable().optional(),
    }),
  },
  'config.load': {
    actor: 'required',
    data: z.strictObject({
      configSha256: hex64,
      environment: z.string().max(32),
      files: z.array(z.string().max(500)).max(20),
      devDefaults: z.array(z.string().max(200)).max(100),
      version: z.string().max(64).optional(),
    }),
  },
  'audit.export': {
    actor: 'required',
    data: z.strictObject({
      format: z.enum(['ndjson', 'csv']),
      mode: z.enum(['range', 'query']),
      filter: z.record(z.string().max(32), z.union([z.string().max(200), z.number()])).optional(),
      fromSeq: count.optional(),
      toSeq: count.optional(),
      rows: count.optional(),
      pseudonymised: z.boolean(),
    }),
  },
  'audit.verify': {
    actor: 'required',
    data: z.strictObject({
      fromSeq: count,
      toSeq: count,
      ok: z.boolean(),
      checked: count,
      brokenSeq: count.nullable().optional(),
      code: code.optional(),
    }),
  },
  /**
   * A signed checkpoint over the entry immediately before it (`seq` = own seq − 1, `hash` = own prevHash). The
   * signature message is `checkpointMessage()` in ./signing.
   */
  'audit.checkpoint': {
    actor: 'required',
    data: z.strictObject({ seq: count, hash: hex64, signedAt: isoMs, keyId: hex64, signature: z.string().max(200) }),
  },
  /** Written by the retention job before it deletes seq ≤ `deletedThroughSeq`; anchors the new first entry. */
  'audit.retention': {
    actor: 'required',
    data: z.strictObject({
      deletedThroughSeq: count,
      deletedThroughHash: hex64,
      deletedCount: count,
      policy: z.record(z.string().max(64), z.number().int().nullable()),
      signedAt: isoMs,
      keyId: hex64,
      signature: z.string().max(200),
    }),
  },
} as const satisfies Record<string, { actor: 'required' | 'optional' | 'forbidden'; data: z.ZodType }>;

type Defs = typeof DEFS;
/** Every stable event type name. */
export type AuditEventType = keyof Defs;
/** All stable event type names, in schema order. */
export const AUDIT_EVENT_TYPES = Object.keys(DEFS) as AuditEventType[];
/** The `data` of one event type. */
export type AuditEventData<T extends AuditEventType> = z.infer<Defs[T]['data']>;

/** Types an admin or system performs; these always carry an `actor`. */
export const ACTOR_REQUIRED_TYPES: ReadonlySet<AuditEventType> = new Set(
  AUDIT_EVENT_TYPES.filter((t) => DEFS[t].actor === 'required'),
);

function envelope<T extends AuditEventType>(type: T) {
  const def = DEFS[type];
  const actor =
    def.actor === 'required' ? actorSchema : def.actor === 'optional' ? actorSchema.optional() : z.undefined().optional();
  return z.strictObject({
    v: z.literal(AUDIT_EVENT_VERSION),
    eventId: id,
    time: isoMs,
    type: z.literal(type),
    actor,
    data: def.data,
  });
}

const eventSchemas = AUDIT_EVENT_TYPES.map((t) => envelope(t));
/** zod schema of a complete stored event (any type). */
export const auditEventSchema = z.discriminatedUnion('type', eventSchemas as unknown as [
  ReturnType<typeof envelope<AuditEventType>>,
  ...ReturnType<typeof envelope<AuditEventType>>[],
]);

/** A complete event as it is hashed and stored (inside the entry body, beside `seq` and `prevHash`). */
export type AuditEvent = {
  [T in AuditEventType]: {
    readonly v: typeof AUDIT_EVENT_VERSION;
    readonly eventId: string;
    /** UTC ISO 8601 with milliseconds. */
    readonly time: string;
    readonly type: T;
    readonly actor?: AuditActor | undefined;
    readonly data: AuditEventData<T>;
  };
}[AuditEventType];

/** What callers hand to `AuditLog.append`: the log fills `v`, and `eventId`/`time` when absent. */
export type AuditEventInput = {
  [T in AuditEventType]: {
    readonly type: T;
    readonly data: AuditEventData<T>;
    readonly actor?: AuditActor | undefined;
    /** Idempotency key; reuse the request/decision id where there is one. Default: a fresh UUID. */
    readonly eventId?: string | undefined;
    /** Epoch ms of the event. Default: the log's clock. */
    readonly timeMs?: number | undefined;
  };
}[AuditEventType];

/**
 * Validates a complete event. Throws `AppError` bad_request `AUDIT_EVENT_INVALID` with the failing paths (never the
 * values, which may be personal data) in `details`.
 */
export function parseAuditEvent(value: unknown): AuditEvent {
  const r = auditEventSchema.safeParse(value);
  if (!r.success) {
    throw badRequest('AUDIT_EVENT_INVALID', 'audit event does not match the schema', {
      details: { issues: r.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.'), code: i.code })) },
    });
  }
  return r.data as AuditEvent;
}

/**
 * Builds and validates a complete event from caller input. `eventId` (made only when absent) and `timeMs` fall back
 * to the given defaults; `timeMs` must be a finite epoch ms. Throws like `parseAuditEvent`.
 */
export function buildAuditEvent(input: AuditEventInput, defaults: { eventId: () => string; nowMs: number }): AuditEvent {
  const timeMs = input.timeMs ?? defaults.nowMs;
  if (typeof timeMs !== 'number' || !Number.isFinite(timeMs) || Math.abs(timeMs) > 8.64e15) {
    throw badRequest('AUDIT_EVENT_INVALID', 'audit event time is not a valid epoch ms', {
      details: { issues: [{ path: 'timeMs', code: 'invalid_type' }] },
    });
  }
  const candidate: Record<string, unknown> = {
    v: AUDIT_EVENT_VERSION,
    eventId: input.eventId ?? defaults.eventId(),
    time: new Date(timeMs).toISOString(),
    type: input.type,
    data: input.data,
  };
  if (input.actor !== undefined) candidate.actor = input.actor;
  return parseAuditEvent(candidate);
}

/** The indexed query columns of an entry, derived from its event (the verifier re-derives and compares them). */
export interface AuditIndexFields {
  readonly deviceId: string | null;
  readonly user: string | null;
  readonly decision: string | null;
  readonly reason: string | null;
  readonly concentrator: string | null;
}

/**
 * Derives the indexed fields: `deviceId` and `concentrator` from data; `user` is the person concerned (the VPN user,
 * the sign-in name) or else the acting user; `reason` is the decision/failure code (UPPER_SNAKE only).
 */
export function indexFields(event: {
  readonly type: string;
  readonly actor?: { readonly kind: string; readonly id: string } | undefined;
  readonly data: unknown;
}): AuditIndexFields {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const conc = d.concentrator as { id?: unknown } | undefined;
  return {
    deviceId: str(d.deviceId),
    user: str(d.user) ?? (event.actor?.kind === 'user' ? event.actor.id : null),
    decision: event.type === 'vpn.decision' ? str(d.decision) : null,
    // Only machine codes are indexed; free-text reasons (a status change's "lost") stay in the body.
    reason: typeof d.reason === 'string' && CODE_RE.test(d.reason) ? d.reason : null,
    concentrator: conc && typeof conc === 'object' ? str(conc.id) : null,
  };
}

/**
 * Keys under `data` (at any depth) whose string values name a person; pseudonymised in exports for auditors
 * without the need to know. The acting user (`actor.id` of kind `user`) is treated the same way.
 */
export const PERSONAL_NAME_KEYS: ReadonlySet<string> = new Set(['user', 'username', 'eapIdentity', 'owner', 'ikeRemoteId']);

/** Keys under `data` holding IP addresses (optional pseudonymisation). */
export const IP_KEYS: ReadonlySet<string> = new Set(['ip']);
