import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { normalizeSha256Fingerprint } from '../../concentrator/fingerprint';
import type { GatewayAnswer, GatewayClient } from '../gateway-client';
import type { AdapterLogger } from '../log';
import { readCachedDecision, writeCachedDecision } from './decision-cache';
import { type OpenVpnEnv, requestFromOpenVpnEnv } from './env';

/** Settings of `devicegate-openvpn hook`. */
export interface HookOptions {
  readonly gateway: GatewayClient;
  readonly gatewayId: string;
  /** Local decision cache file (needed for `--tls-verify`; written after every decision). */
  readonly cachePath: string | null;
  /** Longest time a cached allow is trusted (also capped by the decision's ttl). */
  readonly cacheTtlSeconds: number;
  /**
   * On a cache miss in `--tls-verify`: `ask` devicegate synchronously (bounded by the hard timeout), or `defer` to the
   * deferred `--auth-user-pass-verify` / `--client-connect` hooks, which must then be configured.
   */
  readonly tlsVerifyMiss: 'ask' | 'defer';
  /** This process is the detached background half of a deferred hook. */
  readonly deferredChild: boolean;
  /** Starts the detached background half: same command, `--deferred-child`, positional args and the given env. */
  readonly spawnDeferred: (args: readonly string[], env: Record<string, string>) => void;
  readonly log: AdapterLogger;
  readonly nowMs: () => number;
}

/** Exit codes OpenVPN understands. */
const ALLOW = 0;
const DENY = 1;
const DEFERRED = 2;

const str = (env: OpenVpnEnv, k: string): string | null => {
  const v = env[k];
  return typeof v === 'string' && v !== '' ? v : null;
};

function sha(env: OpenVpnEnv): string | null {
  const raw = str(env, 'tls_digest_sha256_0');
  if (!raw) return null;
  try {
    return normalizeSha256Fingerprint(raw);
  } catch {
    return null;
  }
}

function remember(options: HookOptions, env: OpenVpnEnv, answer: GatewayAnswer): void {
  const key = sha(env);
  if (!options.cachePath || !key) return;
  // Only answers devicegate actually gave are cached; a local "gateway down" deny is not, so it cannot outlive the outage.
  const r = answer.response;
  if (!r) return;
  const ttl = Math.min(options.cacheTtlSeconds, answer.allow ? r.ttl_seconds : options.cacheTtlSeconds);
  if (ttl <= 0) return;
  writeCachedDecision(
    options.cachePath,
    key,
    { decision: answer.allow ? 'allow' : 'deny', reason_code: r.reason_code, decision_id: r.decision_id, expires_at_ms: options.nowMs() + ttl * 1000 },
    options.nowMs(),
  );
}

function logAnswer(options: HookOptions, hook: string, answer: GatewayAnswer): void {
  options.log.info(answer.allow ? 'allow' : 'deny', {
    hook,
    reason: answer.allow ? 'OK' : answer.reasonCode,
    decisionId: answer.allow ? answer.response.decision_id : answer.decisionId,
    failure: answer.allow ? null : answer.failure,
  });
}

/** Reads the username from a `via-file` credentials file (line 1); the password (line 2) is never read or sent. */
function usernameFromFile(file: string | undefined): string | null {
  try {
    if (!file || !existsSync(file)) return null;
    const first = readFileSync(file, 'utf8').split('\n')[0] ?? '';
    return first.trim() === '' ? null : first.trim();
  } catch {
    return null;
  }
}

