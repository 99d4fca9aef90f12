/**
 * Replays the committed, attack-named SAML responses in test/fixtures/saml at their frozen generation time
 * through the production router and strategy (SQLite store). Unlike the live round-trip suites, these bytes never
 * change, so a regression in node-saml or in our checks shows up against known inputs.
 *
 * Regenerate (new keys, new time): REGENERATE_SAML_FIXTURES=1 npx jest test/integration/saml/fixtures.test.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { isAppError } from '../../../src/domain/errors';
import { ManualClock } from '../../../src/lib/clock';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { Store } from '../../../src/store/types';
import { parseIdpMetadata } from '../../../src/auth/saml/idp-metadata';
import { createSamlServiceProvider } from '../../../src/auth/saml/service-provider';
import { createSamlRouter } from '../../../src/auth/saml/routes';
import { StoreCacheProvider } from '../../../src/auth/saml/cache-provider';
import { SessionManager, getSession } from '../../../src/auth/session';
import { FIXTURE_GROUPS, generateSamlFixtures, type FixtureManifest } from '../../fixtures/saml/generate';

const FIXTURES = path.resolve(__dirname, '../../fixtures/saml');
const REQUEST_TTL = 600_000;

describe('SAML fixtures (frozen responses, attack-named) against the production ACS', () => {
  let manifest: FixtureManifest;
  let store: Store;
  let dir: string;
  let app: express.Express;
  let clock: ManualClock;

  beforeAll(async () => {
    if (process.env.REGENERATE_SAML_FIXTURES === '1') await generateSamlFixtures(FIXTURES);
    manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as FixtureManifest;
    // node-saml reads the wall clock (new Date()); freeze only Date so the fixtures are "now" again. Timers, ticks
    // and I/O keep running normally.
    jest.useFakeTimers({
      now: manifest.now,
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'requestAnimationFrame',
        'cancelAnimationFrame',
        'requestIdleCallback',
        'cancelIdleCallback',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
    clock = new ManualClock(manifest.now);
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-samlfix-'));
    store = openSqliteStore({ path: path.join(dir, 'store.db'), synchronous: 'NORMAL' });
    const sp = createSamlServiceProvider({
      entityId: manifest.sp.entityId,
      acsUrl: manifest.sp.acsUrl,
      idp: parseIdpMetadata(readFileSync(path.join(FIXTURES, 'idp-metadata.xml'), 'utf8'), { now: manifest.now }),
      wantAuthnResponseSigned: false,
      clockSkewMs: 60_000,
      maxAssertionAgeMs: 600_000,
      requestIdTtlMs: REQUEST_TTL,
      attributes: { groups: manifest.groupAttribute, displayName: 'displayName', email: 'email' },
      roleMapping: { 'it-admin': [FIXTURE_GROUPS['it-admin']], auditor: [FIXTURE_GROUPS.auditor], viewer: [FIXTURE_GROUPS.viewer] },
      store: store.nonces,
      clock,
    });
    const sessions = new SessionManager({
      store: store.nonces,
      clock,
      idleTimeoutMs: 1800_000,
      absoluteTimeoutMs: 28_800_000,
      cookieName: 'devicegate_session',
      cookieSecure: true,
    });
    // What GET /saml/login does for each request: record the issued id in the store-backed cache.
    const cache = new StoreCacheProvider({ store: store.nonces, clock, ttlMs: REQUEST_TTL });
    for (const c of manifest.cases) if (c.seed) await cache.saveAsync(c.requestId, new Date(manifest.now).toISOString());

    app = express();
    app.use(createSamlRouter({ sp, sessions }));
    app.get('/whoami', sessions.middleware(), sessions.requireSession(), (req: Request, res: Response) => void res.json(getSession(req)?.user));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(isAppError(err) ? err.status : 500).json({ code: isAppError(err) ? err.code : 'INTERNAL' });
    });
  });

  afterAll(async () => {
    jest.useRealTimers();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const post = (file: string) =>
    request(app)
      .post('/saml/acs')
      .type('form')
      .send({ SAMLResponse: readFileSync(path.join(FIXTURES, file)).toString('base64') });

  it('has a manifest naming every fixture file, each attack-named and with an expectation', () => {
    expect(manifest.cases.length).toBeGreaterThanOrEqual(20);
    expect(manifest.cases.filter((c) => c.expect.status === 303)).toHaveLength(4);
    for (const c of manifest.cases) expect(c.file).toMatch(/^(valid|invalid)\/[a-z0-9-]+\.xml$/);
  });

  it('accepts each valid fixture once with the expected roles, then rejects its replay', async () => {
    for (const c of manifest.cases.filter((x) => x.expect.status === 303)) {
      const res = await post(c.file);
      expect([c.file, res.status]).toEqual([c.file, 303]);
      const cookie = (res.headers['set-cookie'] as unknown as string[])[0]?.split(';')[0] as string;
      const who = await request(app).get('/whoami').set('Cookie', cookie);
      expect([c.file, who.body.roles]).toEqual([c.file, 'roles' in c.expect ? c.expect.roles : null]);
      const replay = await post(c.file);
      expect([c.file, replay.status, replay.body.code]).toEqual([c.file, 401, 'SAML_UNKNOWN_REQUEST']);
    }
  });

  it('rejects every invalid fixture with the code of the check named in its file name', async () => {
    const outcomes: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const c of manifest.cases.filter((x) => x.expect.status !== 303)) {
      const res = await post(c.file);
      outcomes[c.file] = `${res.status} ${res.body.code}`;
      expected[c.file] = `${c.expect.status} ${'code' in c.expect ? c.expect.code : ''}`;
      expect(res.headers['set-cookie'] ?? []).toEqual([]);
    }
    expect(outcomes).toEqual(expected);
  });
});
