import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Config } from '../config/schema';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import type { Services } from '../services';
import type { Store } from '../store/types';
import { mtlsConcentratorPrincipal } from '../auth/mtls';
import { consoleRoutes, sessionPrincipalResolver } from './console';
import { errorHandler, notFoundHandler } from './errors';
import { authenticate } from './middleware/auth';
import { requestLogging, requestMetrics, securityHeaders } from './middleware/request-context';
import { loadOpenApi } from './openapi';
import { RouteTable } from './route-table';
import { auditRoutes } from './routes/audit';
import { concentratorRoutes, createConcentratorFastPath } from './routes/concentrator';
import { deviceRoutes } from './routes/devices';
import { enrollmentRoutes } from './routes/enrollment';
import { operatorRoutes } from './routes/operator';
import { pkiRoutes } from './routes/pki';

export interface AppDeps {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly services: Services;
}

/** A request listener for `http.createServer`/`https.createServer` or supertest, with its route table. */
export interface App {
  (req: IncomingMessage, res: ServerResponse): void;
  readonly routes: RouteTable;
}

export interface AppOptions {
  /**
   * `all`: the main listener. `concentrator`: the dedicated concentrator listener, which serves only what
   * concentrators need (decisions, FreeRADIUS adapter, revocation feed, CRL/OCSP/chain, health) and recognises
   * concentrators by their TLS client certificate (mutual TLS) as well as by bearer token.
   */
  readonly surface?: 'all' | 'concentrator';
}

/**
 * Builds the HTTP application. It never listens: `main.ts` does, and tests hand the result to supertest.
 */
export function createApp(deps: AppDeps, options: AppOptions = {}): App {
  const { config } = deps;
  const concentratorOnly = options.surface === 'concentrator';
  const table = new RouteTable();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.server.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestLogging(deps.logger));
  app.use(requestMetrics(deps.metrics));
  app.use(securityHeaders(config.server.tls.enabled));
  app.use(express.json({ limit: config.server.jsonBodyLimitBytes, strict: true, type: ['application/json', 'application/*+json'] }));
  const sessionResolver = concentratorOnly ? null : sessionPrincipalResolver(deps);
  const mtlsResolver = async (req: IncomingMessage) => mtlsConcentratorPrincipal(req);
  app.use(
    authenticate(
      deps.services.apiTokens,
      { itAdminMayReadAudit: config.audit.itAdminMayReadRawLogs },
      concentratorOnly ? [mtlsResolver] : sessionResolver ? [sessionResolver] : [],
    ),
  );

  app.use(
    operatorRoutes(table, {
      store: deps.store,
      metrics: deps.metrics,
      metricsEnabled: config.metrics.enabled,
      openApi: loadOpenApi(config.rootDir),
    }),
  );

  app.use(pkiRoutes(table, deps.services.pki, { ocspMaxRequestBytes: config.ca.ocsp.maxRequestBytes }));
  app.use(concentratorRoutes(table, deps));
  if (!concentratorOnly) {
    app.use(deviceRoutes(table, deps.services.registry, { importBodyLimitBytes: config.server.importBodyLimitBytes }));
    app.use(auditRoutes(table, deps.services.auditAccess));
    app.use(
      enrollmentRoutes(table, deps.services.enrollment, {
        rateLimits: deps.store.rateLimits,
        clock: deps.clock,
        maxRequestBytes: config.enrollment.maxRequestBytes,
        perMinute: config.enrollment.requestsPerMinutePerAddress,
      }),
    );
    app.use(consoleRoutes(table, deps));
  }

  app.use(notFoundHandler);
  app.use(errorHandler);

  // The connection-time decision is the hot path: a lean handler answers it before Express routing runs.
  const fastPath = createConcentratorFastPath(table, deps, concentratorOnly ? mtlsConcentratorPrincipal : undefined);
  const listener = ((req: IncomingMessage, res: ServerResponse) => {
    if (!fastPath(req, res)) app(req, res);
  }) as App;
  Object.defineProperty(listener, 'routes', { value: table });
  return listener;
}