function readPem(env: OpenVpnEnv): string | undefined {
  const f = str(env, 'peer_cert');
  try {
    return f && existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

function write(file: string | null, content: string): boolean {
  if (!file) return false;
  try {
    writeFileSync(file, content);
    return true;
  } catch {
    return false;
  }
}

/**
 * `devicegate-openvpn hook`: the OpenVPN script-hook adapter (fallback to the management daemon), dispatched on
 * `$script_type` (concentrators.md §8.4, recipe openvpn.md):
 *
 * - `tls-verify` (args `depth subject`): only depth 0 is judged; decided from the local cache; a miss asks devicegate
 *   (`ask`) or passes to the deferred hooks (`defer`). The caller enforces the hard timeout (it blocks OpenVPN).
 * - `user-pass-verify`: deferred through `$auth_control_file` (exit 2, background writes `1`/`0`, the client message
 *   into `$auth_failed_reason_file` first); synchronous when OpenVPN offers no control file.
 * - `client-connect`: deferred through `$client_connect_deferred_file` (`2`, later push config into
 *   `$client_connect_config_file`, then `1`/`0`).
 * - `client-disconnect`: reports bytes and duration (`event: disconnect`); always exit 0.
 *
 * Guarantees (fail closed): an allow (exit 0 / `1` in a control file) only follows an explicit allow from devicegate
 * or an unexpired cached allow for the same certificate fingerprint; an unknown `script_type`, a missing fingerprint,
 * a gateway error or timeout, and an unwritable control file are denies.
 */
export async function runHook(args: readonly string[], env: OpenVpnEnv, options: HookOptions): Promise<number> {
  const type = str(env, 'script_type');
  switch (type) {
    case 'tls-verify':
      return tlsVerify(args, env, options);
    case 'user-pass-verify':
      return userPassVerify(args, env, options);
    case 'client-connect':
      return clientConnect(args, env, options);
    case 'client-disconnect':
      return clientDisconnect(env, options);
    default:
      options.log.error('unsupported script_type; denying', { scriptType: type });
      return DENY;
  }
}

async function tlsVerify(args: readonly string[], env: OpenVpnEnv, options: HookOptions): Promise<number> {
  // Chain elements above the leaf were verified by OpenSSL against --ca; the device decision is about depth 0.
  if (args[0] !== '0') return args[0] !== undefined && /^\d+$/.test(args[0]) ? ALLOW : DENY;
  const key = sha(env);
  if (!key) {
    options.log.error('tls-verify without a SHA-256 fingerprint; denying');
    return DENY;
  }
  if (options.cachePath) {
    const hit = readCachedDecision(options.cachePath, key, options.nowMs());
    if (hit) {
      options.log.info(`cache ${hit.decision}`, { hook: 'tls-verify', reason: hit.reason_code, decisionId: hit.decision_id });
      return hit.decision === 'allow' ? ALLOW : DENY;
    }
  }
  if (options.tlsVerifyMiss === 'defer') return ALLOW;
  const answer = await options.gateway.decide(
    requestFromOpenVpnEnv(env, { gatewayId: options.gatewayId, hook: 'tls-verify', event: 'connect', pem: readPem(env) }),
  );
  logAnswer(options, 'tls-verify', answer);
  remember(options, env, answer);
  return answer.allow ? ALLOW : DENY;
}

async function userPassVerify(args: readonly string[], env: OpenVpnEnv, options: HookOptions): Promise<number> {
  const controlFile = str(env, 'auth_control_file');
  const reasonFile = str(env, 'auth_failed_reason_file');
  if (controlFile && !options.deferredChild) {
    // OpenVPN removes the via-file credentials file when we return, so the username travels in the child's env.
    const username = usernameFromFile(args[0]) ?? str(env, 'username') ?? '';
    options.spawnDeferred(['-'], { ...(env as Record<string, string>), username });
    return DEFERRED;
  }
  const username = options.deferredChild ? (str(env, 'username') ?? undefined) : (usernameFromFile(args[0]) ?? str(env, 'username') ?? undefined);
  const answer = await options.gateway.decide(
    requestFromOpenVpnEnv(env, { gatewayId: options.gatewayId, hook: 'auth', event: 'connect', username }),
  );
  logAnswer(options, 'auth', answer);
  remember(options, env, answer);
  if (!answer.allow) write(reasonFile, answer.clientMessage);
  if (options.deferredChild) {
    // The reason file must be complete before the control file says 0: OpenVPN reads it when it sees the 0.
    const ok = write(controlFile, answer.allow ? '1' : '0');
    return ok && answer.allow ? ALLOW : DENY;
  }
  return answer.allow ? ALLOW : DENY;
}

async function clientConnect(args: readonly string[], env: OpenVpnEnv, options: HookOptions): Promise<number> {
  const deferredFile = str(env, 'client_connect_deferred_file');
  const configFile = str(env, 'client_connect_config_file') ?? args[0] ?? null;
  if (deferredFile && !options.deferredChild) {
    if (!write(deferredFile, '2')) return DENY;
    options.spawnDeferred([configFile ?? '-'], { ...(env as Record<string, string>) });
    return ALLOW; // "deferred" is signalled by the 2 in the file, with exit status 0
  }
  const answer = await options.gateway.decide(
    requestFromOpenVpnEnv(env, { gatewayId: options.gatewayId, hook: 'client-connect', event: 'connect' }),
  );
  logAnswer(options, 'client-connect', answer);
  remember(options, env, answer);
  if (answer.allow) {
    const push = (answer.response.push ?? []).map((l) => `push "${l.replace(/["\\\r\n]/g, '')}"\n`).join('');
    if (push && !write(configFile, push)) return options.deferredChild ? (write(deferredFile, '0'), DENY) : DENY;
  }
  if (options.deferredChild) {
    const ok = write(deferredFile, answer.allow ? '1' : '0');
    return ok && answer.allow ? ALLOW : DENY;
  }
  return answer.allow ? ALLOW : DENY;
}

async function clientDisconnect(env: OpenVpnEnv, options: HookOptions): Promise<number> {
  const answer = await options.gateway.decide(
    requestFromOpenVpnEnv(env, { gatewayId: options.gatewayId, hook: 'client-disconnect', event: 'disconnect' }),
  );
  options.log.info('disconnect reported', {
    bytesSent: str(env, 'bytes_sent'),
    bytesReceived: str(env, 'bytes_received'),
    durationSeconds: str(env, 'time_duration'),
    recorded: answer.response !== null,
  });
  return ALLOW;
}
