/**
 * RBAC in one place: walks EVERY route of the app's route table × every role (API tokens for all four roles, and
 * SAML browser sessions for the three roles a person can hold) × unauthenticated, and checks each answer against
 * the role → permission table in src/auth/permissions.ts:
 * - unauthenticated on a protected route → 401 AUTHENTICATION_REQUIRED;
 * - a role without the route's permission → 403 FORBIDDEN;
 * - a role with it → neither 401 nor 403 (other 4xx for the dummy request are fine);
 * - public routes answer everybody alike and never with an access refusal.
 * A route added without an access rule cannot exist (RouteTable.add requires one); a route added with one is walked
 * here automatically.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PERMISSIONS, roleHas } from '../../../src/auth/permissions';
import { ROLES, type Role } from '../../../src/domain/types';
import type { RouteSpec } from '../../../src/http/route-table';
import { bearer } from '../../helpers/tokens';
import { buildSamlApp, signIn, USERS, type SamlApp } from '../console/support';

type SessionRole = 'it-admin' | 'auditor' | 'viewer';
type Caller =
  | { kind: 'anonymous'; label: string }
  | { kind: 'token'; label: string; role: Role; authorization: string }
  | { kind: 'session'; label: string; role: SessionRole; cookie: string; csrf: string };

interface Answer {
  status: number;
  code: string | null;
}

/** A concrete URL for a route template (dummy ids that pass syntax checks but name nothing). */
function concretePath(path: string): string {
  return path
    .replace(':id', '00000000-0000-4000-8000-000000000000')
    .replace(':serial', '0a1b2c')
    .replace(':section', 'authorize')
    .replace(':file', 'console.css')
    .replace('*request', 'MAA%3D');
}

/** The error code in a JSON error body or an HTML error page, if any. */
function errorCode(contentType: string, body: string): string | null {
  if (contentType.includes('json')) {
    try {
      return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? null;
    } catch {
      return null;
    }
  }
  return /Fehlercode: <code>([A-Z_]+)<\/code>/.exec(body)?.[1] ?? null;
}

describe('RBAC: every route × every role × unauthenticated against the permission table', () => {
  let t: SamlApp;
  let server: http.Server;
  let base: string;
  const callers: Caller[] = [{ kind: 'anonymous', label: 'unauthenticated' }];

  beforeAll(async () => {
    // A generous enrollment rate limit: the walk calls the public enrollment routes once per caller.
    t = await buildSamlApp({ env: { DEVICEGATE_ENROLLMENT__REQUESTS_PER_MINUTE_PER_ADDRESS: '10000' } });
    for (const role of ROLES) callers.push({ kind: 'token', label: `token:${role}`, role, authorization: await bearer(t.services, role) });
    for (const role of ['it-admin', 'auditor', 'viewer'] as const) {
      const s = await signIn(t, USERS[role]);
      callers.push({ kind: 'session', label: `session:${role}`, role, cookie: s.cookie, csrf: s.csrf });
    }
    server = http.createServer(t.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeAllConnections();
    await t?.cleanup();
  });

  /** One request; resolves on the response headers (so event streams and exports need not finish). */
  async function call(route: RouteSpec, caller: Caller): Promise<Answer> {
    const isForm = route.path.startsWith('/console') || route.path.startsWith('/saml');
    const headers: Record<string, string> = {};
    let body: string | undefined;
    if (caller.kind === 'token') headers.authorization = caller.authorization;
    if (caller.kind === 'session') {
      headers.cookie = caller.cookie;
      headers['x-csrf-token'] = caller.csrf;
    }
    if (route.method !== 'get') {
      if (isForm) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        body = caller.kind === 'session' ? new URLSearchParams({ _csrf: caller.csrf }).toString() : '';
      } else {
        headers['content-type'] = 'application/json';
        body = '{}';
      }
    }
    const res = await fetch(`${base}${concretePath(route.path)}`, {
      method: route.method.toUpperCase(),
      headers,
      ...(body === undefined ? {} : { body }),
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
    const type = res.headers.get('content-type') ?? '';
    let text = '';
    if (type.includes('event-stream')) await res.body?.cancel();
    else text = await res.text();
    return { status: res.status, code: res.status === 401 || res.status === 403 ? errorCode(type, text) : null };
  }

  it('has a well-formed table: unique routes, every access rule a known permission or public', () => {
    const routes = t.app.routes.routes;
    expect(routes.length).toBeGreaterThan(30);
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const r of routes) expect(r.access === 'public' || (PERMISSIONS as readonly string[]).includes(r.access)).toBe(true);
    // The console and SAML endpoints are in the table (not mounted beside it).
    for (const k of ['get /saml/login', 'post /saml/acs', 'post /saml/logout', 'get /console', 'post /console/devices', 'get /console/audit/export']) {
      expect(keys).toContain(k);
    }
  });

  it('answers every route for every caller as the permission table says', async () => {
    const access = { itAdminMayReadAudit: t.config.audit.itAdminMayReadRawLogs };
    const mismatches: string[] = [];
    let checked = 0;
    for (const route of t.app.routes.routes) {
      const id = `${route.method.toUpperCase()} ${route.path}`;
      if (route.access === 'public') {
        // Public routes carry their own proof; the principal must make no difference. Sessions are left out here
        // because POST /saml/logout would end them.
        const answers: { label: string; a: Answer }[] = [];
        for (const c of callers.filter((x) => x.kind !== 'session')) answers.push({ label: c.label, a: await call(route, c) });
        checked += answers.length;
        const first = answers[0]?.a.status;
        for (const { label, a } of answers) {
          if (a.status !== first) mismatches.push(`${id} as ${label}: ${a.status}, unauthenticated got ${first}`);
          if (a.code === 'AUTHENTICATION_REQUIRED' || a.code === 'FORBIDDEN') mismatches.push(`${id} as ${label}: refused with ${a.code}`);
        }
        continue;
      }
      const permission = route.access;
      for (const c of callers) {
        const a = await call(route, c);
        checked += 1;
        if (c.kind === 'anonymous') {
          if (a.status !== 401 || a.code !== 'AUTHENTICATION_REQUIRED') mismatches.push(`${id} unauthenticated: ${a.status} ${a.code}`);
          continue;
        }
        const allowed = roleHas(c.role, permission, access);
        if (allowed) {
          // rlm_rest's protocol answers "reject" (the device is denied) with a 401 that carries no error code.
          const radiusReject = id === 'POST /v1/adapters/freeradius/:section' && a.status === 401 && a.code === null;
          if ((a.status === 401 || a.status === 403) && !radiusReject) mismatches.push(`${id} as ${c.label} (allowed): ${a.status} ${a.code}`);
        } else if (c.kind === 'session' && id === 'POST /v1/decisions') {
          // The decision fast path (src/http/fast-decisions.ts) authenticates API tokens only, so a browser session
          // is not recognised there at all: refused as unauthenticated instead of as the wrong role.
          if (a.status !== 401) mismatches.push(`${id} as ${c.label} (denied): ${a.status} ${a.code}`);
        } else if (a.status !== 403 || a.code !== 'FORBIDDEN') {
          mismatches.push(`${id} as ${c.label} (denied): ${a.status} ${a.code}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(t.app.routes.routes.length * 5);
  }, 60_000);
});
