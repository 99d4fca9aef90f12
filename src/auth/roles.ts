/**
 * SAML groups → console roles. The mapping is configuration (`saml.roleMapping`); this file only applies it.
 *
 * Why exact, case-sensitive matching: group values are identifiers chosen by the IdP administrator (names, DNs or
 * object GUIDs). Folding case or trimming would let a differently-named group that an ordinary user can create in
 * some directories ("it-Admins" next to "IT-Admins") grant a role; an admin who wants several spellings lists them.
 */
import { SAML_ROLES, type SamlRole } from '../config/sections/saml';

export { SAML_ROLES, type SamlRole };

/** Role → the IdP group values that grant it. */
export type RoleMapping = Readonly<Record<SamlRole, readonly string[]>>;

/** Upper bounds so a hostile or broken IdP cannot make us build huge arrays. */
const MAX_GROUPS = 1000;
const MAX_GROUP_LENGTH = 1024;

/**
 * Normalises a SAML attribute value as node-saml returns it (a string, an array of strings, or XML objects for
 * complex values) into a list of group strings. Non-string values and over-long entries are dropped, never coerced:
 * a complex value can never accidentally equal a configured group name.
 */
export function extractGroups(value: unknown): string[] {
  const raw = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const out: string[] = [];
  for (const v of raw.slice(0, MAX_GROUPS)) {
    if (typeof v === 'string' && v.length > 0 && v.length <= MAX_GROUP_LENGTH) out.push(v);
  }
  return out;
}

/**
 * The roles granted by `groups` under `mapping`, deduplicated, in the fixed order of `SAML_ROLES`. A user whose
 * groups match nothing gets an empty list (no role; callers deny). Never returns a role outside `SAML_ROLES`.
 */
export function mapGroupsToRoles(groups: readonly string[], mapping: RoleMapping): SamlRole[] {
  const held = new Set(groups);
  return SAML_ROLES.filter((role) => (mapping[role] ?? []).some((g) => held.has(g)));
}
