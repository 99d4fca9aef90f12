/**
 * What devicegate checks on top of node-saml once a response has passed node-saml's signature, InResponseTo,
 * time and audience checks, and the mapping of the verified assertion to a console user.
 *
 * node-saml 5.1 verifies the signature and then hands us the *signed* assertion (`profile.getAssertion()` is parsed
 * from the bytes the signature covers, the CVE-2025-54369/54419 fix). It does not check the issuer, the bearer
 * SubjectConfirmation (Recipient, InResponseTo inside the signed part), the signature algorithms (xml-crypto still
 * accepts RSA-SHA1) or one-time use across concurrent submissions; those are here. Every check below reads the signed
 * assertion, except the envelope checks, which can only add a rejection (never an acceptance) and therefore may read
 * the possibly unsigned Response.
 */
import { createHash } from 'node:crypto';
import type { Profile } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import { unauthorized, type AppError } from '../../domain/errors';
import type { Clock } from '../../lib/clock';
import { isAlreadyExists } from '../../store/errors';
import type { NonceStore } from '../../store/types';
import { extractGroups, mapGroupsToRoles, type RoleMapping, type SamlRole } from '../roles';

/** The console user a verified assertion maps to; this is what a session stores. */
export interface SamlUser {
  /** The IdP's NameID for the user (the stable user identifier in audit entries). */
  readonly nameId: string;
  readonly nameIdFormat: string | null;
  /** The IdP session (AuthnStatement/@SessionIndex), needed for single logout. */
  readonly sessionIndex: string | null;
  /** IdP entity ID that asserted this user. */
  readonly issuer: string;
  /** Display name attribute, or the NameID when the IdP sent none. */
  readonly displayName: string;
  readonly email: string | null;
  /** Roles from the configured group mapping; empty means "no role" and the ACS refuses to open a session. */
  readonly roles: readonly SamlRole[];
}

export interface AssertionPolicy {
  readonly idpEntityId: string;
  readonly spEntityId: string;
  readonly acsUrl: string;
  readonly clockSkewMs: number;
  readonly maxAssertionAgeMs: number;
  readonly requestIdTtlMs: number;
  readonly attributes: { readonly groups: string; readonly displayName: string; readonly email: string };
  readonly roleMapping: RoleMapping;
}

export interface AssertionCheckDeps {
  readonly store: NonceStore;
  readonly clock: Clock;
}

const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** Signature algorithms accepted anywhere in a response: SHA-256 or stronger. */
export const ALLOWED_SIGNATURE_ALGORITHMS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
]);
/** Digest algorithms accepted anywhere in a response. */
export const ALLOWED_DIGEST_ALGORITHMS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);

/** Store key prefixes for one-time use (shared nonce namespace). */
export const SAML_ASSERTION_KEY_PREFIX = 'saml:assertion:';
export const SAML_ANSWERED_KEY_PREFIX = 'saml:answered:';

const reject = (code: string, message: string, cause?: unknown): AppError =>
  unauthorized(code, message, cause === undefined ? undefined : { cause });

type XmlJs = Record<string, unknown>;
type XmlElement = Element;

/**
 * Checks a profile node-saml has already verified and maps it to a `SamlUser`, then marks the assertion and its
 * request as used. Throws `unauthorized` AppErrors with codes: SAML_PROFILE_MISSING, SAML_WEAK_ALGORITHM,
 * SAML_DESTINATION_MISMATCH, SAML_ISSUER_MISMATCH, SAML_UNSOLICITED, SAML_RECIPIENT_MISMATCH,
 * SAML_SUBJECT_CONFIRMATION_INVALID, SAML_NOT_YET_VALID, SAML_NO_AUTHN_STATEMENT, SAML_NAMEID_MISSING,
 * SAML_REPLAYED. Among concurrent submissions of the same response (or of two responses to one request), at most
 * one returns a user.
 */
