import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema';

/** One problem with the configuration, with the key path it concerns. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** Thrown by `loadConfig` with every problem found, so an operator fixes them in one go. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** The environment (never read from process.env here, so tests pass their own). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Installation root holding `config/default.yaml`. */
  readonly rootDir: string;
  /** Base for relative paths given on the command line or in the environment. */
  readonly cwd: string;
  /** Extra YAML files, applied after `config/default.yaml` and `DEVICEGATE_CONFIG`, in order. */
  readonly files?: readonly string[];
}

const ENV_PREFIX = 'DEVICEGATE_';
/** Environment variables with a meaning of their own, not a config key path. */
const RESERVED_ENV = new Set(['DEVICEGATE_CONFIG', 'DEVICEGATE_PORT', 'DEVICEGATE_DATA_DIR']);

/**
 * Loads `config/default.yaml`, then the files named by `DEVICEGATE_CONFIG` (comma-separated) and `files`, then
 * environment overrides, validates the result against the one schema and returns a frozen, fully defaulted config.
 *
 * Environment overrides: `DEVICEGATE_<SECTION>__<KEY>` with `__` between path segments and keys in
 * UPPER_SNAKE_CASE, e.g. `DEVICEGATE_STORE__REDIS__URL`. Values are parsed as JSON when they parse (numbers,
 * booleans, arrays), else taken as strings. `PORT` or `DEVICEGATE_PORT` set `server.port`, `DEVICEGATE_DATA_DIR` sets
 * `dataDir`, `NODE_ENV=production` sets `mode`. Unknown keys are errors, so typos do not pass silently.
 */
export function loadConfig(options: LoadConfigOptions): Config {
  const problems: ConfigProblem[] = [];
  const sources: string[] = [];
  let merged: Record<string, unknown> = {};

  const defaultFile = path.join(options.rootDir, 'config', 'default.yaml');
  const files = [
    defaultFile,
    ...(options.env.DEVICEGATE_CONFIG ?? '')
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean)
      .map((f) => path.resolve(options.cwd, f)),
    ...(options.files ?? []).map((f) => path.resolve(options.cwd, f)),
  ];
  for (const file of files) {
    if (!existsSync(file)) {
      if (file !== defaultFile) problems.push({ path: '', message: `config file ${file} does not exist` });
      continue;
    }
    try {
      const doc = YAML.parse(readFileSync(file, 'utf8')) as unknown;
      if (doc === null || doc === undefined) continue;
      if (typeof doc !== 'object' || Array.isArray(doc)) {
        problems.push({ path: '', message: `${file}: top level must be a mapping` });
        continue;
      }
      merged = deepMerge(merged, doc as Record<string, unknown>);
      sources.push(file);
    } catch (e) {
      problems.push({ path: '', message: `${file}: ${(e as Error).message.split('\n')[0]}` });
    }
  }

  merged = deepMerge(merged, envOverrides(options.env, problems));

  for (const p of unknownKeys(configSchema, merged, '')) problems.push({ path: p, message: 'unknown key' });

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ path: issue.path.join('.'), message: issue.message });
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const raw = parsed.data;
  const dataDir = path.resolve(options.cwd, raw.dataDir);
  const scheme = raw.server.tls.enabled ? 'https' : 'http';
  const publicUrl = (raw.server.publicUrl ?? `${scheme}://${raw.server.host}:${raw.server.port}`).replace(/\/+$/, '');
  const config = {
    ...raw,
    dataDir,
    publicUrl,
    sqlitePath: path.resolve(options.cwd, raw.store.sqlite.path ?? path.join(dataDir, 'devicegate.db')),
    rootDir: options.rootDir,
    sources,
  };
  return deepFreeze(config);
}

function envOverrides(env: LoadConfigOptions['env'], problems: ConfigProblem[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const set = (keyPath: string[], value: unknown): void => {
    let node = out;
    for (const k of keyPath.slice(0, -1)) {
      node[k] = typeof node[k] === 'object' && node[k] !== null ? node[k] : {};
      node = node[k] as Record<string, unknown>;
    }
    node[keyPath[keyPath.length - 1] as string] = value;
  };
  if (env.NODE_ENV === 'production') set(['mode'], 'production');
  const port = env.DEVICEGATE_PORT ?? env.PORT;
  if (port !== undefined && port !== '') set(['server', 'port'], parseValue(port));
  if (env.DEVICEGATE_DATA_DIR) set(['dataDir'], env.DEVICEGATE_DATA_DIR);

  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || value === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    const keyPath = resolveEnvPath(segments);
    if (!keyPath) {
      // Variables that belong to modules rather than to the config tree (e.g. a key read by a section) are allowed
      // when a section documents them; everything else under the prefix is a typo worth reporting.
      if (!DOCUMENTED_EXTRA_ENV.has(name)) problems.push({ path: name, message: 'environment variable matches no configuration key' });
      continue;
    }
    set(keyPath, parseValue(value));
  }
  return out;
}

/** Environment variables under the prefix that sections read directly (secrets that must not live in files). */
const DOCUMENTED_EXTRA_ENV = new Set(['DEVICEGATE_AUDIT_PSEUDONYM_KEY', 'DEVICEGATE_CA_KEY_PASSPHRASE']);

function parseValue(v: string): unknown {
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

const toEnvName = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** Maps env segments (`STORE`, `REDIS`, `COMMAND_TIMEOUT_MS`) to schema keys (`store.redis.commandTimeoutMs`). */
function resolveEnvPath(segments: string[]): string[] | null {
  let schema: z.ZodType | null = configSchema;
  const out: string[] = [];
  for (const seg of segments) {
    const shape = objectShape(schema);
    if (!shape) return null;
    const key = Object.keys(shape).find((k) => toEnvName(k) === seg);
    if (!key) return null;
    out.push(key);
    schema = shape[key] as z.ZodType;
  }
  return out;
}

interface ZodDefLike {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  in?: z.ZodType;
}

/** The shape of an object schema behind optional/default/prefault/nullable wrappers, or null. */
function objectShape(schema: z.ZodType | null): Record<string, z.ZodType> | null {
  let s = schema;
  for (let i = 0; s && i < 10; i++) {
    const def = (s as unknown as { _zod: { def: ZodDefLike } })._zod.def;
    if (def.type === 'object') return def.shape ?? null;
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return null;
  }
  return null;
}

function unknownKeys(schema: z.ZodType, value: unknown, prefix: string): string[] {
  const shape = objectShape(schema);
  if (!shape || typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const p = prefix ? `${prefix}.${k}` : k;
    const child = shape[k];
    if (!child) out.push(p);
    else out.push(...unknownKeys(child, v, p));
  }
  return out;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
