import type { Principal } from '../auth/permissions';
import type { AuditActor } from '../audit/events';

/** The audit `actor` for a principal: a person by SAML NameID, or an API token by its (unique) name. */
export function auditActor(p: Principal): AuditActor {
  if (p.kind === 'session') return { kind: 'user', id: p.id, roles: [...p.roles] };
  return { kind: 'token', id: p.name, role: p.roles[0] ?? 'viewer' };
}

/** The principal of the local command line (IT running `devicegate …` on the gateway host). */
export function cliPrincipal(): Principal {
  const user = process.env.SUDO_USER ?? process.env.USER ?? 'unknown';
  return { kind: 'session', id: `cli:${user}`, name: user, roles: ['it-admin'] };
}
