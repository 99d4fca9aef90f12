/**
 * IdP metadata (SAML 2.0 metadata, saml-metadata-2.0-os): the IdP's entity ID, its SSO/SLO endpoints and the
 * certificates whose keys sign its assertions. These certificates are the SP's only trust anchor, which is why the
 * loader refuses plain-http URLs outside loopback and why parsing is strict.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DOMParser } from '@xmldom/xmldom';

/** xmldom's element type (it ships DOM lib typings). */
type XmlElement = Element;
import { badRequest, unavailable } from '../../domain/errors';

const MD_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

/** Metadata larger than this is refused (aggregates of whole federations are not supported). */
export const MAX_METADATA_BYTES = 1024 * 1024;

export interface IdpEndpoint {
  readonly binding: typeof BINDING_REDIRECT | typeof BINDING_POST;
  readonly location: string;
}

export interface IdpMetadata {
  readonly entityId: string;
  /** Preferred SSO endpoint: HTTP-Redirect when offered, else HTTP-POST. */
  readonly sso: IdpEndpoint;
  readonly slo: IdpEndpoint | null;
  /** PEM certificates from `KeyDescriptor use="signing"` (or without `use`), deduplicated, at least one. */
  readonly signingCertsPem: readonly string[];
  readonly wantAuthnRequestsSigned: boolean;
  /** Non-fatal findings worth logging at start-up (e.g. an expired signing certificate). */
  readonly warnings: readonly string[];
}

export interface ParseIdpMetadataOptions {
  /** Pick this entity; required when the document holds several IdPs, checked otherwise. */
  readonly expectedEntityId?: string | undefined;
  /** For the expiry warning; epoch ms. */
  readonly now: number;
}

const bad = (msg: string, cause?: unknown) =>
  badRequest('SAML_IDP_METADATA_INVALID', `IdP metadata: ${msg}`, cause === undefined ? undefined : { cause });

/**
 * Parses IdP metadata XML. Fails with `bad_request`/`SAML_IDP_METADATA_INVALID` when the document is not
 * well-formed, has a DOCTYPE, holds no (or, without `expectedEntityId`, more than one) SAML 2.0 IDPSSODescriptor,
 * has no usable SSO endpoint, or has no parseable signing certificate. Never returns an IdP without a trust anchor.
 */
export function parseIdpMetadata(xml: string, options: ParseIdpMetadataOptions): IdpMetadata {
  if (Buffer.byteLength(xml, 'utf8') > MAX_METADATA_BYTES) throw bad('document larger than 1 MiB');
  // No DTDs at all: metadata never needs one and entity tricks are the classic XML parser attack surface.
  if (/<!DOCTYPE/i.test(xml)) throw bad('DOCTYPE is not allowed');
  const errors: string[] = [];
  const doc = new DOMParser({
    errorHandler: {
      warning: () => undefined,
      error: (m: string) => void errors.push(m),
      fatalError: (m: string) => void errors.push(m),
    },
  }).parseFromString(xml, 'text/xml');
  if (errors.length > 0 || !doc?.documentElement) throw bad('not well-formed XML');

  const root = doc.documentElement;
  let entities: XmlElement[];
  if (isMd(root, 'EntityDescriptor')) entities = [root];
  else if (isMd(root, 'EntitiesDescriptor')) entities = descendants(root, MD_NS, 'EntityDescriptor');
  else throw bad('root element is neither md:EntityDescriptor nor md:EntitiesDescriptor');

  const candidates = entities.filter((e) => idpDescriptor(e) !== null);
  let entity: XmlElement | undefined;
  if (options.expectedEntityId !== undefined) {
    entity = candidates.find((e) => e.getAttribute('entityID') === options.expectedEntityId);
    if (!entity) throw bad(`no SAML 2.0 IdP with entityID ${JSON.stringify(options.expectedEntityId)}`);
  } else {
    if (candidates.length !== 1) {
      throw bad(`expected exactly one SAML 2.0 IdP, found ${candidates.length}; set saml.idp.entityId`);
    }
    entity = candidates[0];
  }
  const entityId = entity?.getAttribute('entityID') ?? '';
  if (!entity || entityId.length === 0) throw bad('EntityDescriptor has no entityID');
  const idp = idpDescriptor(entity) as XmlElement;

  const sso = pickEndpoint(children(idp, MD_NS, 'SingleSignOnService'));
  if (!sso) throw bad('no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding and an https/http Location');
  const slo = pickEndpoint(children(idp, MD_NS, 'SingleLogoutService'));

  const warnings: string[] = [];
  const certs = new Set<string>();
  for (const kd of children(idp, MD_NS, 'KeyDescriptor')) {
    const use = kd.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const c of descendants(kd, DS_NS, 'X509Certificate')) {
      const b64 = (c.textContent ?? '').replace(/\s+/g, '');
      if (b64.length === 0) continue;
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(Buffer.from(b64, 'base64'));
      } catch (cause) {
        throw bad('a signing X509Certificate does not parse', cause);
      }
      if (Date.parse(cert.validTo) <= options.now) {
        // Many IdPs keep using self-signed certificates past their date and SAML treats them as key containers,
        // so this is a warning, not a refusal.
        warnings.push(`signing certificate ${cert.fingerprint256} expired on ${cert.validTo}`);
      }
      certs.add(toPem(b64));
    }
  }
  if (certs.size === 0) throw bad('no signing certificate (KeyDescriptor use="signing" with ds:X509Certificate)');

  return {
    entityId,
    sso,
    slo,
    signingCertsPem: [...certs],
    wantAuthnRequestsSigned: idp.getAttribute('WantAuthnRequestsSigned') === 'true',
    warnings,
  };
}

