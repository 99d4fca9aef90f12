/**
 * Key layout. Keys that one Lua script touches together share a hash tag (`{dev}`, `{pki}`, `{tok}`, `{audit}`) so
 * the scripts also run on Redis Cluster; keys that are only ever touched alone (nonces, rate-limit counters,
 * enrollment tokens) carry their own tag so they spread over the cluster.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  device = (id: string): string => `${this.prefix}:{dev}:d:${id}`;
  devicePrefix = (): string => `${this.prefix}:{dev}:d:`;
  deviceSerials = (): string => `${this.prefix}:{dev}:serial`;
  deviceEks = (): string => `${this.prefix}:{dev}:ek`;
  deviceOrder = (): string => `${this.prefix}:{dev}:order`;

  enrollmentToken = (hash: string): string => `${this.prefix}:et:{${hash}}`;

  certificate = (serial: string): string => `${this.prefix}:{pki}:c:${serial}`;
  certificateSha = (): string => `${this.prefix}:{pki}:sha`;
  certificatesOfDevice = (deviceId: string): string => `${this.prefix}:{pki}:dev:${deviceId}`;
  revocation = (serial: string): string => `${this.prefix}:{pki}:r:${serial}`;
  revocationOrder = (): string => `${this.prefix}:{pki}:rorder`;
  revocationSeq = (): string => `${this.prefix}:{pki}:rseq`;
  revocationGeneration = (): string => `${this.prefix}:{pki}:rgen`;

  nonce = (key: string): string => `${this.prefix}:n:{${key}}`;
  rateLimit = (key: string, windowStart: number): string => `${this.prefix}:rl:{${key}}:${windowStart}`;

  apiToken = (id: string): string => `${this.prefix}:{tok}:t:${id}`;
  apiTokenNames = (): string => `${this.prefix}:{tok}:names`;
  apiTokenOrder = (): string => `${this.prefix}:{tok}:order`;

  auditHead = (): string => `${this.prefix}:{audit}:head`;
  auditEntries = (): string => `${this.prefix}:{audit}:e`;
  auditEventIds = (): string => `${this.prefix}:{audit}:ids`;
  auditFirst = (): string => `${this.prefix}:{audit}:first`;
  auditTimeIndex = (): string => `${this.prefix}:{audit}:ix:all`;
  auditIndexPrefix = (): string => `${this.prefix}:{audit}:ix:`;
  auditIndex = (field: string, value: string): string => `${this.prefix}:{audit}:ix:${field}:${value}`;

  channel = (topic: string): string => `${this.prefix}:events:${topic}`;
}

/** Fixed-width member so that lexicographic order in a zset equals numeric order. */
export const padded = (n: number): string => String(n).padStart(16, '0');
