import { badRequest } from '../domain/errors';

/** One attribute-value assertion of a distinguished name, e.g. `{ type: 'CN', value: 'Test-Client' }`. */
export interface Ava {
  /** Short name (`CN`, `O`, `emailAddress`, ...) or the dotted OID when the name is unknown. */
  readonly type: string;
  /** The value as given, with DN escapes removed. */
  readonly value: string;
}

/** A relative distinguished name: usually one AVA, several for multi-valued RDNs (`CN=a+UID=b`). */
export type Rdn = readonly Ava[];

/** A distinguished name as a list of RDNs in the order the source printed them (all our sources print C first). */
export type Dn = readonly Rdn[];

const MAX_DN_LENGTH = 4096;
const MAX_AVAS = 64;

/**
 * Attribute type aliases seen in OpenSSL one-line output, OpenVPN (`X509_NAME_print_ex`), strongSwan, node:crypto
 * and RFC 4514, mapped to one short name so the same name compares equal whatever printed it.
 */
const TYPE_ALIASES: Readonly<Record<string, string>> = {
  cn: 'CN',
  commonname: 'CN',
  '2.5.4.3': 'CN',
  c: 'C',
  countryname: 'C',
  '2.5.4.6': 'C',
  st: 'ST',
  s: 'ST',
  stateorprovincename: 'ST',
  '2.5.4.8': 'ST',
  l: 'L',
  localityname: 'L',
  '2.5.4.7': 'L',
  o: 'O',
  organizationname: 'O',
  '2.5.4.10': 'O',
  ou: 'OU',
  organizationalunitname: 'OU',
  '2.5.4.11': 'OU',
  emailaddress: 'emailAddress',
  email: 'emailAddress',
  e: 'emailAddress',
  '1.2.840.113549.1.9.1': 'emailAddress',
  serialnumber: 'serialNumber',
  '2.5.4.5': 'serialNumber',
  dc: 'DC',
  domaincomponent: 'DC',
  '0.9.2342.19200300.100.1.25': 'DC',
  uid: 'UID',
  userid: 'UID',
  '0.9.2342.19200300.100.1.1': 'UID',
  street: 'street',
  streetaddress: 'street',
  '2.5.4.9': 'street',
  title: 'title',
  '2.5.4.12': 'title',
  gn: 'GN',
  givenname: 'GN',
  '2.5.4.42': 'GN',
  sn: 'SN',
  surname: 'SN',
  '2.5.4.4': 'SN',
  name: 'name',
  '2.5.4.41': 'name',
  organizationidentifier: 'organizationIdentifier',
  '2.5.4.97': 'organizationIdentifier',
};

const TYPE_RE = /^[A-Za-z][A-Za-z0-9-]*$|^[0-9]+(\.[0-9]+)+$/;

function canonicalType(raw: string): string {
  const t = raw.trim();
  const stripped = /^oid\./i.test(t) ? t.slice(4) : t;
  if (!TYPE_RE.test(stripped)) throw badRequest('DN_INVALID', 'The distinguished name is malformed.');
  return TYPE_ALIASES[stripped.toLowerCase()] ?? stripped;
}

/** Removes RFC 4514 escapes (`\,` `\+` `\"` `\\` `\2C`) and surrounding quotes; OpenSSL one-line values pass through. */
function unescapeValue(raw: string): string {
  let v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  if (v.startsWith('#')) return v; // hex-encoded BER value: keep as is, compared literally
  const bytes: number[] = [];
  let out = '';
  const flush = (): void => {
    if (bytes.length) {
      out += Buffer.from(bytes).toString('utf8');
      bytes.length = 0;
    }
  };
  for (let i = 0; i < v.length; i++) {
    const ch = v[i]!;
    if (ch === '\\' && i + 1 < v.length) {
      const pair = v.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
        continue;
      }
      flush();
      out += v[i + 1];
      i += 1;
      continue;
    }
    flush();
    out += ch;
  }
  flush();
  return out;
}

/**
 * Splits `s` at separator characters that are not escaped with a backslash, not inside double quotes, and that are
 * followed by `type=`. The look-ahead matters because OpenVPN prints values without RFC 4514 escaping, so a comma
 * inside `O=Stadt Beispiel, Amt 10` must not start a new RDN unless what follows looks like an attribute.
 */
function splitTopLevel(s: string, seps: string): { part: string; sep: string }[] {
  const parts: { part: string; sep: string }[] = [];
  let cur = '';
  let sepBefore = '';
  let inQuotes = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[i + 1];
      i += 1;
      continue;
    }
    if (ch === '"') inQuotes = !inQuotes;
    if (!inQuotes && seps.includes(ch) && /^\s*(oid\.)?([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)\s*=/i.test(s.slice(i + 1))) {
      parts.push({ part: cur, sep: sepBefore });
      cur = '';
      sepBefore = ch;
      continue;
    }
    cur += ch;
  }
  parts.push({ part: cur, sep: sepBefore });
  return parts;
}

