import type { DecisionEvent, DecisionRequestInput } from '../../concentrator/schemas';

/** OpenVPN's environment for one client (script env, or the `>CLIENT:ENV` block of the management interface). */
export type OpenVpnEnv = Readonly<Record<string, string | undefined>>;

/** Where in OpenVPN the request originates. */
export interface OpenVpnRequestContext {
  readonly gatewayId: string;
  readonly hook: 'mgmt-connect' | 'mgmt-reauth' | 'mgmt-recheck' | 'tls-verify' | 'auth' | 'client-connect' | 'client-disconnect';
  readonly event: DecisionEvent;
  readonly cid?: number | undefined;
  readonly kid?: number | undefined;
  /** PEM of the client certificate (hook mode with `--tls-export-cert`, read from `$peer_cert`). */
  readonly pem?: string | undefined;
  /** Username from an `auth-user-pass-verify via-file` credentials file. */
  readonly username?: string | undefined;
  readonly requestId?: string | undefined;
}

const val = (env: OpenVpnEnv, key: string): string | null => {
  const v = env[key];
  return typeof v === 'string' && v.trim() !== '' ? v : null;
};

const int = (env: OpenVpnEnv, key: string): number | null => {
  const v = val(env, key);
  return v !== null && /^\d{1,15}$/.test(v) ? Number(v) : null;
};

const clip = (s: string, max: number): string => (s.length > max ? s.slice(0, max) : s);

/**
 * Maps OpenVPN's client environment to a decision request (concentrators.md §8.2, variable names verified on
 * OpenVPN 2.6.14, recipe openvpn.md):
 * `tls_digest_sha256_0` → `cert.sha256`; `tls_serial_0` / `tls_serial_hex_0` → `cert.serial.dec/hex`;
 * `tls_id_0` → `cert.subject_dn`; `tls_id_1` (the issuing CA's subject) → `cert.issuer_dn`; `X509_0_CN` or
 * `common_name` → `cert.cn`; `username` → `ids.username`; `untrusted_ip`/`trusted_ip` + port → `peer`;
 * `IV_*` → `client_hints`, `UV_*` → `client_hints.UV`; `bytes_sent`, `bytes_received`, `time_duration` → `session`.
 *
 * Guarantees: pure; copies identity fields verbatim (normalisation and validation are devicegate's job, so a
 * garbage value leads to a 400 or a deny there, never to a silently "fixed" identity); clips self-asserted hints
 * to the schema's limits so an over-long `IV_GUI_VER` cannot turn a good request into a 400.
 */
export function requestFromOpenVpnEnv(env: OpenVpnEnv, ctx: OpenVpnRequestContext): DecisionRequestInput {
  const hints: Record<string, string | Record<string, string>> = {};
  const uv: Record<string, string> = {};
  let n = 0;
  for (const key of Object.keys(env).sort()) {
    const v = env[key];
    if (typeof v !== 'string' || n >= 60) continue;
    if (/^IV_[A-Za-z0-9_]{1,60}$/.test(key)) {
      hints[key] = clip(v, 256);
      n++;
    } else if (/^UV_[A-Za-z0-9_]{1,60}$/.test(key)) {
      uv[clip(key.slice(3), 64)] = clip(v, 256);
      n++;
    }
  }
  if (Object.keys(uv).length) hints['UV'] = uv;

  const ip = val(env, 'trusted_ip') ?? val(env, 'untrusted_ip') ?? val(env, 'trusted_ip6') ?? val(env, 'untrusted_ip6');
  const port = int(env, 'trusted_port') ?? int(env, 'untrusted_port');
  const username = ctx.username ?? val(env, 'username');
  const serialDec = val(env, 'tls_serial_0');
  const serialHex = val(env, 'tls_serial_hex_0');
  const bytesSent = int(env, 'bytes_sent');
  const bytesReceived = int(env, 'bytes_received');
  const duration = int(env, 'time_duration');

  return {
    request_id: ctx.requestId ?? null,
    gateway: { id: ctx.gatewayId, kind: 'openvpn', hook: ctx.hook, version: val(env, 'openvpn_version') },
    event: ctx.event,
    peer: ip || port !== null ? { ip, port: port !== null && port <= 65535 ? port : null } : null,
    cert: {
      sha256: val(env, 'tls_digest_sha256_0'),
      serial: serialDec || serialHex ? { dec: serialDec, hex: serialHex } : null,
      issuer_dn: val(env, 'tls_id_1'),
      subject_dn: val(env, 'tls_id_0'),
      cn: val(env, 'X509_0_CN') ?? val(env, 'common_name'),
      pem: ctx.pem ?? null,
    },
    ids: { username: username && username.trim() !== '' ? username : null },
    client_hints: Object.keys(hints).length ? hints : null,
    session: {
      ovpn_cid: ctx.cid ?? null,
      ovpn_kid: ctx.kid ?? null,
      bytes_sent: bytesSent,
      bytes_received: bytesReceived,
      duration_seconds: duration,
    },
  };
}
