/**
 * A minimal express app wired exactly as production will wire SAML: the real passport-saml strategy from
 * `createSamlServiceProvider`, the real router from `createSamlRouter`, server-side sessions in a real SQLite store,
 * and an independent samlify IdP (test/helpers/test-idp.ts). Only the error middleware is a stand-in for the app's
 * (it reports `code` so tests can tell which check refused a response).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { isAppError } from '../../../src/domain/errors';
import { systemClock, type Clock } from '../../../src/lib/clock';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { Store } from '../../../src/store/types';
import { parseIdpMetadata } from '../../../src/auth/saml/idp-metadata';
import { createSamlServiceProvider, type SamlServiceProvider } from '../../../src/auth/saml/service-provider';
import { createSamlRouter, type SamlRouterHooks } from '../../../src/auth/saml/routes';
import { SessionManager, getSession } from '../../../src/auth/session';
import { requireCsrf } from '../../../src/auth/csrf';
import type { RoleMapping } from '../../../src/auth/roles';
import {
  generateRsaKeyPair,
  TestIdp,
  type LoginResponseSpec,
  type ParsedAuthnRequest,
  type SignMode,
  type TestKeyPair,
  type TestUser,
} from '../../helpers/test-idp';

export const PUBLIC_URL = 'https://gateway.test.invalid';
export const SP_ENTITY_ID = `${PUBLIC_URL}/saml/metadata`;
export const ACS_URL = `${PUBLIC_URL}/saml/acs`;
export const GROUPS = {
  itAdmin: 'GG-DeviceGate-IT-Admins',
  auditor: 'GG-DeviceGate-Auditors',
  viewer: 'GG-DeviceGate-Viewers',
} as const;
export const ROLE_MAPPING: RoleMapping = {
  'it-admin': [GROUPS.itAdmin],
  auditor: [GROUPS.auditor],
  viewer: [GROUPS.viewer],
};

export interface HarnessOptions {
  readonly idp?: TestIdp;
  /** Reuse a store (several "instances" sharing one back-end). */
  readonly storePath?: string;
  readonly wantAuthnResponseSigned?: boolean;
  readonly clock?: Clock;
  readonly hooks?: SamlRouterHooks;
}

export interface SamlHarness {
  readonly app: express.Express;
  readonly store: Store;
  readonly storePath: string;
  readonly sp: SamlServiceProvider;
  readonly sessions: SessionManager;
  readonly idp: TestIdp;
  readonly spSigning: TestKeyPair;
  /**
   * GET /saml/login, then the IdP reads the AuthnRequest from the redirect (samlify: inflate, schema-validate,
   * verify the redirect signature). With `readByIdp: false` only the request id is taken from the inflated request
   * (for suites about the ACS, where the ~10 s warm-up of the Emscripten xmllint would dominate).
   */
  startLogin(returnTo?: string, options?: { readByIdp?: boolean }): Promise<ParsedAuthnRequest>;
  /** POST /saml/acs with a SAMLResponse (and optional RelayState and cookie). */
  postResponse(samlResponse: string, extra?: { relayState?: string; cookie?: string }): Promise<request.Response>;
  close(): Promise<void>;
}

let spKeyPromise: Promise<TestKeyPair> | null = null;