function parseAva(text: string): Ava {
  const eq = text.indexOf('=');
  if (eq <= 0) throw badRequest('DN_INVALID', 'The distinguished name is malformed.');
  return { type: canonicalType(text.slice(0, eq)), value: unescapeValue(text.slice(eq + 1)) };
}

/**
 * Parses a distinguished name in any form a concentrator prints into an RDN list:
 * - OpenSSL one-line, as FreeRADIUS sends it: `/C=DE/O=Stadt/CN=dev-1` (every AVA is its own RDN);
 * - comma form, as OpenVPN and strongSwan print it: `C=DE, O=Stadt, CN=dev-1` (also `;`), with `+` for
 *   multi-valued RDNs and RFC 4514 escapes;
 * - newline form, as node:crypto's `X509Certificate.subject` returns it.
 *
 * Guarantees: the result is non-empty; attribute types are canonical short names; an empty, over-long or
 * unparseable DN is an AppError `bad_request` / `DN_INVALID` (never a partial parse).
 */
export function parseDn(input: string): Dn {
  if (typeof input !== 'string') throw badRequest('DN_INVALID', 'The distinguished name is malformed.');
  const s = input.trim();
  if (s.length === 0 || s.length > MAX_DN_LENGTH) {
    throw badRequest('DN_INVALID', 'The distinguished name is empty or too long.');
  }
  // eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s)) {
    throw badRequest('DN_INVALID', 'The distinguished name contains control characters.');
  }
  let rdns: Ava[][];
  if (s.startsWith('/')) {
    rdns = splitTopLevel(s.slice(1), '/').map(({ part }) => [parseAva(part)]);
  } else {
    rdns = [];
    for (const { part, sep } of splitTopLevel(s, ',;\n+')) {
      const ava = parseAva(part);
      const last = rdns[rdns.length - 1];
      if (sep === '+' && last) last.push(ava);
      else rdns.push([ava]);
    }
  }
  const count = rdns.reduce((n, r) => n + r.length, 0);
  if (count === 0 || count > MAX_AVAS) throw badRequest('DN_INVALID', 'The distinguished name is malformed.');
  for (const r of rdns) for (const a of r) if (a.value.length === 0) throw badRequest('DN_INVALID', 'The distinguished name has an empty value.');
  return rdns;
}

/** RFC 4518-style comparison form: Unicode NFKC, trimmed, inner whitespace collapsed, case folded. */
function matchValue(v: string): string {
  return v.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

/**
 * A string key for a DN that is equal for equal names whatever form they were printed in (types canonical, values
 * case-folded, multi-valued RDNs flattened in source order because OpenSSL's one-line form loses the grouping).
 */
export function dnKey(dn: Dn): string {
  let key = dnKeys.get(dn);
  if (key === undefined) {
    key = dn
      .flat()
      .map((a) => `${a.type.toLowerCase()}=${encodeURIComponent(matchValue(a.value))}`)
      .join('/');
    dnKeys.set(dn, key);
  }
  return key;
}

/** Keys of DNs already compared (a DN is never modified after parsing; the CA's own DN is compared every time). */
const dnKeys = new WeakMap<Dn, string>();

/** Issuer DNs seen recently: every device certificate names one of a few issuers, in the same printed form. */
const issuerDns = new Map<string, Dn>();
const ISSUER_DN_CACHE_MAX = 64;

/**
 * `parseDn` for an issuer DN, remembering the result per printed form. The result is frozen and shared. Parse errors
 * are not remembered (they throw each time).
 */
export function parseIssuerDn(input: string): Dn {
  const hit = issuerDns.get(input);
  if (hit) return hit;
  const dn: Dn = Object.freeze(parseDn(input).map((rdn) => Object.freeze(rdn.map((ava) => Object.freeze(ava)))));
  if (issuerDns.size >= ISSUER_DN_CACHE_MAX) issuerDns.clear();
  issuerDns.set(input, dn);
  return dn;
}

/** Structural DN equality (same AVAs, same order, values compared case-insensitively after whitespace folding). */
export function dnEquals(a: Dn, b: Dn): boolean {
  return dnKey(a) === dnKey(b);
}

/** The first value of `type` (canonical short name, e.g. `CN`) in the DN, or null. */
export function dnFirst(dn: Dn, type: string): string | null {
  for (const r of dn) for (const a of r) if (a.type === type) return a.value;
  return null;
}
