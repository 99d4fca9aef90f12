/**
 * Crash safety of "durable before allow": the real gateway process answers decisions under load and is killed with
 * SIGKILL (SQLite), or its Redis is stopped and restarted mid-run. Every decision whose allow reached a client must
 * be in the audit log afterwards, the chain must verify, and no event may be stored twice.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditPublicKeys } from '../../../src/audit/signing';
import { verifyRange } from '../../../src/audit/verify';
import { loadConfig } from '../../../src/config/load';
import { systemClock } from '../../../src/lib/clock';
import { createLogger } from '../../../src/lib/logger';
import { createMetrics } from '../../../src/metrics/registry';
import { buildServices } from '../../../src/services';
import { cliPrincipal } from '../../../src/services/actors';
import { openStore } from '../../../src/store';
import type { Store } from '../../../src/store/types';
import { ROOT } from '../../helpers/build-app';
import { startGateway, type GatewayProcess } from '../../helpers/gateway-process';
import { freePort } from '../../helpers/ports';
import { redisServer, startRedisServer, type RedisServerHandle } from '../../helpers/redis-server';
import { describeWith } from '../../helpers/requirements';

interface Prepared {
  token: string;
  allowSha: string;
}

/** Creates, through the real services, a concentrator token and one enrolled device with a certificate. */
async function prepare(env: Record<string, string>): Promise<Prepared> {
  const config = loadConfig({ env, rootDir: ROOT, cwd: ROOT });
  const store = await openStore(config);
  const services = await buildServices({ config, store, clock: systemClock, logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }), env });
  const { token } = await services.apiTokens.create({ name: 'ovpn-crash', role: 'concentrator' }, cliPrincipal());
  const device = await services.registry.register({ serial_number: 'CRASH-1', platform: 'linux' }, cliPrincipal());
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const cert = await services.pki.issue({ deviceId: device.id, spki, via: 'manual' });
  // What a completed TPM enrollment leaves behind (the enrollment flow itself is tested elsewhere).
  await store.devices.update(device.id, { status: 'active', attestationKey: 'crash-test', updatedAt: Date.now() });
  await services.close();
  await store.close();
  return { token, allowSha: cert.sha256 };
}

