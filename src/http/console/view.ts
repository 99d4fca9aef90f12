/**
 * Per-request view state (language, principal, session, CSRF token) and the page layout every console page shares:
 * skip link, `lang` attribute, navigation by permission, who-am-I box with sign-out, language switch, and the
 * friendly HTML error page.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { csrfTokenFor, CSRF_FIELD } from '../../auth/csrf';
import { roleHas, type Permission, type Principal } from '../../auth/permissions';
import { getSession, readCookie, type Session } from '../../auth/session';
import { AppError, isAppError } from '../../domain/errors';
import { href, html, type Html, type Renderable } from './html';
import { DEFAULT_LANG, hasMessage, LANG_COOKIE, parseLang, translator, type Lang, type MessageKey, type Translate } from './i18n';

/** What a page needs to render for this request. */
export interface View {
  readonly lang: Lang;
  readonly t: Translate;
  readonly principal: Principal | null;
  /** The SAML session, when the caller came with one (null for API-token callers). */
  readonly session: Session | null;
  /** The session's synchronizer token for forms (null without a session: API tokens need none). */
  readonly csrfToken: string | null;
  readonly requestId: string | undefined;
  /** Whether the principal holds `permission` (under the configured access options). */
  can(permission: Permission): boolean;
  /** Same-origin URL of this page in the other language. */
  readonly otherLangUrl: string;
  /** Whether SAML sign-in is available (for the sign-in link on 401 pages). */
  readonly ssoEnabled: boolean;
}

const views = new WeakMap<Request, View>();

/** Paths of the console (HTML) and SAML endpoints: they get the console's headers, language and error pages. */
export const isConsolePath = (p: string): boolean => p === '/' || p === '/console' || p.startsWith('/console/') || p.startsWith('/saml/');

/**
 * The strict Content-Security-Policy of every console page: no inline scripts or styles, nothing from other origins,
 * no framing, forms only to ourselves, no `<base>` rewriting.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/**
 * Middleware for console and SAML paths: security headers (CSP, HSTS when served over https, no framing, no
 * cross-origin window access, no referrer to other sites) and the language (`?lang=` wins and is remembered in a cookie).
 */
export function consoleHeaders(options: { hsts: boolean; cookieSecure: boolean }): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('X-Frame-Options', 'DENY');
    // Not the API's `no-referrer`: under it browsers send `Origin: null` with form posts (Fetch, "serializing a
    // request origin"), and the CSRF check refuses a null Origin. `same-origin` still sends nothing to other sites.
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    if (options.hsts) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    const asked = parseLang(req.query.lang);
    if (asked) {
      res.cookie(LANG_COOKIE, asked, { httpOnly: true, sameSite: 'lax', secure: options.cookieSecure, path: '/', maxAge: 365 * 86_400_000 });
    }
    res.locals.consoleLang = asked ?? parseLang(readCookie(req.headers.cookie, LANG_COOKIE)) ?? DEFAULT_LANG;
    next();
  };
}

declare module 'express-serve-static-core' {
  interface Locals {
    consoleLang?: Lang;
  }
}

/** The view state of this request (computed once). */
export function viewOf(req: Request, res: Response, ssoEnabled: boolean): View {
  const known = views.get(req);
  if (known) return known;
  const lang = res.locals.consoleLang ?? DEFAULT_LANG;
  const principal = req.principal ?? null;
  // A session only counts when it is what authenticated the request (a bearer token wins in `authenticate`).
  const session = principal?.kind === 'session' ? getSession(req) : null;
  const access = res.locals.access ?? { itAdminMayReadAudit: false };
  const other: Lang = lang === 'de' ? 'en' : 'de';
  const query: Record<string, string> = {};
  if (req.method === 'GET') {
    for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) if (typeof v === 'string' && k !== 'lang') query[k] = v;
  }
  const view: View = {
    lang,
    t: translator(lang),
    principal,
    session,
    csrfToken: session ? csrfTokenFor(session) : null,
    requestId: req.id as string | undefined,
    can: (permission) => !!principal && principal.roles.some((r) => roleHas(r, permission, access)),
    otherLangUrl: href(req.method === 'GET' ? req.path : '/console', { ...query, lang: other }),
    ssoEnabled,
  };
  views.set(req, view);
  return view;
}

