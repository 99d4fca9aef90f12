import { badRequest, isAppError } from '../domain/errors';
import { parseCertificateTime } from './asn1-time';
import { deviceIdFromCn, deviceIdFromSanUri } from './device-id';
import { fastDecisionRequest } from './fast-request';
import { type Dn, dnFirst, parseDn, parseIssuerDn } from './dn';
import { normalizeSha256Fingerprint, readPemCertificate } from './fingerprint';
import { normalizeSerial, serialFromHex, type SerialForms } from './serial';
import { type DecisionRequest, decisionRequestSchema } from './schemas';

/**
 * The identity of the connecting certificate after normalisation: one canonical form per identifier, whatever
 * concentrator sent it. This is what fact gathering looks up.
 */
export interface NormalizedIdentity {
  /** 64 lower-case hex digits; computed from `cert.pem` when a PEM was forwarded. */
  readonly sha256: string | null;
  readonly serial: SerialForms | null;
  readonly issuer: Dn | null;
  readonly subject: Dn | null;
  /** `cert.cn`, else the CN of the subject DN. */
  readonly cn: string | null;
  /**
   * Device ids the certificate claims (SAN `urn:uuid:` URIs, a CN that is a UUID), de-duplicated. Claims only: the
   * certificate record binds a device; a claim that disagrees with the record is an identity mismatch.
   */
  readonly claimedDeviceIds: readonly string[];
  readonly notAfterMs: number | null;
  /** The connecting username (OpenVPN username, EAP identity as a fallback), trimmed; null when none. */
  readonly username: string | null;
}

/** A validated request together with its normalised identity. */
export interface NormalizedDecisionRequest {
  readonly request: DecisionRequest;
  readonly identity: NormalizedIdentity;
}

const nonEmpty = (s: string | null | undefined): string | null => (typeof s === 'string' && s.trim() !== '' ? s.trim() : null);

/** True when the string has no control characters (a DER blob in a RADIUS User-Name, for instance). */
// eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
const printable = (s: string): boolean => !/[\u0000-\u001f\u007f]/.test(s);

/**
 * Validates a `POST /v1/decisions` body and normalises its identifiers (serial from decimal / hex / colon-hex, DNs
 * from one-line / comma form, fingerprints from any common form, SAN URI → device id, expiry times).
 *
 * Guarantees: returns only for a schema-valid body whose identifiers all parse; any malformed identifier (garbage
 * fingerprint, non-numeric serial, unparseable DN, PEM that does not parse, PEM disagreeing with the stated
 * fingerprint or serial) is an AppError `bad_request` with a stable code. It never throws anything else. A
 * well-formed request without any identity is *not* an error here: the policy denies it with IDENTITY_MISSING.
 */
export function normalizeDecisionRequest(raw: unknown): NormalizedDecisionRequest {
  const request = fastDecisionRequest(raw) ?? parseWithSchema(raw);
  try {
    return { request, identity: normalizeIdentity(request) };
  } catch (e) {
    if (isAppError(e)) throw e;
    throw badRequest('DECISION_REQUEST_INVALID', 'The decision request could not be read.', { cause: e });
  }
}

function parseWithSchema(raw: unknown): DecisionRequest {
  const parsed = decisionRequestSchema.safeParse(raw);
  if (!parsed.success) {
    throw badRequest('DECISION_REQUEST_INVALID', 'The decision request does not match the schema.', {
      details: { issues: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })) },
    });
  }
  return parsed.data;
}

function normalizeIdentity(request: DecisionRequest): NormalizedIdentity {
  const cert = request.cert ?? null;
  let sha256 = nonEmpty(cert?.sha256) ? normalizeSha256Fingerprint(cert!.sha256!) : null;
  let serial = normalizeSerial(cert?.serial ?? null);
  let issuer = nonEmpty(cert?.issuer_dn) ? parseIssuerDn(cert!.issuer_dn!) : null;
  let subject = nonEmpty(cert?.subject_dn) ? parseDn(cert!.subject_dn!) : null;
  let notAfterMs = parseCertificateTime(cert?.not_after ?? null);
  const sanUris = [...(cert?.san?.uri ?? [])];

  const pem = nonEmpty(cert?.pem);
  if (pem) {
    // A forwarded PEM is the strongest evidence a concentrator can give; the stated identifiers must agree with it.
    const p = readPemCertificate(pem);
    if (sha256 && sha256 !== p.sha256) throw badRequest('CERT_IDENTITY_CONFLICT', 'The fingerprint does not match the certificate.');
    if (serial && serial.canonical !== p.serialCanonical) throw badRequest('CERT_IDENTITY_CONFLICT', 'The serial does not match the certificate.');
    sha256 = p.sha256;
    serial = serialFromHex(p.serialCanonical);
    issuer = parseDn(p.issuer);
    subject = parseDn(p.subject);
    notAfterMs = p.notAfterMs;
    sanUris.push(...p.sanUris);
  }

  const cn = nonEmpty(cert?.cn) ?? (subject ? dnFirst(subject, 'CN') : null);
  const claims = new Set<string>();
  for (const uri of sanUris) {
    const id = deviceIdFromSanUri(uri);
    if (id) claims.add(id);
  }
  const cnId = deviceIdFromCn(cn);
  if (cnId) claims.add(cnId);

  const ids = request.ids ?? null;
  const userCandidates = [ids?.username, ids?.eap_identity].map(nonEmpty).filter((u): u is string => u !== null && printable(u));

  return {
    sha256,
    serial,
    issuer,
    subject,
    cn,
    claimedDeviceIds: [...claims],
    notAfterMs,
    username: userCandidates[0] ?? null,
  };
}
