import { createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { isAppError } from '../../../src/domain/errors';
import { ManualClock } from '../../../src/lib/clock';
import {
  SESSION_KEY_PREFIX,
  SESSION_SEEN_KEY_PREFIX,
  SessionManager,
  getSession,
  readCookie,
  type SessionManagerOptions,
} from '../../../src/auth/session';
import type { SamlUser } from '../../../src/auth/saml/profile';
import { openTempStore, type TempStore } from './store-fixture';

const IDLE = 30 * 60_000;
const ABS = 8 * 3600_000;
const user: SamlUser = {
  nameId: 'alice@stadt.test',
  nameIdFormat: null,
  sessionIndex: '_idx',
  issuer: 'https://idp.stadt.test',
  displayName: 'Alice',
  email: 'alice@stadt.test',
  roles: ['it-admin'],
};

describe('SessionManager (server-side sessions over the SQLite NonceStore)', () => {
  let t: TempStore;
  let clock: ManualClock;
  let sessions: SessionManager;
  const make = (o: Partial<SessionManagerOptions> = {}) =>
    new SessionManager({
      store: t.store.nonces,
      clock,
      idleTimeoutMs: IDLE,
      absoluteTimeoutMs: ABS,
      cookieName: 'devicegate_session',
      cookieSecure: true,
      touchIntervalMs: 60_000,
      ...o,
    });
  beforeEach(() => {
    t = openTempStore();
    clock = new ManualClock();
    sessions = make();
  });
  afterEach(async () => {
    await t.close();
  });

  it('creates a session with a random 256-bit id and a CSRF token, and loads it back', async () => {
    const s = await sessions.create(user);
    expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(s.id, 'base64url')).toHaveLength(32);
    expect(s.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.csrfToken).not.toBe(s.id);
    const loaded = await sessions.get(s.id);
    expect(loaded).toMatchObject({ id: s.id, user, csrfToken: s.csrfToken, expiresAt: clock.nowMs() + ABS });
    const other = await sessions.create(user);
    expect(other.id).not.toBe(s.id);
    expect(other.csrfToken).not.toBe(s.csrfToken);
  });

  it('stores only a hash of the session id (a store copy does not yield live cookies)', async () => {
    const s = await sessions.create(user);
    const now = clock.nowMs();
    expect(await t.store.nonces.get(SESSION_KEY_PREFIX + s.id, now)).toBeNull();
    const h = createHash('sha256').update(s.id).digest('hex');
    const raw = await t.store.nonces.get(SESSION_KEY_PREFIX + h, now);
    expect(raw).not.toBeNull();
    expect(raw).not.toContain(s.id);
  });

  it('ends a session after the idle timeout without activity', async () => {
    const s = await sessions.create(user);
    clock.advance(IDLE - 1);
    expect(await sessions.get(s.id)).not.toBeNull();
    clock.advance(IDLE);
    expect(await sessions.get(s.id)).toBeNull();
  });

  it('keeps an active session alive past one idle period', async () => {
    const s = await sessions.create(user);
    for (let i = 0; i < 5; i++) {
      clock.advance(IDLE / 2);
      expect(await sessions.get(s.id)).not.toBeNull();
    }
    expect(clock.nowMs() - s.createdAt).toBeGreaterThan(IDLE);
  });

  it('ends a session at the absolute timeout however active it is', async () => {
    const s = await sessions.create(user);
    let alive = 0;
    while (clock.nowMs() - s.createdAt < ABS - IDLE / 2) {
      clock.advance(IDLE / 2);
      if (await sessions.get(s.id)) alive++;
    }
    expect(alive).toBeGreaterThan(10);
    clock.set(s.createdAt + ABS);
    expect(await sessions.get(s.id)).toBeNull();
  });

  it('destroys a session everywhere (another instance on the same store no longer finds it)', async () => {
    const b = make({ store: t.openAnother().nonces });
    const s = await sessions.create(user);
    expect(await b.get(s.id)).not.toBeNull();
    await sessions.destroy(s.id);
    expect(await b.get(s.id)).toBeNull();
    expect(await sessions.get(s.id)).toBeNull();
  });

  it('does not resurrect a logged-out session when a request racing the logout writes its activity mark', async () => {
    const s = await sessions.create(user);
    clock.advance(120_000);
    const h = createHash('sha256').update(s.id).digest('hex');
    await sessions.destroy(s.id);
    // A request that loaded the session just before the logout now records its activity, as get() does.
    await t.store.nonces.put(SESSION_SEEN_KEY_PREFIX + h, String(clock.nowMs()), IDLE, clock.nowMs(), { overwrite: true });
    expect(await sessions.get(s.id)).toBeNull();
    expect(await t.store.nonces.get(SESSION_KEY_PREFIX + h, clock.nowMs())).toBeNull();
  });

  it('rotates on login: creating a session destroys the one presented (session fixation)', async () => {
    const planted = await sessions.create(user);
    const fresh = await sessions.create(user, planted.id);
    expect(fresh.id).not.toBe(planted.id);
    expect(await sessions.get(planted.id)).toBeNull();
    expect(await sessions.get(fresh.id)).not.toBeNull();
  });

  it('refuses to open a session for a user without a role', async () => {
    await expect(sessions.create({ ...user, roles: [] })).rejects.toMatchObject({ kind: 'forbidden', code: 'SAML_NO_ROLE' });
    await expect(
      sessions.create({ ...user, roles: ['concentrator' as never] }),
    ).rejects.toMatchObject({ code: 'SAML_NO_ROLE' });
  });

  it('treats malformed or forged ids as no session', async () => {
    await sessions.create(user);
    for (const bad of ['', 'abc', 'x'.repeat(43) + '=', '../../etc/passwd', 'A'.repeat(43)]) {
      expect(await sessions.get(bad)).toBeNull();
    }
  });

  it('treats a corrupted stored record as no session', async () => {
    const s = await sessions.create(user);
    const h = createHash('sha256').update(s.id).digest('hex');
    await t.store.nonces.put(SESSION_KEY_PREFIX + h, '{"v":1,"user":null}', ABS, clock.nowMs(), { overwrite: true });
    expect(await sessions.get(s.id)).toBeNull();
  });

  it('writes activity at most once per touch interval', async () => {
    const s = await sessions.create(user);
    const h = createHash('sha256').update(s.id).digest('hex');
    const seen = () => t.store.nonces.get(SESSION_SEEN_KEY_PREFIX + h, clock.nowMs());
    const first = await seen();
    clock.advance(30_000);
    await sessions.get(s.id);
    expect(await seen()).toBe(first);
    clock.advance(30_000);
    await sessions.get(s.id);
    expect(await seen()).toBe(String(clock.nowMs()));
  });

  it('refuses inconsistent timeouts and bad cookie names at construction', () => {
    expect(() => make({ idleTimeoutMs: ABS + 1 })).toThrow(TypeError);
    expect(() => make({ cookieName: 'a;b' })).toThrow(TypeError);
  });

  describe('express integration', () => {
    function app(s: SessionManager) {
      const a = express();
      a.post('/login', async (_req: Request, res: Response) => {
        const session = await s.create(user);
        s.setCookie(res, session);
        res.json({ ok: true });
      });
      a.get('/me', s.middleware(), s.requireSession(), (req: Request, res: Response) => void res.json(getSession(req)?.user));
      a.get('/auditors', s.middleware(), s.requireSession(['auditor']), (_req: Request, res: Response) => void res.json({}));
      a.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
        res.status(isAppError(err) ? err.status : 500).json({ code: isAppError(err) ? err.code : 'INTERNAL' });
      });
      return a;
    }

    it('sets HttpOnly; SameSite=Lax; Path=/; and Secure only when configured', async () => {
      const secure = await request(app(sessions)).post('/login');
      expect(secure.headers['set-cookie']?.[0]).toMatch(/^devicegate_session=[A-Za-z0-9_-]{43}; Max-Age=28800; Path=\/; Expires=.*; HttpOnly; Secure; SameSite=Lax$/);
      const plain = await request(app(make({ cookieSecure: false }))).post('/login');
      expect(plain.headers['set-cookie']?.[0]).not.toMatch(/Secure/);
    });

    it('answers 401 without a session and clears a stale cookie', async () => {
      const none = await request(app(sessions)).get('/me');
      expect([none.status, none.body.code]).toEqual([401, 'SESSION_REQUIRED']);
      const stale = await request(app(sessions)).get('/me').set('Cookie', `devicegate_session=${'A'.repeat(43)}`);
      expect(stale.status).toBe(401);
      expect(stale.headers['set-cookie']?.[0]).toMatch(/^devicegate_session=; .*Expires=Thu, 01 Jan 1970/);
    });

    it('loads the session from the cookie and enforces roles (403 for a role it lacks)', async () => {
      const login = await request(app(sessions)).post('/login');
      const cookie = (login.headers['set-cookie']?.[0] as string).split(';')[0] as string;
      const me = await request(app(sessions)).get('/me').set('Cookie', `other=1; ${cookie}`);
      expect([me.status, me.body.nameId]).toEqual([200, user.nameId]);
      const denied = await request(app(sessions)).get('/auditors').set('Cookie', cookie);
      expect([denied.status, denied.body.code]).toEqual([403, 'ROLE_REQUIRED']);
    });
  });

  it('parses cookies: first occurrence wins, quotes and encoding handled, garbage ignored', () => {
    expect(readCookie('a=1; devicegate_session=abc; devicegate_session=def', 'devicegate_session')).toBe('abc');
    expect(readCookie('devicegate_session="q"', 'devicegate_session')).toBe('q');
    expect(readCookie('devicegate_session=%E0%A4%A', 'devicegate_session')).toBeNull();
    expect(readCookie('xdevicegate_session=1', 'devicegate_session')).toBeNull();
    expect(readCookie(undefined, 'devicegate_session')).toBeNull();
  });
});
