/**
 * API token verification over a real SQLite store, with the verification caches in play: a token that verified is
 * recognised by its text for a few seconds, so every way a token stops being valid must still win over the cache.
 */
import { ApiTokenService, type TokenAuditRecorder } from '../../../src/auth/api-tokens';
import type { Principal } from '../../../src/auth/permissions';
import { ManualClock } from '../../../src/lib/clock';
import { openSqliteStore } from '../../../src/store/sqlite';
import type { Store } from '../../../src/store/types';

const admin: Principal = { kind: 'session', id: 'it@stadt.example', name: 'it', roles: ['it-admin'] };
const audit: TokenAuditRecorder = { created: async () => undefined, revoked: async () => undefined };

describe('ApiTokenService.verify with its caches (real SQLite)', () => {
  let store: Store;
  let clock: ManualClock;
  let tokens: ApiTokenService;

  beforeEach(() => {
    store = openSqliteStore({ path: ':memory:' });
    clock = new ManualClock();
    tokens = new ApiTokenService(store.apiTokens, clock, audit, 5000);
  });
  afterEach(async () => store.close());

  const refused = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ code: 'INVALID_TOKEN' });

  it('accepts a valid token repeatedly and names its principal', async () => {
    const { token } = await tokens.create({ name: 'ovpn-gw-01', role: 'concentrator' }, admin);
    for (let i = 0; i < 3; i++) expect(await tokens.verify(token)).toMatchObject({ kind: 'api-token', name: 'ovpn-gw-01', roles: ['concentrator'] });
  });

  it('refuses a revoked token at once on the instance that revoked it, although it was cached (revoked token replay)', async () => {
    const { token, record } = await tokens.create({ name: 'gw', role: 'concentrator' }, admin);
    await tokens.verify(token);
    await tokens.revoke(record.id, admin);
    await refused(tokens.verify(token));
  });

  it('refuses a token revoked through another instance once the cache ttl has passed (multi-instance revocation)', async () => {
    const { token, record } = await tokens.create({ name: 'gw', role: 'concentrator' }, admin);
    await tokens.verify(token);
    await new ApiTokenService(store.apiTokens, clock, audit, 5000).revoke(record.id, admin);
    clock.advance(5001);
    await refused(tokens.verify(token));
  });

  it('refuses a cached token after its expiry (expired token)', async () => {
    const { token } = await tokens.create({ name: 'gw', role: 'concentrator', ttlDays: 1 }, admin);
    clock.advance(86_400_000 - 1000);
    await tokens.verify(token);
    clock.advance(1000);
    await refused(tokens.verify(token));
  });

  it('refuses a guessed secret for a known token id while the real token is cached (secret guessing)', async () => {
    const { token } = await tokens.create({ name: 'gw', role: 'concentrator' }, admin);
    await tokens.verify(token);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    await refused(tokens.verify(`${token.slice(0, -1)}${last}`));
    await refused(tokens.verify(`${token}x`));
    await refused(tokens.verify(token.toUpperCase()));
  });
});
