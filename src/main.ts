/**
 * The process entry point and the only file that listens or exits:
 * load config → open store → build services → createApp() → listen; graceful shutdown on SIGTERM/SIGINT.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Socket } from 'node:net';
import { ConfigError, loadConfig } from './config/load';
import { productionProblems } from './config/production';
import { auditDevDefaults } from './config/sections/audit';
import { SYSTEM_ACTOR } from './audit/events';
import { canonicalJson } from './lib/canonical-json';
import type { Config } from './config/schema';
import { createApp } from './http/app';
import { systemClock } from './lib/clock';
import { createLogger, type Logger } from './lib/logger';
import { createMetrics } from './metrics/registry';
import { buildServices } from './services';
import { devCertificateProblems } from './services/production-checks';
import { openStore } from './store';
import { instrumentStore } from './store/metrics';

const EXIT_CONFIG = 2;
const EXIT_STARTUP = 1;

function createServer(config: Config['server']['tls'], listener: http.RequestListener): http.Server {
  if (!config.enabled) return http.createServer(listener);
  return https.createServer(
    {
      cert: readFileSync(config.certFile as string),
      key: readFileSync(config.keyFile as string),
      passphrase: config.keyPassphraseFile ? readFileSync(config.keyPassphraseFile, 'utf8').trim() : undefined,
      ca: config.clientCaFile ? readFileSync(config.clientCaFile) : undefined,
      requestCert: Boolean(config.clientCaFile) || config.requireClientCert,
      rejectUnauthorized: config.requireClientCert,
      minVersion: 'TLSv1.2',
    },
    listener,
  );
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish (up to `timeoutMs`), then closes what is left. */
function closeGracefully(server: http.Server, sockets: Set<Socket>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    }, timeoutMs);
    force.unref();
    // Keep-alive connections become idle as their last request finishes; close them as soon as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearTimeout(force);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}

async function main(): Promise<void> {
  const rootDir = path.resolve(__dirname, '..');
  let config: Config;
  try {
    config = loadConfig({ env: process.env, rootDir, cwd: process.cwd() });
    const problems = productionProblems(config, process.env, [devCertificateProblems]);
    if (problems.length) throw new ConfigError(problems);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`devicegate: ${e.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw e;
  }

  const logger: Logger = createLogger(config.log.level);
  logger.info({ mode: config.mode, sources: config.sources, store: config.store.backend }, 'configuration loaded');

  const metrics = createMetrics();
  let rawStore;
  try {
    rawStore = await openStore(config);
  } catch (e) {
    logger.fatal({ err: e }, 'cannot open the store');
    process.stderr.write(
      `devicegate: cannot open the ${config.store.backend} store: ${(e as Error).message}` +
        `${(e as Error).cause instanceof Error ? ` (${((e as Error).cause as Error).message})` : ''}\n`,
    );
    process.exit(EXIT_STARTUP);
  }
  for (const w of await rawStore.startupWarnings()) {
    if (config.mode === 'production' || config.store.backend === 'sqlite') logger.warn(w);
  }
  const store = instrumentStore(rawStore, metrics.storeOperationDuration);
  const services = await buildServices({
    config,
    store,
    clock: systemClock,
    logger,
    metrics,
    env: process.env,
    notice: (m) => process.stdout.write(`devicegate: ${m}\n`),
  });
  const app = createApp({ config, store, clock: systemClock, logger, metrics, services });
  services.auditRetention.start();
  // The configuration this process runs with is part of the record (which policy decided what).
  await services.audit.recorder.append({
    type: 'config.load',
    actor: SYSTEM_ACTOR,
    data: {
      configSha256: createHash('sha256').update(canonicalJson(config)).digest('hex'),
      environment: config.mode,
      files: [...config.sources],
      devDefaults: [
        ...(config.ca.source === 'dev' ? ['ca.source'] : []),
        ...(config.tpm.allowEkPublicOnly ? ['tpm.allowEkPublicOnly'] : []),
        ...auditDevDefaults(config.audit, process.env),
      ],
    },
  });

  const servers: { server: http.Server; sockets: Set<Socket> }[] = [];
  const start = async (tls: Config['server']['tls'], host: string, port: number, name: string, listener: http.RequestListener): Promise<void> => {
    const server = createServer(tls, listener);
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    const bound = await listen(server, host, port);
    servers.push({ server, sockets });
    logger.info({ listener: name, url: `${tls.enabled ? 'https' : 'http'}://${host}:${bound}` }, 'listening');
    process.stdout.write(`devicegate ${name} listening on ${tls.enabled ? 'https' : 'http'}://${host}:${bound}\n`);
  };
  try {
    await start(config.server.tls, config.server.host, config.server.port, 'main', app);
    const cl = config.server.concentratorListener;
    if (cl.enabled) {
      const concentratorApp = createApp({ config, store, clock: systemClock, logger, metrics, services }, { surface: 'concentrator' });
      await start(cl.tls, cl.host, cl.port, 'concentrator', concentratorApp);
    }
  } catch (e) {
    logger.fatal({ err: e }, 'cannot listen');
    process.stderr.write(`devicegate: cannot listen: ${(e as Error).message}\n`);
    await services.close();
    await store.close();
    process.exit(EXIT_STARTUP);
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    void (async () => {
      // Long-lived revocation streams would hold the listeners open until the timeout: end them first.
      services.decisions.revocations.close();
      await Promise.all(servers.map((s) => closeGracefully(s.server, s.sockets, config.server.shutdownTimeoutMs)));
      await services.close();
      await store.close();
      logger.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`devicegate: fatal: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(EXIT_STARTUP);
});
