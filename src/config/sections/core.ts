import { z } from 'zod';

/** `mode`, `server`, `dataDir`, `store`, `log`, `metrics`: the foundation's own settings. */

export const modeSchema = z
  .enum(['development', 'production'])
  .default('development')
  .describe(
    'Development generates a throwaway CA and keys and listens on plain HTTP on loopback. Production refuses dev certificates, dev attestation and default secrets, and serves HTTPS. `NODE_ENV=production` selects it too.',
  );

const tlsSchema = z
  .object({
    enabled: z.boolean().default(false).describe('Serve HTTPS. Required in production.'),
    certFile: z.string().optional().describe('Server certificate chain (PEM).'),
    keyFile: z.string().optional().describe('Server private key (PEM).'),
    keyPassphraseFile: z.string().optional().describe('File holding the passphrase of an encrypted server key.'),
    clientCaFile: z
      .string()
      .optional()
      .describe('CA bundle (PEM) that client certificates must chain to when client certificates are requested.'),
    requireClientCert: z
      .boolean()
      .default(false)
      .describe('Require a client certificate from every caller of this listener (mTLS).'),
  })
  .prefault({});

export const serverSchema = z
  .object({
    host: z.string().default('127.0.0.1').describe('Address the main listener binds to.'),
    port: z.number().int().min(0).max(65535).default(8080).describe('Port of the main listener (`PORT` / `DEVICEGATE_PORT` override it).'),
    publicUrl: z
      .url()
      .optional()
      .describe(
        'Base URL under which devices and concentrators reach this gateway; certificates point their CRL and OCSP URLs here. Default: derived from host and port.',
      ),
    trustProxy: z
      .boolean()
      .default(false)
      .describe('Trust X-Forwarded-* headers (only behind a reverse proxy that sets them).'),
    jsonBodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(256 * 1024)
      .describe('Largest JSON request body; larger bodies get 413.'),
    importBodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(16 * 1024 * 1024)
      .describe('Largest CSV inventory import body.'),
    shutdownTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('On SIGTERM/SIGINT, how long in-flight requests may take before connections are closed.'),
    tls: tlsSchema.describe('TLS of the main listener.'),
    concentratorListener: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe('Run a second listener only for concentrator routes (decisions, adapters), e.g. with mTLS.'),
        host: z.string().default('127.0.0.1').describe('Address of the concentrator listener.'),
        port: z.number().int().min(0).max(65535).default(8443).describe('Port of the concentrator listener.'),
        tls: tlsSchema.describe('TLS of the concentrator listener.'),
      })
      .prefault({})
      .describe('Optional dedicated listener for concentrators.'),
  })
  .prefault({})
  .describe('HTTP listeners.');

export const dataDirSchema = z
  .string()
  .default('./data')
  .describe('Directory for the SQLite database, the audit spool and generated dev keys (`DEVICEGATE_DATA_DIR` overrides).');

export const storeSchema = z
  .object({
    backend: z
      .enum(['sqlite', 'redis'])
      .default('sqlite')
      .describe('`sqlite` (embedded, one gateway process) or `redis` (shared by several gateway instances).'),
    sqlite: z
      .object({
        path: z.string().optional().describe('Database file. Default: `<dataDir>/devicegate.db`.'),
        synchronous: z
          .enum(['FULL', 'NORMAL'])
          .default('FULL')
          .describe('`FULL`: a write is acknowledged only after the WAL holding it is fsynced (off the event loop), so audit entries survive power loss; `NORMAL`: only process crashes.'),
        busyTimeoutMs: z.number().int().min(0).default(5000).describe('How long a write waits for another process (e.g. the CLI).'),
      })
      .prefault({})
      .describe('SQLite back-end.'),
    redis: z
      .object({
        url: z.string().default('redis://127.0.0.1:6379').describe('Redis URL (`redis://` or `rediss://`); avoid putting a password here, use `passwordFile`.'),
        passwordFile: z.string().optional().describe('File holding the Redis password.'),
        keyPrefix: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('dg').describe('Prefix of every key, so deployments can share a Redis.'),
        commandTimeoutMs: z.number().int().min(50).default(2000).describe('Per-command deadline; slower counts as unavailable (fail closed).'),
        connectTimeoutMs: z.number().int().min(50).default(5000).describe('Connection deadline.'),
        sentinel: z
          .object({
            name: z.string().describe('Master group name.'),
            sentinels: z
              .array(z.object({ host: z.string(), port: z.number().int() }))
              .min(1)
              .describe('Sentinels to ask for the master.'),
          })
          .optional()
          .describe('Use Redis Sentinel instead of `url`.'),
        cluster: z
          .object({
            nodes: z
              .array(z.object({ host: z.string(), port: z.number().int() }))
              .min(1)
              .describe('Seed nodes.'),
          })
          .optional()
          .describe('Use Redis Cluster instead of `url`.'),
      })
      .prefault({})
      .describe('Redis back-end.'),
  })
  .prefault({})
  .describe('Where devicegate keeps its state.');

export const logSchema = z
  .object({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Log level of the JSON logs on stdout.'),
  })
  .prefault({})
  .describe('Structured logging (pino).');

export const metricsSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Serve Prometheus metrics at `/metrics`.'),
  })
  .prefault({})
  .describe('Prometheus metrics.');
