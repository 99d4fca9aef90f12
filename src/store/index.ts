import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema';
import { openRedisStore } from './redis';
import { openSqliteStore } from './sqlite';
import type { Store } from './types';

/** The only place that picks a back-end from configuration. */
export async function openStore(config: Config): Promise<Store> {
  if (config.store.backend === 'redis') {
    const r = config.store.redis;
    return openRedisStore({
      url: r.url,
      password: r.passwordFile ? readFileSync(r.passwordFile, 'utf8').trim() : undefined,
      keyPrefix: r.keyPrefix,
      commandTimeoutMs: r.commandTimeoutMs,
      connectTimeoutMs: r.connectTimeoutMs,
      sentinel: r.sentinel ? { name: r.sentinel.name, sentinels: r.sentinel.sentinels.map((s) => ({ ...s })) } : undefined,
      cluster: r.cluster ? { nodes: r.cluster.nodes.map((n) => ({ ...n })) } : undefined,
    });
  }
  return openSqliteStore({
    path: config.sqlitePath,
    synchronous: config.store.sqlite.synchronous,
    busyTimeoutMs: config.store.sqlite.busyTimeoutMs,
  });
}

export type { Store } from './types';
