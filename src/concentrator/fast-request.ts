/**
 * A hand-written check of the common `POST /v1/decisions` body, run before the zod schema.
 *
 * Why: zod's parse of this schema cost about 35 µs per request, a tenth of a decision's CPU. This check accepts
 * exactly the bodies that `decisionRequestSchema` accepts unchanged (only known members, every value already in
 * its output form) and returns the body itself; for everything else it returns null and the caller runs the zod
 * schema, which also produces the error details. So it can make a request faster, never accept one zod would
 * reject, and never change what a request means. A differential test holds it to that against zod on mutated
 * bodies.
 */
import { DECISION_EVENTS, type DecisionRequest, GATEWAY_KINDS } from './schemas';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number): boolean => typeof v === 'string' && v.length <= max;
/** `.nullish()`: absent, null or valid. A member that is present with `undefined` cannot come from JSON. */
const optStr = (v: unknown, max: number): boolean => v === undefined || v === null || str(v, max);
const optInt = (v: unknown, min: number, max: number): boolean =>
  v === undefined || v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max);
const UINT = Number.MAX_SAFE_INTEGER;

/** Every own member is one of `known` (zod strips the rest, so such a body is left to zod). */
function onlyKnown(o: Obj, known: ReadonlySet<string>): boolean {
  for (const k in o) if (!known.has(k)) return false;
  return true;
}
const keys = (...k: string[]): ReadonlySet<string> => new Set(k);

const TOP = keys('request_id', 'gateway', 'event', 'peer', 'cert', 'ids', 'attestation', 'client_hints', 'session');
const GATEWAY = keys('id', 'kind', 'hook', 'version');
const PEER = keys('ip', 'port');
const CERT = keys('sha256', 'serial', 'issuer_dn', 'subject_dn', 'cn', 'san', 'not_before', 'not_after', 'pem');
const SERIAL = keys('dec', 'hex');
const SAN = keys('uri', 'dns', 'upn', 'email');
const IDS = keys('ike_remote_id', 'eap_identity', 'username');
const ATTESTATION = keys('format', 'token');
const SESSION = keys('ovpn_cid', 'ovpn_kid', 'ike_unique_id', 'acct_session_id', 'bytes_sent', 'bytes_received', 'duration_seconds');
const KINDS: ReadonlySet<unknown> = new Set(GATEWAY_KINDS);
const EVENTS: ReadonlySet<unknown> = new Set(DECISION_EVENTS);

const nullish = (v: unknown): boolean => v === undefined || v === null;

function gatewayOk(g: unknown): boolean {
  return isObj(g) && onlyKnown(g, GATEWAY) && str(g.id, 128) && (g.id as string).length >= 1 && KINDS.has(g.kind) && optStr(g.hook, 64) && optStr(g.version, 64);
}

function peerOk(p: unknown): boolean {
  return nullish(p) || (isObj(p) && onlyKnown(p, PEER) && optStr(p.ip, 64) && optInt(p.port, 0, 65535));
}

function stringListOk(v: unknown): boolean {
  if (nullish(v)) return true;
  if (!Array.isArray(v) || v.length > 16) return false;
  for (const s of v) if (!str(s, 512)) return false;
  return true;
}

function certOk(c: unknown): boolean {
  if (nullish(c)) return true;
  if (!isObj(c) || !onlyKnown(c, CERT)) return false;
  const s = c.serial;
  const san = c.san;
  return (
    optStr(c.sha256, 200) &&
    (nullish(s) || (isObj(s) && onlyKnown(s, SERIAL) && optStr(s.dec, 100) && optStr(s.hex, 200))) &&
    optStr(c.issuer_dn, 4096) &&
    optStr(c.subject_dn, 4096) &&
    optStr(c.cn, 256) &&
    (nullish(san) || (isObj(san) && onlyKnown(san, SAN) && stringListOk(san.uri) && stringListOk(san.dns) && stringListOk(san.upn) && stringListOk(san.email))) &&
    optStr(c.not_before, 64) &&
    optStr(c.not_after, 64) &&
    optStr(c.pem, 16384)
  );
}

function idsOk(i: unknown): boolean {
  return nullish(i) || (isObj(i) && onlyKnown(i, IDS) && optStr(i.ike_remote_id, 512) && optStr(i.eap_identity, 256) && optStr(i.username, 256));
}

function attestationOk(a: unknown): boolean {
  return nullish(a) || (isObj(a) && onlyKnown(a, ATTESTATION) && str(a.format, 64) && str(a.token, 8192));
}

/** Client hints: up to 64 members, each a string, null, or a flat record of strings. */
function clientHintsOk(h: unknown): boolean {
  if (nullish(h)) return true;
  if (!isObj(h)) return false;
  let n = 0;
  for (const k in h) {
    // A JSON `__proto__` member is an own property; zod copies it differently, so leave such bodies to zod.
    if (k === '__proto__' || k.length > 64 || ++n > 64) return false;
    const v = h[k];
    if (v === null || str(v, 256)) continue;
    if (!isObj(v)) return false;
    for (const k2 in v) if (k2 === '__proto__' || k2.length > 64 || !str(v[k2], 256)) return false;
  }
  return true;
}

function sessionOk(s: unknown): boolean {
  return (
    nullish(s) ||
    (isObj(s) &&
      onlyKnown(s, SESSION) &&
      optInt(s.ovpn_cid, 0, UINT) &&
      optInt(s.ovpn_kid, 0, UINT) &&
      optStr(s.ike_unique_id, 64) &&
      optStr(s.acct_session_id, 128) &&
      optInt(s.bytes_sent, 0, UINT) &&
      optInt(s.bytes_received, 0, UINT) &&
      optInt(s.duration_seconds, 0, UINT))
  );
}

/**
 * The body as a `DecisionRequest` when it is one already (see the file comment), else null. Only for bodies from
 * `JSON.parse` (plain data, no accessors, no `undefined` members).
 */
export function fastDecisionRequest(raw: unknown): DecisionRequest | null {
  if (!isObj(raw) || Object.getPrototypeOf(raw) !== Object.prototype || !onlyKnown(raw, TOP)) return null;
  if (
    optStr(raw.request_id, 128) &&
    gatewayOk(raw.gateway) &&
    EVENTS.has(raw.event) &&
    peerOk(raw.peer) &&
    certOk(raw.cert) &&
    idsOk(raw.ids) &&
    attestationOk(raw.attestation) &&
    clientHintsOk(raw.client_hints) &&
    sessionOk(raw.session)
  ) {
    return raw as DecisionRequest;
  }
  return null;
}
