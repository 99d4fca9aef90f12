import { EventEmitter } from 'node:events';
import net from 'node:net';
import { deviceIdFromCn } from '../../concentrator/device-id';
import { normalizeSha256Fingerprint } from '../../concentrator/fingerprint';
import type { GatewayAnswer, GatewayClient } from '../gateway-client';
import type { AdapterLogger } from '../log';
import { type RevocationFeed, type RevocationNotice, subscribeRevocations } from '../revocation-feed';
import { requestFromOpenVpnEnv } from './env';
import {
  cmdClientAuth,
  cmdClientAuthNt,
  cmdClientDeny,
  cmdClientKill,
  type ManagementMessage,
  ManagementParser,
  parseStatusClients,
} from './management-protocol';

/** Where the OpenVPN management interface listens. Prefer the unix socket (file permissions guard it). */
export type ManagementEndpoint = { readonly path: string } | { readonly host: string; readonly port: number };

/** Settings of the authorizer daemon. */
export interface ManagementAuthorizerOptions {
  readonly endpoint: ManagementEndpoint;
  /** Management password (`--management … pw-file`), sent when OpenVPN prompts for it. */
  readonly password?: string | undefined;
  readonly gateway: GatewayClient;
  /** Bearer token, needed again for the revocation feed. */
  readonly token: string;
  /** Concentrator id sent as `gateway.id`. */
  readonly gatewayId: string;
  /** Subscribe to the revocation feed (default true). */
  readonly revocationFeed?: boolean | undefined;
  /** First reconnect delay; doubles up to 10 s. */
  readonly reconnectDelayMs?: number | undefined;
  readonly log: AdapterLogger;
}

/** What the authorizer knows about one client instance of OpenVPN. */
export interface SessionInfo {
  readonly cid: number;
  deviceId: string | null;
  certSha256: string | null;
  established: boolean;
  decisionId: string | null;
  /** The env of the last CONNECT/REAUTH, kept for re-checks after a gap in the revocation feed. */
  env: Readonly<Record<string, string>> | null;
}

/** One answered authorization, emitted as `'decision'` (for logs, metrics and tests). */
export interface DecisionEvent {
  readonly cid: number;
  readonly kid: number;
  readonly kind: 'CONNECT' | 'REAUTH';
  readonly answer: GatewayAnswer;
  /** Milliseconds from the complete `>CLIENT:` notification to OpenVPN's reply to our answer. */
  readonly elapsedMs: number;
}

interface PendingCommand {
  readonly multiline: boolean;
  readonly lines: string[];
  resolve(r: { ok: boolean; text: string; lines: string[] }): void;
}

const shaOf = (env: Readonly<Record<string, string>>): string | null => {
  const raw = env['tls_digest_sha256_0'];
  if (!raw) return null;
  try {
    return normalizeSha256Fingerprint(raw);
  } catch {
    return null;
  }
};

/**
 * `devicegate-openvpn mgmt`: the OpenVPN `--management-client-auth` authorizer (concentrators.md §8.4).
 *
 * For every `>CLIENT:CONNECT` / `>CLIENT:REAUTH` it asks devicegate and answers `client-auth(-nt)` only for an
 * explicit allow; everything else (deny, timeout, unreachable gateway, bad answer) becomes `client-deny` with
 * `"<reason_code> <decision_id>"` for the server log and the bilingual client message (`AUTH_FAILED,<message>`).
 * It keeps CID ↔ device/certificate for live sessions, kills matching sessions (`client-kill`) on revocation
 * notices from the feed, re-checks all live sessions after a gap in the feed, and reconnects when OpenVPN restarts.
 *
 * Fail-closed by construction: while the daemon is not connected, OpenVPN gets no answer and denies after
 * hand-window (verified on 2.6.14, recipe L7).
 */
export class OpenVpnManagementAuthorizer extends EventEmitter {
  private socket: net.Socket | null = null;
  private parser = new ManagementParser();
  private queue: PendingCommand[] = [];
  private readonly sessionMap = new Map<number, SessionInfo>();
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private delay: number;
  private feed: RevocationFeed | null = null;
  private connectedNow = false;

  constructor(private readonly options: ManagementAuthorizerOptions) {
    super();
    this.delay = options.reconnectDelayMs ?? 500;
  }

  /** Connects (and keeps reconnecting) to the management interface and, if enabled, the revocation feed. */
  start(): void {
    this.stopped = false;
    this.connect();
    if (this.options.revocationFeed !== false && !this.feed) {
      this.feed = subscribeRevocations(
        this.options.gateway,
        this.options.token,
        {
          onRevocation: (n) => void this.onRevocation(n),
          onConnected: ({ reconnect }) => {
            this.emit('feed-connected', { reconnect });
            // Events may have been missed while the feed was down: re-ask for every live session.
            if (reconnect) void this.recheckAll();
          },
          onDisconnected: (reason) => this.emit('feed-disconnected', reason),
        },
        this.options.log,
      );
    }
  }

