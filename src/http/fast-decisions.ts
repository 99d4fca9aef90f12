/**
 * The lean hot path of `POST /v1/decisions`: answered on the bare `node:http` request before Express routing runs.
 *
 * Why: every VPN connect waits for this answer, and Express's middleware stack (pino-http, router, body-parser)
 * costs more than the decision itself. This handler does the same things in the same order as the Express route,
 * with the same results: request id header, security headers, JSON body with the same size limit and the same
 * strict parsing (400 INVALID_JSON, 413 PAYLOAD_TOO_LARGE), bearer-token authentication through the same
 * ApiTokenService (401 INVALID_AUTHORIZATION / INVALID_TOKEN / AUTHENTICATION_REQUIRED, 403 FORBIDDEN), the same
 * JSON error body, the same request-duration metric labels, and the same DecisionService call.
 *
 * It takes only the plain case: a POST to exactly `/v1/decisions` with a body declared as `application/json` (or
 * `application/*+json`), UTF-8 or no charset, no content coding. Anything else (gzip bodies, other charsets, other
 * media types, a trailing slash, a body without length or chunking) returns false and Express handles it, so the
 * two paths cannot disagree on the rare cases.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ApiTokenService } from '../auth/api-tokens';
import { type AccessOptions, type Permission, type Principal, roleHas } from '../auth/permissions';
import { AppError, forbidden, isAppError, unauthorized } from '../domain/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import type { DecisionService } from '../services/decisions';
import type { ErrorBody } from './errors';
import { requestId } from './middleware/request-context';

/** Everything the fast path needs; all of it is what the Express route uses too. */
export interface FastDecisionsOptions {
  readonly decisions: DecisionService;
  readonly apiTokens: ApiTokenService;
  readonly access: AccessOptions;
  /** The permission the route table holds for `POST /v1/decisions`. */
  readonly permission: Permission;
  /** `server.jsonBodyLimitBytes`. */
  readonly bodyLimitBytes: number;
  /** Main listener serves TLS (adds HSTS, as securityHeaders does). */
  readonly tls: boolean;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Recognises a caller without an Authorization header (mutual TLS on the concentrator listener). */
  readonly resolvePrincipal?: ((req: IncomingMessage) => Principal | null) | undefined;
}

const PATH = '/v1/decisions';
const ROUTE_LABEL = PATH;
const BEARER_RE = /^Bearer\s+(\S+)$/i;

/** The media types express.json parses (`type: ['application/json', 'application/*+json']`), UTF-8 only. */
function plainJsonRequest(req: IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  if (typeof ct !== 'string') return false;
  const [media, ...params] = ct.split(';');
  const type = media!.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type)) return false;
  for (const p of params) {
    const [k, v] = p.split('=');
    if (k?.trim().toLowerCase() === 'charset' && v?.trim().replace(/^"|"$/g, '').toLowerCase() !== 'utf-8') return false;
  }
  const enc = req.headers['content-encoding'];
  if (enc !== undefined && enc.trim().toLowerCase() !== 'identity') return false;
  // body-parser leaves req.body unset for a request without a body; let Express answer those.
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Builds the fast-path listener. It returns true when it took the request (and will answer it), false when Express
 * must handle it.
 */