/** Fires decisions from `workers` loops until `stop()`; records the decision ids of every allow that came back. */
function load(url: string, prepared: Prepared, workers = 12) {
  const allowed: string[] = [];
  let errors = 0;
  let running = true;
  let n = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const allow = n++ % 4 !== 3;
      const body = {
        gateway: { id: 'ovpn-crash', kind: 'openvpn', hook: 'mgmt-connect' },
        event: 'connect',
        cert: { sha256: allow ? prepared.allowSha : 'ab'.repeat(32) },
      };
      try {
        const res = await fetch(`${url}/v1/decisions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${prepared.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(5000),
        });
        const json = (await res.json()) as { decision?: string; decision_id?: string };
        if (json.decision === 'allow' && json.decision_id) allowed.push(json.decision_id);
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    allowed,
    errors: () => errors,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function decisionIdsIn(store: Store): Promise<{ ids: string[]; eventIds: string[] }> {
  const ids: string[] = [];
  const eventIds: string[] = [];
  const first = (await store.audit.firstSeq()) ?? 1;
  const head = (await store.audit.head())?.seq ?? 0;
  for (let from = first; from <= head; from += 1000) {
    for (const e of await store.audit.range(from, Math.min(head, from + 999), 1000)) {
      eventIds.push(e.eventId);
      if (e.type === 'vpn.decision') ids.push((JSON.parse(e.body) as { data: { decisionId: string } }).data.decisionId);
    }
  }
  return { ids, eventIds };
}

async function verifyChain(store: Store, dataDir: string) {
  const pub = readFileSync(path.join(dataDir, 'audit-signing-key.pub.pem'), 'utf8');
  return verifyRange(store.audit, undefined, undefined, { keys: new AuditPublicKeys([pub]) });
}

describe('crash safety: SIGKILL of the gateway while it answers decisions (SQLite)', () => {
  let dataDir: string;
  let gw: GatewayProcess | null = null;
  afterEach(async () => {
    await gw?.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every allow that reached a client in the log, and the chain verifies after restart', async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'dg-crash-'));
    const env = { DEVICEGATE_DATA_DIR: dataDir, DEVICEGATE_CA__DEV_DIR: path.join(dataDir, 'ca'), DEVICEGATE_LOG__LEVEL: 'warn' };
    const prepared = await prepare(env);
    const port = await freePort();
    gw = await startGateway({ ...env, PORT: String(port) });
    const l = load(gw.url, prepared);
    await new Promise((r) => setTimeout(r, 2500));
    await gw.stop('SIGKILL'); // mid-flight: requests are being answered right now
    await l.stop();
    expect(l.allowed.length).toBeGreaterThan(20);

    // Restart: the log recovers (WAL, spool replay) and the process serves again.
    gw = await startGateway({ ...env, PORT: String(await freePort()) });
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    await gw.stop('SIGTERM');
    gw = null;

    const config = loadConfig({ env, rootDir: ROOT, cwd: ROOT });
    const store = await openStore(config);
    try {
      const { ids, eventIds } = await decisionIdsIn(store);
      const logged = new Set(ids);
      expect(l.allowed.filter((id) => !logged.has(id))).toEqual([]);
      expect(new Set(eventIds).size).toBe(eventIds.length);
      const v = await verifyChain(store, dataDir);
      expect(v).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
  }, 90_000);
});

describeWith([redisServer], 'crash safety: Redis stopped and restarted mid-run (real redis-server)', () => {
  let dataDir: string;
  let redis: RedisServerHandle;
  let gw: GatewayProcess | null = null;
  afterEach(async () => {
    await gw?.stop('SIGTERM');
    await redis?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('spools during the outage, replays when Redis returns, loses nothing and duplicates nothing', async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'dg-crash-redis-'));
    redis = await startRedisServer();
    const env = {
      DEVICEGATE_DATA_DIR: dataDir,
      DEVICEGATE_CA__DEV_DIR: path.join(dataDir, 'ca'),
      DEVICEGATE_LOG__LEVEL: 'warn',
      DEVICEGATE_STORE__BACKEND: 'redis',
      DEVICEGATE_STORE__REDIS__URL: redis.url,
      DEVICEGATE_STORE__REDIS__COMMAND_TIMEOUT_MS: '500',
      DEVICEGATE_AUDIT__SPOOL_RETRY_SECONDS: '1',
    };
    const prepared = await prepare(env);
    gw = await startGateway({ ...env, PORT: String(await freePort()) });
    const l = load(gw.url, prepared, 8);
    await new Promise((r) => setTimeout(r, 1500));
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500)); // decisions now deny (facts unknown), their audit entries spool
    await redis.start();
    await new Promise((r) => setTimeout(r, 1500));
    await l.stop();
    expect(l.allowed.length).toBeGreaterThan(10);
    // Let the spool drain, then stop the gateway in order (its close flushes).
    for (let i = 0; i < 100; i++) {
      const ready = await fetch(`${gw.url}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 2500));
    expect(await gw.stop('SIGTERM')).toBe(0);
    gw = null;

    const config = loadConfig({ env, rootDir: ROOT, cwd: ROOT });
    const store = await openStore(config);
    try {
      const { ids, eventIds } = await decisionIdsIn(store);
      const logged = new Set(ids);
      expect(l.allowed.filter((id) => !logged.has(id))).toEqual([]);
      expect(new Set(eventIds).size).toBe(eventIds.length);
      expect(ids.length).toBeGreaterThan(l.allowed.length); // the denies of the outage were spooled and replayed too
      expect(await verifyChain(store, dataDir)).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
  }, 90_000);
});
