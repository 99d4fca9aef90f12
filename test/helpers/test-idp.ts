/**
 * A real, independent SAML identity provider for tests, built on samlify (a separate SAML implementation from the
 * node-saml code under test) with its own freshly generated RSA key and self-signed certificate.
 *
 * samlify parses and schema-validates our AuthnRequests (with @authenio/samlify-node-xmllint, xmllint compiled to
 * JavaScript: no native binary, no download), checks their signatures when the IdP wants signed requests, and signs
 * responses. The response XML is rendered here (so tests control times, audience, recipient, attributes) and handed
 * to samlify through `customTagReplacement`, which signs it exactly as it signs its own template.
 *
 * The attack helpers at the bottom take a response this IdP produced and tamper with it the way an attacker who
 * captured it would (signature wrapping, edits after signing).
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import * as samlify from 'samlify';
import * as xmllint from '@authenio/samlify-node-xmllint';

// node-xmllint is Emscripten output that prints an empty line on every run; keep test logs readable.
samlify.setSchemaValidator({
  validate: async (xml: string) => {
    const log = console.log;
    console.log = () => undefined;
    try {
      return await xmllint.validate(xml);
    } finally {
      console.log = log;
    }
  },
});

/** The schema validator samlify uses here, exported so a test can prove it rejects schema-invalid XML. */
export const validateSamlSchema = (xml: string): Promise<unknown> => samlify.SamlLib.isValidXml(xml);

export const SAML_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const SAMLP_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';

export interface TestKeyPair {
  readonly keyPem: string;
  readonly certPem: string;
}

/** An RSA-2048 key and a self-signed certificate for it (SHA-256), generated with WebCrypto + @peculiar/x509. */
export async function generateRsaKeyPair(commonName: string, validDays = 365): Promise<TestKeyPair> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1'),
      name: `CN=${commonName}`,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + validDays * 86_400_000),
      signingAlgorithm: alg,
      keys,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
    },
    webcrypto as unknown as Crypto,
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { keyPem, certPem: cert.toString('pem') };
}

export interface TestUser {
  readonly nameId: string;
  readonly email?: string;
  readonly displayName?: string;
  readonly groups?: readonly string[];
}

export interface TestIdpOptions {
  readonly entityId?: string;
  readonly ssoUrl?: string;
  readonly sloUrl?: string;
  /** Reuse a key pair (e.g. two IdPs that differ only in entity ID); default: a fresh one. */
  readonly keyPair?: TestKeyPair;
  /** Signature algorithm URI for responses (samlify derives the digest from it). Default RSA-SHA256. */
  readonly signatureAlgorithm?: string;
  /** Advertise WantAuthnRequestsSigned and verify our request signatures. */
  readonly wantAuthnRequestsSigned?: boolean;
}

/** Which parts of a response carry an enveloped signature. */
export type SignMode = 'assertion' | 'response' | 'both' | 'none';

export interface LoginResponseSpec {
  readonly sp: { readonly entityId: string; readonly acsUrl: string };
  /** The AuthnRequest id being answered; null for an unsolicited response. */
  readonly inResponseTo: string | null;
  readonly user: TestUser;
  /** Attribute name for groups; default `groups`. */
  readonly groupAttribute?: string;
  /** Default `both`. */
  readonly sign?: SignMode;
  /** Default: Date.now(). All times derive from it. */
  readonly now?: number;
  /** Validity window from `now`; default 5 minutes. */
  readonly lifetimeMs?: number;
  readonly overrides?: {
    readonly audience?: string;
    readonly recipient?: string;
    readonly destination?: string | null;
    readonly issuer?: string;
    /** InResponseTo inside the signed SubjectConfirmationData; null omits it. */
    readonly subjectInResponseTo?: string | null;
    readonly notBefore?: number;
    readonly notOnOrAfter?: number;
    readonly issueInstant?: number;
    readonly omitAuthnStatement?: boolean;
    readonly assertionId?: string;
  };
}

export interface ParsedAuthnRequest {
  readonly id: string;
  readonly issuer: string;
  readonly acsUrl: string | null;
  readonly relayState: string | null;
  /** True when samlify verified a request signature (only checked when the IdP wants signed requests). */
  readonly signatureChecked: boolean;
}

