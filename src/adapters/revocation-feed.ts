import http from 'node:http';
import https from 'node:https';
import { type RevocationEvent, revocationEventSchema } from '../concentrator/schemas';
import { normalizeSha256Fingerprint } from '../concentrator/fingerprint';
import type { GatewayClient } from './gateway-client';
import type { AdapterLogger } from './log';

/** Path of the revocation feed below the gateway URL. */
export const REVOCATION_STREAM_PATH = '/v1/decisions/revocations/stream';

/** A revocation with its identifiers normalised (`certSha256` is 64 lower-case hex). */
export interface RevocationNotice {
  readonly deviceId: string | null;
  readonly certSha256: string | null;
  readonly reason: string | null;
  /** SSE event id, when the server sent one. */
  readonly eventId: string | null;
}

/** Callbacks of a feed subscription. */
export interface RevocationFeedHandlers {
  onRevocation(notice: RevocationNotice): void;
  /** The stream is (re)connected. `resumed` is false on the first connection and after a gap without event ids. */
  onConnected?(info: { readonly reconnect: boolean }): void;
  onDisconnected?(reason: string): void;
}

/** A running subscription. */
export interface RevocationFeed {
  close(): void;
}

/**
 * Parses one SSE message (the lines between blank lines) into a notice, or null when it is not a revocation
 * (comments, heartbeats, unknown event types, malformed JSON, neither device_id nor cert_sha256).
 */
export function parseSseMessage(lines: readonly string[]): { notice: RevocationNotice | null; id: string | null; retryMs: number | null } {
  let event = 'message';
  const data: string[] = [];
  let id: string | null = null;
  let retryMs: number | null = null;
  for (const line of lines) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
  }
  if (data.length === 0 || (event !== 'message' && event !== 'revocation')) return { notice: null, id, retryMs };
  let json: unknown;
  try {
    json = JSON.parse(data.join('\n'));
  } catch {
    return { notice: null, id, retryMs };
  }
  const parsed = revocationEventSchema.safeParse(json);
  if (!parsed.success) return { notice: null, id, retryMs };
  const e: RevocationEvent = parsed.data;
  let certSha256: string | null = null;
  if (e.cert_sha256) {
    try {
      certSha256 = normalizeSha256Fingerprint(e.cert_sha256);
    } catch {
      certSha256 = null;
    }
  }
  const deviceId = e.device_id ? e.device_id.trim().toLowerCase() : null;
  if (!deviceId && !certSha256) return { notice: null, id, retryMs };
  return { notice: { deviceId, certSha256, reason: e.reason ?? null, eventId: id }, id, retryMs };
}

/**
 * Subscribes to `GET /v1/decisions/revocations/stream` (text/event-stream, bearer token) and reconnects forever
 * (with `Last-Event-ID` when the server sent ids) until closed. Each `data:` JSON `{device_id}` or `{cert_sha256}`
 * becomes one `onRevocation` call.
 *
 * Guarantees: never throws into the caller; a broken or non-200 stream is retried after `retryMs` (or the server's
 * `retry:`), and `onConnected({reconnect: true})` tells the caller that events may have been missed in the gap.
 */
export function subscribeRevocations(
  gateway: GatewayClient,
  token: string,
  handlers: RevocationFeedHandlers,
  log: AdapterLogger,
  options: { readonly retryMs?: number } = {},
): RevocationFeed {
  let closed = false;
  let lastId: string | null = null;
  let retryMs = options.retryMs ?? 2000;
  let current: http.ClientRequest | null = null;
  let timer: NodeJS.Timeout | null = null;
  let connectedOnce = false;

  const schedule = (reason: string): void => {
    current = null;
    if (closed) return;
    handlers.onDisconnected?.(reason);
    timer = setTimeout(connect, retryMs);
  };

  const connect = (): void => {
    if (closed) return;
    const url = gateway.urlFor(REVOCATION_STREAM_PATH);
    const mod = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${token}` };
    if (lastId) headers['last-event-id'] = lastId;
    // A dedicated agent-less request: a long-lived stream must not occupy a keep-alive slot of decision calls.
    const req = mod.request(url, { method: 'GET', headers, agent: false, ...gateway.tlsOptions });
    current = req;
    let buffered = '';
    let lines: string[] = [];
    let done = false;
    const ended = (reason: string): void => {
      if (done) return;
      done = true;
      schedule(reason);
    };
    req.on('error', (e: NodeJS.ErrnoException) => ended(e.code ?? 'error'));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        log.warn('revocation feed refused', { status: res.statusCode });
        ended(`http-${res.statusCode}`);
        return;
      }
      handlers.onConnected?.({ reconnect: connectedOnce });
      connectedOnce = true;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        if (buffered.length > 1024 * 1024) {
          log.warn('revocation feed line too long; reconnecting');
          res.destroy();
          return;
        }
        let nl: number;
        while ((nl = buffered.search(/\r\n|\n|\r/)) !== -1) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + (buffered.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            const { notice, id, retryMs: r } = parseSseMessage(lines);
            lines = [];
            if (id !== null) lastId = id;
            if (r !== null) retryMs = r;
            if (notice) {
              try {
                handlers.onRevocation(notice);
              } catch (e) {
                log.error('revocation handler failed', { err: String(e) });
              }
            }
          } else {
            lines.push(line);
          }
        }
      });
      res.on('end', () => ended('end'));
      res.on('error', () => undefined);
      res.on('close', () => ended('closed'));
    });
    req.end();
  };

  connect();
  return {
    close(): void {
      closed = true;
      if (timer) clearTimeout(timer);
      current?.destroy();
    },
  };
}
