import type { Role } from '../../src/domain/types';
import { cliPrincipal } from '../../src/services/actors';
import type { Services } from '../../src/services';

/** Creates an API token of `role` through the real service and returns the `Authorization` header value. */
export async function bearer(services: Services, role: Role, name = `${role}-${Math.random().toString(36).slice(2, 8)}`): Promise<string> {
  const { token } = await services.apiTokens.create({ name, role }, cliPrincipal());
  return `Bearer ${token}`;
}