/** The test IdP. Create with `TestIdp.create()`. */
export class TestIdp {
  readonly entityId: string;
  readonly ssoUrl: string;
  readonly keyPair: TestKeyPair;
  private readonly idp: ReturnType<typeof samlify.IdentityProvider>;
  private readonly wantAuthnRequestsSigned: boolean;

  private constructor(options: Required<Omit<TestIdpOptions, 'sloUrl'>> & { sloUrl?: string }) {
    this.entityId = options.entityId;
    this.ssoUrl = options.ssoUrl;
    this.keyPair = options.keyPair;
    this.wantAuthnRequestsSigned = options.wantAuthnRequestsSigned;
    this.idp = samlify.IdentityProvider({
      entityID: options.entityId,
      privateKey: options.keyPair.keyPem,
      signingCert: options.keyPair.certPem,
      requestSignatureAlgorithm: options.signatureAlgorithm,
      wantAuthnRequestsSigned: options.wantAuthnRequestsSigned,
      nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified'],
      singleSignOnService: [
        { Binding: REDIRECT, Location: options.ssoUrl },
        { Binding: POST, Location: options.ssoUrl },
      ],
      ...(options.sloUrl ? { singleLogoutService: [{ Binding: REDIRECT, Location: options.sloUrl }] } : {}),
    });
  }

  static async create(options: TestIdpOptions = {}): Promise<TestIdp> {
    return new TestIdp({
      entityId: options.entityId ?? 'https://idp.test.invalid/metadata',
      ssoUrl: options.ssoUrl ?? 'https://idp.test.invalid/sso',
      sloUrl: options.sloUrl ?? 'https://idp.test.invalid/slo',
      keyPair: options.keyPair ?? (await generateRsaKeyPair('devicegate test IdP')),
      signatureAlgorithm: options.signatureAlgorithm ?? RSA_SHA256,
      wantAuthnRequestsSigned: options.wantAuthnRequestsSigned ?? false,
    });
  }

  /** The IdP's SAML metadata, as samlify publishes it. */
  metadataXml(): string {
    return this.idp.getMetadata();
  }

  /**
   * Reads an AuthnRequest sent with the HTTP-Redirect binding (the Location our `/saml/login` answered with):
   * samlify inflates it, validates it against the SAML schema and, when this IdP wants signed requests, verifies
   * the signature with the certificate from our SP metadata.
   */
  async readAuthnRequest(redirectUrl: string, spMetadataXml: string): Promise<ParsedAuthnRequest> {
    const url = new URL(redirectUrl);
    if (`${url.origin}${url.pathname}` !== this.ssoUrl) throw new Error(`AuthnRequest sent to ${url.origin}${url.pathname}, not ${this.ssoUrl}`);
    const raw = url.search.slice(1);
    const rawParam = (name: string) => raw.split('&').find((p) => p.startsWith(`${name}=`));
    // saml-bindings §3.4.4.1: the signature covers SAMLRequest, RelayState, SigAlg exactly as URL-encoded on the wire.
    const octetString = ['SAMLRequest', 'RelayState', 'SigAlg']
      .map(rawParam)
      .filter((p): p is string => p !== undefined)
      .join('&');
    const query = Object.fromEntries(url.searchParams.entries());
    const sp = samlify.ServiceProvider({ metadata: spMetadataXml });
    const result = await this.idp.parseLoginRequest(sp, 'redirect', { query, octetString });
    const req = result.extract.request as Record<string, string>;
    return {
      id: req.id ?? '',
      issuer: String(result.extract.issuer ?? ''),
      acsUrl: req.assertionConsumerServiceUrl ?? null,
      relayState: url.searchParams.get('RelayState'),
      signatureChecked: this.wantAuthnRequestsSigned,
    };
  }

