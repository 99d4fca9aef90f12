/**
 * A real SAML round trip: GET /saml/login on our express app issues an AuthnRequest through the production
 * passport-saml strategy; an independent samlify IdP reads it (inflate, schema validation with xmllint, redirect
 * signature check) and signs a response; POST /saml/acs validates it and opens a server-side session in SQLite.
 * Covers a valid login per role, session cookie and rotation, metadata, open-redirect guards, logout and CSRF.
 */
import request from 'supertest';
import {
  ACS_URL,
  createSamlHarness,
  GROUPS,
  PUBLIC_URL,
  SP_ENTITY_ID,
  sessionCookie,
  sessionSetCookieLine,
  respond as respondWith,
  type RespondOptions,
  type SamlHarness,
} from './harness';
import { validateSamlSchema, type TestUser } from '../../helpers/test-idp';
import type { SamlUser } from '../../../src/auth/saml/profile';

const SP = { entityId: SP_ENTITY_ID, acsUrl: ACS_URL };
const alice: TestUser = { nameId: 'alice@stadt.test', displayName: 'Alice Admin', email: 'alice@stadt.test', groups: [GROUPS.itAdmin] };

let h: SamlHarness;
const logins: SamlUser[] = [];

beforeAll(async () => {
  h = await createSamlHarness({
    hooks: {
      onLogin: (u) => void logins.push(u),
    },
  });
});
afterAll(async () => {
  await h?.close();
});

// The IdP reads (schema-validates, signature-checks) the AuthnRequest in the per-role logins and the request test;
// elsewhere only its id is taken, to keep the Emscripten xmllint out of the hot path.
const respond = (user: TestUser, opts: RespondOptions = {}) => respondWith(h, user, { readByIdp: false, ...opts });

