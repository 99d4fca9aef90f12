/**
 * The SAML endpoints as an express router: `GET /saml/metadata`, `GET /saml/login`, `POST /saml/acs`,
 * `POST /saml/logout`. Handlers stay thin: the strategy validates, `SessionManager` opens and ends sessions,
 * failures become AppErrors for the app's single error middleware.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { AppError, badRequest, unauthorized } from '../../domain/errors';
import { requireCsrf, type RequireCsrfOptions } from '../csrf';
import { getSession, type Session, type SessionManager } from '../session';
import type { SamlUser } from './profile';
import { SAML_STRATEGY_NAME, type SamlServiceProvider } from './service-provider';

export interface SamlRouterHooks {
  /** After a session was opened (audit `auth.login`). Errors are passed to `next`, the session stays. */
  onLogin?(user: SamlUser, req: Request): Promise<void> | void;
  /** After a response was refused (audit `auth.login_rejected`, metrics). Must not throw. */
  onLoginRejected?(error: AppError, req: Request): Promise<void> | void;
  /** After a session was ended by the user (audit `auth.logout`). */
  onLogout?(session: Session, req: Request): Promise<void> | void;
}

export interface SamlRouterDeps {
  readonly sp: SamlServiceProvider;
  readonly sessions: SessionManager;
  readonly csrf?: RequireCsrfOptions;
  readonly hooks?: SamlRouterHooks;
  /** Where to land after logout; a same-origin path. Default `/`. */
  readonly afterLogoutPath?: string;
}

/** saml-bindings §3.4.3/§3.5.3: "RelayState data MUST NOT exceed 80 bytes in length". */
const MAX_RELAY_STATE = 80;
/** A SAML response larger than this is not from a sane IdP. */
const MAX_ACS_BODY = '512kb';

/**
 * Returns `p` when it is a same-origin absolute path (`/x`, not `//host`, `/\host`, or with control characters),
 * else `/`. Used for `returnTo` on the way out and again for RelayState on the way back, because RelayState is
 * unsigned and passes through the browser: an open redirect here would turn our login into a phishing aid.
 */
export function safeReturnPath(p: unknown): string {
  if (typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > MAX_RELAY_STATE) return '/';
  if (!p.startsWith('/') || p.startsWith('//') || p.startsWith('/\\')) return '/';
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return '/';
  }
  return p;
}

/**
 * Maps a failure from node-saml (plain `Error`s with fixed messages) or from our checks (`AppError`) to an
 * `unauthorized` AppError with a stable code; the original is kept as `cause` for the log only.
 */
export function classifySamlError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const rules: [RegExp, string][] = [
    [/InResponseTo is (not valid|missing)|SubjectInResponseTo is not valid|InResponseTo does not match/i, 'SAML_UNKNOWN_REQUEST'],
    [/multiple assertions|too many signatures|ID cannot refer|Referenced node|too many transforms/i, 'SAML_SIGNATURE_INVALID'],
    [/Invalid (document )?signature|Invalid signature/i, 'SAML_SIGNATURE_INVALID'],
    [/expired|too old/i, 'SAML_EXPIRED'],
    [/not yet valid/i, 'SAML_NOT_YET_VALID'],
    [/No valid subject confirmation/i, 'SAML_EXPIRED'],
    [/audience|AudienceRestriction/i, 'SAML_AUDIENCE_MISMATCH'],
    [/SAML provider returned/i, 'SAML_IDP_ERROR'],
    [/decrypt|EncryptedAssertion/i, 'SAML_DECRYPTION_FAILED'],
  ];
  const code = rules.find(([re]) => re.test(msg))?.[1] ?? 'SAML_RESPONSE_REJECTED';
  return unauthorized(code, 'Sign-in failed: the identity provider response was not accepted', { cause: err });
}

