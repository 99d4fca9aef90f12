import path from 'node:path';
import { ConfigError, loadConfig } from '../config/load';
import type { Config } from '../config/schema';
import { AppError } from '../domain/errors';
import { systemClock, type Clock } from '../lib/clock';
import { createLogger, type Logger } from '../lib/logger';
import { createMetrics } from '../metrics/registry';
import { buildServices, type Services } from '../services';
import { openStore } from '../store';
import type { Store } from '../store/types';

/** Exit codes shared by every subcommand. */
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 3, rejected: 4, unavailable: 5 } as const;

export interface GlobalOptions {
  json?: boolean;
  config?: string[];
}

/**
 * What a subcommand works with: the same configuration, store and services as the server, so admin commands act
 * on a running dev gateway's data (SQLite in WAL mode or the shared Redis).
 */
export interface CliContext {
  readonly config: Config;
  readonly store: Store;
  readonly services: Services;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly json: boolean;
  close(): Promise<void>;
}

export const ROOT_DIR = path.resolve(__dirname, '..', '..');

export function loadCliConfig(opts: GlobalOptions): Config {
  return loadConfig({ env: process.env, rootDir: ROOT_DIR, cwd: process.cwd(), files: opts.config ?? [] });
}

export async function openContext(opts: GlobalOptions): Promise<CliContext> {
  const config = loadCliConfig(opts);
  // CLI logs go to stderr so `--json` output on stdout stays machine-readable.
  const logger = createLogger(process.env.DEVICEGATE_CLI_LOG_LEVEL ?? 'warn', process.stderr);
  const store = await openStore(config);
  const services = await buildServices({ config, store, clock: systemClock, logger, metrics: createMetrics({ defaultMetrics: false }), role: 'cli', env: process.env });
  return {
    config,
    store,
    services,
    clock: systemClock,
    logger,
    json: Boolean(opts.json),
    async close() {
      await services.close();
      await store.close();
    },
  };
}

/** Prints `data` as JSON with `--json`, else `human` lines. */
export function output(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

/** Turns any error into a message on stderr (JSON with `--json`) and an exit code; never a stack trace for AppErrors. */
export function reportError(e: unknown, json: boolean): number {
  if (e instanceof ConfigError) {
    if (json) process.stderr.write(`${JSON.stringify({ error: { code: 'INVALID_CONFIG', problems: e.problems } })}\n`);
    else process.stderr.write(`devicegate: ${e.message}\n`);
    return EXIT.usage;
  }
  if (e instanceof AppError) {
    if (json) process.stderr.write(`${JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } })}\n`);
    else process.stderr.write(`devicegate: ${e.message} (${e.code})\n`);
    switch (e.kind) {
      case 'not_found':
        return EXIT.notFound;
      case 'bad_request':
      case 'conflict':
      case 'forbidden':
      case 'unauthorized':
        return EXIT.rejected;
      case 'unavailable':
        return EXIT.unavailable;
      default:
        return EXIT.failure;
    }
  }
  process.stderr.write(`devicegate: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.failure;
}
