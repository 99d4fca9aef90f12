/**
 * CSRF protection for console forms: the synchronizer-token pattern (OWASP CSRF cheat sheet). Each session holds a
 * random 256-bit token created with it (`Session.csrfToken`); pages embed it in a hidden `_csrf` field (or scripts
 * send it as `X-CSRF-Token`), and every state-changing request must present the token of *its own* session,
 * compared in constant time.
 *
 * Why a stored token and not a double-submit cookie: the token is bound to the server-side session, so an attacker
 * who can plant cookies on a sibling subdomain still cannot forge it. SameSite=Lax on the session cookie is a second
 * layer, not the defence.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { forbidden } from '../domain/errors';
import { constantTimeEqual } from '../lib/constant-time';
import { getSession, type Session } from './session';

export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The token a page for this session must embed in its forms. */
export function csrfTokenFor(session: Session): string {
  return session.csrfToken;
}

/**
 * True only when `presented` is a string equal to the session's token. Constant-time in the token contents;
 * anything but a non-empty string is false.
 */
export function verifyCsrfToken(session: Session, presented: unknown): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 256) return false;
  return constantTimeEqual(session.csrfToken, presented);
}

export interface RequireCsrfOptions {
  /**
   * Origins (e.g. `https://gateway.example`) allowed in an `Origin` header. When set, a state-changing request with
   * a different (or `null`) Origin is refused even before the token is checked. Requests without Origin fall back to
   * the token alone (older browsers, same-origin form posts in some engines).
   */
  readonly allowedOrigins?: readonly string[];
}

/**
 * Middleware for unsafe methods (anything but GET/HEAD/OPTIONS): `forbidden`/`CSRF_TOKEN_INVALID` unless a session
 * is loaded (`SessionManager.middleware()` first) and the request presents its token in the `_csrf` body field
 * (parsed by `express.urlencoded` or `express.json` before this) or the `X-CSRF-Token` header;
 * `forbidden`/`CSRF_ORIGIN_MISMATCH` for a foreign Origin when `allowedOrigins` is set. Fails closed.
 */
export function requireCsrf(options: RequireCsrfOptions = {}): RequestHandler {
  const origins = options.allowedOrigins ? new Set(options.allowedOrigins.map((o) => new URL(o).origin)) : null;
  return (req: Request, _res: Response, next: NextFunction) => {
    if (SAFE_METHODS.has(req.method)) return next();
    if (origins) {
      const origin = req.headers.origin;
      if (origin !== undefined && !origins.has(origin)) {
        return next(forbidden('CSRF_ORIGIN_MISMATCH', 'Request came from another site'));
      }
    }
    const session = getSession(req);
    const body = req.body as Record<string, unknown> | undefined;
    const presented = (body && typeof body === 'object' ? body[CSRF_FIELD] : undefined) ?? req.headers[CSRF_HEADER];
    if (!session || !verifyCsrfToken(session, presented)) {
      return next(forbidden('CSRF_TOKEN_INVALID', 'The form expired or did not come from this site; reload and retry'));
    }
    next();
  };
}