export function createFastDecisionsHandler(o: FastDecisionsOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const baseHeaders: OutgoingHttpHeaders = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
    ...(o.tls ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : {}),
  };

  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: { id: string; end: (labels: { route: string; status: string }) => number; route: string; startedAt: number },
    status: number,
    body: unknown,
    extra?: OutgoingHttpHeaders,
  ): void => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...baseHeaders,
      'x-request-id': ctx.id,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      ...extra,
    });
    res.end(text);
    ctx.end({ route: ctx.route, status: String(status) });
    if (o.logger.isLevelEnabled('debug')) {
      o.logger.debug(
        { req: { id: ctx.id, method: req.method, url: req.url }, res: { statusCode: status }, responseTime: performance.now() - ctx.startedAt },
        'request completed',
      );
    }
  };

  const fail = (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: { id: string; end: (labels: { route: string; status: string }) => number; route: string; startedAt: number },
    err: unknown,
    extra?: OutgoingHttpHeaders,
  ): void => {
    const e = isAppError(err) ? err : new AppError('internal', 'INTERNAL', 'Internal error.', { cause: err });
    const status = e.status;
    if (status >= 500) o.logger.error({ err: e, cause: e.cause, req: { id: ctx.id, method: req.method, url: req.url } }, 'request failed');
    else o.logger.info({ code: e.code, status, req: { id: ctx.id, method: req.method, url: req.url } }, 'request rejected');
    const body: ErrorBody = {
      error: {
        code: e.code,
        message: status >= 500 && e.kind === 'internal' ? 'Internal error.' : e.message,
        request_id: ctx.id,
        ...(e.details ? { details: e.details } : {}),
      },
    };
    send(req, res, ctx, status, body, {
      ...(e.kind === 'unauthorized' ? { 'www-authenticate': 'Bearer realm="devicegate"' } : {}),
      ...extra,
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    const ctx = {
      id: requestId(req),
      end: o.metrics.httpRequestDuration.startTimer({ method: 'POST' }),
      // Like requestMetrics: errors raised before the route matched (body, token) are labelled "unmatched".
      route: 'unmatched',
      startedAt,
    };
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > o.bodyLimitBytes) {
      req.resume();
      fail(req, res, ctx, new AppError('payload_too_large', 'PAYLOAD_TOO_LARGE', 'The request body is too large.'), { connection: 'close' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > o.bodyLimitBytes) {
        done = true;
        chunks.length = 0;
        fail(req, res, ctx, new AppError('payload_too_large', 'PAYLOAD_TOO_LARGE', 'The request body is too large.'), { connection: 'close' });
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {
      done = true;
    });
    req.on('aborted', () => {
      done = true;
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      void afterBody(req, res, ctx, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  };

  const afterBody = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: { id: string; end: (labels: { route: string; status: string }) => number; route: string; startedAt: number },
    raw: Buffer,
  ): Promise<void> => {
    // body-parser's json(): an empty body is {}; strict mode accepts only an object or array at the top level.
    let body: unknown = {};
    if (raw.length > 0) {
      const text = raw.toString('utf8');
      // JSON whitespace is space, tab, LF and CR (RFC 8259 §2).
      const first = /^[ \t\n\r]*(.)/.exec(text)?.[1];
      try {
        if (first !== '{' && first !== '[') throw new SyntaxError('not an object or array');
        body = JSON.parse(text) as unknown;
      } catch (cause) {
        fail(req, res, ctx, new AppError('bad_request', 'INVALID_JSON', 'The request body is not valid JSON.', { cause }));
        return;
      }
    }
    let principal: Principal | null = null;
    try {
      const header = req.headers.authorization;
      if (header !== undefined) {
        const m = BEARER_RE.exec(header);
        if (!m) throw unauthorized('INVALID_AUTHORIZATION', 'Authorization must be "Bearer <token>".');
        principal = await o.apiTokens.verify(m[1] as string);
      } else if (o.resolvePrincipal) {
        principal = o.resolvePrincipal(req);
      }
    } catch (err) {
      fail(req, res, ctx, err);
      return;
    }
    ctx.route = ROUTE_LABEL;
    try {
      if (!principal) throw unauthorized('AUTHENTICATION_REQUIRED', 'Authentication required.');
      if (!principal.roles.some((r) => roleHas(r, o.permission, o.access))) {
        throw forbidden('FORBIDDEN', `Your role may not do this (needs ${o.permission}).`);
      }
      const response = await o.decisions.decide(body, { principal, requestId: ctx.id, startedAt: ctx.startedAt });
      send(req, res, ctx, 200, response);
    } catch (err) {
      fail(req, res, ctx, err);
    }
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    if (url !== PATH && !url.startsWith(`${PATH}?`)) return false;
    if (!plainJsonRequest(req)) return false;
    handle(req, res);
    return true;
  };
}
