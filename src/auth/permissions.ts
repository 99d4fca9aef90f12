import type { Role } from '../domain/types';

/**
 * Role-based access in one place. Routes name the permission they need (see src/http/route-table.ts); this table
 * says which role holds which permission. A test walks every route × every role × unauthenticated against it.
 *
 * Why auditors cannot write and IT cannot read raw audit logs by default: BSI OPS.1.1.5 A10 separates those who
 * administer from those who control; `audit.itAdminMayReadAudit` relaxes the second rule where an office needs it.
 */
export const PERMISSIONS = [
  'devices:read',
  'devices:write',
  'tokens:manage',
  'certificates:read',
  'certificates:revoke',
  'audit:read',
  'decisions:create',
  'console:use',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  'it-admin': ['devices:read', 'devices:write', 'tokens:manage', 'certificates:read', 'certificates:revoke', 'console:use'],
  auditor: ['audit:read', 'devices:read', 'certificates:read', 'console:use'],
  concentrator: ['decisions:create'],
  viewer: ['devices:read', 'console:use'],
};

export interface AccessOptions {
  /** `audit.itAdminMayReadAudit`. */
  readonly itAdminMayReadAudit: boolean;
}

/** True when `role` holds `permission` under the configured options. */
export function roleHas(role: Role, permission: Permission, options: AccessOptions): boolean {
  if (permission === 'audit:read' && role === 'it-admin') return options.itAdminMayReadAudit;
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** Who is calling: an API token (automation, concentrators) or a signed-in person (SAML session). */
export interface Principal {
  readonly kind: 'api-token' | 'session';
  /** Token id or SAML NameID. */
  readonly id: string;
  /** Token name or display name. */
  readonly name: string;
  readonly roles: readonly Role[];
}

/** A stable audit `actor` string for a principal, e.g. `api-token:ovpn-1` or `user:erika@stadt.example`. */
export const actorOf = (p: Principal | null | undefined): string =>
  !p ? 'anonymous' : p.kind === 'api-token' ? `api-token:${p.name}` : `user:${p.id}`;
