import type { AdapterReasonCode, ReasonCode } from './reasons';

/** A short message for the connecting user in German and English. */
export interface BilingualMessage {
  readonly de: string;
  readonly en: string;
}

/**
 * What the person at the device reads (OpenVPN `AUTH_FAILED,<message>`, RADIUS `Reply-Message`). Deliberately
 * vague and free of personal data: it names the category of the problem and what to do, never the owner, the
 * device serial, or which lookup failed beyond that category. The decision id (Ref) lets the helpdesk find the
 * audit entry.
 */
export const CLIENT_MESSAGES: Readonly<Record<ReasonCode | AdapterReasonCode, BilingualMessage>> = {
  OK: { de: 'Zugang erlaubt', en: 'Access granted' },
  IDENTITY_MISSING: { de: 'Kein Gerätezertifikat vorgelegt', en: 'No device certificate presented' },
  IDENTITY_MISMATCH: { de: 'Gerätezertifikat ungültig', en: 'Device certificate invalid' },
  CERT_NOT_OURS: { de: 'Kein dienstliches Gerätezertifikat', en: 'Not an official device certificate' },
  CERT_UNKNOWN: { de: 'Gerätezertifikat unbekannt', en: 'Device certificate unknown' },
  CERT_REVOKED: { de: 'Gerätezertifikat gesperrt', en: 'Device certificate revoked' },
  CERT_NOT_YET_VALID: { de: 'Gerätezertifikat noch nicht gültig', en: 'Device certificate not yet valid' },
  CERT_EXPIRED: { de: 'Gerätezertifikat abgelaufen, bitte erneuern', en: 'Device certificate expired, please renew' },
  CERT_TOO_OLD: { de: 'Gerätezertifikat zu alt, bitte erneuern', en: 'Device certificate too old, please renew' },
  DEVICE_NOT_REGISTERED: { de: 'Gerät nicht registriert', en: 'Device not registered' },
  DEVICE_NOT_ENROLLED: { de: 'Gerät nicht eingerichtet', en: 'Device not enrolled' },
  DEVICE_SUSPENDED: { de: 'Gerät vorübergehend gesperrt', en: 'Device suspended' },
  DEVICE_REVOKED: { de: 'Gerät gesperrt', en: 'Device revoked' },
  DEVICE_RETIRED: { de: 'Gerät außer Betrieb', en: 'Device retired' },
  PLATFORM_NOT_ALLOWED: { de: 'Gerätetyp nicht zugelassen', en: 'Device platform not allowed' },
  USER_NOT_ALLOWED: { de: 'Benutzer für dieses Gerät nicht zugelassen', en: 'User not allowed on this device' },
  INTERNAL_ERROR: { de: 'Prüfung fehlgeschlagen, bitte später erneut versuchen', en: 'Check failed, please try again later' },
  GATEWAY_UNAVAILABLE: { de: 'Prüfdienst nicht erreichbar', en: 'Check service unavailable' },
  GATEWAY_RESPONSE_INVALID: { de: 'Prüfung fehlgeschlagen', en: 'Check failed' },
};

/** Longest client message; OpenVPN's control channel and RADIUS `Reply-Message` (253 octets) both fit it. */
export const MAX_CLIENT_MESSAGE_BYTES = 240;

/**
 * The one-line bilingual client message, e.g.
 * `Zugang verweigert: Gerät gesperrt / Access denied: device revoked [DEVICE_REVOKED, Ref 7f3a1b2c]`.
 *
 * Guarantees: a single line without control characters, double quotes or backslashes (safe inside a quoted
 * OpenVPN management argument and a RADIUS string), at most MAX_CLIENT_MESSAGE_BYTES UTF-8 bytes, containing no
 * data from the request (only the code and the first 8 characters of the decision id).
 */
export function clientMessage(code: ReasonCode | AdapterReasonCode, decisionId: string | null): string {
  const m = CLIENT_MESSAGES[code] ?? CLIENT_MESSAGES.INTERNAL_ERROR;
  const ref = typeof decisionId === 'string' ? decisionId.replace(/[^0-9A-Za-z-]/g, '').slice(0, 8) : '';
  const text =
    code === 'OK'
      ? `${m.de} / ${m.en}`
      : `Zugang verweigert: ${m.de} / Access denied: ${lowerFirst(m.en)} [${code}${ref ? `, Ref ${ref}` : ''}]`;
  // eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
  return truncateUtf8(text.replace(/["\\\u0000-\u001f\u007f]/g, ' '), MAX_CLIENT_MESSAGE_BYTES);
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch, 'utf8') > maxBytes) break;
    out += ch;
  }
  return out;
}
