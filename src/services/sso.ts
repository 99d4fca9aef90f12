/**
 * SAML single sign-on and browser sessions, wired from configuration: the hardened service provider
 * (`src/auth/saml`), the store-backed `SessionManager` and the hooks that write `admin.login` audit events.
 *
 * Why a failed sign-in is audited without a user name unless the response was verified: the NameID of a response
 * that failed its signature or time checks is whatever the sender wrote; putting it in a record that can never be
 * edited would let anyone plant names in the audit log. Only a verified user refused for another reason (no role,
 * an over-long NameID) is named.
 */
import type { Request, Router } from 'express';
import { forbidden, type AppError } from '../domain/errors';
import type { Principal } from '../auth/permissions';
import { createSamlRouter, loadSamlServiceProvider, type SamlServiceProvider, type SamlUser } from '../auth/saml';
import { SessionManager, type Session } from '../auth/session';
import { resolveSamlUrls, type SamlConfig } from '../config/sections/saml';
import type { AuditRecorder } from './registry';
import type { ServiceDeps } from './index';

/** Where the browser lands after signing out (a public console page). */
export const SIGNED_OUT_PATH = '/console/signed-out';
/** The audit schema's limit for an actor id; a NameID must fit so every action of the user can be audited. */
const MAX_NAME_ID_LENGTH = 200;
/** `user` recorded for a refused response whose NameID was not verified. */
export const UNVERIFIED_USER = '(unverified)';
const CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** The running SSO: everything the HTTP edge needs to mount the SAML endpoints and read sessions. */
export interface Sso {
  readonly sp: SamlServiceProvider;
  readonly sessions: SessionManager;
  /** `GET /saml/metadata`, `GET /saml/login`, `POST /saml/acs`, `POST /saml/logout` (mount at the app root). */
  readonly router: Router;
  /** Origins a state-changing console request may come from (the origin of `server.publicUrl`). */
  readonly allowedOrigins: readonly string[];
  /** True when session cookies carry the Secure flag. */
  readonly cookieSecure: boolean;
  /** IdP metadata and SP configuration warnings, already logged at start-up. */
  readonly warnings: readonly string[];
  /** The principal a live session acts as (audit actor `user:<NameID>` with the session's roles). */
  principalOf(session: Session): Principal;
  close(): Promise<void>;
}

/**
 * A `SessionManager` that refuses users who could not be audited (NameID longer than an audit actor id) and
 * remembers which verified user a refused `create` was for, so the failure hook can name them.
 */
class AuditableSessionManager extends SessionManager {
  readonly refusedUsers = new WeakMap<object, SamlUser>();

  override async create(user: SamlUser, replacedSessionId?: string | null): Promise<Session> {
    try {
      if (user.nameId.length > MAX_NAME_ID_LENGTH) {
        throw forbidden('SAML_NAMEID_TOO_LONG', 'Your account name is too long for devicegate');
      }
      return await super.create(user, replacedSessionId);
    } catch (e) {
      if (e instanceof Error) this.refusedUsers.set(e, user);
      throw e;
    }
  }
}

const peerOf = (req: Request): { ip: string } | null => {
  const ip = req.ip?.replace(/^::ffff:/, '');
  return ip && /^[0-9A-Fa-f.:]+$/.test(ip) ? { ip } : null;
};

/**
 * Builds SSO when `saml.enabled`; null otherwise. Reads the IdP metadata (file or URL) and SP keys named in
 * `saml.*`, and fails start-up with the loader's AppError when they are unusable. Guarantees: sessions are
 * server-side in the shared store with the configured idle and absolute timeouts; cookies are HttpOnly,
 * SameSite=Lax, and Secure when `server.publicUrl` is https or TLS is enabled (unless `saml.session.cookieSecure`
 * says otherwise); every sign-in (success and refusal) writes `admin.login`.
 */
export async function createSso(deps: ServiceDeps & { audit: AuditRecorder }): Promise<Sso | null> {
  const { config, store, clock, logger, audit } = deps;
  if (!config.saml.enabled) return null;
  // The loaded config is deeply readonly; the SAML core only reads it.
  const saml = config.saml as SamlConfig;
  const { sp, warnings } = await loadSamlServiceProvider(saml, { publicUrl: config.publicUrl, store: store.nonces, clock });
  for (const w of warnings) logger.warn({ warning: w }, 'SAML configuration warning');

  const urls = resolveSamlUrls(saml, config.publicUrl);
  const cookieSecure = config.saml.session.cookieSecure ?? (urls.cookieSecure || config.server.tls.enabled);
  const sessions = new AuditableSessionManager({
    store: store.nonces,
    clock,
    idleTimeoutMs: config.saml.session.idleTimeoutSeconds * 1000,
    absoluteTimeoutMs: config.saml.session.absoluteTimeoutSeconds * 1000,
    cookieName: config.saml.session.cookieName,
    cookieSecure,
  });
  const allowedOrigins = [new URL(config.publicUrl).origin];

  const router = createSamlRouter({
    sp,
    sessions,
    csrf: { allowedOrigins },
    afterLogoutPath: SIGNED_OUT_PATH,
    hooks: {
      async onLogin(user, req) {
        // A failing append rejects: the router then answers 500 although the session is open, so the user
        // cannot act unaudited without noticing (every later action is audited on its own anyway).
        await audit.append({
          type: 'admin.login',
          actor: { kind: 'user', id: user.nameId, roles: [...user.roles] },
          data: { user: user.nameId, method: 'saml', outcome: 'success', roles: [...user.roles], peer: peerOf(req) },
        });
      },
      async onLoginRejected(error: AppError, req) {
        const verified = sessions.refusedUsers.get(error);
        try {
          await audit.append({
            type: 'admin.login',
            data: {
              user: verified ? verified.nameId.slice(0, 500) : UNVERIFIED_USER,
              method: 'saml',
              outcome: 'failure',
              roles: verified ? [...verified.roles] : [],
              reason: CODE_RE.test(error.code) ? error.code : 'SAML_RESPONSE_REJECTED',
              peer: peerOf(req),
            },
          });
        } catch (e) {
          // The hook must not throw (the refusal is answered either way); the log keeps the trace.
          logger.error({ err: e, code: error.code }, 'could not audit a refused SAML sign-in');
        }
      },
      async onLogout(session, req) {
        // The session is already gone; a failed append must not make sign-out look failed, so it is logged instead.
        try {
          await audit.append({
            type: 'admin.logout',
            actor: { kind: 'user', id: session.user.nameId, roles: [...session.user.roles] },
            data: {
              user: session.user.nameId.slice(0, 500),
              method: 'saml',
              sessionSeconds: Math.max(0, Math.round((clock.nowMs() - session.createdAt) / 1000)),
              peer: peerOf(req),
            },
          });
        } catch (e) {
          logger.error({ err: e }, 'could not audit a console sign-out');
        }
      },
    },
  });

  return {
    sp,
    sessions,
    router,
    allowedOrigins,
    cookieSecure,
    warnings,
    principalOf: (session) => ({
      kind: 'session',
      id: session.user.nameId,
      name: session.user.displayName,
      roles: [...session.user.roles],
    }),
    async close() {
      // Sessions and request ids live in the store; nothing here holds resources.
    },
  };
}