/** The hidden CSRF field for a form (empty for API-token callers, who need none). */
export const csrfField = (v: View): Html => html`${v.csrfToken ? html`<input type="hidden" name="${CSRF_FIELD}" value="${v.csrfToken}">` : ''}`;

/** UTC time as `YYYY-MM-DD HH:MM:SS UTC` (the audit log's zone; no guessing of the reader's zone). */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

type NavKey = 'home' | 'devices' | 'register' | 'import' | 'audit' | 'verify';
const NAV: readonly { key: NavKey; path: string; label: MessageKey; permission: Permission }[] = [
  { key: 'home', path: '/console', label: 'nav.home', permission: 'console:use' },
  { key: 'devices', path: '/console/devices', label: 'nav.devices', permission: 'devices:read' },
  { key: 'register', path: '/console/devices/new', label: 'nav.register', permission: 'devices:write' },
  { key: 'import', path: '/console/devices/import', label: 'nav.import', permission: 'devices:write' },
  { key: 'audit', path: '/console/audit', label: 'nav.audit', permission: 'audit:read' },
  { key: 'verify', path: '/console/audit/verify', label: 'nav.verify', permission: 'audit:read' },
];

export interface PageOptions {
  readonly title: string;
  readonly body: Renderable;
  readonly nav?: NavKey;
}

/** A complete HTML document in the console layout. */
export function page(v: View, o: PageOptions): string {
  const { t } = v;
  const nav = v.principal
    ? NAV.filter((n) => v.can(n.permission)).map(
        (n) => html`<li><a href="${n.path}"${o.nav === n.key ? html` aria-current="page"` : ''}>${t(n.label)}</a></li>`,
      )
    : [];
  const roles = v.principal ? v.principal.roles.map((r) => t(`role.${r}` as MessageKey)).join(', ') : '';
  const otherLang: Lang = v.lang === 'de' ? 'en' : 'de';
  const doc = html`<!doctype html>
<html lang="${v.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} – ${t('app.name')}</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<a class="skip-link" href="#main">${t('skip')}</a>
<header class="site-header">
  <div class="brand"><a href="/console">${t('app.name')}</a> <span class="tagline">${t('app.tagline')}</span></div>
  <div class="header-tools">
    ${v.principal
      ? html`<div class="whoami"><span>${t('user.signedInAs', { name: v.principal.name })}</span> <span class="roles">(${roles})</span>
      ${v.session
        ? html`<form method="post" action="/saml/logout" class="inline-form">${csrfField(v)}<button type="submit" class="button-secondary">${t('user.signOut')}</button></form>`
        : ''}</div>`
      : ''}
    <p class="lang-switch"><span class="visually-hidden">${t('lang.label')}: </span><a href="${v.otherLangUrl}" lang="${otherLang}" hreflang="${otherLang}">${t('lang.other')}</a></p>
  </div>
  ${nav.length > 0 ? html`<nav aria-label="${t('nav.label')}"><ul class="nav">${nav}</ul></nav>` : ''}
</header>
<main id="main" tabindex="-1">
<h1>${o.title}</h1>
${o.body}
</main>
<footer class="site-footer"><p>${t('app.name')}</p></footer>
</body>
</html>
`;
  return doc.value;
}

/** Sends a page with `status`. */
export function sendPage(res: Response, status: number, body: string): void {
  res.status(status).type('text/html; charset=utf-8').send(body);
}

/** A notice box (role=status) or error box (role=alert) at the top of a page. */
export const notice = (text: string, kind: 'ok' | 'error' = 'ok'): Html =>
  kind === 'error'
    ? html`<div class="notice notice-error" role="alert" tabindex="-1" data-autofocus>${text}</div>`
    : html`<div class="notice notice-ok" role="status">${text}</div>`;

/** The localized message for an AppError: by code when we have one, else its (English) public message. */
export function errorMessage(v: View, e: AppError): string {
  const key = `code.${e.code}`;
  if (hasMessage(key)) return v.t(key);
  if (e.status === 401) return v.t('err.401');
  if (e.status === 403) return v.t('err.403');
  if (e.status === 404) return v.t('err.404');
  if (e.status >= 500) return v.t('err.500');
  return e.message;
}