  /** Stops reconnecting and closes both connections. Live sessions are left alone (OpenVPN keeps them). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.feed?.close();
    this.feed = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
    this.failQueue('stopped');
  }

  /** True while the management socket is connected. */
  get connected(): boolean {
    return this.connectedNow;
  }

  /** Live sessions by CID (a snapshot). */
  sessions(): ReadonlyMap<number, Readonly<SessionInfo>> {
    return new Map(this.sessionMap);
  }

  /**
   * Kills every session whose device id or certificate fingerprint matches. Returns the CIDs for which OpenVPN
   * confirmed the kill.
   */
  async killMatching(match: { readonly deviceId?: string | null; readonly certSha256?: string | null }): Promise<number[]> {
    const targets = [...this.sessionMap.values()].filter(
      (s) => (match.deviceId && s.deviceId === match.deviceId) || (match.certSha256 && s.certSha256 === match.certSha256),
    );
    const killed: number[] = [];
    for (const s of targets) {
      const r = await this.command(cmdClientKill(s.cid));
      if (r.ok) {
        killed.push(s.cid);
        this.sessionMap.delete(s.cid);
      }
      this.options.log.info('client-kill', { cid: s.cid, deviceId: s.deviceId, ok: r.ok, reply: r.text });
    }
    if (targets.length) this.emit('killed', killed);
    return killed;
  }

  private async onRevocation(n: RevocationNotice): Promise<void> {
    this.options.log.info('revocation notice', { deviceId: n.deviceId, certSha256: n.certSha256, reason: n.reason });
    await this.killMatching({ deviceId: n.deviceId, certSha256: n.certSha256 });
  }