export interface LoadIdpMetadataSource {
  readonly file?: string | undefined;
  readonly url?: string | undefined;
}

export interface LoadIdpMetadataOptions extends ParseIdpMetadataOptions {
  /** Abort a URL fetch after this long. */
  readonly timeoutMs?: number;
}

/**
 * Reads IdP metadata from a file or fetches it from a URL, then parses it. A URL must be https, or http on a
 * loopback host (127.0.0.0/8, ::1, localhost; used by tests). Redirects are refused so a TLS URL cannot bounce to
 * plain http. Failures are `unavailable`/`SAML_IDP_METADATA_UNAVAILABLE` (cannot read) or the parse errors above.
 */
export async function loadIdpMetadata(source: LoadIdpMetadataSource, options: LoadIdpMetadataOptions): Promise<IdpMetadata> {
  if ((source.file === undefined) === (source.url === undefined)) {
    throw badRequest('SAML_IDP_METADATA_SOURCE', 'set exactly one of saml.idp.metadataFile and saml.idp.metadataUrl');
  }
  let xml: string;
  if (source.file !== undefined) {
    try {
      xml = await readFile(source.file, 'utf8');
    } catch (cause) {
      throw unavailable('SAML_IDP_METADATA_UNAVAILABLE', 'IdP metadata file cannot be read', { cause });
    }
  } else {
    xml = await fetchMetadata(source.url as string, options.timeoutMs ?? 10_000);
  }
  return parseIdpMetadata(xml, options);
}

async function fetchMetadata(url: string, timeoutMs: number): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw badRequest('SAML_IDP_METADATA_SOURCE', 'saml.idp.metadataUrl is not a URL', { cause });
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
    throw badRequest('SAML_IDP_METADATA_SOURCE', 'saml.idp.metadataUrl must use https (plain http only on loopback)');
  }
  let res: Response;
  try {
    res = await fetch(parsed, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (cause) {
    throw unavailable('SAML_IDP_METADATA_UNAVAILABLE', 'IdP metadata URL cannot be fetched', { cause });
  }
  if (!res.ok) {
    throw unavailable('SAML_IDP_METADATA_UNAVAILABLE', `IdP metadata URL answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_METADATA_BYTES) throw bad('document larger than 1 MiB');
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > MAX_METADATA_BYTES) throw bad('document larger than 1 MiB');
  return body.toString('utf8');
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

function toPem(b64: string): string {
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

function isMd(el: XmlElement, local: string): boolean {
  return el.namespaceURI === MD_NS && el.localName === local;
}

function children(el: XmlElement, ns: string, local: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as XmlElement).namespaceURI === ns && (n as XmlElement).localName === local) {
      out.push(n as XmlElement);
    }
  }
  return out;
}

function descendants(el: XmlElement, ns: string, local: string): XmlElement[] {
  const list = el.getElementsByTagNameNS(ns, local);
  const out: XmlElement[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = list.item(i);
    if (item) out.push(item);
  }
  return out;
}

function idpDescriptor(entity: XmlElement): XmlElement | null {
  return (
    children(entity, MD_NS, 'IDPSSODescriptor').find((d) =>
      (d.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(SAML2_PROTOCOL),
    ) ?? null
  );
}

function pickEndpoint(endpoints: XmlElement[]): IdpEndpoint | null {
  const usable = (binding: string): IdpEndpoint | null => {
    for (const e of endpoints) {
      const location = e.getAttribute('Location') ?? '';
      if (e.getAttribute('Binding') !== binding) continue;
      try {
        const u = new URL(location);
        if (u.protocol === 'https:' || u.protocol === 'http:') {
          return { binding: binding as IdpEndpoint['binding'], location };
        }
      } catch {
        // unusable Location; try the next one
      }
    }
    return null;
  };
  return usable(BINDING_REDIRECT) ?? usable(BINDING_POST);
}
