import type { Platform } from '../domain/types';

/** How the connecting username relates to the device. */
export const USERNAME_RULES = ['not_checked', 'owner', 'department'] as const;
export type UsernameRule = (typeof USERNAME_RULES)[number];

/** The connection policy `decide()` applies; a plain value, built from config once and passed in. */
export interface DecisionPolicy {
  /** Echoed in every response and audit entry so a decision can be replayed against the policy that made it. */
  readonly version: string;
  readonly allowedPlatforms: readonly Platform[];
  readonly usernameRule: UsernameRule;
  /** Deny certificates issued more than this many seconds ago; null = no limit (certificate expiry still applies). */
  readonly maxCertificateAgeSeconds: number | null;
  /** Upper bound of `ttl_seconds` in an allow. */
  readonly ttlSeconds: number;
}

/**
 * The keys of the `decisions` config section (src/config/sections/decisions.ts) the policy is built from, declared
 * here structurally so src/policy depends on nothing but src/domain.
 */
export interface DecisionPolicyConfig {
  readonly policyVersion: string;
  readonly allowedPlatforms: readonly Platform[];
  readonly usernameRule: UsernameRule;
  readonly maxCertificateAgeSeconds: number | null;
  readonly ttlSeconds: number;
}

/** Builds the policy value from the `decisions` config section. Pure; the result is frozen. */
export function policyFromConfig(config: DecisionPolicyConfig): DecisionPolicy {
  return Object.freeze({
    version: config.policyVersion,
    allowedPlatforms: Object.freeze([...config.allowedPlatforms]),
    usernameRule: config.usernameRule,
    maxCertificateAgeSeconds: config.maxCertificateAgeSeconds,
    ttlSeconds: config.ttlSeconds,
  });
}
