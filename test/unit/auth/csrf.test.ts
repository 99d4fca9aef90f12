import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { isAppError } from '../../../src/domain/errors';
import { ManualClock } from '../../../src/lib/clock';
import { SessionManager, type Session } from '../../../src/auth/session';
import { CSRF_FIELD, CSRF_HEADER, csrfTokenFor, requireCsrf, verifyCsrfToken } from '../../../src/auth/csrf';
import type { SamlUser } from '../../../src/auth/saml/profile';
import { openTempStore, type TempStore } from './store-fixture';

const user: SamlUser = {
  nameId: 'alice@stadt.test',
  nameIdFormat: null,
  sessionIndex: null,
  issuer: 'https://idp.stadt.test',
  displayName: 'Alice',
  email: null,
  roles: ['it-admin'],
};

describe('CSRF synchronizer token bound to the server-side session', () => {
  let t: TempStore;
  let sessions: SessionManager;
  let app: express.Express;
  let a: Session;
  let b: Session;
  const cookie = (s: Session) => `devicegate_session=${s.id}`;

  beforeEach(async () => {
    t = openTempStore();
    sessions = new SessionManager({
      store: t.store.nonces,
      clock: new ManualClock(),
      idleTimeoutMs: 1800_000,
      absoluteTimeoutMs: 28_800_000,
      cookieName: 'devicegate_session',
      cookieSecure: true,
    });
    a = await sessions.create(user);
    b = await sessions.create(user);
    app = express();
    app.use(express.urlencoded({ extended: false }), express.json(), sessions.middleware());
    app.use(requireCsrf({ allowedOrigins: ['https://gw.stadt.test'] }));
    app.all('/action', (_req: Request, res: Response) => void res.json({ done: true }));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(isAppError(err) ? err.status : 500).json({ code: isAppError(err) ? err.code : 'INTERNAL' });
    });
  });
  afterEach(async () => {
    await t.close();
  });

  it('accepts the session token from the form field or the header', async () => {
    const form = await request(app).post('/action').set('Cookie', cookie(a)).type('form').send({ [CSRF_FIELD]: csrfTokenFor(a) });
    expect(form.status).toBe(200);
    const header = await request(app).delete('/action').set('Cookie', cookie(a)).set(CSRF_HEADER, a.csrfToken);
    expect(header.status).toBe(200);
  });

  it('lets safe methods through without a token', async () => {
    expect((await request(app).get('/action').set('Cookie', cookie(a))).status).toBe(200);
    expect((await request(app).head('/action')).status).toBe(200);
  });

  it.each([
    ['no token (cross-site form post)', (s: Session) => ({ cookie: cookie(s), body: {} })],
    ["another session's token (token not bound to this session)", (s: Session) => ({ cookie: cookie(s), body: { [CSRF_FIELD]: b.csrfToken } })],
    ['a truncated token', (s: Session) => ({ cookie: cookie(s), body: { [CSRF_FIELD]: s.csrfToken.slice(0, -1) } })],
    ['an array smuggled as token', (s: Session) => ({ cookie: cookie(s), body: { [CSRF_FIELD]: [s.csrfToken, s.csrfToken] } })],
    ['a valid token but no session cookie (token replayed without the session)', (s: Session) => ({ cookie: '', body: { [CSRF_FIELD]: s.csrfToken } })],
  ])('refuses a POST with %s', async (_name, make) => {
    const { cookie: c, body } = make(a);
    let r = request(app).post('/action');
    if (c) r = r.set('Cookie', c);
    const res = await r.send(body);
    expect([res.status, res.body.code]).toEqual([403, 'CSRF_TOKEN_INVALID']);
  });

  it('refuses a foreign or null Origin even with the right token (login/cross-origin attacks)', async () => {
    for (const origin of ['https://evil.example', 'null', 'https://gw.stadt.test.evil.example']) {
      const res = await request(app).post('/action').set('Cookie', cookie(a)).set('Origin', origin).set(CSRF_HEADER, a.csrfToken);
      expect([origin, res.status, res.body.code]).toEqual([origin, 403, 'CSRF_ORIGIN_MISMATCH']);
    }
    const ok = await request(app).post('/action').set('Cookie', cookie(a)).set('Origin', 'https://gw.stadt.test').set(CSRF_HEADER, a.csrfToken);
    expect(ok.status).toBe(200);
  });

  it('verifyCsrfToken is false for anything but the exact token', () => {
    expect(verifyCsrfToken(a, a.csrfToken)).toBe(true);
    for (const bad of [undefined, null, 42, '', b.csrfToken, `${a.csrfToken}x`, a.csrfToken.toUpperCase(), 'x'.repeat(1000)]) {
      expect(verifyCsrfToken(a, bad)).toBe(false);
    }
  });

  it('a logged-out session token no longer passes (session gone → no token)', async () => {
    await sessions.destroy(a.id);
    const res = await request(app).post('/action').set('Cookie', cookie(a)).set(CSRF_HEADER, a.csrfToken);
    expect([res.status, res.body.code]).toEqual([403, 'CSRF_TOKEN_INVALID']);
  });
});
