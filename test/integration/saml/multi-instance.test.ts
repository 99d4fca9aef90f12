/**
 * Two gateway instances sharing one store (two SQLite connections to one file, as two processes would; Redis works
 * the same through the NonceStore interface): the login request cache, one-time use and sessions must be shared.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ACS_URL, createSamlHarness, GROUPS, SP_ENTITY_ID, sessionCookie, type SamlHarness } from './harness';
import { TestIdp, type TestUser } from '../../helpers/test-idp';
import { samlConfigSchema } from '../../../src/config/sections/saml';
import { loadSamlServiceProvider } from '../../../src/auth/saml/service-provider';
import { systemClock } from '../../../src/lib/clock';
import { openSqliteStore } from '../../../src/store/sqlite';

const alice: TestUser = { nameId: 'alice@stadt.test', groups: [GROUPS.itAdmin] };

describe('SAML across gateway instances sharing one store', () => {
  let a: SamlHarness;
  let b: SamlHarness;
  beforeAll(async () => {
    a = await createSamlHarness({ idp: await TestIdp.create() });
    b = await createSamlHarness({ idp: a.idp, storePath: a.storePath });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('finishes on instance B a login started on instance A, and the session works on both', async () => {
    const req = await a.startLogin('/audit', { readByIdp: false });
    const response = await a.idp.loginResponse({ sp: { entityId: SP_ENTITY_ID, acsUrl: ACS_URL }, inResponseTo: req.id, user: alice });
    const res = await b.postResponse(response, { relayState: req.relayState ?? '/' });
    expect([res.status, res.headers.location]).toEqual([303, '/audit']);
    const cookie = sessionCookie(res) as string;
    expect((await request(a.app).get('/whoami').set('Cookie', cookie)).body.user.nameId).toBe(alice.nameId);
    expect((await request(b.app).get('/whoami').set('Cookie', cookie)).status).toBe(200);
  });

  it('rejects on instance A a response already used on instance B (replay across instances)', async () => {
    const req = await a.startLogin(undefined, { readByIdp: false });
    const response = await a.idp.loginResponse({ sp: { entityId: SP_ENTITY_ID, acsUrl: ACS_URL }, inResponseTo: req.id, user: alice });
    expect((await b.postResponse(response)).status).toBe(303);
    const replay = await a.postResponse(response);
    expect([replay.status, replay.body.code]).toEqual([401, 'SAML_UNKNOWN_REQUEST']);
  });

  it('lets exactly one instance win when the same response hits both at once', async () => {
    const req = await a.startLogin(undefined, { readByIdp: false });
    const response = await a.idp.loginResponse({ sp: { entityId: SP_ENTITY_ID, acsUrl: ACS_URL }, inResponseTo: req.id, user: alice });
    const results = await Promise.all([a, b, a, b].map((x) => x.postResponse(response)));
    expect(results.map((r) => r.status).sort()).toEqual([303, 401, 401, 401]);
  });

  it('ends a session everywhere when the user logs out on one instance', async () => {
    const req = await a.startLogin(undefined, { readByIdp: false });
    const response = await a.idp.loginResponse({ sp: { entityId: SP_ENTITY_ID, acsUrl: ACS_URL }, inResponseTo: req.id, user: alice });
    const cookie = sessionCookie(await a.postResponse(response)) as string;
    const csrf = (await request(a.app).get('/whoami').set('Cookie', cookie)).body.csrfToken as string;
    expect((await request(b.app).post('/saml/logout').set('Cookie', cookie).type('form').send({ _csrf: csrf })).status).toBe(303);
    expect((await request(a.app).get('/whoami').set('Cookie', cookie)).status).toBe(401);
  });
});

describe('loadSamlServiceProvider from config (key files, IdP metadata URL on loopback)', () => {
  let dir: string;
  let server: http.Server;
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await TestIdp.create({ wantAuthnRequestsSigned: true });
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-samlcfg-'));
    server = http.createServer((_req, res) => void res.writeHead(200).end(idp.metadataXml()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds an SP whose metadata and hardened strategy options follow the config', async () => {
    const keyFile = path.join(dir, 'sp.key');
    const certFile = path.join(dir, 'sp.crt');
    writeFileSync(keyFile, idp.keyPair.keyPem);
    writeFileSync(certFile, idp.keyPair.certPem);
    const config = samlConfigSchema.parse({
      enabled: true,
      sp: { signingKeyFile: keyFile, signingCertFile: certFile },
      idp: { metadataUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/md`, entityId: idp.entityId },
      clockSkewSeconds: 30,
      roleMapping: { auditor: ['GG-Auditors'] },
    });
    const store = openSqliteStore({ path: path.join(dir, 'store.db'), synchronous: 'NORMAL' });
    try {
      const { sp, warnings } = await loadSamlServiceProvider(config, { publicUrl: 'https://gw.stadt.test', store: store.nonces, clock: systemClock });
      expect(warnings).toEqual([]);
      expect(sp.entityId).toBe('https://gw.stadt.test/saml/metadata');
      expect(sp.acsUrl).toBe('https://gw.stadt.test/saml/acs');
      expect(sp.idp.entityId).toBe(idp.entityId);
      expect(sp.metadataXml()).toContain('AuthnRequestsSigned="true"');
      const opts = sp.strategy._saml?.options;
      expect(opts).toMatchObject({
        wantAssertionsSigned: true,
        signatureAlgorithm: 'sha256',
        validateInResponseTo: 'always',
        acceptedClockSkewMs: 30_000,
        maxAssertionAgeMs: 600_000,
        audience: 'https://gw.stadt.test/saml/metadata',
      });
    } finally {
      await store.close();
    }
  });

  it('refuses a disabled section and reports a missing key file as unavailable', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    try {
      await expect(
        loadSamlServiceProvider(samlConfigSchema.parse({}), { publicUrl: 'https://gw', store: store.nonces, clock: systemClock }),
      ).rejects.toMatchObject({ code: 'SAML_DISABLED' });
      const mdFile = path.join(dir, 'idp.xml');
      writeFileSync(mdFile, idp.metadataXml());
      const config = samlConfigSchema.parse({
        enabled: true,
        sp: { signingKeyFile: path.join(dir, 'missing.key'), signingCertFile: path.join(dir, 'missing.crt') },
        idp: { metadataFile: mdFile },
        roleMapping: { viewer: ['v'] },
      });
      await expect(
        loadSamlServiceProvider(config, { publicUrl: 'https://gw', store: store.nonces, clock: systemClock }),
      ).rejects.toMatchObject({ kind: 'unavailable', code: 'SAML_KEY_UNAVAILABLE' });
    } finally {
      await store.close();
    }
  });
});
