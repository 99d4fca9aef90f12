/**
 * The web console (server-rendered HTML, German default, English switchable) and the SAML endpoints, registered
 * through the route table like every API route, so the RBAC walk and the OpenAPI check cover them.
 *
 * Access: every page names a permission from src/auth/permissions.ts and `authorize` enforces it before the
 * handler runs; the caller is a SAML session (browser) or an API token. State-changing forms carry the session's
 * synchronizer token (`_csrf`) and are refused without it; API-token callers need none (a bearer header is never
 * sent by a browser on its own).
 *
 * The routes exist whether or not SAML is enabled (without it the SAML endpoints answer 404 `SAML_DISABLED` and
 * pages are reachable with API tokens only), so the route table and the OpenAPI document do not depend on config.
 */
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CSRF_HEADER, requireCsrf, verifyCsrfToken, CSRF_FIELD } from '../../auth/csrf';
import type { Permission } from '../../auth/permissions';
import { getSession } from '../../auth/session';
import { forbidden, notFound } from '../../domain/errors';
import type { AppDeps } from '../app';
import { rateLimitByIp } from '../middleware/limits';
import type { PrincipalResolver } from '../middleware/auth';
import type { HttpMethod, RouteTable } from '../route-table';
import { loadAssets } from './assets';
import { registerAuditPages } from './audit';
import type { ConsoleContext } from './context';
import { registerDevicePages } from './devices';
import { html } from './html';
import type { MessageKey } from './i18n';
import { consoleHeaders, formatTime, isConsolePath, page, renderError, sendPage, viewOf } from './view';

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Resolves a live SAML session (cookie) into a `Principal { kind: 'session', id: NameID, name: display name, roles }`
 * for every route, so the API also accepts the browser session. Returns null when SAML is disabled.
 *
 * A state-changing API request (outside /console and /saml, which check CSRF themselves) made with a session must
 * carry the session's token in `X-CSRF-Token` (or `_csrf` in a JSON body); without it the request is refused with
 * 403 `CSRF_TOKEN_INVALID` instead of being run as the signed-in user. SameSite=Lax already keeps the cookie off
 * cross-site POSTs; this makes the API independent of that browser behaviour.
 */
export function sessionPrincipalResolver(deps: AppDeps): PrincipalResolver | null {
  const sso = deps.services.sso;
  if (!sso) return null;
  const load = sso.sessions.middleware();
  return (req) =>
    new Promise((resolve, reject) => {
      // Static files need no principal; skipping them saves two store reads per asset.
      if (req.path.startsWith('/console/assets/') || sso.sessions.readSessionId(req) === null) return resolve(null);
      load(req, req.res as Response, (err?: unknown) => {
        if (err) return reject(err instanceof Error ? err : new Error('session lookup failed', { cause: err }));
        const session = getSession(req);
        if (!session) return resolve(null);
        if (!SAFE_METHODS.has(req.method) && !isConsolePath(req.path)) {
          const body = req.body as Record<string, unknown> | undefined;
          const presented = req.headers[CSRF_HEADER] ?? (body && typeof body === 'object' ? body[CSRF_FIELD] : undefined);
          if (!verifyCsrfToken(session, presented)) {
            return reject(forbidden('CSRF_TOKEN_INVALID', 'A request made with a browser session needs its X-CSRF-Token header.'));
          }
        }
        resolve(sso.principalOf(session));
      });
    });
}