  /** Renders the response XML (unsigned) for `spec`. */
  renderResponse(spec: LoginResponseSpec, responseId = newId(), assertionId = spec.overrides?.assertionId ?? newId()): string {
    const o = spec.overrides ?? {};
    const now = spec.now ?? Date.now();
    const lifetime = spec.lifetimeMs ?? 5 * 60_000;
    const iso = (ms: number) => new Date(ms).toISOString();
    const issuer = o.issuer ?? this.entityId;
    const destination = o.destination === undefined ? spec.sp.acsUrl : o.destination;
    const subjectIrt = o.subjectInResponseTo === undefined ? spec.inResponseTo : o.subjectInResponseTo;
    const notOnOrAfter = iso(o.notOnOrAfter ?? now + lifetime);
    const issueInstant = iso(o.issueInstant ?? now);
    const attr = (name: string, values: readonly string[]) =>
      values.length === 0
        ? ''
        : `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values
            .map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`)
            .join('')}</saml:Attribute>`;
    const attributes = [
      attr(spec.groupAttribute ?? 'groups', spec.user.groups ?? []),
      attr('displayName', spec.user.displayName ? [spec.user.displayName] : []),
      attr('email', spec.user.email ? [spec.user.email] : []),
    ].join('');
    return (
      `<samlp:Response xmlns:samlp="${SAMLP_NS}" xmlns:saml="${SAML_NS}" ID="${responseId}" Version="2.0" IssueInstant="${issueInstant}"` +
      (destination === null ? '' : ` Destination="${esc(destination)}"`) +
      (spec.inResponseTo === null ? '' : ` InResponseTo="${esc(spec.inResponseTo)}"`) +
      `><saml:Issuer>${esc(issuer)}</saml:Issuer>` +
      `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      `<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="${assertionId}" Version="2.0" IssueInstant="${issueInstant}">` +
      `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">${esc(spec.user.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${esc(o.recipient ?? spec.sp.acsUrl)}"` +
      (subjectIrt === null ? '' : ` InResponseTo="${esc(subjectIrt)}"`) +
      `/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${iso(o.notBefore ?? now - 1000)}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${esc(o.audience ?? spec.sp.entityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      (o.omitAuthnStatement
        ? ''
        : `<saml:AuthnStatement AuthnInstant="${issueInstant}" SessionIndex="${newId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`) +
      (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
      `</saml:Assertion></samlp:Response>`
    );
  }

  /**
   * A base64 SAMLResponse for the HTTP-POST binding, signed by this IdP's key as `spec.sign` says (samlify does the
   * signing: the assertion with the signature after its Issuer, the response likewise).
   */
  async loginResponse(spec: LoginResponseSpec): Promise<string> {
    const sign = spec.sign ?? 'both';
    const responseId = newId();
    const xml = this.renderResponse(spec, responseId);
    if (sign === 'none') return Buffer.from(xml, 'utf8').toString('base64');
    const sp = samlify.ServiceProvider({
      entityID: spec.sp.entityId,
      assertionConsumerService: [{ Binding: POST, Location: spec.sp.acsUrl }],
      wantAssertionsSigned: sign === 'assertion' || sign === 'both',
      wantMessageSigned: sign === 'response' || sign === 'both',
    });
    const requestInfo = { extract: { request: { id: spec.inResponseTo ?? '' } } };
    const result = await this.idp.createLoginResponse(sp, requestInfo, 'post', { email: spec.user.email ?? '' }, {
      customTagReplacement: () => ({ id: responseId, context: xml }),
    });
    return result.context;
  }
}

let counter = 0;
/** A SAML ID: must start with a letter or underscore (xs:ID). */
function newId(): string {
  counter += 1;
  return `_${Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex')}${counter}`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

// ---------------------------------------------------------------------------------------------------------------
// Attacks on a captured response. Each takes and returns base64 (the SAMLResponse form field).
// ---------------------------------------------------------------------------------------------------------------

const decode = (b64: string) => new DOMParser().parseFromString(Buffer.from(b64, 'base64').toString('utf8'), 'text/xml');
const encode = (doc: Document) => Buffer.from(new XMLSerializer().serializeToString(doc), 'utf8').toString('base64');

function child(el: Element, ns: string, local: string): Element | null {
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local) return n as Element;
  }
  return null;
}

function assertionOf(doc: Document): Element {
  const a = doc.documentElement ? child(doc.documentElement, SAML_NS, 'Assertion') : null;
  if (!a) throw new Error('response has no assertion');
  return a;
}

