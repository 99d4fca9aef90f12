/**
 * The wire format of `POST /v1/decisions` (concentrators.md §8.2–8.3): what a concentrator (or one of our adapters)
 * sends, and what devicegate answers. Field names are snake_case because concentrator configs and scripts write
 * them; every string has a length cap so a hostile body cannot make the parser allocate without bound.
 */
import { z } from 'zod';

const str = (max: number) => z.string().max(max);
const optStr = (max: number) => str(max).nullish();

/** Concentrator kinds that speak to devicegate. */
export const GATEWAY_KINDS = ['openvpn', 'freeradius', 'strongswan', 'other'] as const;

/** Which connection event the request is about. `disconnect` is a report; its decision is recorded, not enforced. */
export const DECISION_EVENTS = ['connect', 'reauth', 'disconnect'] as const;
export type DecisionEvent = (typeof DECISION_EVENTS)[number];

const stringList = z.array(str(512)).max(16);

/**
 * Client-supplied hints (OpenVPN `IV_*` / `UV_*` peer info). Self-asserted by the client (a client can
 * `setenv UV_…`), so they are recorded and may be shown, but never authorise anything.
 */
export const clientHintsSchema = z
  .record(str(64), z.union([str(256), z.null(), z.record(str(64), str(256))]))
  .refine((o) => Object.keys(o).length <= 64, { message: 'at most 64 client hints' });

/** `POST /v1/decisions` request body. Everything about the certificate is optional: send what you have. */
export const decisionRequestSchema = z.object({
  request_id: optStr(128).describe('Idempotency and log correlation id chosen by the caller.'),
  gateway: z
    .object({
      id: str(128).min(1).describe('Concentrator instance id, e.g. `ovpn-gw-01`.'),
      kind: z.enum(GATEWAY_KINDS),
      hook: optStr(64).describe('tls-verify | auth | client-connect | mgmt-connect | mgmt-reauth | radius-authorize | …'),
      version: optStr(64),
    })
    .describe('Which concentrator asks.'),
  event: z.enum(DECISION_EVENTS),
  peer: z
    .object({
      ip: optStr(64),
      port: z.number().int().min(0).max(65535).nullish(),
    })
    .nullish(),
  cert: z
    .object({
      sha256: optStr(200).describe('SHA-256 fingerprint (hex, colon-hex, base64).'),
      serial: z.object({ dec: optStr(100), hex: optStr(200) }).nullish(),
      issuer_dn: optStr(4096),
      subject_dn: optStr(4096),
      cn: optStr(256),
      san: z
        .object({ uri: stringList.nullish(), dns: stringList.nullish(), upn: stringList.nullish(), email: stringList.nullish() })
        .nullish(),
      not_before: optStr(64),
      not_after: optStr(64),
      pem: optStr(16384),
    })
    .nullish(),
  ids: z
    .object({
      ike_remote_id: optStr(512),
      eap_identity: optStr(256),
      username: optStr(256),
    })
    .nullish(),
  attestation: z.object({ format: str(64), token: str(8192) }).nullish(),
  client_hints: clientHintsSchema.nullish(),
  session: z
    .object({
      ovpn_cid: z.number().int().min(0).nullish(),
      ovpn_kid: z.number().int().min(0).nullish(),
      ike_unique_id: optStr(64),
      acct_session_id: optStr(128),
      bytes_sent: z.number().int().min(0).nullish(),
      bytes_received: z.number().int().min(0).nullish(),
      duration_seconds: z.number().int().min(0).nullish(),
    })
    .nullish(),
});

/** A parsed decision request. */
export type DecisionRequest = z.infer<typeof decisionRequestSchema>;
/** What an adapter builds before sending (same shape; kept as a separate name for readability at call sites). */
export type DecisionRequestInput = z.input<typeof decisionRequestSchema>;

/**
 * `POST /v1/decisions` response body (HTTP 200 for allow and deny alike). `decision` accepts `pending` for
 * forward compatibility; every adapter treats anything but `allow` as deny.
 */
export const decisionResponseSchema = z.object({
  decision: z.enum(['allow', 'deny', 'pending']),
  decision_id: str(128).min(1),
  device_id: str(128).nullable(),
  reason_code: str(64).min(1),
  client_message: str(512),
  ttl_seconds: z.number().int().min(0),
  policy_version: str(128),
  push: z.array(str(256)).max(32).optional(),
  radius: z.record(str(64), z.union([str(253), z.number()])).optional(),
});

/** A decision response as devicegate sends it and adapters parse it. */
export type DecisionResponse = z.infer<typeof decisionResponseSchema>;

/**
 * Client side of the revocation feed `GET /v1/decisions/revocations/stream` (text/event-stream). Each SSE `data:`
 * line carries one JSON object naming what was revoked; the OpenVPN management adapter kills every live session
 * that matches. Unknown members are ignored; an event naming neither field is ignored.
 */
export const revocationEventSchema = z
  .object({
    device_id: optStr(128),
    cert_sha256: optStr(200),
    reason: optStr(64),
  })
  .refine((e) => Boolean(e.device_id) || Boolean(e.cert_sha256), { message: 'device_id or cert_sha256 required' });

/** One revocation notice from the feed. */
export type RevocationEvent = z.infer<typeof revocationEventSchema>;