/** Problem strings carried in an AppError's details (zod problems, audit query issues, CSV header issues). */
export function errorProblems(e: AppError): string[] {
  const d = e.details;
  if (!d) return [];
  const out: string[] = [];
  if (Array.isArray(d.problems)) for (const p of d.problems) if (typeof p === 'string') out.push(p);
  if (Array.isArray(d.issues)) {
    for (const i of d.issues as Record<string, unknown>[]) {
      if (i && typeof i.problem === 'string') out.push(typeof i.param === 'string' && i.param ? `${i.param}: ${i.problem}` : i.problem);
    }
  }
  for (const k of ['unknown', 'missing', 'duplicates'] as const) {
    const list = d[k];
    if (Array.isArray(list) && list.length > 0) out.push(`${k}: ${list.map(String).join(', ')}`);
  }
  return out;
}

/** The error list shown above a form. */
export function errorSummary(v: View, messages: readonly string[]): Html {
  if (messages.length === 0) return html``;
  return html`<div class="notice notice-error" role="alert" tabindex="-1" data-autofocus>
<p>${v.t('form.errors')}</p><ul>${messages.map((m) => html`<li>${m}</li>`)}</ul></div>`;
}

/** Where a 401 page's sign-in link returns to: this page when it is a GET with a short enough URL. */
function returnPath(req: Request): string {
  if (req.method === 'GET' && req.path.startsWith('/console')) {
    if (Buffer.byteLength(req.originalUrl) <= 80) return req.originalUrl;
    if (Buffer.byteLength(req.path) <= 80) return req.path;
  }
  return '/console';
}

/** Body-parser and framework errors become AppErrors with stable codes (as the app's JSON error handler does). */
function normalise(err: unknown): AppError {
  if (isAppError(err)) return err;
  const x = err as { type?: string; status?: number } | null;
  if (x?.type === 'entity.too.large') return new AppError('payload_too_large', 'PAYLOAD_TOO_LARGE', 'The request body is too large.', { cause: err });
  if (typeof x?.status === 'number' && x.status >= 400 && x.status < 500) {
    return new AppError('bad_request', 'BAD_REQUEST', 'The request could not be processed.', { cause: err });
  }
  return new AppError('internal', 'INTERNAL', 'Internal error.', { cause: err });
}

/** Renders any error as the console's HTML error page (status from the AppError kind; no internals on 5xx). */
export function renderError(req: Request, res: Response, err: unknown, ssoEnabled: boolean): void {
  const e = normalise(err);
  const status = e.status;
  if (status >= 500) req.log?.error({ err: e, cause: e.cause }, 'request failed');
  else req.log?.info({ code: e.code, status }, 'request rejected');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const v = viewOf(req, res, ssoEnabled);
  const { t } = v;
  const titleKey = `err.title.${status}`;
  const title = hasMessage(titleKey) ? t(titleKey) : t(status >= 500 ? 'err.title.500' : 'err.title.400');
  const isSamlFailure = req.path === '/saml/acs' && status === 401;
  const message = isSamlFailure ? t('err.loginFailed') : errorMessage(v, e);
  const problems = status < 500 ? errorProblems(e) : [];
  const signIn =
    status === 401
      ? v.ssoEnabled
        ? html`<p><a class="button" href="${href('/saml/login', { returnTo: returnPath(req) })}">${t('err.signIn')}</a></p>`
        : html`<p>${t('err.noSso')}</p>`
      : v.principal
        ? html`<p><a href="/console">${t('err.home')}</a></p>`
        : '';
  const body = html`<div class="notice notice-error" role="alert">${message}</div>
${problems.length > 0 ? html`<ul class="problems">${problems.map((p) => html`<li>${p}</li>`)}</ul>` : ''}
${signIn}
<p class="meta">${t('err.code')}: <code>${e.code}</code>${v.requestId ? html` · ${t('err.requestId')}: <code>${v.requestId}</code>` : ''}</p>`;
  if (e.kind === 'rate_limited') res.setHeader('Retry-After', '60');
  sendPage(res, status, page(v, { title, body }));
}
