/**
 * The real app (real config loader, SQLite store, services, createApp) with SAML enabled against the samlify test
 * IdP, and a complete SAML round trip per user: GET /saml/login → the IdP reads our AuthnRequest from the redirect →
 * the IdP signs a response → POST /saml/acs → session cookie. Shared by the console integration, RBAC and browser
 * suites.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import request from 'supertest';
import type { App } from '../../../src/http/app';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { generateRsaKeyPair, TestIdp, type TestKeyPair, type TestUser } from '../../helpers/test-idp';

export const GROUPS = {
  'it-admin': 'GG-DeviceGate-IT-Admins',
  auditor: 'GG-DeviceGate-Auditors',
  viewer: 'GG-DeviceGate-Viewers',
} as const;

/** One test person per console role, plus one the IdP knows but devicegate maps to no role. */
export const USERS = {
  'it-admin': { nameId: 'erika.it@stadt.example', displayName: 'Erika Mustermann', email: 'erika.it@stadt.example', groups: [GROUPS['it-admin']] },
  auditor: { nameId: 'rolf.revision@stadt.example', displayName: 'Rolf Revision', email: 'rolf.revision@stadt.example', groups: [GROUPS.auditor] },
  viewer: { nameId: 'vera.lesend@stadt.example', displayName: 'Vera Lesend', email: 'vera.lesend@stadt.example', groups: [GROUPS.viewer] },
  none: { nameId: 'nora.niemand@stadt.example', displayName: 'Nora Niemand', groups: ['GG-Kantine'] },
} as const satisfies Record<string, TestUser>;
export type UserKey = keyof typeof USERS;

export interface SamlApp extends TestApp {
  readonly idp: TestIdp;
  readonly publicUrl: string;
  readonly acsUrl: string;
  readonly entityId: string;
}

let spKeys: Promise<TestKeyPair> | null = null;

/**
 * Builds the app with `saml.enabled` and the IdP's metadata (file, or `metadataUrl` when given), SP request signing
 * with a generated key, and the role mapping of `GROUPS`. `publicUrl` decides the ACS, entity ID and cookie Secure
 * flag.
 */
export async function buildSamlApp(options: {
  idp?: TestIdp;
  publicUrl?: string;
  metadataUrl?: string;
  env?: Record<string, string>;
} = {}): Promise<SamlApp> {
  const idp = options.idp ?? (await TestIdp.create({ wantAuthnRequestsSigned: true }));
  spKeys ??= generateRsaKeyPair('devicegate console test SP');
  const keys = await spKeys;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-console-'));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const publicUrl = options.publicUrl ?? 'https://gateway.test.invalid';
  const saml = {
    enabled: true,
    idp: options.metadataUrl ? { metadataUrl: options.metadataUrl } : { metadataFile: file('idp-metadata.xml', idp.metadataXml()) },
    sp: { signingKeyFile: file('sp.key.pem', keys.keyPem), signingCertFile: file('sp.cert.pem', keys.certPem) },
    roleMapping: { 'it-admin': [GROUPS['it-admin']], auditor: [GROUPS.auditor], viewer: [GROUPS.viewer] },
  };
  // JSON is YAML; the loader merges this file over config/default.yaml.
  const configFile = file('saml.yaml', JSON.stringify({ saml }));
  const t = await buildTestApp({
    env: { DEVICEGATE_CONFIG: configFile, DEVICEGATE_SERVER__PUBLIC_URL: publicUrl, ...(options.env ?? {}) },
  });
  const base = publicUrl.replace(/\/+$/, '');
  return {
    ...t,
    idp,
    publicUrl: base,
    acsUrl: `${base}/saml/acs`,
    entityId: `${base}/saml/metadata`,
    async cleanup() {
      await t.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The AuthnRequest id in a redirect Location (inflated, without the IdP's schema validation). */
export function requestIdOf(location: string): string {
  const url = new URL(location);
  const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
  const id = /\sID="([^"]+)"/.exec(xml)?.[1];
  if (!id) throw new Error('AuthnRequest without ID');
  return id;
}

/** `name=value` of a cookie from a response's Set-Cookie (ignores deletions), or null. */
export function cookieFrom(res: request.Response, name: string): string | null {
  const raw = res.headers['set-cookie'] as unknown;
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  const hit = list.find((c) => c.startsWith(`${name}=`) && !c.startsWith(`${name}=;`));
  return hit ? (hit.split(';')[0] as string) : null;
}

/** The full Set-Cookie line of `name`, for attribute checks. */
export function setCookieLine(res: request.Response, name: string): string | null {
  const raw = res.headers['set-cookie'] as unknown;
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  return list.find((c) => c.startsWith(`${name}=`)) ?? null;
}

/** The `_csrf` value embedded in a console page. */
export function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('page has no CSRF field');
  return m[1] as string;
}

export interface SignedIn {
  /** `devicegate_session=…`, for the Cookie header. */
  readonly cookie: string;
  readonly csrf: string;
  /** Where the ACS redirected (RelayState). */
  readonly landedAt: string;
  readonly acs: request.Response;
}

/**
 * A full SAML round trip for `user`. With `readByIdp` the IdP parses and schema-validates our AuthnRequest and
 * verifies its redirect signature (samlify; the first call in a process warms up xmllint for several seconds);
 * otherwise only the request id is read from the inflated request.
 */
export async function signIn(
  t: SamlApp,
  user: TestUser,
  options: { returnTo?: string; readByIdp?: boolean } = {},
): Promise<SignedIn> {
  const app: App = t.app;
  const start = await request(app).get('/saml/login').query({ returnTo: options.returnTo ?? '/console' });
  if (start.status !== 302) throw new Error(`/saml/login answered ${start.status}: ${start.text}`);
  const location = start.headers.location as string;
  const id = options.readByIdp ? (await t.idp.readAuthnRequest(location, await spMetadata(t))).id : requestIdOf(location);
  const relayState = new URL(location).searchParams.get('RelayState') ?? undefined;
  const samlResponse = await t.idp.loginResponse({ sp: { entityId: t.entityId, acsUrl: t.acsUrl }, inResponseTo: id, user });
  const acs = await request(app)
    .post('/saml/acs')
    .type('form')
    .send({ SAMLResponse: samlResponse, ...(relayState ? { RelayState: relayState } : {}) });
  const cookie = cookieFrom(acs, t.config.saml.session.cookieName);
  if (acs.status !== 303 || !cookie) throw new Error(`/saml/acs answered ${acs.status}: ${acs.text.slice(0, 500)}`);
  const home = await request(app).get('/console').set('Cookie', cookie);
  if (home.status !== 200) throw new Error(`/console answered ${home.status} after sign-in`);
  return { cookie, csrf: csrfOf(home.text), landedAt: acs.headers.location as string, acs };
}

async function spMetadata(t: SamlApp): Promise<string> {
  return (await request(t.app).get('/saml/metadata')).text;
}
