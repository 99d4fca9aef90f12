import type { ApiToken, EnrollmentToken } from '../../domain/types';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../errors';
import type { ApiTokenStore, EnrollmentTokenStore } from '../types';
import { guarded, LuaScript, type RedisClient } from './client';
import { padded, type RedisKeys } from './keys';
import { API_TOKEN_CREATE, API_TOKEN_REVOKE, TOKEN_SPEND } from './scripts';

const spendScript = new LuaScript(TOKEN_SPEND);
const createApiToken = new LuaScript(API_TOKEN_CREATE);
const revokeApiToken = new LuaScript(API_TOKEN_REVOKE);

/** Spent and expired enrollment tokens stay readable this long (for "already used" answers and audits). */
const TOKEN_RETENTION_MS = 30 * 86_400_000;

export class RedisEnrollmentTokenStore implements EnrollmentTokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  create(t: EnrollmentToken): Promise<void> {
    return guarded(async () => {
      // The Redis TTL only garbage-collects; expiry is judged against the caller's clock, hence relative to createdAt.
      const ttl = Math.max(1, t.expiresAt - t.createdAt) + TOKEN_RETENTION_MS;
      const ok = await this.redis.set(this.keys.enrollmentToken(t.tokenHash), JSON.stringify(t), 'PX', ttl, 'NX');
      if (ok !== 'OK') throw new AlreadyExistsError('enrollment token');
    });
  }

  get(tokenHash: string): Promise<EnrollmentToken | null> {
    return guarded(async () => {
      const json = await this.redis.get(this.keys.enrollmentToken(tokenHash));
      return json ? (JSON.parse(json) as EnrollmentToken) : null;
    });
  }

  spend(tokenHash: string, deviceId: string, now: number): Promise<EnrollmentToken> {
    return guarded(async () => {
      const r = await spendScript.run(this.redis, [this.keys.enrollmentToken(tokenHash)], [deviceId, now]);
      if (r === 'NOTFOUND') throw new NotFoundError('enrollment token');
      if (r === 'CONFLICT') throw new ConflictError('enrollment token (spent, expired or bound to another device)');
      return JSON.parse(r as string) as EnrollmentToken;
    });
  }
}

export class RedisApiTokenStore implements ApiTokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  create(t: ApiToken): Promise<void> {
    return guarded(async () => {
      const r = await createApiToken.run(
        this.redis,
        [this.keys.apiToken(t.id), this.keys.apiTokenNames(), this.keys.apiTokenOrder()],
        [JSON.stringify(t), t.name, t.id, `${padded(t.createdAt)}:${t.id}`],
      );
      if (r === 'EXISTS') throw new AlreadyExistsError(`API token ${t.name}`);
    });
  }

  get(id: string): Promise<ApiToken | null> {
    return guarded(async () => {
      const json = await this.redis.get(this.keys.apiToken(id));
      return json ? (JSON.parse(json) as ApiToken) : null;
    });
  }

  list(): Promise<ApiToken[]> {
    return guarded(async () => {
      const members = await this.redis.zrange(this.keys.apiTokenOrder(), '0', '-1');
      if (members.length === 0) return [];
      const jsons = await this.redis.mget(...members.map((m) => this.keys.apiToken(m.slice(m.indexOf(':') + 1))));
      return jsons.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as ApiToken);
    });
  }

  revoke(id: string, now: number): Promise<void> {
    return guarded(async () => {
      const r = await revokeApiToken.run(this.redis, [this.keys.apiToken(id)], [now]);
      if (r === 'NOTFOUND') throw new NotFoundError(`API token ${id}`);
    });
  }
}
