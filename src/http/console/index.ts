// PLACEHOLDER owned by the console helper; replaced by the real console.
import { Router } from 'express';
import type { AppDeps } from '../app';
import type { PrincipalResolver } from '../middleware/auth';
import type { RouteTable } from '../route-table';

export function sessionPrincipalResolver(_deps: AppDeps): PrincipalResolver | null {
  return null;
}

export function consoleRoutes(_table: RouteTable, _deps: AppDeps): Router {
  return Router();
}