/** Rewrites the evil copy: a new ID, another NameID and groups. */
function makeEvil(original: Element, evil: TestUser, keepId = false): Element {
  const copy = original.cloneNode(true) as Element;
  const sig = child(copy, DS_NS, 'Signature');
  if (sig) copy.removeChild(sig);
  if (!keepId) copy.setAttribute('ID', newId());
  const nameId = copy.getElementsByTagNameNS(SAML_NS, 'NameID').item(0);
  if (nameId) nameId.textContent = evil.nameId;
  const values = copy.getElementsByTagNameNS(SAML_NS, 'AttributeValue');
  for (let i = 0; i < values.length; i++) {
    const v = values.item(i);
    const attrName = (v?.parentNode as Element | null)?.getAttribute('Name');
    if (v && attrName === 'groups' && evil.groups?.[0]) v.textContent = evil.groups[0];
  }
  return copy;
}

/** Edits the group values inside the signed assertion after signing (privilege escalation by tampering). */
export function tamperGroups(b64: string, newGroup: string): string {
  const doc = decode(b64);
  const values = assertionOf(doc).getElementsByTagNameNS(SAML_NS, 'AttributeValue');
  for (let i = 0; i < values.length; i++) {
    const v = values.item(i);
    if (v && (v.parentNode as Element).getAttribute('Name') === 'groups') v.textContent = newGroup;
  }
  return encode(doc);
}

/** Strips every ds:Signature (response and assertion). */
export function stripSignatures(b64: string): string {
  const doc = decode(b64);
  const sigs = doc.getElementsByTagNameNS(DS_NS, 'Signature');
  const list: Element[] = [];
  for (let i = 0; i < sigs.length; i++) list.push(sigs.item(i) as Element);
  for (const s of list) s.parentNode?.removeChild(s);
  return encode(doc);
}

/** XSW: an unsigned evil assertion inserted before the genuine signed one. */
export function xswInjectAssertionBeforeSigned(b64: string, evil: TestUser): string {
  const doc = decode(b64);
  const signed = assertionOf(doc);
  signed.parentNode?.insertBefore(makeEvil(signed, evil), signed);
  return encode(doc);
}

/**
 * XSW: the genuine signed assertion is moved into `samlp:Extensions` (where a naive verifier still finds the
 * signature valid) and an unsigned evil assertion takes its place as the Response's assertion.
 */
export function xswMoveSignedIntoExtensions(b64: string, evil: TestUser): string {
  const doc = decode(b64);
  const root = doc.documentElement as unknown as Element;
  const signed = assertionOf(doc);
  const evilAssertion = makeEvil(signed, evil);
  root.replaceChild(evilAssertion, signed);
  const ext = doc.createElementNS(SAMLP_NS, 'samlp:Extensions');
  ext.appendChild(signed);
  const issuer = child(root, SAML_NS, 'Issuer');
  root.insertBefore(ext, issuer ? issuer.nextSibling : root.firstChild);
  return encode(doc);
}

/**
 * XSW: the evil assertion carries the genuine ds:Signature, and the genuine signed assertion is hidden inside that
 * signature's ds:Object, so the signature's reference still resolves to intact signed bytes.
 */
export function xswSignatureMovedIntoEvilAssertion(b64: string, evil: TestUser): string {
  const doc = decode(b64);
  const signed = assertionOf(doc);
  const sig = child(signed, DS_NS, 'Signature');
  if (!sig) throw new Error('assertion is not signed');
  const evilAssertion = makeEvil(signed, evil);
  const movedSig = sig.cloneNode(true) as Element;
  const object = doc.createElementNS(DS_NS, 'ds:Object');
  object.appendChild(signed.cloneNode(true));
  movedSig.appendChild(object);
  const evilIssuer = child(evilAssertion, SAML_NS, 'Issuer');
  evilAssertion.insertBefore(movedSig, evilIssuer ? evilIssuer.nextSibling : evilAssertion.firstChild);
  signed.parentNode?.replaceChild(evilAssertion, signed);
  return encode(doc);
}

/** XSW: an evil assertion with the *same ID* as the signed one, placed first, so an ID lookup may pick it. */
export function xswDuplicateIdAssertion(b64: string, evil: TestUser): string {
  const doc = decode(b64);
  const signed = assertionOf(doc);
  const root = doc.documentElement as unknown as Element;
  const ext = doc.createElementNS(SAMLP_NS, 'samlp:Extensions');
  ext.appendChild(makeEvil(signed, evil, true));
  const issuer = child(root, SAML_NS, 'Issuer');
  root.insertBefore(ext, issuer ? issuer.nextSibling : root.firstChild);
  return encode(doc);
}

/** Decodes a SAMLResponse for inspection in tests. */
export function decodeResponse(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}