export async function acceptVerifiedProfile(
  profile: Profile | null | undefined,
  policy: AssertionPolicy,
  deps: AssertionCheckDeps,
): Promise<SamlUser> {
  if (!profile || typeof profile.getAssertion !== 'function' || typeof profile.getSamlResponseXml !== 'function') {
    throw reject('SAML_PROFILE_MISSING', 'SAML response carried no usable assertion');
  }
  const now = deps.clock.nowMs();
  const assertion = (profile.getAssertion() as { Assertion?: XmlJs }).Assertion;
  if (!assertion) throw reject('SAML_PROFILE_MISSING', 'SAML response carried no usable assertion');

  checkEnvelope(profile.getSamlResponseXml(), policy);

  // saml-profiles §4.1.4.2: "The <Issuer> element MUST be present and MUST contain the unique identifier of the
  // issuing identity provider". node-saml trusts any issuer signed by a configured key; we pin the entity.
  const issuer = text(first(assertion.Issuer));
  if (issuer !== policy.idpEntityId) throw reject('SAML_ISSUER_MISMATCH', 'SAML assertion issued by an unexpected IdP');

  const inResponseTo = typeof profile.inResponseTo === 'string' ? profile.inResponseTo : null;
  const confirmation = checkBearerConfirmation(assertion, inResponseTo, policy, now);

  // saml-profiles §4.1.4.2: "at least one assertion MUST contain a <saml:AuthnStatement>".
  const authn = first(assertion.AuthnStatement) as XmlJs | undefined;
  if (!authn) throw reject('SAML_NO_AUTHN_STATEMENT', 'SAML assertion has no AuthnStatement');

  const attrs = attrsOf(assertion);
  const issueInstant = Date.parse(str(attrs.IssueInstant));
  if (!Number.isFinite(issueInstant) || issueInstant > now + policy.clockSkewMs) {
    throw reject('SAML_NOT_YET_VALID', 'SAML assertion issued in the future');
  }

  const subject = first(assertion.Subject) as XmlJs | undefined;
  const nameIdEl = subject ? (first(subject.NameID) as XmlJs | undefined) : undefined;
  const nameId = text(nameIdEl);
  if (!nameId || nameId.length > 1024) throw reject('SAML_NAMEID_MISSING', 'SAML assertion has no usable NameID');

  // saml-profiles §4.1.4.5: "the service provider MUST ensure that bearer assertions are not replayed, by
  // maintaining the set of used ID values for the length of time for which the assertion would be considered valid".
  // node-saml's get-then-remove of the request id is not atomic, so two concurrent posts of one response could both
  // pass it; these inserts are, and exactly one caller wins each.
  const assertionId = str(attrs.ID);
  if (assertionId.length === 0) throw reject('SAML_PROFILE_MISSING', 'SAML assertion has no ID');
  const ttl = Math.min(
    Math.max(confirmation.notOnOrAfter + policy.clockSkewMs - now, 1_000),
    policy.maxAssertionAgeMs + 2 * policy.clockSkewMs,
  );
  await claimOnce(deps.store, SAML_ASSERTION_KEY_PREFIX + sha256(`${issuer}\n${assertionId}`), ttl, now);
  await claimOnce(deps.store, SAML_ANSWERED_KEY_PREFIX + sha256(confirmation.inResponseTo), policy.requestIdTtlMs, now);

  const groups = extractGroups(profile[policy.attributes.groups]);
  const displayName = firstString(profile[policy.attributes.displayName]) ?? nameId;
  const email = firstString(profile[policy.attributes.email]) ?? firstString(profile.email) ?? firstString(profile.mail);
  const nameIdFormat = attrsOf(nameIdEl).Format;
  const sessionIndex = attrsOf(authn).SessionIndex;
  return {
    nameId,
    nameIdFormat: typeof nameIdFormat === 'string' ? nameIdFormat : null,
    sessionIndex: typeof sessionIndex === 'string' ? sessionIndex : null,
    issuer,
    displayName: displayName.slice(0, 256),
    email: email ? email.slice(0, 320) : null,
    roles: mapGroupsToRoles(groups, policy.roleMapping),
  };
}

/**
 * Checks on the whole response document. These read bytes that may be unsigned, so each of them can only reject.
 */
function checkEnvelope(responseXml: string, policy: AssertionPolicy): void {
  const errors: string[] = [];
  const doc = new DOMParser({
    errorHandler: { warning: () => undefined, error: (m: string) => void errors.push(m), fatalError: (m: string) => void errors.push(m) },
  }).parseFromString(responseXml, 'text/xml');
  const root = doc?.documentElement;
  if (errors.length > 0 || !root) throw reject('SAML_PROFILE_MISSING', 'SAML response is not well-formed');

  // RSA-SHA1 and SHA-1 digests are forgeable by chosen-prefix collision; xml-crypto 6 still accepts them, so refuse
  // any signature in the document that uses anything weaker than SHA-256.
  for (const [local, allowed] of [
    ['SignatureMethod', ALLOWED_SIGNATURE_ALGORITHMS],
    ['DigestMethod', ALLOWED_DIGEST_ALGORITHMS],
  ] as const) {
    const list = doc.getElementsByTagNameNS(DS_NS, local);
    for (let i = 0; i < list.length; i++) {
      const alg = list.item(i)?.getAttribute('Algorithm') ?? '';
      if (!allowed.has(alg)) throw reject('SAML_WEAK_ALGORITHM', 'SAML response signed with a weak or unknown algorithm');
    }
  }

  // saml-core §3.2.2: "If [Destination] is present, the actual recipient MUST check that the URI reference
  // identifies the location at which the message was received."
  const destination = root.getAttribute('Destination');
  if (destination && destination !== policy.acsUrl) {
    throw reject('SAML_DESTINATION_MISMATCH', 'SAML response addressed to another endpoint');
  }
  const responseIssuer = directChild(root, 'Issuer');
  if (responseIssuer && (responseIssuer.textContent ?? '').trim() !== policy.idpEntityId) {
    throw reject('SAML_ISSUER_MISMATCH', 'SAML response issued by an unexpected IdP');
  }
}

