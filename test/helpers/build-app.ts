/**
 * Builds the real app (real config loader, real SQLite store in a temp dir, real services) for supertest, the way
 * fastify/demo's `build(t)` does. Returns everything a test may want to poke, and a cleanup.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { createApp, type App } from '../../src/http/app';
import { ManualClock } from '../../src/lib/clock';
import { createLogger } from '../../src/lib/logger';
import { createMetrics, type Metrics } from '../../src/metrics/registry';
import { buildServices, type Services } from '../../src/services';
import { openSqliteStore } from '../../src/store/sqlite';
import { instrumentStore } from '../../src/store/metrics';
import type { Store } from '../../src/store/types';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface TestApp {
  app: App;
  config: Config;
  store: Store;
  services: Services;
  metrics: Metrics;
  clock: ManualClock;
  dataDir: string;
  cleanup(): Promise<void>;
}

export async function buildTestApp(
  options: { env?: Record<string, string>; clock?: ManualClock; store?: Store } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dg-app-'));
  const config = loadConfig({
    env: {
      DEVICEGATE_DATA_DIR: dataDir,
      DEVICEGATE_LOG__LEVEL: 'silent',
      // A dev CA per test app, so tests never touch the checkout's certs-dev/.
      DEVICEGATE_CA__DEV_DIR: path.join(dataDir, 'ca'),
      ...(options.env ?? {}),
    },
    rootDir: ROOT,
    cwd: ROOT,
  });
  const clock = options.clock ?? new ManualClock(Date.now());
  const metrics = createMetrics({ defaultMetrics: false });
  const raw = options.store ?? openSqliteStore({ path: config.sqlitePath });
  const store = instrumentStore(raw, metrics.storeOperationDuration);
  const logger = createLogger('silent');
  const services = await buildServices({ config, store, clock, logger, metrics });
  const app = createApp({ config, store, clock, logger, metrics, services });
  return {
    app,
    config,
    store,
    services,
    metrics,
    clock,
    dataDir,
    async cleanup() {
      await services.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
