import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Router } from 'express';
import { unavailable } from '../../domain/errors';
import type { RevocationFeedEvent } from '../../services/decisions';
import type { Principal } from '../../auth/permissions';
import type { AppDeps } from '../app';
import { createFastDecisionsHandler } from '../fast-decisions';
import { principalOf } from '../params';
import type { RouteTable } from '../route-table';

/** Comment line sent on an idle revocation feed so proxies and the adapter keep the stream open. */
export const FEED_HEARTBEAT_MS = 15_000;
/** A subscriber that lets this much output pile up is cut off (it reconnects and re-checks its sessions). */
const FEED_MAX_BUFFERED_BYTES = 1024 * 1024;

const sse = (e: RevocationFeedEvent): string => `id: ${e.id}\nevent: revocation\ndata: ${JSON.stringify(e.data)}\n\n`;

/**
 * Concentrator routes (role `concentrator`, permission `decisions:create`):
 * - `POST /v1/decisions`: the connection decision (concentrators.md §8.2–8.3); 200 for allow and deny, 4xx only for
 *   malformed requests. The same handler logic also runs on the fast path (see createConcentratorFastPath).
 * - `POST /v1/adapters/freeradius/{section}`: rlm_rest's native JSON (authorize → 200/401, post-auth and
 *   accounting → 204; never 404, also not for an unknown section).
 * - `GET /v1/decisions/revocations/stream`: server-sent events naming revoked devices and certificates
 *   (docker/openvpn/README.md), with `Last-Event-ID` replay of this instance's recent notices and a heartbeat.
 */
export function concentratorRoutes(table: RouteTable, deps: AppDeps): Router {
  const router = Router();
  const decisions = deps.services.decisions;

  table.add(router, '', { method: 'post', path: '/v1/decisions', access: 'decisions:create' }, async (req, res) => {
    const response = await decisions.decide(req.body, { principal: principalOf(req), requestId: req.id as string, startedAt: performance.now() });
    res.json(response);
  });

  table.add(router, '', { method: 'post', path: '/v1/adapters/freeradius/:section', access: 'decisions:create' }, async (req, res) => {
    const section = typeof req.params.section === 'string' ? req.params.section : '';
    const reply = await decisions.freeradius(section, req.body, { principal: principalOf(req), requestId: req.id as string, startedAt: performance.now() });
    if (reply.body === null) res.status(reply.status).end();
    else res.status(reply.status).json(reply.body);
  });

  table.add(router, '', { method: 'get', path: '/v1/decisions/revocations/stream', access: 'decisions:create' }, (req, res) => {
    const hub = decisions.revocations;
    if (!hub.acceptsSubscribers) throw unavailable('FEED_BUSY', 'The revocation feed has too many subscribers; retry later.');
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    req.socket.setNoDelay(true);
    let open = true;
    let heartbeat: NodeJS.Timeout | null = null;
    const stop = (): void => {
      open = false;
      if (heartbeat) clearInterval(heartbeat);
    };
    const write = (text: string): void => {
      if (!open) return;
      res.write(text);
      // A subscriber that does not read must not make us buffer without bound: cut it off (it reconnects).
      if (res.writableLength > FEED_MAX_BUFFERED_BYTES) {
        stop();
        res.destroy();
      }
    };
    const last = req.headers['last-event-id'];
    const sub = hub.subscribe(
      typeof last === 'string' ? last : null,
      (e) => write(sse(e)),
      // The service is closing (shutdown): end the stream so the listener can close without waiting for it.
      () => {
        stop();
        res.end();
      },
    );
    write(`retry: 2000\n: devicegate revocation feed${sub.resumed ? ', resumed' : ''}\n\n`);
    for (const e of sub.replay) write(sse(e));
    heartbeat = setInterval(() => write(': keep-alive\n\n'), FEED_HEARTBEAT_MS);
    heartbeat.unref();
    res.on('error', () => undefined);
    res.on('close', () => {
      stop();
      sub.close();
    });
  });

  return router;
}

/**
 * The hot path of `POST /v1/decisions` without Express routing (src/http/fast-decisions.ts). Returns false for every
 * other request. The permission is read from the route table entry the Express route registered, so both paths
 * enforce the same access rule.
 */
export function createConcentratorFastPath(
  table: RouteTable,
  deps: AppDeps,
  resolvePrincipal?: (req: IncomingMessage) => Principal | null,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const spec = table.routes.find((r) => r.method === 'post' && r.path === '/v1/decisions');
  if (!spec || spec.access === 'public') {
    throw new Error('createConcentratorFastPath: POST /v1/decisions must be registered (with a permission) before the fast path');
  }
  return createFastDecisionsHandler({
    decisions: deps.services.decisions,
    apiTokens: deps.services.apiTokens,
    access: { itAdminMayReadAudit: deps.config.audit.itAdminMayReadRawLogs },
    permission: spec.access,
    bodyLimitBytes: deps.config.server.jsonBodyLimitBytes,
    tls: deps.config.server.tls.enabled,
    logger: deps.logger,
    metrics: deps.metrics,
    resolvePrincipal,
  });
}
