/**
 * A pass-through HTTP proxy in front of the real devicegate that can be told to misbehave on decision calls
 * (`POST /v1/decisions`, `POST /v1/adapters/freeradius/*`): answer slowly, with a bare HTTP status, or with a
 * truncated "allow". Used to prove that the concentrator adapters fail closed when devicegate (or the network in
 * between) fails; everything else, including the revocation feed, passes through unchanged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** How decision calls are treated. */
export type Fault =
  | { readonly kind: 'none' }
  | { readonly kind: 'slow'; readonly delayMs: number }
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'garbage' };

export interface FaultyProxy {
  readonly url: string;
  setFault(f: Fault): void;
  /** Decision calls seen (path), for asserting that a call happened. */
  readonly decisionCalls: string[];
  close(): Promise<void>;
}

const isDecisionCall = (req: http.IncomingMessage): boolean =>
  req.method === 'POST' && /^\/v1\/(decisions|adapters\/freeradius\/[a-z-]+)\/?(\?|$)/.test(req.url ?? '');

export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const t = new URL(target);
  let fault: Fault = { kind: 'none' };
  const decisionCalls: string[] = [];
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer | null): void => {
    const up = http.request(
      { host: t.hostname, port: Number(t.port), method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  };
  const server = http.createServer((req, res) => {
    if (!isDecisionCall(req)) return forward(req, res, null);
    decisionCalls.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const f = fault;
      if (f.kind === 'status') {
        res.writeHead(f.status, { 'content-type': 'application/json' });
        res.end('{"decision":"deny"}');
      } else if (f.kind === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"decision":"allow", this is not json');
      } else if (f.kind === 'slow') {
        setTimeout(() => forward(req, res, body), f.delayMs);
      } else {
        forward(req, res, body);
      }
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    decisionCalls,
    setFault(f) {
      fault = f;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