/**
 * saml-profiles §4.1.4.2 (bearer confirmation in a response to an AuthnRequest): "... at least one bearer
 * <SubjectConfirmation> element ... MUST contain a <SubjectConfirmationData> element that itself MUST contain a
 * Recipient attribute containing the service provider's assertion consumer service URL and a NotOnOrAfter attribute
 * that limits the window during which the assertion can be delivered ... [and] an InResponseTo attribute that
 * references the request".
 *
 * Requiring InResponseTo inside the *signed* assertion is what ties the assertion to a request we issued: the
 * Response-level InResponseTo that node-saml checks may be unsigned, so without this a captured assertion could be
 * re-wrapped into a fresh Response for another request.
 */
function checkBearerConfirmation(
  assertion: XmlJs,
  responseInResponseTo: string | null,
  policy: AssertionPolicy,
  now: number,
): { inResponseTo: string; notOnOrAfter: number } {
  const subject = first(assertion.Subject) as XmlJs | undefined;
  const confirmations = (subject?.SubjectConfirmation as XmlJs[] | undefined) ?? [];
  // Report the most specific failure, so logs (and tests) say which rule the response broke.
  let failure: AppError = reject('SAML_SUBJECT_CONFIRMATION_INVALID', 'SAML assertion has no bearer subject confirmation');
  let rank = 0;
  const fail = (r: number, e: AppError) => {
    if (r > rank) {
      rank = r;
      failure = e;
    }
  };
  for (const sc of confirmations) {
    if (attrsOf(sc).Method !== BEARER) continue;
    const data = attrsOf(first(sc.SubjectConfirmationData));
    const irt = typeof data.InResponseTo === 'string' ? data.InResponseTo : '';
    if (irt.length === 0 || responseInResponseTo === null) {
      fail(1, reject('SAML_UNSOLICITED', 'SAML assertion is not bound to a request we issued'));
      continue;
    }
    if (irt !== responseInResponseTo) {
      fail(2, reject('SAML_SUBJECT_CONFIRMATION_INVALID', 'SAML assertion answers another request'));
      continue;
    }
    if (data.Recipient !== policy.acsUrl) {
      fail(3, reject('SAML_RECIPIENT_MISMATCH', 'SAML assertion is meant for another recipient'));
      continue;
    }
    const notOnOrAfter = Date.parse(str(data.NotOnOrAfter));
    if (!Number.isFinite(notOnOrAfter) || now - policy.clockSkewMs >= notOnOrAfter) {
      fail(4, reject('SAML_EXPIRED', 'SAML assertion expired'));
      continue;
    }
    const notBefore = data.NotBefore === undefined ? Number.NEGATIVE_INFINITY : Date.parse(str(data.NotBefore));
    if (Number.isNaN(notBefore) || now + policy.clockSkewMs < notBefore) {
      fail(4, reject('SAML_NOT_YET_VALID', 'SAML assertion not yet valid'));
      continue;
    }
    return { inResponseTo: irt, notOnOrAfter };
  }
  throw failure;
}

async function claimOnce(store: NonceStore, key: string, ttlMs: number, now: number): Promise<void> {
  try {
    await store.put(key, '1', Math.max(1, Math.round(ttlMs)), now);
  } catch (e) {
    if (isAlreadyExists(e)) throw reject('SAML_REPLAYED', 'SAML response was already used');
    throw e;
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** The string itself, or '' for anything else (xml2js attribute values are strings; never stringify objects). */
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function first(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : undefined;
}

function attrsOf(el: unknown): Record<string, unknown> {
  if (el && typeof el === 'object' && '$' in el) {
    const a = (el as { $?: unknown }).$;
    if (a && typeof a === 'object') return a as Record<string, unknown>;
  }
  return {};
}

function text(el: unknown): string {
  if (el && typeof el === 'object' && '_' in el) {
    const t = (el as { _?: unknown })._;
    if (typeof t === 'string') return t.trim();
  }
  return '';
}

function firstString(v: unknown): string | null {
  const s = Array.isArray(v) ? v.find((x) => typeof x === 'string') : v;
  return typeof s === 'string' && s.trim().length > 0 ? s.trim() : null;
}

function directChild(el: XmlElement, local: string): XmlElement | null {
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as XmlElement).localName === local) return n as XmlElement;
  }
  return null;
}