export async function createSamlHarness(options: HarnessOptions = {}): Promise<SamlHarness> {
  const idp = options.idp ?? (await TestIdp.create({ wantAuthnRequestsSigned: true }));
  spKeyPromise ??= generateRsaKeyPair('devicegate test SP');
  const spSigning = await spKeyPromise;
  const ownDir = options.storePath ? null : mkdtempSync(path.join(os.tmpdir(), 'dg-saml-'));
  const storePath = options.storePath ?? path.join(ownDir as string, 'store.db');
  const store = openSqliteStore({ path: storePath, synchronous: 'NORMAL' });
  const clock = options.clock ?? systemClock;

  const sp = createSamlServiceProvider({
    entityId: SP_ENTITY_ID,
    acsUrl: ACS_URL,
    idp: parseIdpMetadata(idp.metadataXml(), { now: clock.nowMs() }),
    signing: spSigning,
    wantAuthnResponseSigned: options.wantAuthnResponseSigned ?? false,
    clockSkewMs: 60_000,
    maxAssertionAgeMs: 600_000,
    requestIdTtlMs: 600_000,
    attributes: { groups: 'groups', displayName: 'displayName', email: 'email' },
    roleMapping: ROLE_MAPPING,
    store: store.nonces,
    clock,
  });
  const sessions = new SessionManager({
    store: store.nonces,
    clock,
    idleTimeoutMs: 30 * 60_000,
    absoluteTimeoutMs: 8 * 3600_000,
    cookieName: 'devicegate_session',
    cookieSecure: true,
  });

  const app = express();
  app.use(createSamlRouter({ sp, sessions, ...(options.hooks ? { hooks: options.hooks } : {}) }));
  app.get('/whoami', sessions.middleware(), sessions.requireSession(), (req: Request, res: Response) => {
    const s = getSession(req);
    res.json({ user: s?.user, csrfToken: s?.csrfToken });
  });
  app.post(
    '/it-only',
    express.urlencoded({ extended: false }),
    sessions.middleware(),
    sessions.requireSession(['it-admin']),
    requireCsrf({ allowedOrigins: [PUBLIC_URL] }),
    (_req: Request, res: Response) => void res.json({ ok: true }),
  );
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (isAppError(err)) return void res.status(err.status).json({ code: err.code, message: err.message });
    res.status(500).json({ code: 'INTERNAL' });
  });

  return {
    app,
    store,
    storePath,
    sp,
    sessions,
    idp,
    spSigning,
    async startLogin(returnTo?: string, startOptions: { readByIdp?: boolean } = {}) {
      const res = await request(app).get('/saml/login').query(returnTo === undefined ? {} : { returnTo });
      if (res.status !== 302) throw new Error(`/saml/login answered ${res.status}: ${res.text}`);
      const location = res.headers.location as string;
      if (startOptions.readByIdp ?? true) return idp.readAuthnRequest(location, sp.metadataXml());
      const url = new URL(location);
      const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
      const id = /\sID="([^"]+)"/.exec(xml)?.[1];
      if (!id) throw new Error('AuthnRequest without ID');
      return { id, issuer: SP_ENTITY_ID, acsUrl: ACS_URL, relayState: url.searchParams.get('RelayState'), signatureChecked: false };
    },
    async postResponse(samlResponse, extra = {}) {
      let r = request(app).post('/saml/acs').type('form');
      if (extra.cookie) r = r.set('Cookie', extra.cookie);
      return r.send({ SAMLResponse: samlResponse, ...(extra.relayState === undefined ? {} : { RelayState: extra.relayState }) });
    },
    async close() {
      await store.close();
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}

/** The `name=value` pair of the session cookie from a response's Set-Cookie, or null. */
export function sessionCookie(res: request.Response, name = 'devicegate_session'): string | null {
  const raw = res.headers['set-cookie'] as unknown;
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  const hit = list.find((c) => c.startsWith(`${name}=`) && !c.startsWith(`${name}=;`));
  return hit ? (hit.split(';')[0] as string) : null;
}

/** The full Set-Cookie line of the session cookie, for attribute checks. */
export function sessionSetCookieLine(res: request.Response, name = 'devicegate_session'): string | null {
  const raw = res.headers['set-cookie'] as unknown;
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  return list.find((c) => c.startsWith(`${name}=`)) ?? null;
}

export interface RespondOptions {
  readonly sign?: SignMode;
  readonly overrides?: LoginResponseSpec['overrides'];
  readonly now?: number;
  /** Answer with another IdP (impostor key, other entity ID, SHA-1). */
  readonly idp?: TestIdp;
  readonly readByIdp?: boolean;
}

/** Starts a login at the SP and has the IdP answer it: the genuine response an attacker would capture. */
export async function respond(h: SamlHarness, user: TestUser, opts: RespondOptions = {}): Promise<{ id: string; response: string }> {
  const req = await h.startLogin(undefined, { readByIdp: opts.readByIdp ?? true });
  const response = await (opts.idp ?? h.idp).loginResponse({
    sp: { entityId: SP_ENTITY_ID, acsUrl: ACS_URL },
    inResponseTo: req.id,
    user,
    sign: opts.sign ?? 'both',
    ...(opts.overrides ? { overrides: opts.overrides } : {}),
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  return { id: req.id, response };
}
