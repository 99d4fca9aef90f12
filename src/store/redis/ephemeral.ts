import { AlreadyExistsError } from '../errors';
import type { NonceStore, RateLimitStore } from '../types';
import { guarded, LuaScript, type RedisClient } from './client';
import type { RedisKeys } from './keys';
import { NONCE_CONSUME, NONCE_PUT, RATE_HIT } from './scripts';

const putScript = new LuaScript(NONCE_PUT);
const consumeScript = new LuaScript(NONCE_CONSUME);
const hitScript = new LuaScript(RATE_HIT);

/**
 * Redis' own expiry only garbage-collects (with a margin); liveness is judged against the caller's clock, stored
 * with the value, so fake clocks work and all instances agree with their own clocks.
 */
const GC_MARGIN_MS = 60_000;

interface Stored {
  v: string;
  e: number;
}

export class RedisNonceStore implements NonceStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  put(key: string, value: string, ttlMs: number, now: number, options: { overwrite?: boolean } = {}): Promise<void> {
    return guarded(async () => {
      const stored: Stored = { v: value, e: now + ttlMs };
      const r = await putScript.run(
        this.redis,
        [this.keys.nonce(key)],
        [JSON.stringify(stored), Math.max(1, ttlMs) + GC_MARGIN_MS, now, options.overwrite ? '1' : '0'],
      );
      if (r === 'EXISTS') throw new AlreadyExistsError(`nonce ${key}`);
    });
  }

  get(key: string, now: number): Promise<string | null> {
    return guarded(async () => {
      const json = await this.redis.get(this.keys.nonce(key));
      if (!json) return null;
      const s = JSON.parse(json) as Stored;
      return s.e > now ? s.v : null;
    });
  }

  consume(key: string, now: number): Promise<string | null> {
    return guarded(async () => {
      const json = (await consumeScript.run(this.redis, [this.keys.nonce(key)], [])) as string | null;
      if (!json) return null;
      const s = JSON.parse(json) as Stored;
      return s.e > now ? s.v : null;
    });
  }

  delete(key: string): Promise<void> {
    return guarded(async () => {
      await this.redis.del(this.keys.nonce(key));
    });
  }
}

export class RedisRateLimitStore implements RateLimitStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  hit(key: string, windowMs: number, now: number): Promise<number> {
    return guarded(async () => {
      const windowStart = now - (now % windowMs);
      return Number(await hitScript.run(this.redis, [this.keys.rateLimit(key, windowStart)], [windowMs * 2]));
    });
  }
}
