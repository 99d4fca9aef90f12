/**
 * The OpenVPN management interface protocol (doc/management-notes.txt of OpenVPN 2.6), as far as the
 * client-auth authorizer needs it: a line parser for real-time notifications and command replies, and formatters
 * for the commands we send.
 */

/** Client notifications of `--management-client-auth`. */
export type ClientEventKind = 'CONNECT' | 'REAUTH' | 'ESTABLISHED' | 'DISCONNECT' | 'CR_RESPONSE';

/** One complete message from the management interface. */
export type ManagementMessage =
  /** `>CLIENT:<KIND>,<CID>[,<KID>]` followed by its `>CLIENT:ENV,…` block (already collected). */
  | { readonly type: 'client'; readonly kind: ClientEventKind; readonly cid: number; readonly kid: number | null; readonly env: Readonly<Record<string, string>> }
  /** `>CLIENT:ADDRESS,<CID>,<ADDR>,<PRI>` (no ENV block). */
  | { readonly type: 'client-address'; readonly cid: number; readonly address: string }
  /** Any other `>SOURCE:text` notification (`>INFO:`, `>HOLD:`, `>LOG:`, …). */
  | { readonly type: 'notification'; readonly source: string; readonly text: string }
  /** `SUCCESS: …` / `ERROR: …` reply to the command sent before. */
  | { readonly type: 'reply'; readonly ok: boolean; readonly text: string }
  /** A line of a multi-line reply (`status`, `version`), including its terminating `END`. */
  | { readonly type: 'line'; readonly text: string }
  /** `ENTER PASSWORD:` prompt (sent without a newline) when the interface is password-protected. */
  | { readonly type: 'password-prompt' };

const CLIENT_WITH_ENV: Readonly<Record<string, ClientEventKind>> = {
  CONNECT: 'CONNECT',
  REAUTH: 'REAUTH',
  ESTABLISHED: 'ESTABLISHED',
  DISCONNECT: 'DISCONNECT',
  CR_RESPONSE: 'CR_RESPONSE',
};

/** Largest ENV block accepted; a real one has ~100 variables. */
const MAX_ENV_VARS = 1024;
const MAX_LINE = 64 * 1024;

/**
 * Incremental parser: feed it socket data, get complete messages.
 *
 * Guarantees: never throws on any input; a `>CLIENT:` event is emitted only after its `>CLIENT:ENV,END`, so the
 * authorizer always sees the whole environment; malformed client headers are reported as notifications (and thus
 * never answered with an allow); over-long lines are dropped.
 */
export class ManagementParser {
  private buffer = '';
  private pending: { kind: ClientEventKind; cid: number; kid: number | null; env: Record<string, string>; count: number } | null = null;

  /** Feeds raw text; returns the messages completed by it, in order. */
  push(chunk: string): ManagementMessage[] {
    this.buffer += chunk;
    const out: ManagementMessage[] = [];
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl === -1) break;
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      if (line.length <= MAX_LINE) this.line(line, out);
    }
    // The password prompt is not newline-terminated.
    if (this.buffer === 'ENTER PASSWORD:') {
      this.buffer = '';
      out.push({ type: 'password-prompt' });
    }
    if (this.buffer.length > MAX_LINE) this.buffer = '';
    return out;
  }

  private line(line: string, out: ManagementMessage[]): void {
    if (line.startsWith('>CLIENT:ENV,')) {
      const p = this.pending;
      if (!p) return; // ENV without a header: ignore rather than attach it to anything
      const rest = line.slice('>CLIENT:ENV,'.length);
      if (rest === 'END') {
        this.pending = null;
        out.push({ type: 'client', kind: p.kind, cid: p.cid, kid: p.kid, env: p.env });
        return;
      }
      const eq = rest.indexOf('=');
      if (eq > 0 && p.count < MAX_ENV_VARS) {
        p.env[rest.slice(0, eq)] = rest.slice(eq + 1);
        p.count++;
      }
      return;
    }
    if (line.startsWith('>CLIENT:')) {
      const body = line.slice('>CLIENT:'.length);
      const parts = body.split(',');
      const kind = CLIENT_WITH_ENV[parts[0] ?? ''];
      const cid = parseId(parts[1]);
      if (kind && cid !== null) {
        const needsKid = kind === 'CONNECT' || kind === 'REAUTH' || kind === 'CR_RESPONSE';
        const kid = needsKid ? parseId(parts[2]) : null;
        if (!needsKid || kid !== null) {
          this.pending = { kind, cid, kid, env: Object.create(null) as Record<string, string>, count: 0 };
          return;
        }
      }
      if (parts[0] === 'ADDRESS' && cid !== null) {
        out.push({ type: 'client-address', cid, address: parts[2] ?? '' });
        return;
      }
      out.push({ type: 'notification', source: 'CLIENT', text: body });
      return;
    }
    if (line.startsWith('>')) {
      const colon = line.indexOf(':');
      out.push({ type: 'notification', source: colon > 1 ? line.slice(1, colon) : line.slice(1), text: colon > 1 ? line.slice(colon + 1) : '' });
      return;
    }
    if (line.startsWith('SUCCESS:')) {
      out.push({ type: 'reply', ok: true, text: line.slice(8).trim() });
      return;
    }
    if (line.startsWith('ERROR:')) {
      out.push({ type: 'reply', ok: false, text: line.slice(6).trim() });
      return;
    }
    out.push({ type: 'line', text: line });
  }
}

