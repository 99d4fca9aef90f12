import type { RequestHandler, Router } from 'express';
import type { Permission } from '../auth/permissions';
import { authorize } from './middleware/auth';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One route: how it is reached and who may call it. Public routes carry their own proof (token, nonce, none). */
export interface RouteSpec {
  readonly method: HttpMethod;
  /** Express path relative to the app root, e.g. `/v1/devices/:id`. */
  readonly path: string;
  readonly access: Permission | 'public';
}

/**
 * Every route of the app, collected as routers register them. The OpenAPI coverage test and the RBAC walk test read
 * it, so a route cannot exist without documentation and an access rule.
 */
export class RouteTable {
  readonly routes: RouteSpec[] = [];

  /** Registers `handlers` on `router` behind the access check the spec names. `prefix` is the router's mount path. */
  add(router: Router, prefix: string, spec: RouteSpec, ...handlers: RequestHandler[]): void {
    const full: RouteSpec = { ...spec, path: `${prefix}${spec.path}` };
    this.routes.push(full);
    const guard = spec.access === 'public' ? [] : [authorize(spec.access)];
    router[spec.method](spec.path, ...guard, ...handlers);
  }
}

/** `/v1/devices/:id` → `/v1/devices/{id}`, `/v1/ocsp/*request` → `/v1/ocsp/{request}` (OpenAPI path templates). */
export const toOpenApiPath = (expressPath: string): string => expressPath.replace(/[:*]([A-Za-z0-9_]+)/g, '{$1}');
