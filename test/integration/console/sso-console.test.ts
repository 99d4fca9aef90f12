/**
 * SAML sign-in into the web console through the real app: a round trip with the samlify IdP per role, who-am-I,
 * page access per role, refused sign-ins (audited), sessions (timeouts, logout), security headers and the
 * language switch.
 */
import request from 'supertest';
import { CONSOLE_CSP } from '../../../src/http/console/view';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';
import { generateRsaKeyPair, TestIdp } from '../../helpers/test-idp';
import { buildSamlApp, cookieFrom, requestIdOf, setCookieLine, signIn, USERS, type SamlApp, type SignedIn } from './support';

type ConsoleRole = 'it-admin' | 'auditor' | 'viewer';
const ROLES: ConsoleRole[] = ['it-admin', 'auditor', 'viewer'];

async function auditEntries(t: SamlApp, type: string): Promise<Record<string, unknown>[]> {
  await t.services.audit.log.flush();
  const page = await t.store.audit.query({ type }, { limit: 100 });
  return page.items.map((e) => JSON.parse(e.body) as Record<string, unknown>);
}

describe('web console with SAML sign-in (real app, samlify IdP)', () => {
  let t: SamlApp;
  const sessions = {} as Record<ConsoleRole, SignedIn>;

  beforeAll(async () => {
    t = await buildSamlApp();
    for (const role of ROLES) sessions[role] = await signIn(t, USERS[role], { readByIdp: true });
  }, 60_000);

  afterAll(async () => {
    await t?.cleanup();
  });

  describe('sign-in round trip', () => {
    it.each(ROLES)('signs in a member of the %s group and shows who they are and their role', async (role) => {
      const s = sessions[role];
      expect(s.landedAt).toBe('/console');
      const home = await request(t.app).get('/console').set('Cookie', s.cookie).expect(200);
      expect(home.text).toContain(USERS[role].displayName);
      expect(home.text).toContain(`<code>${USERS[role].nameId}</code>`);
      expect(home.text).toContain(`data-role="${role}"`);
      expect(home.text).toContain('action="/saml/logout"');
      const logins = await auditEntries(t, 'admin.login');
      const mine = logins.find((e) => (e.data as { user: string }).user === USERS[role].nameId);
      expect(mine).toMatchObject({
        actor: { kind: 'user', id: USERS[role].nameId, roles: [role] },
        data: { method: 'saml', outcome: 'success', roles: [role] },
      });
    });

    it('sets the session cookie HttpOnly, Secure (https public URL), SameSite=Lax with a bounded lifetime', () => {
      const line = setCookieLine(sessions['it-admin'].acs, t.config.saml.session.cookieName) ?? '';
      expect(line).toMatch(/HttpOnly/i);
      expect(line).toMatch(/Secure/i);
      expect(line).toMatch(/SameSite=Lax/i);
      expect(line).toMatch(new RegExp(`Max-Age=${t.config.saml.session.absoluteTimeoutSeconds}`));
    });

    it('refuses a verified user whose groups map to no role, and audits the refusal with their NameID', async () => {
      const start = await request(t.app).get('/saml/login').expect(302);
      const id = requestIdOf(start.headers.location as string);
      const response = await t.idp.loginResponse({ sp: { entityId: t.entityId, acsUrl: t.acsUrl }, inResponseTo: id, user: USERS.none });
      const res = await request(t.app).post('/saml/acs').type('form').send({ SAMLResponse: response });
      expect(res.status).toBe(403);
      expect(res.type).toBe('text/html');
      expect(res.text).toContain('SAML_NO_ROLE');
      expect(cookieFrom(res, t.config.saml.session.cookieName)).toBeNull();
      const failures = (await auditEntries(t, 'admin.login')).filter((e) => (e.data as { outcome: string }).outcome === 'failure');
      expect(failures).toContainEqual(
        expect.objectContaining({ data: expect.objectContaining({ user: USERS.none.nameId, reason: 'SAML_NO_ROLE', roles: [] }) }),
      );
    });

    it('refuses a response signed by another key (forged IdP) and audits it without trusting its NameID', async () => {
      const impostor = await TestIdp.create({ keyPair: await generateRsaKeyPair('impostor'), entityId: t.idp.entityId });
      const start = await request(t.app).get('/saml/login').expect(302);
      const id = requestIdOf(start.headers.location as string);
      const forged = await impostor.loginResponse({
        sp: { entityId: t.entityId, acsUrl: t.acsUrl },
        inResponseTo: id,
        user: { nameId: 'mallory@evil.example', groups: ['GG-DeviceGate-IT-Admins'] },
      });
      const res = await request(t.app).post('/saml/acs').type('form').send({ SAMLResponse: forged });
      expect(res.status).toBe(401);
      expect(res.text).toContain('SAML_SIGNATURE_INVALID');
      expect(cookieFrom(res, t.config.saml.session.cookieName)).toBeNull();
      const failures = (await auditEntries(t, 'admin.login')).map((e) => e.data as { user: string; reason?: string; outcome: string });
      expect(failures.some((d) => d.user === 'mallory@evil.example')).toBe(false);
      expect(failures).toContainEqual(expect.objectContaining({ user: '(unverified)', outcome: 'failure', reason: 'SAML_SIGNATURE_INVALID' }));
    });

    it('refuses a replayed response (same assertion posted twice) and opens no second session', async () => {
      const start = await request(t.app).get('/saml/login').expect(302);
      const id = requestIdOf(start.headers.location as string);
      const response = await t.idp.loginResponse({ sp: { entityId: t.entityId, acsUrl: t.acsUrl }, inResponseTo: id, user: USERS.viewer });
      await request(t.app).post('/saml/acs').type('form').send({ SAMLResponse: response }).expect(303);
      const again = await request(t.app).post('/saml/acs').type('form').send({ SAMLResponse: response });
      expect(again.status).toBe(401);
      expect(cookieFrom(again, t.config.saml.session.cookieName)).toBeNull();
    });

    it('refuses a verified user whose NameID is too long to be named in the audit log', async () => {
      const start = await request(t.app).get('/saml/login').expect(302);
      const id = requestIdOf(start.headers.location as string);
      const long = { ...USERS['it-admin'], nameId: `${'x'.repeat(190)}@stadt.example` };
      const response = await t.idp.loginResponse({ sp: { entityId: t.entityId, acsUrl: t.acsUrl }, inResponseTo: id, user: long });
      const res = await request(t.app).post('/saml/acs').type('form').send({ SAMLResponse: response });
      expect(res.status).toBe(403);
      expect(res.text).toContain('SAML_NAMEID_TOO_LONG');
      expect(cookieFrom(res, t.config.saml.session.cookieName)).toBeNull();
      const failures = (await auditEntries(t, 'admin.login')).map((e) => e.data as { user: string; reason?: string });
      expect(failures).toContainEqual(expect.objectContaining({ user: long.nameId, reason: 'SAML_NAMEID_TOO_LONG' }));
    });

    it('serves SP metadata through the route table', async () => {
      const res = await request(t.app).get('/saml/metadata').expect(200);
      expect(res.text).toContain(`entityID="${t.entityId}"`);
      expect(res.text).toContain(t.acsUrl);
    });
  });

  describe('access per role', () => {
    const cases: [string, Record<ConsoleRole, number>][] = [
      ['/console', { 'it-admin': 200, auditor: 200, viewer: 200 }],
      ['/console/devices', { 'it-admin': 200, auditor: 200, viewer: 200 }],
      ['/console/devices/new', { 'it-admin': 200, auditor: 403, viewer: 403 }],
      ['/console/devices/import', { 'it-admin': 200, auditor: 403, viewer: 403 }],
      ['/console/audit', { 'it-admin': 403, auditor: 200, viewer: 403 }],
      ['/console/audit/verify', { 'it-admin': 403, auditor: 200, viewer: 403 }],
    ];
    it.each(cases)('GET %s answers each role as the permission table says', async (path, expected) => {
      for (const role of ROLES) {
        const res = await request(t.app).get(path).set('Cookie', sessions[role].cookie);
        expect({ role, status: res.status }).toEqual({ role, status: expected[role] });
        expect(res.type).toBe('text/html');
      }
    });

    it('asks an anonymous visitor to sign in (401 page with a sign-in link back to the page)', async () => {
      const res = await request(t.app).get('/console/devices').expect(401);
      expect(res.text).toContain('href="/saml/login?returnTo=%2Fconsole%2Fdevices"');
    });

    it('shows an auditor a 403 page, not the IT form, and offers no IT navigation', async () => {
      const res = await request(t.app).get('/console/devices/new').set('Cookie', sessions.auditor.cookie).expect(403);
      expect(res.text).not.toContain('name="serial_number"');
      const home = await request(t.app).get('/console').set('Cookie', sessions.auditor.cookie);
      expect(home.text).not.toContain('href="/console/devices/new"');
      expect(home.text).toContain('href="/console/audit"');
    });

    it('shows a viewer the device list read-only (no register, import or status actions)', async () => {
      const admin = await bearer(t.services, 'it-admin');
      const created = await request(t.app)
        .post('/v1/devices')
        .set('Authorization', admin)
        .send({ serial_number: 'VIEW-1', platform: 'linux' })
        .expect(201);
      const list = await request(t.app).get('/console/devices').set('Cookie', sessions.viewer.cookie).expect(200);
      expect(list.text).toContain('VIEW-1');
      expect(list.text).not.toContain('href="/console/devices/new"');
      const detail = await request(t.app).get(`/console/devices/${created.body.id as string}`).set('Cookie', sessions.viewer.cookie).expect(200);
      expect(detail.text).toContain('VIEW-1');
      expect(detail.text).not.toContain('/status?to=');
      expect(detail.text).not.toContain('/enrollment-token');
    });

    it('lets API tokens keep working for automation beside browser sessions', async () => {
      const token = await bearer(t.services, 'auditor');
      await request(t.app).get('/v1/devices').set('Authorization', token).expect(200);
      await request(t.app).get('/v1/devices').set('Cookie', sessions.viewer.cookie).expect(200);
    });
  });

  describe('security headers and markup', () => {
    it('serves console pages with a CSP without inline scripts or styles, no framing and HSTS (https)', async () => {
      const res = await request(t.app).get('/console').set('Cookie', sessions['it-admin'].cookie).expect(200);
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(CONSOLE_CSP).toBe(
        "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
      );
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      // Browsers send `Origin: null` with form posts from a `no-referrer` page, which the CSRF check refuses.
      expect(res.headers['referrer-policy']).toBe('same-origin');
      // The CSP would block these anyway; the page must not rely on them.
      expect(res.text).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
      expect(res.text).not.toMatch(/<style/i);
      expect(res.text).not.toMatch(/\sstyle="/i);
      expect(res.text).not.toMatch(/\son[a-z]+="/i);
    });

    it('has a lang attribute, a skip link to main, and labels for every form field', async () => {
      for (const path of ['/console/devices', '/console/devices/new', '/console/devices/import']) {
        const res = await request(t.app).get(path).set('Cookie', sessions['it-admin'].cookie).expect(200);
        expect(res.text).toMatch(/<html lang="de">/);
        expect(res.text).toContain('<a class="skip-link" href="#main">');
        expect(res.text).toContain('<main id="main"');
        const ids = [...res.text.matchAll(/<(?:input|select|textarea)(?![^>]*type="(?:hidden|submit)")[^>]*\sid="([^"]+)"/g)].map((m) => m[1]);
        expect(ids.length).toBeGreaterThan(0);
        for (const id of ids) expect(res.text).toContain(`<label for="${id}"`);
      }
    });

    it('serves the stylesheet and script as files with their content types', async () => {
      const css = await request(t.app).get('/console/assets/console.css').expect(200);
      expect(css.type).toBe('text/css');
      expect(css.text).toContain(':focus-visible');
      const js = await request(t.app).get('/console/assets/console.js').expect(200);
      expect(js.type).toBe('text/javascript');
      await request(t.app).get('/console/assets/..%2F..%2F..%2Fpackage.json').expect(404);
    });
  });

  describe('language', () => {
    it('is German by default and switches to English with ?lang=en, remembered in a cookie', async () => {
      const cookie = sessions.viewer.cookie;
      const de = await request(t.app).get('/console').set('Cookie', cookie).expect(200);
      expect(de.text).toMatch(/<html lang="de">/);
      expect(de.text).toContain('Wer bin ich?');
      expect(de.text).toContain('href="/console?lang=en"');
      const en = await request(t.app).get('/console?lang=en').set('Cookie', cookie).expect(200);
      expect(en.text).toMatch(/<html lang="en">/);
      expect(en.text).toContain('Who am I?');
      const langCookie = cookieFrom(en, 'devicegate_lang');
      expect(langCookie).toBe('devicegate_lang=en');
      const later = await request(t.app).get('/console/devices').set('Cookie', `${cookie}; ${langCookie}`).expect(200);
      expect(later.text).toMatch(/<html lang="en">/);
      expect(later.text).toContain('<h1>Devices</h1>');
      const back = await request(t.app).get('/console?lang=de').set('Cookie', `${cookie}; ${langCookie}`).expect(200);
      expect(back.text).toContain('Wer bin ich?');
    });

    it('ignores an unknown language instead of reflecting it', async () => {
      const res = await request(t.app).get('/console?lang=%22%3E%3Cscript%3E').set('Cookie', sessions.viewer.cookie).expect(200);
      expect(res.text).toMatch(/<html lang="de">/);
      expect(res.text).not.toContain('"><script>');
      expect(cookieFrom(res, 'devicegate_lang')).toBeNull();
    });
  });

  describe('sessions', () => {
    it('ends the session on sign-out (with the CSRF token) and lands on the signed-out page', async () => {
      const s = await signIn(t, USERS.viewer);
      const out = await request(t.app).post('/saml/logout').set('Cookie', s.cookie).type('form').send({ _csrf: s.csrf }).expect(303);
      expect(out.headers.location).toBe('/console/signed-out');
      expect(setCookieLine(out, t.config.saml.session.cookieName)).toMatch(/Expires=Thu, 01 Jan 1970/);
      await request(t.app).get('/console').set('Cookie', s.cookie).expect(401);
      const [logout] = await auditEntries(t, 'admin.logout');
      expect(logout).toMatchObject({ actor: { kind: 'user', id: USERS.viewer.nameId }, data: { user: USERS.viewer.nameId, method: 'saml' } });
      expect((logout?.data as { sessionSeconds: number }).sessionSeconds).toBeGreaterThanOrEqual(0);
      const page = await request(t.app).get('/console/signed-out').expect(200);
      expect(page.text).toContain('href="/saml/login?returnTo=%2Fconsole"');
    });

    it('refuses a cross-site sign-out without the CSRF token and keeps the session', async () => {
      const s = await signIn(t, USERS.viewer);
      await request(t.app).post('/saml/logout').set('Cookie', s.cookie).type('form').send({}).expect(403);
      await request(t.app).get('/console').set('Cookie', s.cookie).expect(200);
    });

    it('ends a session after the idle timeout and after the absolute timeout', async () => {
      // Both sign-ins happen before the clock moves: the IdP stamps its assertions with the wall clock.
      const idle = await signIn(t, USERS.viewer);
      const busy = await signIn(t, USERS.viewer);
      const idleMs = t.config.saml.session.idleTimeoutSeconds * 1000;
      const absoluteMs = t.config.saml.session.absoluteTimeoutSeconds * 1000;
      const started = t.clock.nowMs();
      try {
        const step = Math.floor(idleMs / 2);
        let elapsed = 0;
        while (elapsed + step < absoluteMs) {
          t.clock.advance(step);
          elapsed += step;
          await request(t.app).get('/console').set('Cookie', busy.cookie).expect(200);
          if (elapsed > idleMs) await request(t.app).get('/console').set('Cookie', idle.cookie).expect(401);
        }
        t.clock.advance(absoluteMs - elapsed + 1000);
        await request(t.app).get('/console').set('Cookie', busy.cookie).expect(401);
      } finally {
        t.clock.set(started);
      }
    });

    it('rejects a made-up session cookie (no session fixation by cookie planting)', async () => {
      await request(t.app).get('/console').set('Cookie', `${t.config.saml.session.cookieName}=${'A'.repeat(43)}`).expect(401);
    });
  });

  describe('sign-in flood', () => {
    it('takes the limit from saml.requestsPerMinutePerAddress (an operator can tighten it)', async () => {
      const strict = await buildSamlApp({ env: { DEVICEGATE_SAML__REQUESTS_PER_MINUTE_PER_ADDRESS: '7' } });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 9; i++) statuses.push((await request(strict.app).get('/saml/login')).status);
        expect(statuses).toEqual([302, 302, 302, 302, 302, 302, 302, 429, 429]);
      } finally {
        await strict.cleanup();
      }
    });

    it('rate-limits sign-in starts per client address (429) so failed sign-ins cannot flood the audit log', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < t.config.saml.requestsPerMinutePerAddress + 5; i++) statuses.push((await request(t.app).get('/saml/login')).status);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(5);
      expect(statuses.filter((s) => s !== 302 && s !== 429)).toEqual([]);
      const acs = await request(t.app).post('/saml/acs').type('form').send({ SAMLResponse: 'AAAA' });
      expect(acs.status).toBe(429);
      expect(acs.headers['retry-after']).toBe('60');
    });
  });
});

describe('web console without TLS and without SAML', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('sends no HSTS header over plain http (HSTS only when TLS)', async () => {
    const res = await request(t.app).get('/console/signed-out').expect(200);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
  });

  it('answers the SAML endpoints with 404 SAML_DISABLED and still serves pages to API tokens', async () => {
    const res = await request(t.app).get('/saml/login').expect(404);
    expect(res.text).toContain('SAML_DISABLED');
    const unauth = await request(t.app).get('/console').expect(401);
    expect(unauth.text).not.toContain('/saml/login');
    const page = await request(t.app).get('/console').set('Authorization', await bearer(t.services, 'viewer')).expect(200);
    expect(page.text).toContain('data-role="viewer"');
  });
});