  /** Re-asks devicegate for every live session with a known environment; kills those now denied. */
  async recheckAll(): Promise<void> {
    for (const s of [...this.sessionMap.values()]) {
      if (!s.env || !s.established) continue;
      const answer = await this.options.gateway.decide(
        requestFromOpenVpnEnv(s.env, { gatewayId: this.options.gatewayId, hook: 'mgmt-recheck', event: 'reauth', cid: s.cid }),
      );
      // Only a policy deny kills: an unreachable gateway during a re-check must not disconnect everyone.
      if (!answer.allow && answer.response !== null && this.sessionMap.has(s.cid)) {
        await this.command(cmdClientKill(s.cid));
        this.sessionMap.delete(s.cid);
        this.options.log.info('client-kill after re-check', { cid: s.cid, reason: answer.reasonCode, decisionId: answer.decisionId });
      }
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const ep = this.options.endpoint;
    const socket = 'path' in ep ? net.createConnection({ path: ep.path }) : net.createConnection({ host: ep.host, port: ep.port });
    this.socket = socket;
    this.parser = new ManagementParser();
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      this.connectedNow = true;
      this.delay = this.options.reconnectDelayMs ?? 500;
      this.options.log.info('management interface connected', { endpoint: 'path' in ep ? ep.path : `${ep.host}:${ep.port}` });
      if (!this.options.password) void this.afterConnect();
    });
    socket.on('data', (chunk: string) => {
      for (const m of this.parser.push(chunk)) this.onMessage(m);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!this.stopped) this.options.log.warn('management interface error', { code: e.code });
    });
    socket.on('close', () => {
      const was = this.connectedNow;
      this.connectedNow = false;
      if (this.socket === socket) this.socket = null;
      this.failQueue('connection closed');
      if (was) this.emit('disconnected');
      if (this.stopped) return;
      this.reconnectTimer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10_000);
    });
  }

  /** Rebuilds the CID map from `status 3` after a (re)connect: CN = device id for devicegate certificates. */
  private async afterConnect(): Promise<void> {
    const r = await this.command('status 3\n', true);
    const live = new Set<number>();
    for (const c of parseStatusClients(r.lines)) {
      live.add(c.cid);
      if (!this.sessionMap.has(c.cid)) {
        this.sessionMap.set(c.cid, { cid: c.cid, deviceId: deviceIdFromCn(c.commonName), certSha256: null, established: true, decisionId: null, env: null });
      }
    }
    for (const cid of [...this.sessionMap.keys()]) if (r.ok && !live.has(cid)) this.sessionMap.delete(cid);
    this.emit('connected');
  }

  private onMessage(m: ManagementMessage): void {
    switch (m.type) {
      case 'password-prompt':
        if (this.options.password && this.socket) {
          this.socket.write(`${this.options.password}\n`);
          void this.afterConnect();
        }
        return;
      case 'reply': {
        const head = this.queue[0];
        if (!head) return;
        if (head.multiline && head.lines.length === 0 && !m.ok) {
          this.queue.shift();
          head.resolve({ ok: false, text: m.text, lines: [] });
          return;
        }
        if (head.multiline) {
          head.lines.push(m.ok ? `SUCCESS: ${m.text}` : `ERROR: ${m.text}`);
          return;
        }
        this.queue.shift();
        head.resolve({ ok: m.ok, text: m.text, lines: [] });
        return;
      }
      case 'line': {
        const head = this.queue[0];
        if (!head?.multiline) return;
        if (m.text === 'END') {
          this.queue.shift();
          head.resolve({ ok: true, text: 'END', lines: head.lines });
        } else {
          head.lines.push(m.text);
        }
        return;
      }
      case 'client':
        void this.onClient(m);
        return;
      case 'client-address':
      case 'notification':
        return;
      default: {
        const never: never = m;
        return never;
      }
    }
  }

  private async onClient(m: Extract<ManagementMessage, { type: 'client' }>): Promise<void> {
    const { cid, kid, env, kind } = m;
    switch (kind) {
      case 'CONNECT':
      case 'REAUTH':
      case 'CR_RESPONSE':
        if (kid === null) return;
        await this.authorize(kind === 'REAUTH' ? 'REAUTH' : 'CONNECT', cid, kid, env);
        return;
      case 'ESTABLISHED': {
        const s = this.sessionMap.get(cid);
        if (s) s.established = true;
        else {
          this.sessionMap.set(cid, {
            cid,
            deviceId: deviceIdFromCn(env['X509_0_CN'] ?? env['common_name']),
            certSha256: shaOf(env),
            established: true,
            decisionId: null,
            env,
          });
        }
        this.emit('established', cid);
        return;
      }
      case 'DISCONNECT':
        this.sessionMap.delete(cid);
        this.emit('client-disconnected', cid);
        return;
      default: {
        const never: never = kind;
        return never;
      }
    }
  }

  private async authorize(kind: 'CONNECT' | 'REAUTH', cid: number, kid: number, env: Readonly<Record<string, string>>): Promise<void> {
    const started = performance.now();
    const answer = await this.options.gateway.decide(
      requestFromOpenVpnEnv(env, {
        gatewayId: this.options.gatewayId,
        hook: kind === 'REAUTH' ? 'mgmt-reauth' : 'mgmt-connect',
        event: kind === 'REAUTH' ? 'reauth' : 'connect',
        cid,
        kid,
      }),
    );
    let reply: { ok: boolean; text: string };
    if (answer.allow) {
      const r = answer.response;
      const push = (r.push ?? []).map((line) => `push "${line.replace(/["\\]/g, '')}"`);
      reply = await this.command(push.length ? cmdClientAuth(cid, kid, push) : cmdClientAuthNt(cid, kid));
      const prev = this.sessionMap.get(cid);
      this.sessionMap.set(cid, {
        cid,
        deviceId: r.device_id,
        certSha256: shaOf(env),
        established: prev?.established ?? false,
        decisionId: r.decision_id,
        env,
      });
    } else {
      reply = await this.command(cmdClientDeny(cid, kid, `${answer.reasonCode} ${answer.decisionId}`, answer.clientMessage));
      this.sessionMap.delete(cid);
    }
    this.options.log.info(answer.allow ? 'client-auth' : 'client-deny', {
      cid,
      kid,
      kind,
      reason: answer.allow ? 'OK' : answer.reasonCode,
      decisionId: answer.allow ? answer.response.decision_id : answer.decisionId,
      failure: answer.allow ? null : answer.failure,
      reply: reply.text,
    });
    this.emit('decision', { cid, kid, kind, answer, elapsedMs: performance.now() - started } satisfies DecisionEvent);
  }

  /** Sends one command and waits for its reply (commands are answered strictly in order). */
  private command(text: string, multiline = false): Promise<{ ok: boolean; text: string; lines: string[] }> {
    return new Promise((resolve) => {
      const s = this.socket;
      if (!s || !this.connectedNow) {
        resolve({ ok: false, text: 'not connected', lines: [] });
        return;
      }
      this.queue.push({ multiline, lines: [], resolve });
      s.write(text);
    });
  }

  private failQueue(reason: string): void {
    const q = this.queue;
    this.queue = [];
    for (const c of q) c.resolve({ ok: false, text: reason, lines: [] });
  }
}
