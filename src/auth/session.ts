/**
 * Server-side console sessions over the shared `NonceStore` (SQLite or Redis), so every gateway instance sees the
 * same sessions and logout is immediate everywhere.
 *
 * Design, and why:
 * - The cookie holds only a random 256-bit id. The store key is the SHA-256 of that id, so a copy of the store (a
 *   backup, a Redis replica) does not hand out live cookies.
 * - Two entries per session: `session:<h>` (the record, written once at login, TTL = absolute timeout) and
 *   `session-seen:<h>` (last activity, rewritten at most every `touchIntervalMs`, TTL = idle timeout). A session is
 *   live only while both exist. Keeping the record write-once means a request racing a logout can at worst re-create
 *   the small "seen" entry, never resurrect the session (the store has no compare-and-set for overwrites).
 * - Every login gets a fresh id and the id presented with the login (if any) is destroyed: no session fixation.
 * - Cookie: HttpOnly, SameSite=Lax (sent on top-level navigation, not on cross-site POSTs), Secure when the
 *   gateway is reached over TLS, Path=/, Max-Age = absolute timeout.
 */
import { createHash } from 'node:crypto';
import type { CookieOptions, NextFunction, Request, RequestHandler, Response } from 'express';
import { unauthorized, forbidden } from '../domain/errors';
import type { Clock } from '../lib/clock';
import { newSecret } from '../lib/ids';
import type { NonceStore } from '../store/types';
import { isAlreadyExists } from '../store/errors';
import { SAML_ROLES, type SamlRole } from './roles';
import type { SamlUser } from './saml/profile';

export const SESSION_KEY_PREFIX = 'session:';
export const SESSION_SEEN_KEY_PREFIX = 'session-seen:';
/** 32 random bytes, base64url without padding. */
const SESSION_ID_RE = /^[A-Za-z0-9_-]{43}$/;

/** A live session as handlers see it. */
export interface Session {
  /** The cookie value. Never log it. */
  readonly id: string;
  readonly user: SamlUser;
  /** Synchronizer token for CSRF protection of this session's forms (see csrf.ts). */
  readonly csrfToken: string;
  readonly createdAt: number;
  /** Absolute end, epoch ms. */
  readonly expiresAt: number;
  readonly lastSeenAt: number;
}

interface StoredSession {
  readonly v: 1;
  readonly user: SamlUser;
  readonly csrfToken: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface SessionManagerOptions {
  readonly store: NonceStore;
  readonly clock: Clock;
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
  readonly cookieName: string;
  /** True when the gateway is reached over https (`saml.session.cookieSecure`, resolved). */
  readonly cookieSecure: boolean;
  /** Minimum time between activity writes; default min(60 s, idle/10). Idle expiry may come this much early. */
  readonly touchIntervalMs?: number;
}

const loaded = new WeakMap<Request, Session>();

/** The session `SessionManager.middleware()` loaded for this request, or null. */
export function getSession(req: Request): Session | null {
  return loaded.get(req) ?? null;
}

/**
 * Creates, loads, touches and destroys sessions; sets and clears the cookie; provides the express middleware.
 */
export class SessionManager {
  readonly cookieName: string;
  private readonly o: SessionManagerOptions;
  private readonly touchIntervalMs: number;

  constructor(options: SessionManagerOptions) {
    const { idleTimeoutMs: idle, absoluteTimeoutMs: abs } = options;
    if (!Number.isInteger(idle) || idle <= 0 || !Number.isInteger(abs) || abs <= 0 || idle > abs) {
      throw new TypeError('session timeouts must be positive integers with idle <= absolute');
    }
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(options.cookieName)) throw new TypeError('invalid session cookie name');
    this.o = options;
    this.cookieName = options.cookieName;
    this.touchIntervalMs = Math.max(0, Math.min(options.touchIntervalMs ?? Math.min(60_000, Math.floor(idle / 10)), idle));
  }

  /**
   * Opens a new session for `user` with a fresh random id, destroying `replacedSessionId` first (rotation on
   * login). Refuses a user without a role (`forbidden`/`SAML_NO_ROLE`): a session is only ever created for
   * someone the console can authorise.
   */
  async create(user: SamlUser, replacedSessionId?: string | null): Promise<Session> {
    if (user.roles.length === 0 || !user.roles.every((r) => (SAML_ROLES as readonly string[]).includes(r))) {
      throw forbidden('SAML_NO_ROLE', 'Your account has no devicegate role');
    }
    if (replacedSessionId) await this.destroy(replacedSessionId);
    const now = this.o.clock.nowMs();
    const record: StoredSession = {
      v: 1,
      user: { ...user, roles: [...user.roles] },
      csrfToken: newSecret(32),
      createdAt: now,
      expiresAt: now + this.o.absoluteTimeoutMs,
    };
    for (let attempt = 0; ; attempt++) {
      const id = newSecret(32);
      const h = hashId(id);
      try {
        await this.o.store.put(SESSION_KEY_PREFIX + h, JSON.stringify(record), this.o.absoluteTimeoutMs, now);
      } catch (e) {
        // A 256-bit collision is not going to happen; the retry only keeps the contract "never overwrite".
        if (isAlreadyExists(e) && attempt < 2) continue;
        throw e;
      }
      await this.o.store.put(SESSION_SEEN_KEY_PREFIX + h, String(now), this.o.idleTimeoutMs, now, { overwrite: true });
      return { id, user: record.user, csrfToken: record.csrfToken, createdAt: now, expiresAt: record.expiresAt, lastSeenAt: now };
    }
  }

