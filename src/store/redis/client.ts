import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { AppError } from '../../domain/errors';
import { StoreUnavailableError } from '../errors';

export type RedisClient = Redis | Cluster;

/** A Lua script run with EVALSHA, falling back to EVAL once when the server has not cached it yet. */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('NOSCRIPT')) {
        return client.eval(this.source, keys.length, ...keys, ...args);
      }
      throw e;
    }
  }
}

/**
 * Runs a Redis operation and turns transport failures (connection refused, timeouts, a closed client) into
 * StoreUnavailableError, so callers fail closed and the audit log can spool. Domain outcomes never arrive as Redis
 * errors (scripts return status strings); typed errors raised by our own code pass through unchanged, and server
 * error replies (`ERR`, `WRONGTYPE`) are bugs, not outages, so they pass through too.
 */
export async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof AppError) throw e;
    if (e instanceof Error && /^(ERR|WRONGTYPE|NOSCRIPT)/.test(e.message)) throw e;
    throw new StoreUnavailableError('redis', { cause: e });
  }
}
