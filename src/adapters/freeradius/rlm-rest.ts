/**
 * FreeRADIUS 3.2 rlm_rest ↔ devicegate, as pure functions for the route
 * `POST /v1/adapters/freeradius/{authorize|post-auth|accounting}` (concentrators.md §8.4, recipe freeradius.md).
 *
 * rlm_rest (`body = 'json'`) posts the request list as `{"Attr-Name":{"type":"string","value":["…"]}, …}`
 * (verified on 3.2.1, L11) and maps our HTTP status to a module code: 2xx with attributes → updated, 204 → ok,
 * 401 → reject (body applied), 403 → userlock, 404/410 → notfound, other 4xx → invalid, 5xx/timeout → fail (L13).
 * In the stock `check-eap-tls` a 404 turns into Access-Accept (L14), hence: deny is always 401, never 404.
 */
import { badRequest } from '../../domain/errors';
import { parseCertificateTime } from '../../concentrator/asn1-time';
import type { DecisionRequestInput, DecisionResponse } from '../../concentrator/schemas';
import { clientMessage } from '../../policy/messages';

/** The rlm_rest sections devicegate serves. */
export const RLM_REST_SECTIONS = ['authorize', 'post-auth', 'accounting'] as const;
export type RlmRestSection = (typeof RLM_REST_SECTIONS)[number];

/** Attribute name → values, as rlm_rest sent them (values stringified). */
export type RlmAttributes = ReadonlyMap<string, readonly string[]>;

const MAX_ATTRIBUTES = 512;
const MAX_VALUES = 64;
const MAX_VALUE_LENGTH = 8192;

/**
 * Validates an rlm_rest JSON body. Guarantees: returns only for an object whose every member is
 * `{ type?: string, value: [string|number|boolean, …] }` (a bare string/number value is accepted too, as older
 * modules send it); anything else (arrays, nested garbage, too many attributes, over-long values) is an AppError
 * `bad_request` / `RLM_REST_BODY_INVALID`.
 */
export function parseRlmRestBody(body: unknown): RlmAttributes {
  const invalid = (): never => {
    throw badRequest('RLM_REST_BODY_INVALID', 'The FreeRADIUS request body is not an rlm_rest attribute map.');
  };
  if (!body || typeof body !== 'object' || Array.isArray(body)) return invalid();
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length > MAX_ATTRIBUTES) return invalid();
  const out = new Map<string, string[]>();
  for (const [name, raw] of entries) {
    if (!/^[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}$/.test(name)) return invalid();
    let values: unknown[];
    if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') values = [raw];
    else if (raw && typeof raw === 'object' && !Array.isArray(raw) && Array.isArray((raw as { value?: unknown }).value)) {
      const t = (raw as { type?: unknown }).type;
      if (t !== undefined && typeof t !== 'string') return invalid();
      values = (raw as { value: unknown[] }).value;
    } else return invalid();
    if (values.length > MAX_VALUES) return invalid();
    const strs: string[] = [];
    for (const v of values) {
      if (typeof v === 'string') strs.push(v);
      else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') strs.push(String(v));
      else return invalid();
      if (strs[strs.length - 1]!.length > MAX_VALUE_LENGTH) return invalid();
    }
    out.set(name, strs);
  }
  return out;
}

const first = (a: RlmAttributes, name: string): string | null => {
  const v = a.get(name)?.[0];
  return typeof v === 'string' && v.trim() !== '' ? v : null;
};
const all = (a: RlmAttributes, name: string): string[] => (a.get(name) ?? []).filter((v) => v.trim() !== '').slice(0, 16);
// eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
const printable = (s: string | null): string | null => (s !== null && !/[\u0000-\u001f\u007f]/.test(s) ? s : null);

/** `127.0.0.1[15503]` (strongSwan eap-radius Calling-Station-Id) or a bare IP → ip/port; a MAC address → null. */
function peerFromStationId(s: string | null): { ip: string; port: number | null } | null {
  if (!s) return null;
  const m = /^([0-9.]{7,15}|[0-9a-fA-F:]{2,39})(?:\[(\d{1,5})\])?$/.exec(s.trim());
  if (!m || /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(s.trim())) return null;
  const port = m[2] !== undefined && Number(m[2]) <= 65535 ? Number(m[2]) : null;
  return { ip: m[1]!, port };
}

