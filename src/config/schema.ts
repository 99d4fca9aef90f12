import { z } from 'zod';
import { auditConfigSchema } from './sections/audit';
import { caConfigSchema } from './sections/ca';
import { dataDirSchema, logSchema, metricsSchema, modeSchema, serverSchema, storeSchema } from './sections/core';
import { decisionsConfigSchema } from './sections/decisions';
import { samlConfigSchema } from './sections/saml';
import { enrollmentConfigSchema, tpmConfigSchema } from './sections/tpm';

/**
 * The one configuration schema. `config/README.md` is generated from it (`npm run config:docs`), so every key carries
 * a `.describe()` text.
 */
export const configSchema = z.object({
  mode: modeSchema,
  server: serverSchema,
  dataDir: dataDirSchema,
  store: storeSchema,
  log: logSchema,
  metrics: metricsSchema,
  ca: caConfigSchema,
  enrollment: enrollmentConfigSchema,
  tpm: tpmConfigSchema,
  audit: auditConfigSchema,
  decisions: decisionsConfigSchema,
  saml: samlConfigSchema,
});

/** The configuration as written (YAML + environment), before defaults. */
export type ConfigInput = z.input<typeof configSchema>;

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The resolved configuration: fully defaulted, paths absolute, deep-frozen. */
export type Config = DeepReadonly<z.output<typeof configSchema>> & {
  /** `server.publicUrl` after defaulting, without a trailing slash. */
  readonly publicUrl: string;
  /** Absolute SQLite path after defaulting. */
  readonly sqlitePath: string;
  /** Absolute root of the installation (where `config/` and `certs-dev/` live). */
  readonly rootDir: string;
  /** Files that were read, in order. */
  readonly sources: readonly string[];
};
