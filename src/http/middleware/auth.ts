import type { RequestHandler } from 'express';
import type { ApiTokenService } from '../../auth/api-tokens';
import { roleHas, type AccessOptions, type Permission, type Principal } from '../../auth/permissions';
import { forbidden, unauthorized } from '../../domain/errors';

declare module 'express-serve-static-core' {
  interface Request {
    /** Who is calling, once `authenticate` has run; undefined for anonymous callers. */
    principal?: Principal;
  }
  interface Locals {
    access?: AccessOptions;
  }
}

/** Extra ways to recognise a caller (the SAML session adds one). Return null when not applicable. */
export type PrincipalResolver = (req: Parameters<RequestHandler>[0]) => Promise<Principal | null>;

/**
 * Resolves the caller from `Authorization: Bearer <api token>` or from the other resolvers. A presented but invalid
 * token is an error (401) even on routes that would allow anonymous access: a broken credential is never silently
 * ignored.
 */
export function authenticate(apiTokens: ApiTokenService, access: AccessOptions, resolvers: PrincipalResolver[] = []): RequestHandler {
  return (req, res, next) => {
    res.locals.access = access;
    const header = req.headers.authorization;
    const run = async (): Promise<void> => {
      if (header !== undefined) {
        const m = /^Bearer\s+(\S+)$/i.exec(header);
        if (!m) throw unauthorized('INVALID_AUTHORIZATION', 'Authorization must be "Bearer <token>".');
        req.principal = await apiTokens.verify(m[1] as string);
        return;
      }
      for (const resolve of resolvers) {
        const p = await resolve(req);
        if (p) {
          req.principal = p;
          return;
        }
      }
    };
    run().then(() => next(), next);
  };
}

/** 401 without a principal, 403 when none of the principal's roles holds `permission`. */
export function authorize(permission: Permission): RequestHandler {
  return (req, res, next) => {
    const p = req.principal;
    if (!p) {
      next(unauthorized('AUTHENTICATION_REQUIRED', 'Authentication required.'));
      return;
    }
    const access = res.locals.access ?? { itAdminMayReadAudit: false };
    if (!p.roles.some((r) => roleHas(r, permission, access))) {
      next(forbidden('FORBIDDEN', `Your role may not do this (needs ${permission}).`));
      return;
    }
    next();
  };
}