function parseId(s: string | undefined): number | null {
  return s !== undefined && /^\d{1,10}$/.test(s) ? Number(s) : null;
}

/**
 * Quotes one command argument the way OpenVPN's lexer (shared with the config parser) reads it back: double quotes,
 * `\\` and `\"` escapes. Line breaks are replaced by spaces because a newline would end the command and let the
 * rest be read as a new command (command injection through a client-controlled string).
 */
export function quoteArg(s: string): string {
  // eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
  return `"${s.replace(/[\r\n\u0000]/g, ' ').replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** `client-auth-nt {CID} {KID}`: allow without per-client config. */
export function cmdClientAuthNt(cid: number, kid: number): string {
  return `client-auth-nt ${cid} ${kid}\n`;
}

/**
 * `client-auth {CID} {KID}` + config lines + `END`: allow with per-client config (e.g. `push "…"`). Lines containing
 * a newline or equal to `END` are dropped so they cannot end the block early or smuggle commands.
 */
export function cmdClientAuth(cid: number, kid: number, configLines: readonly string[]): string {
  // eslint-disable-next-line no-control-regex -- rejecting/stripping control characters is the point
  const safe = configLines.filter((l) => !/[\r\n\u0000]/.test(l) && l.trim() !== 'END');
  return `client-auth ${cid} ${kid}\n${safe.map((l) => `${l}\n`).join('')}END\n`;
}

/** `client-deny {CID} {KID} "<log reason>" "<client reason>"`; the client sees `AUTH_FAILED,<client reason>`. */
export function cmdClientDeny(cid: number, kid: number, logReason: string, clientReason: string): string {
  return `client-deny ${cid} ${kid} ${quoteArg(logReason)} ${quoteArg(clientReason)}\n`;
}

/**
 * `client-kill {CID} HALT`: ends a live session. HALT (instead of the default RESTART) tells the client not to
 * reconnect straight away; a reconnect would be denied anyway.
 */
export function cmdClientKill(cid: number, message = 'HALT'): string {
  return `client-kill ${cid} ${message.replace(/[^A-Za-z0-9_,:-]/g, '')}\n`;
}

/** One `CLIENT_LIST` row of `status 3` (tab-separated, OpenVPN 2.6 column order). */
export interface StatusClient {
  readonly commonName: string;
  readonly realAddress: string;
  readonly username: string;
  readonly cid: number;
}

/**
 * Parses the `CLIENT_LIST` rows of a `status 3` reply. Column positions are taken from the `HEADER,CLIENT_LIST`
 * row so a future column insertion does not shift the CID.
 */
export function parseStatusClients(lines: readonly string[]): StatusClient[] {
  let cols: string[] | null = null;
  const out: StatusClient[] = [];
  for (const l of lines) {
    const f = l.split('\t');
    if (f[0] === 'HEADER' && f[1] === 'CLIENT_LIST') {
      cols = f.slice(2);
      continue;
    }
    if (f[0] !== 'CLIENT_LIST') continue;
    const row = f.slice(1);
    const at = (name: string, fallback: number): string => row[cols ? cols.indexOf(name) : fallback] ?? '';
    const cidText = at('Client ID', 9);
    if (!/^\d+$/.test(cidText)) continue;
    out.push({ commonName: at('Common Name', 0), realAddress: at('Real Address', 1), username: at('Username', 8), cid: Number(cidText) });
  }
  return out;
}
