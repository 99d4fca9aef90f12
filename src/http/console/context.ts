import type { Request, RequestHandler, Response, Router } from 'express';
import type { Permission } from '../../auth/permissions';
import { badRequest } from '../../domain/errors';
import type { Sso } from '../../services/sso';
import type { AppDeps } from '../app';
import type { HttpMethod, RouteTable } from '../route-table';
import type { AuditAccessService } from '../../services/audit-access';
import type { View } from './view';

/** What the page modules need to register their routes. */
export interface ConsoleContext {
  readonly deps: AppDeps;
  readonly sso: Sso | null;
  readonly audit: AuditAccessService;
  /** Registers a route through the route table (so the RBAC walk and the OpenAPI check see it). */
  add(method: HttpMethod, path: string, access: Permission | 'public', ...handlers: RequestHandler[]): void;
  /** Body parsing plus CSRF check for a state-changing form (`limit` in bytes, default 64 KiB). */
  form(limit?: number): RequestHandler[];
  view(req: Request, res: Response): View;
  readonly router: Router;
  readonly table: RouteTable;
}

/** A single optional string from a query or form body: absent or empty → undefined; repeated → 400. */
export function field(source: unknown, name: string, maxLength = 500): string | undefined {
  const v = (source as Record<string, unknown> | undefined)?.[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw badRequest('INVALID_FORM', `"${name}" must be given once.`);
  if (v.length > maxLength) throw badRequest('INVALID_FORM', `"${name}" is too long (at most ${maxLength} characters).`);
  return v;
}
