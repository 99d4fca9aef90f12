import { randomUUID } from 'node:crypto';
import { openRedisStore } from '../../src/store/redis';
import type { Store } from '../../src/store/types';
import { redisServer, startRedisServer, type RedisServerHandle } from '../helpers/redis-server';
import { describeWith } from '../helpers/requirements';
import { runStoreConformance } from './store.suite';

describeWith([redisServer], 'redis back-end (real redis-server)', () => {
  let server: RedisServerHandle;

  beforeAll(async () => {
    server = await startRedisServer();
  });

  afterAll(async () => {
    await server?.cleanup();
  });

  runStoreConformance('redis', async () => {
    // A fresh key prefix per test isolates tests on one server, as separate deployments sharing a Redis would be.
    const keyPrefix = `t${randomUUID().slice(0, 8)}`;
    const open = (): Promise<Store> =>
      openRedisStore({ url: server.url, keyPrefix, commandTimeoutMs: 5000, connectTimeoutMs: 2000 });
    const store = await open();
    const others: Store[] = [];
    return {
      store,
      async openSecond() {
        const s = await open();
        others.push(s);
        return s;
      },
      async cleanup() {
        await store.close();
        for (const o of others) await o.close();
      },
    };
  });
});

describeWith([redisServer], 'redis back-end availability (real redis-server)', () => {
  it('refuses to open when Redis is unreachable, with a typed error', async () => {
    const server = await startRedisServer();
    const url = server.url;
    await server.cleanup();
    await expect(
      openRedisStore({ url, keyPrefix: 'x', commandTimeoutMs: 500, connectTimeoutMs: 500 }),
    ).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('fails operations fast with STORE_UNAVAILABLE during an outage and recovers when Redis returns', async () => {
    const server = await startRedisServer();
    const store = await openRedisStore({ url: server.url, keyPrefix: 'outage', commandTimeoutMs: 1000, connectTimeoutMs: 500 });
    try {
      await store.nonces.put('k', 'v', 60_000, Date.now());
      await server.stop();
      await expect(store.nonces.get('k', Date.now())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await expect(store.audit.head()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect((await store.ping()).ok).toBe(false);
      await server.start();
      const deadline = Date.now() + 10_000;
      while (!(await store.ping()).ok && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await store.ping()).ok).toBe(true);
      // AOF kept the data across the restart.
      expect(await store.nonces.get('k', Date.now())).toBe('v');
    } finally {
      await store.close();
      await server.cleanup();
    }
  });

  it('warns at start-up when Redis persistence (AOF) is off', async () => {
    const noAof = await startRedisServer({ appendonly: false });
    const withAof = await startRedisServer();
    const a = await openRedisStore({ url: noAof.url, keyPrefix: 'w', commandTimeoutMs: 1000, connectTimeoutMs: 500 });
    const b = await openRedisStore({ url: withAof.url, keyPrefix: 'w', commandTimeoutMs: 1000, connectTimeoutMs: 500 });
    try {
      expect((await a.startupWarnings()).join(' ')).toMatch(/AOF\) is off/);
      expect(await b.startupWarnings()).toEqual([]);
    } finally {
      await a.close();
      await b.close();
      await noAof.cleanup();
      await withAof.cleanup();
    }
  });
});