  /**
   * The live session for `id`, or null when unknown, malformed, idle-expired or past its absolute end (expired
   * sessions are deleted). Counts as activity: refreshes the idle timer, at most once per `touchIntervalMs`.
   */
  async get(id: string): Promise<Session | null> {
    if (!SESSION_ID_RE.test(id)) return null;
    const h = hashId(id);
    const now = this.o.clock.nowMs();
    const [raw, seenRaw] = await Promise.all([
      this.o.store.get(SESSION_KEY_PREFIX + h, now),
      this.o.store.get(SESSION_SEEN_KEY_PREFIX + h, now),
    ]);
    if (raw === null) return null;
    const record = parseRecord(raw);
    const lastSeenAt = seenRaw === null ? Number.NaN : Number(seenRaw);
    // The store's TTLs already enforce both timeouts; the explicit checks keep that true even for a back-end
    // whose expiry is lazy or coarse.
    if (
      record === null ||
      !Number.isFinite(lastSeenAt) ||
      now >= record.expiresAt ||
      now - lastSeenAt >= this.o.idleTimeoutMs
    ) {
      await this.destroy(id);
      return null;
    }
    let seen = lastSeenAt;
    if (now - lastSeenAt >= this.touchIntervalMs) {
      const ttl = Math.min(this.o.idleTimeoutMs, record.expiresAt - now);
      await this.o.store.put(SESSION_SEEN_KEY_PREFIX + h, String(now), ttl, now, { overwrite: true });
      seen = now;
    }
    return { id, user: record.user, csrfToken: record.csrfToken, createdAt: record.createdAt, expiresAt: record.expiresAt, lastSeenAt: seen };
  }

  /** Ends the session everywhere. Idempotent; malformed ids are ignored. */
  async destroy(id: string): Promise<void> {
    if (!SESSION_ID_RE.test(id)) return;
    const h = hashId(id);
    await this.o.store.delete(SESSION_KEY_PREFIX + h);
    await this.o.store.delete(SESSION_SEEN_KEY_PREFIX + h);
  }

  /** The session id presented in the request's cookie header (first occurrence), or null. */
  readSessionId(req: Request): string | null {
    return readCookie(req.headers.cookie, this.cookieName);
  }

  /** Sets the session cookie on `res`. */
  setCookie(res: Response, session: Session): void {
    res.cookie(this.cookieName, session.id, { ...this.cookieOptions(), maxAge: this.o.absoluteTimeoutMs });
  }

  /** Expires the session cookie on `res`. */
  clearCookie(res: Response): void {
    res.clearCookie(this.cookieName, this.cookieOptions());
  }

  /**
   * Middleware: loads the session named by the cookie (if live) so `getSession(req)` returns it; clears a stale
   * cookie. Never rejects a request itself; use `requireSession` for that.
   */
  middleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const id = this.readSessionId(req);
      if (id === null) return next();
      this.get(id).then(
        (session) => {
          if (session) loaded.set(req, session);
          else this.clearCookie(res);
          next();
        },
        (err: unknown) => next(err),
      );
    };
  }

  /**
   * Middleware: `unauthorized`/`SESSION_REQUIRED` unless a live session is loaded; with `roles`, additionally
   * `forbidden`/`ROLE_REQUIRED` unless the user holds one of them. Mount after `middleware()`.
   */
  requireSession(roles?: readonly SamlRole[]): RequestHandler {
    return (req: Request, _res: Response, next: NextFunction) => {
      const session = getSession(req);
      if (!session) return next(unauthorized('SESSION_REQUIRED', 'Sign in first'));
      if (roles && !session.user.roles.some((r) => roles.includes(r))) {
        return next(forbidden('ROLE_REQUIRED', 'Your role does not allow this'));
      }
      next();
    };
  }

  private cookieOptions(): CookieOptions {
    return { httpOnly: true, secure: this.o.cookieSecure, sameSite: 'lax', path: '/' };
  }
}

/** Parses one cookie out of a `Cookie` header without a dependency; returns the first occurrence. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return null;
    }
  }
  return null;
}

function hashId(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

function parseRecord(raw: string): StoredSession | null {
  try {
    const r = JSON.parse(raw) as Partial<StoredSession>;
    if (
      r.v !== 1 ||
      typeof r.csrfToken !== 'string' ||
      typeof r.createdAt !== 'number' ||
      typeof r.expiresAt !== 'number' ||
      !r.user ||
      typeof r.user.nameId !== 'string' ||
      !Array.isArray(r.user.roles)
    ) {
      return null;
    }
    return r as StoredSession;
  } catch {
    return null;
  }
}
