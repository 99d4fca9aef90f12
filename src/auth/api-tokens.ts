import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { badRequest, unauthorized } from '../domain/errors';
import type { ApiToken, Role } from '../domain/types';
import { ROLES } from '../domain/types';
import type { Clock } from '../lib/clock';
import { constantTimeEqual } from '../lib/constant-time';
import type { ApiTokenStore } from '../store/types';
import type { Principal } from './permissions';

/** Where token creation and revocation are recorded (the audit log); the actor is the caller's audit identity. */
export interface TokenAuditRecorder {
  created(record: ApiToken, actor: Principal): Promise<void>;
  revoked(id: string, actor: Principal): Promise<void>;
}

/**
 * API tokens for automation and concentrators: `dg_<id>_<secret>`, where only SHA-256(secret) is stored. The id
 * makes lookup a key read; the secret is compared in constant time. A valid token is cached briefly so the decision
 * hot path does not pay a store read per request; revocation therefore takes effect within `cacheTtlMs`.
 */
const TOKEN_RE = /^dg_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export interface CreatedApiToken {
  readonly token: string;
  readonly record: ApiToken;
}

/** Valid token texts remembered per instance (a deployment has a few dozen tokens). */
const VERIFIED_CACHE_MAX = 1024;

const sha256hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

export class ApiTokenService {
  private readonly cache = new Map<string, { principal: Principal; until: number; secretHash: string }>();
  /** Token texts that verified, until the same time as `cache`; at most VERIFIED_CACHE_MAX (only valid tokens). */
  private readonly verified = new Map<string, { principal: Principal; until: number; id: string }>();

  constructor(
    private readonly store: ApiTokenStore,
    private readonly clock: Clock,
    private readonly audit: TokenAuditRecorder,
    private readonly cacheTtlMs = 5000,
  ) {}

  /** Creates a token; the plain token is returned once and never stored. */
  async create(input: { name: string; role: string; ttlDays?: number | undefined }, actor: Principal): Promise<CreatedApiToken> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(input.name)) {
      throw badRequest('INVALID_TOKEN_NAME', 'Token names are 1-64 characters of letters, digits, ".", "_" and "-".');
    }
    if (!(ROLES as readonly string[]).includes(input.role)) {
      throw badRequest('INVALID_ROLE', `Role must be one of ${ROLES.join(', ')}.`);
    }
    const now = this.clock.nowMs();
    const id = randomUUID().replace(/-/g, '');
    const secret = randomBytes(32).toString('base64url');
    const record: ApiToken = {
      id,
      name: input.name,
      role: input.role as Role,
      secretHash: sha256hex(secret),
      createdAt: now,
      expiresAt: input.ttlDays ? now + input.ttlDays * 86_400_000 : null,
      revokedAt: null,
    };
    await this.store.create(record);
    await this.audit.created(record, actor);
    return { token: `dg_${id}_${secret}`, record };
  }

  async list(): Promise<ApiToken[]> {
    return this.store.list();
  }

  async revoke(id: string, actor: Principal): Promise<void> {
    await this.store.revoke(id, this.clock.nowMs());
    this.cache.delete(id);
    for (const [text, v] of this.verified) if (v.id === id) this.verified.delete(text);
    await this.audit.revoked(id, actor);
  }

  /** The principal for a presented token, or an `unauthorized` error that does not say which check failed. */
  async verify(presented: string): Promise<Principal> {
    // A token verified within the cache ttl is recognised by its exact text, without hashing it again (the SHA-256
    // was a tenth of a connection decision's own CPU). Only tokens that passed every check below are entered.
    const known = this.verified.get(presented);
    if (known && known.until > this.clock.nowMs()) return known.principal;
    const m = TOKEN_RE.exec(presented);
    const fail = () => unauthorized('INVALID_TOKEN', 'The API token is invalid, expired or revoked.');
    if (!m) throw fail();
    const [, id, secret] = m as unknown as [string, string, string];
    const now = this.clock.nowMs();
    const hash = sha256hex(secret);
    const cached = this.cache.get(id);
    if (cached && cached.until > now) {
      if (!constantTimeEqual(cached.secretHash, hash)) throw fail();
      this.verified.set(presented, { principal: cached.principal, until: cached.until, id });
      return cached.principal;
    }
    const record = await this.store.get(id);
    if (!record || !constantTimeEqual(record.secretHash, hash)) throw fail();
    if (record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= now)) throw fail();
    const principal: Principal = { kind: 'api-token', id: record.id, name: record.name, roles: [record.role] };
    const until = Math.min(now + this.cacheTtlMs, record.expiresAt ?? Number.MAX_SAFE_INTEGER);
    this.cache.set(id, { principal, until, secretHash: record.secretHash });
    if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.clear();
    this.verified.set(presented, { principal, until, id });
    return principal;
  }
}
