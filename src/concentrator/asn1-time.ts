/**
 * Parses the certificate time forms concentrators forward: ASN.1 UTCTime `YYMMDDhhmmssZ` (FreeRADIUS
 * `TLS-Client-Cert-Expiration`, RFC 5280 §4.1.2.5.1: YY < 50 is 20YY), GeneralizedTime `YYYYMMDDhhmmssZ`, and ISO
 * 8601 with an explicit `Z` or offset. Returns epoch ms, or null when the input is none of these (never a guess).
 */
export function parseCertificateTime(input: string | null | undefined): number | null {
  if (typeof input !== 'string') return null;
  const s = input.trim();
  let m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m) {
    const yy = Number(m[1]);
    return utc(yy < 50 ? 2000 + yy : 1900 + yy, m);
  }
  m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m) return utc(Number(m[1]), m);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s)) {
    const t = Date.parse(s);
    return Number.isFinite(t) ? t : null;
  }
  return null;
}

function utc(year: number, m: RegExpExecArray): number | null {
  const [mo, d, h, mi, se] = [2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const t = Date.UTC(year, mo! - 1, d, h, mi, se);
  const back = new Date(t);
  // Reject impossible dates (month 13, 31 February) instead of letting Date.UTC roll them over.
  if (back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d || h! > 23 || mi! > 59 || se! > 59) return null;
  return t;
}