describe('SAML single sign-on: login, sessions, logout (passport-saml SP ↔ samlify IdP, SQLite store)', () => {
  describe('login', () => {
    it.each([
      ['it-admin', GROUPS.itAdmin],
      ['auditor', GROUPS.auditor],
      ['viewer', GROUPS.viewer],
    ])('signs in a member of the %s group and opens a server-side session with that role', async (role, group) => {
      const user: TestUser = { nameId: `${role}@stadt.test`, displayName: `User ${role}`, email: `${role}@stadt.test`, groups: ['Domain Users', group] };
      const req = await h.startLogin('/devices?status=active');
      expect(req.relayState).toBe('/devices?status=active');
      const res = await h.postResponse(await h.idp.loginResponse({ sp: SP, inResponseTo: req.id, user }), {
        relayState: req.relayState ?? '/',
      });
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/devices?status=active');
      const cookie = sessionCookie(res);
      expect(cookie).toMatch(/^devicegate_session=[A-Za-z0-9_-]{43}$/);
      const who = await request(h.app).get('/whoami').set('Cookie', cookie as string);
      expect(who.status).toBe(200);
      expect(who.body.user).toMatchObject({
        nameId: user.nameId,
        displayName: user.displayName,
        email: user.email,
        issuer: h.idp.entityId,
        roles: [role],
      });
      expect(logins.at(-1)?.nameId).toBe(user.nameId);
    });

    it('sets the session cookie HttpOnly, Secure, SameSite=Lax, Path=/ with a bounded Max-Age', async () => {
      const { response } = await respond(alice);
      const line = sessionSetCookieLine(await h.postResponse(response));
      expect(line).toMatch(/; HttpOnly/);
      expect(line).toMatch(/; Secure/);
      expect(line).toMatch(/; SameSite=Lax/);
      expect(line).toMatch(/; Path=\//);
      expect(line).toMatch(/Max-Age=28800/);
    });

    it('accepts a response where only the assertion is signed (the ADFS default)', async () => {
      const { response } = await respond(alice, { sign: 'assertion' });
      expect((await h.postResponse(response)).status).toBe(303);
    });

    it('grants every role whose group the user is in', async () => {
      const { response } = await respond({ nameId: 'both@stadt.test', groups: [GROUPS.auditor, GROUPS.viewer, 'Other'] });
      const res = await h.postResponse(response);
      const who = await request(h.app).get('/whoami').set('Cookie', sessionCookie(res) as string);
      expect(who.body.user.roles).toEqual(['auditor', 'viewer']);
    });

    it('rotates the session on login: the session presented with the new login is destroyed (fixation)', async () => {
      const first = sessionCookie(await h.postResponse((await respond(alice)).response)) as string;
      expect((await request(h.app).get('/whoami').set('Cookie', first)).status).toBe(200);
      const second = sessionCookie(await h.postResponse((await respond(alice)).response, { cookie: first })) as string;
      expect(second).not.toBe(first);
      expect((await request(h.app).get('/whoami').set('Cookie', first)).status).toBe(401);
      expect((await request(h.app).get('/whoami').set('Cookie', second)).status).toBe(200);
    });

    it('issues an AuthnRequest that samlify schema-validates and whose redirect signature it verifies', async () => {
      const req = await h.startLogin();
      expect(req.signatureChecked).toBe(true);
      expect(req.issuer).toBe(SP_ENTITY_ID);
      expect(req.acsUrl).toBe(ACS_URL);
      expect(req.id).toMatch(/^_[0-9a-f]{40}$/);
    });

    it('the schema validator used by the IdP really rejects schema-invalid SAML (so the check above means something)', async () => {
      await expect(
        validateSamlSchema('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" Version="2.0"/>'),
      ).rejects.toBeDefined();
    });

    it('drops an off-site returnTo instead of redirecting there after login (open redirect)', async () => {
      for (const evilTarget of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
        expect((await h.startLogin(evilTarget, { readByIdp: false })).relayState).toBe('/');
      }
      // A RelayState smuggled in directly (passport-saml reads req.query.RelayState) is overridden as well.
      const direct = await request(h.app).get('/saml/login').query({ RelayState: 'https://evil.example/' });
      expect(new URL(direct.headers.location as string).searchParams.get('RelayState')).toBe('/');
    });

    it('lands on / when the RelayState coming back from the browser was changed to an off-site URL (open redirect)', async () => {
      const { response } = await respond(alice);
      const res = await h.postResponse(response, { relayState: 'https://evil.example/phish' });
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/');
    });

    it('serves SP metadata naming our entity ID, ACS, signing certificate and WantAssertionsSigned', async () => {
      const res = await request(h.app).get('/saml/metadata');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/samlmetadata\+xml/);
      expect(res.text).toContain(`entityID="${SP_ENTITY_ID}"`);
      expect(res.text).toContain(`Location="${ACS_URL}"`);
      expect(res.text).toContain('WantAssertionsSigned="true"');
      expect(res.text).toContain('AuthnRequestsSigned="true"');
      const certB64 = h.spSigning.certPem.replace(/-----[^-]+-----|\s/g, '');
      expect(res.text.replace(/\s/g, '')).toContain(certB64);
    });
  });

  describe('wantAuthnResponseSigned = true', () => {
    let strict: SamlHarness;
    beforeAll(async () => {
      strict = await createSamlHarness({ idp: h.idp, wantAuthnResponseSigned: true });
    });
    afterAll(async () => {
      await strict?.close();
    });

    it('accepts a response signed at both levels', async () => {
      const req = await strict.startLogin(undefined, { readByIdp: false });
      const res = await strict.postResponse(await strict.idp.loginResponse({ sp: SP, inResponseTo: req.id, user: alice, sign: 'both' }));
      expect(res.status).toBe(303);
    });

    it('rejects a response where only the assertion is signed', async () => {
      const req = await strict.startLogin(undefined, { readByIdp: false });
      const res = await strict.postResponse(await strict.idp.loginResponse({ sp: SP, inResponseTo: req.id, user: alice, sign: 'assertion' }));
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'SAML_SIGNATURE_INVALID' });
      expect(sessionCookie(res)).toBeNull();
    });
  });

  describe('logout and CSRF', () => {
    async function signIn(user: TestUser): Promise<{ cookie: string; csrf: string }> {
      const { response } = await respond(user);
      const cookie = sessionCookie(await h.postResponse(response)) as string;
      const who = await request(h.app).get('/whoami').set('Cookie', cookie);
      return { cookie, csrf: who.body.csrfToken as string };
    }

    it("ends the session everywhere on POST /saml/logout with the session's CSRF token", async () => {
      const { cookie, csrf } = await signIn(alice);
      const out = await request(h.app).post('/saml/logout').set('Cookie', cookie).type('form').send({ _csrf: csrf });
      expect(out.status).toBe(303);
      expect(out.headers.location).toBe('/');
      expect(sessionSetCookieLine(out)).toMatch(/^devicegate_session=;.*Expires=Thu, 01 Jan 1970/);
      expect((await request(h.app).get('/whoami').set('Cookie', cookie)).status).toBe(401);
    });

    it('refuses a logout without the CSRF token (cross-site logout) and keeps the session', async () => {
      const { cookie } = await signIn(alice);
      const out = await request(h.app).post('/saml/logout').set('Cookie', cookie).type('form').send({});
      expect([out.status, out.body.code]).toEqual([403, 'CSRF_TOKEN_INVALID']);
      expect((await request(h.app).get('/whoami').set('Cookie', cookie)).status).toBe(200);
    });

    it("refuses a state-changing request carrying another session's CSRF token (token not bound to this session)", async () => {
      const a = await signIn(alice);
      const b = await signIn(alice);
      const res = await request(h.app).post('/it-only').set('Cookie', a.cookie).type('form').send({ _csrf: b.csrf });
      expect([res.status, res.body.code]).toEqual([403, 'CSRF_TOKEN_INVALID']);
      const ok = await request(h.app).post('/it-only').set('Cookie', a.cookie).type('form').send({ _csrf: a.csrf });
      expect(ok.status).toBe(200);
    });

    it('refuses a state-changing request from a foreign Origin even with a valid token', async () => {
      const a = await signIn(alice);
      const res = await request(h.app)
        .post('/it-only')
        .set('Cookie', a.cookie)
        .set('Origin', 'https://evil.example')
        .set('X-CSRF-Token', a.csrf)
        .send();
      expect([res.status, res.body.code]).toEqual([403, 'CSRF_ORIGIN_MISMATCH']);
      const same = await request(h.app).post('/it-only').set('Cookie', a.cookie).set('Origin', PUBLIC_URL).set('X-CSRF-Token', a.csrf).send();
      expect(same.status).toBe(200);
    });

    it('refuses an IT-only action to an auditor session (role check)', async () => {
      const aud = await signIn({ nameId: 'aud@stadt.test', groups: [GROUPS.auditor] });
      const res = await request(h.app).post('/it-only').set('Cookie', aud.cookie).type('form').send({ _csrf: aud.csrf });
      expect([res.status, res.body.code]).toEqual([403, 'ROLE_REQUIRED']);
    });

    it('answers a logout without a session with a redirect (nothing to end)', async () => {
      const out = await request(h.app).post('/saml/logout').type('form').send({});
      expect(out.status).toBe(303);
    });
  });
});