/** Builds the router. Mount at the app root: `app.use(createSamlRouter(deps))`. */
export function createSamlRouter(deps: SamlRouterDeps): Router {
  const { sp, sessions } = deps;
  const hooks = deps.hooks ?? {};
  const afterLogout = safeReturnPath(deps.afterLogoutPath ?? '/');
  const router = express.Router();

  router.get('/saml/metadata', (_req: Request, res: Response) => {
    res.type('application/samlmetadata+xml').set('Cache-Control', 'public, max-age=300').send(sp.metadataXml());
  });

  router.get('/saml/login', (req: Request, res: Response, next: NextFunction) => {
    const relayState = safeReturnPath(req.query.returnTo);
    res.set('Cache-Control', 'no-store');
    // The strategy issues the AuthnRequest (its id goes to the store-backed cache) and redirects to the IdP.
    // passport-saml reads `additionalParams` (not in passport's own option type) and puts them on the redirect URL.
    const options = { session: false, additionalParams: { RelayState: relayState } } as { session: boolean };
    const start = sp.passport.authenticate(SAML_STRATEGY_NAME, options, (err: unknown) =>
      next(err ? classifySamlError(err) : unauthorized('SAML_LOGIN_FAILED', 'Sign-in could not be started')),
    ) as RequestHandler;
    void start(req, res, next);
  });

  router.post(
    '/saml/acs',
    express.urlencoded({ extended: false, limit: MAX_ACS_BODY, parameterLimit: 10 }),
    sessions.middleware(),
    (req: Request, res: Response, next: NextFunction) => {
      const body = req.body as Record<string, unknown> | undefined;
      // Only POST-binding responses belong here; the strategy would also act on a LogoutRequest or on query
      // parameters, which we do not offer on this endpoint.
      if (!body || typeof body.SAMLResponse !== 'string' || body.SAMLRequest !== undefined || 'SAMLResponse' in req.query || 'SAMLRequest' in req.query) {
        return next(badRequest('SAML_RESPONSE_MISSING', 'Expected a SAMLResponse form field'));
      }
      const rejected = (e: AppError) => {
        Promise.resolve(hooks.onLoginRejected?.(e, req)).then(
          () => next(e),
          () => next(e),
        );
      };
      const verify = sp.passport.authenticate(SAML_STRATEGY_NAME, { session: false }, (err: unknown, user: unknown) => {
        if (err) return rejected(classifySamlError(err));
        if (!user) return rejected(unauthorized('SAML_RESPONSE_REJECTED', 'Sign-in failed'));
        const samlUser = user as SamlUser;
        const previous = getSession(req)?.id ?? sessions.readSessionId(req);
        sessions
          .create(samlUser, previous)
          .then(async (session) => {
            sessions.setCookie(res, session);
            try {
              await hooks.onLogin?.(samlUser, req);
            } catch (hookError) {
              // The session is open; a failing audit hook is the app's error, not a rejected login.
              return next(hookError);
            }
            res.set('Cache-Control', 'no-store').redirect(303, safeReturnPath(body.RelayState));
          })
          .catch((e: unknown) => (e instanceof AppError ? rejected(e) : next(e)));
      }) as RequestHandler;
      void verify(req, res, next);
    },
  );

  const csrf = requireCsrf(deps.csrf);
  router.post(
    '/saml/logout',
    express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }),
    sessions.middleware(),
    (req: Request, res: Response, next: NextFunction) => {
      // Without a session there is nothing to end (and nothing to forge): just land on the logout page.
      if (!getSession(req)) {
        sessions.clearCookie(res);
        return void res.redirect(303, afterLogout);
      }
      csrf(req, res, next);
    },
    (req: Request, res: Response, next: NextFunction) => {
      const session = getSession(req) as Session;
      sessions
        .destroy(session.id)
        .then(async () => {
          sessions.clearCookie(res);
          await hooks.onLogout?.(session, req);
          res.set('Cache-Control', 'no-store').redirect(303, afterLogout);
        })
        .catch(next);
    },
  );

  return router;
}