function iso(t: string | null): string | null {
  const ms = parseCertificateTime(t);
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * Turns an rlm_rest request into a decision request.
 *
 * Mapping (FreeRADIUS 3.2.1 dictionary): `TLS-Client-Cert-Serial` (bare hex) → `cert.serial.hex`;
 * `TLS-Client-Cert-Issuer` / `-Subject` (one-line `/C=…/CN=…`) → `cert.issuer_dn` / `subject_dn`;
 * `-Common-Name` → `cert.cn`; `-Subject-Alt-Name-{Email,Dns,Upn,Uri}` → `cert.san`; `-Expiration` /
 * `-Valid-Since` (UTCTime) → `not_after` / `not_before`; `User-Name` (if printable; strongSwan sends a binary DN) →
 * `ids.eap_identity`; `Calling-Station-Id` → `peer` when it is an address; `Acct-Session-Id` →
 * `session.acct_session_id`; `NAS-Identifier`, `NAS-IP-Address`, `Calling-Station-Id` → `client_hints`.
 * Accounting `Stop` is `event: disconnect`, everything else `connect`.
 *
 * Guarantees: pure; throws only AppError `bad_request` (via `parseRlmRestBody`); there is no fingerprint in
 * FreeRADIUS 3.2, so identity rests on issuer + serial, which devicegate checks against its own CA.
 */
export function rlmRestToDecisionRequest(
  body: unknown,
  ctx: { readonly section: RlmRestSection; readonly gatewayId: string; readonly requestId?: string | undefined },
): DecisionRequestInput {
  const a = parseRlmRestBody(body);
  const serial = first(a, 'TLS-Client-Cert-Serial');
  const station = first(a, 'Calling-Station-Id');
  const peer = peerFromStationId(station);
  const status = first(a, 'Acct-Status-Type');
  const hints: Record<string, string> = {};
  for (const k of ['NAS-Identifier', 'NAS-IP-Address', 'Calling-Station-Id', 'NAS-Port-Type', 'EAP-Type']) {
    const v = printable(first(a, k));
    if (v) hints[k] = v.slice(0, 256);
  }
  const num = (k: string): number | null => {
    const v = first(a, k);
    return v !== null && /^\d{1,15}$/.test(v) ? Number(v) : null;
  };
  return {
    request_id: ctx.requestId ?? null,
    gateway: { id: ctx.gatewayId, kind: 'freeradius', hook: `radius-${ctx.section}`, version: null },
    event: ctx.section === 'accounting' && status !== null && /^(stop|2)$/i.test(status) ? 'disconnect' : 'connect',
    peer,
    cert: {
      serial: serial ? { hex: serial } : null,
      issuer_dn: first(a, 'TLS-Client-Cert-Issuer'),
      subject_dn: first(a, 'TLS-Client-Cert-Subject'),
      cn: first(a, 'TLS-Client-Cert-Common-Name'),
      san: {
        email: all(a, 'TLS-Client-Cert-Subject-Alt-Name-Email'),
        dns: all(a, 'TLS-Client-Cert-Subject-Alt-Name-Dns'),
        upn: all(a, 'TLS-Client-Cert-Subject-Alt-Name-Upn'),
        uri: all(a, 'TLS-Client-Cert-Subject-Alt-Name-Uri'),
      },
      not_after: iso(first(a, 'TLS-Client-Cert-Expiration')),
      not_before: iso(first(a, 'TLS-Client-Cert-Valid-Since')),
    },
    ids: { eap_identity: printable(first(a, 'User-Name')) },
    client_hints: Object.keys(hints).length ? hints : null,
    session: {
      acct_session_id: printable(first(a, 'Acct-Session-Id')),
      bytes_sent: num('Acct-Output-Octets'),
      bytes_received: num('Acct-Input-Octets'),
      duration_seconds: num('Acct-Session-Time'),
    },
  };
}

/** What the route sends back to rlm_rest. `body: null` means no body (HTTP 204). */
export interface RlmRestReply {
  readonly status: 200 | 204 | 401;
  readonly body: Readonly<Record<string, string | number>> | null;
}

/** RADIUS `Reply-Message` is a string of at most 253 octets. */
function radiusString(s: string): string {
  let out = '';
  // eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
  for (const ch of s.replace(/[\u0000-\u001f\u007f]/g, ' ')) {
    if (Buffer.byteLength(out + ch, 'utf8') > 253) break;
    out += ch;
  }
  return out;
}

/**
 * Renders a decision outcome for rlm_rest.
 *
 * - `authorize`: allow (exactly `decision: "allow"` with reason OK) → 200 `{"reply:Class":"dec:<id>"}` (plus
 *   `reply:Session-Timeout` when the ttl is positive); every other outcome — deny, `pending`, an error thrown while
 *   parsing or deciding (`{ error }`), a missing response — → 401 `{"reply:Reply-Message": <client message>}`.
 * - `post-auth`, `accounting`: reports only → 204 whatever the outcome (they must not flip a decision already made).
 *
 * Guarantees: never 404/410 (the notfound → Accept trap), never 403 (userlock: semantics depend on site config),
 * never a 2xx for a deny in `authorize`.
 */
export function rlmRestReply(section: RlmRestSection, outcome: { readonly response: DecisionResponse } | { readonly error: unknown }): RlmRestReply {
  if (section !== 'authorize') return { status: 204, body: null };
  if ('response' in outcome && outcome.response && outcome.response.decision === 'allow' && outcome.response.reason_code === 'OK') {
    const r = outcome.response;
    const body: Record<string, string | number> = { 'reply:Class': `dec:${r.decision_id}`.slice(0, 253) };
    if (Number.isInteger(r.ttl_seconds) && r.ttl_seconds > 0) body['reply:Session-Timeout'] = r.ttl_seconds;
    return { status: 200, body };
  }
  const message =
    'response' in outcome && outcome.response && typeof outcome.response.client_message === 'string' && outcome.response.client_message !== ''
      ? outcome.response.client_message
      : clientMessage('INTERNAL_ERROR', null);
  return { status: 401, body: { 'reply:Reply-Message': radiusString(message) } };
}

/**
 * True for a path segment naming a supported section. The route answers an unknown section with 401 (a deny, like
 * every other failure on this path), never with 404: a typo in `mods-available/rest` must not become notfound.
 */
export function isRlmRestSection(s: string): s is RlmRestSection {
  return (RLM_REST_SECTIONS as readonly string[]).includes(s);
}