/** Builds the console and SAML router. Mount at the app root after the API routers. */
export function consoleRoutes(table: RouteTable, deps: AppDeps): Router {
  const { config } = deps;
  const sso = deps.services.sso;
  const router = Router();
  const hsts = config.server.tls.enabled || config.publicUrl.startsWith('https:');
  const headers = consoleHeaders({ hsts, cookieSecure: sso?.cookieSecure ?? hsts });
  router.use((req: Request, res: Response, next: NextFunction) => (isConsolePath(req.path) ? headers(req, res, next) : next()));

  const csrf = sso ? requireCsrf({ allowedOrigins: sso.allowedOrigins }) : null;
  const csrfUnlessToken: RequestHandler = (req, res, next) => {
    if (req.principal?.kind === 'api-token') return next();
    if (!csrf) return next(forbidden('CSRF_TOKEN_INVALID', 'The form expired or did not come from this site; reload and retry'));
    csrf(req, res, next);
  };

  const c: ConsoleContext = {
    deps,
    sso,
    audit: deps.services.auditAccess,
    router,
    table,
    add: (method: HttpMethod, path: string, access: Permission | 'public', ...handlers: RequestHandler[]) =>
      table.add(router, '', { method, path, access }, ...handlers),
    form: (limit = 64 * 1024) => [express.urlencoded({ extended: false, limit, parameterLimit: 50 }), csrfUnlessToken],
    view: (req, res) => viewOf(req, res, sso !== null),
  };

  // --- SAML endpoints (the SAML core's router, reached through the table) -------------------------------------
  const samlLimit = rateLimitByIp(deps.store.rateLimits, deps.clock, 'saml', deps.config.saml.requestsPerMinutePerAddress);
  const saml: RequestHandler = (req, res, next) => {
    if (!sso) return next(notFound('SAML_DISABLED', 'Single sign-on is not enabled on this gateway.'));
    sso.router(req, res, next);
  };
  c.add('get', '/saml/metadata', 'public', saml);
  c.add('get', '/saml/login', 'public', samlLimit, saml);
  c.add('post', '/saml/acs', 'public', samlLimit, saml);
  c.add('post', '/saml/logout', 'public', saml);

  // --- static assets ------------------------------------------------------------------------------------------
  const { dir, assets } = loadAssets(config.rootDir);
  if (!dir) deps.logger.warn({ rootDir: config.rootDir }, 'console assets (CSS, JS) not found; the console works without them');
  c.add('get', '/console/assets/:file', 'public', (req, res, next) => {
    const asset = assets.get(String(req.params.file));
    if (!asset) return next(notFound('ASSET_NOT_FOUND', 'No such file.'));
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.setHeader('ETag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) return void res.status(304).end();
    res.status(200).type(asset.contentType).send(asset.body);
  });

  // --- landing, who am I, signed out --------------------------------------------------------------------------
  c.add('get', '/', 'public', (_req, res) => res.redirect(302, '/console'));

  c.add('get', '/console', 'console:use', (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const p = v.principal;
    if (!p) throw new Error('authorize let an anonymous caller through');
    const user = v.session?.user;
    const tasks: { permission: Permission; path: string; label: MessageKey }[] = [
      { permission: 'devices:read', path: '/console/devices', label: 'nav.devices' },
      { permission: 'devices:write', path: '/console/devices/new', label: 'nav.register' },
      { permission: 'devices:write', path: '/console/devices/import', label: 'nav.import' },
      { permission: 'audit:read', path: '/console/audit', label: 'nav.audit' },
      { permission: 'audit:read', path: '/console/audit/verify', label: 'nav.verify' },
    ];
    const body = html`<h2>${t('home.whoami')}</h2>
<dl class="facts" id="whoami">
<dt>${t('home.name')}</dt><dd>${p.name}</dd>
<dt>${t('home.nameId')}</dt><dd><code>${p.id}</code></dd>
${user?.email ? html`<dt>${t('home.email')}</dt><dd>${user.email}</dd>` : ''}
<dt>${t('home.roles')}</dt><dd><ul>${p.roles.map((r) => html`<li data-role="${r}"><strong>${t(`role.${r}` as MessageKey)}</strong>: ${t(`role.${r}.desc` as MessageKey)}</li>`)}</ul></dd>
<dt>${t('home.via')}</dt><dd>${p.kind === 'session' ? t('home.via.session') : t('home.via.token')}</dd>
${v.session ? html`<dt>${t('home.sessionEnds')}</dt><dd>${formatTime(v.session.expiresAt)}</dd>` : ''}
</dl>
<h2>${t('home.tasks')}</h2>
<ul class="cards">${tasks.filter((x) => v.can(x.permission)).map((x) => html`<li><a href="${x.path}">${t(x.label)}</a></li>`)}</ul>`;
    sendPage(res, 200, page(v, { title: t('home.title'), body, nav: 'home' }));
  });

  c.add('get', '/console/signed-out', 'public', (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const body = html`<p role="status">${t('signedOut.text')}</p>
${sso ? html`<p><a class="button" href="/saml/login?returnTo=%2Fconsole">${t('signedOut.again')}</a></p>` : ''}`;
    sendPage(res, 200, page(v, { title: t('signedOut.title'), body }));
  });

  registerDevicePages(c);
  registerAuditPages(c);

  // Anything else under /console or /saml is a console 404; errors of these routes become HTML error pages.
  router.use(['/console', '/saml'], (req: Request, _res: Response, next: NextFunction) =>
    next(notFound('ROUTE_NOT_FOUND', `No route for ${req.method} ${req.originalUrl.split('?')[0] ?? ''}.`)),
  );
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!isConsolePath(req.path)) return next(err);
    renderError(req, res, err, sso !== null);
  });
  return router;
}
