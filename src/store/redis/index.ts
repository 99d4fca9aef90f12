import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors';
import type { Store, StoreEvents, StoreHealth } from '../types';
import { RedisAuditStore } from './audit';
import type { RedisClient } from './client';
import { RedisApiTokenStore, RedisEnrollmentTokenStore } from './credentials';
import { RedisDeviceStore } from './devices';
import { RedisNonceStore, RedisRateLimitStore } from './ephemeral';
import { RedisKeys } from './keys';
import { RedisCertificateStore, RedisRevocationStore } from './pki';

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port/db` or `rediss://…`; ignored when `sentinel` or `cluster` is set. */
  readonly url?: string | undefined;
  /** Sentinel deployment: the master group name and the sentinels to ask. */
  readonly sentinel?: { readonly name: string; readonly sentinels: readonly { host: string; port: number }[] } | undefined;
  /** Cluster deployment: seed nodes. */
  readonly cluster?: { readonly nodes: readonly { host: string; port: number }[] } | undefined;
  readonly password?: string | undefined;
  /** Prefix of every key; several deployments can share one Redis. */
  readonly keyPrefix: string;
  /** Per-command deadline; a slow Redis becomes "unavailable" (fail closed) instead of a hung decision. */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/**
 * The shared back-end for several gateway instances. Commands are not queued while disconnected
 * (`enableOfflineQueue: false`) and time out after `commandTimeoutMs`, so an outage surfaces at once as
 * StoreUnavailableError: decisions deny, the audit log spools, `/readyz` turns 503. The client keeps reconnecting in
 * the background and the store recovers by itself.
 */
export async function openRedisStore(options: RedisStoreOptions): Promise<Store> {
  // No retries until the first connection succeeds: an unreachable Redis at start-up is a start-up error.
  let connectedOnce = false;
  const base: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    retryStrategy: (times) => (connectedOnce ? Math.min(50 * times, 1000) : null),
    password: options.password,
  };
  const make = (): RedisClient => {
    if (options.cluster) {
      return new Cluster(
        options.cluster.nodes.map((n) => ({ ...n })),
        { redisOptions: base, enableOfflineQueue: false, lazyConnect: true },
      );
    }
    if (options.sentinel) {
      return new Redis({ ...base, name: options.sentinel.name, sentinels: options.sentinel.sentinels.map((s) => ({ ...s })) });
    }
    return new Redis(options.url ?? 'redis://127.0.0.1:6379', base);
  };

  const client = make();
  // ioredis reports connection errors on this event too; the store reports them through typed errors instead.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    connectedOnce = true;
  } catch (cause) {
    client.disconnect();
    throw new StoreUnavailableError(`redis (${describe(options)})`, { cause });
  }

  const keys = new RedisKeys(options.keyPrefix);
  let subscriber: RedisClient | null = null;
  const handlers = new Map<string, Set<(message: string) => void>>();

  const events: StoreEvents = {
    async publish(topic, message) {
      try {
        await client.publish(keys.channel(topic), message);
      } catch (cause) {
        throw new StoreUnavailableError('redis', { cause });
      }
    },
    async subscribe(topic, handler) {
      if (!subscriber) {
        // Subscribing puts a connection into subscriber mode, so notifications get their own connection, which
        // queues commands while reconnecting so subscriptions are restored after an outage.
        const sub = options.cluster || options.sentinel ? make() : new Redis(options.url ?? 'redis://127.0.0.1:6379', { ...base, enableOfflineQueue: true });
        sub.on('error', () => undefined);
        sub.on('message', (channel: string, message: string) => {
          for (const h of handlers.get(channel) ?? []) h(message);
        });
        if (sub.status === 'wait') await sub.connect();
        subscriber = sub;
      }
      const channel = keys.channel(topic);
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await subscriber.subscribe(channel);
      }
      set.add(handler);
      return async () => {
        const current = handlers.get(channel);
        current?.delete(handler);
        if (current && current.size === 0) {
          handlers.delete(channel);
          await subscriber?.unsubscribe(channel).catch(() => undefined);
        }
      };
    },
  };

  let closed = false;
  return {
    backend: 'redis',
    devices: new RedisDeviceStore(client, keys),
    enrollmentTokens: new RedisEnrollmentTokenStore(client, keys),
    certificates: new RedisCertificateStore(client, keys),
    revocations: new RedisRevocationStore(client, keys),
    nonces: new RedisNonceStore(client, keys),
    audit: new RedisAuditStore(client, keys),
    apiTokens: new RedisApiTokenStore(client, keys),
    rateLimits: new RedisRateLimitStore(client, keys),
    events,
    async ping(): Promise<StoreHealth> {
      if (closed) return { ok: false, backend: 'redis', detail: 'closed' };
      try {
        await client.ping();
        return { ok: true, backend: 'redis' };
      } catch (e) {
        return { ok: false, backend: 'redis', detail: (e as Error).message };
      }
    },
    async startupWarnings(): Promise<string[]> {
      const warnings: string[] = [];
      try {
        const node = client instanceof Cluster ? client.nodes('master')[0] : client;
        const reply = (await node?.config('GET', 'appendonly'));
        if (reply && reply[1] !== 'yes') {
          warnings.push(
            'Redis persistence (AOF) is off: a Redis restart loses devices, revocations and audit entries. Set `appendonly yes` (and `appendfsync everysec` or `always`).',
          );
        }
      } catch {
        warnings.push('Could not read the Redis persistence setting (CONFIG GET appendonly refused); make sure AOF is on.');
      }
      return warnings;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      handlers.clear();
      subscriber?.disconnect();
      await client.quit().catch(() => client.disconnect());
    },
  };
}

function describe(o: RedisStoreOptions): string {
  if (o.cluster) return `cluster ${o.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (o.sentinel) return `sentinel ${o.sentinel.name}`;
  // Never print credentials from the URL.
  try {
    const u = new URL(o.url ?? 'redis://127.0.0.1:6379');
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return 'invalid URL';
  }
}
