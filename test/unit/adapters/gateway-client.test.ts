import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayClient } from '../../../src/adapters/gateway-client';
import { silentLogger } from '../../../src/adapters/log';
import { parseSseMessage, type RevocationNotice, subscribeRevocations } from '../../../src/adapters/revocation-feed';

const allow = {
  decision: 'allow',
  decision_id: '7f3a1b2c-0000-4000-8000-000000000000',
  device_id: 'dev',
  reason_code: 'OK',
  client_message: 'ok',
  ttl_seconds: 60,
  policy_version: '1',
};

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

describe('GatewayClient (fail closed)', () => {
  let server: http.Server;
  let url: string;
  let handler: Handler;
  const seen: { auth?: string; body?: unknown }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, body: body ? JSON.parse(body) : null });
        handler(req, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const client = (deadlineMs = 500) => new GatewayClient({ url, token: 'tok', deadlineMs, maxResponseBytes: 4096 });
  const json = (status: number, body: unknown): Handler => (_q, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const req = { gateway: { id: 'g', kind: 'openvpn' as const }, event: 'connect' as const };

  it('allows only on an explicit, schema-valid allow with reason OK, sending the bearer token', async () => {
    handler = json(200, allow);
    const c = client();
    const a = await c.decide(req);
    c.close();
    expect(a.allow).toBe(true);
    expect(seen[seen.length - 1]).toMatchObject({ auth: 'Bearer tok', body: { event: 'connect' } });
  });

  it('passes a policy deny through with devicegate reason, id and client message', async () => {
    handler = json(200, { ...allow, decision: 'deny', reason_code: 'DEVICE_SUSPENDED', client_message: 'gesperrt' });
    const c = client();
    const a = await c.decide(req);
    c.close();
    expect(a).toMatchObject({ allow: false, reasonCode: 'DEVICE_SUSPENDED', decisionId: allow.decision_id, clientMessage: 'gesperrt', failure: null });
  });

  it.each<[string, Handler, string]>([
    ['HTTP 404', json(404, allow), 'GATEWAY_RESPONSE_INVALID'],
    ['HTTP 401 (wrong token)', json(401, allow), 'GATEWAY_RESPONSE_INVALID'],
    ['HTTP 500', json(500, allow), 'GATEWAY_UNAVAILABLE'],
    ['HTTP 204 with no body', (_q, res) => { res.writeHead(204); res.end(); }, 'GATEWAY_RESPONSE_INVALID'],
    ['a truncated JSON allow', json(200, '{"decision":"allow"'), 'GATEWAY_RESPONSE_INVALID'],
    ['an allow missing required fields', json(200, { decision: 'allow' }), 'GATEWAY_RESPONSE_INVALID'],
    ['"allow" in another case', json(200, { ...allow, decision: 'ALLOW' }), 'GATEWAY_RESPONSE_INVALID'],
    ['allow: true instead of decision', json(200, { allow: true }), 'GATEWAY_RESPONSE_INVALID'],
    ['an allow whose reason is not OK', json(200, { ...allow, reason_code: 'CERT_REVOKED' }), 'GATEWAY_RESPONSE_INVALID'],
    ['a pending decision', json(200, { ...allow, decision: 'pending', reason_code: 'PENDING' }), 'PENDING'],
    ['an oversized body', json(200, { ...allow, padding: 'x'.repeat(10_000) }), 'GATEWAY_RESPONSE_INVALID'],
    ['an answer after the deadline', (_q, res) => setTimeout(() => json(200, allow)(_q, res, ''), 800), 'GATEWAY_UNAVAILABLE'],
    ['a connection reset', (q) => q.socket.destroy(), 'GATEWAY_UNAVAILABLE'],
    ['a body cut off mid-way', (_q, res) => { res.writeHead(200, { 'content-length': '500' }); res.write('{"decision":"allow",'); setTimeout(() => res.socket?.destroy(), 20); }, 'GATEWAY_UNAVAILABLE'],
  ])('denies on %s', async (_label, h, code) => {
    handler = h;
    const c = client();
    const a = await c.decide(req);
    c.close();
    expect(a.allow).toBe(false);
    const got = a.allow ? null : code === 'PENDING' ? a.response?.decision : a.reasonCode;
    expect(got).toBe(code === 'PENDING' ? 'pending' : code);
  });

  it('denies when nothing listens on the gateway port', async () => {
    const c = new GatewayClient({ url: 'http://127.0.0.1:9', token: 't', deadlineMs: 500 });
    const a = await c.decide(req);
    expect(a).toMatchObject({ allow: false, reasonCode: 'GATEWAY_UNAVAILABLE' });
  });

  it('refuses a non-http gateway URL at construction', () => {
    expect(() => new GatewayClient({ url: 'file:///etc/passwd', token: 't', deadlineMs: 10 })).toThrow();
  });
});

describe('revocation feed', () => {
  it('parses revocation events and ignores comments, other events and junk', () => {
    expect(parseSseMessage(['id: 4', 'event: revocation', 'data: {"device_id":"ABC"}']).notice).toEqual({ deviceId: 'abc', certSha256: null, reason: null, eventId: '4' });
    expect(parseSseMessage(['data: {"cert_sha256":"' + 'AB:'.repeat(31) + 'AB"}']).notice?.certSha256).toBe('ab'.repeat(32));
    expect(parseSseMessage([': heartbeat']).notice).toBeNull();
    expect(parseSseMessage(['event: other', 'data: {"device_id":"x"}']).notice).toBeNull();
    expect(parseSseMessage(['data: {"device_id":']).notice).toBeNull();
    expect(parseSseMessage(['data: {"cert_sha256":"garbage"}']).notice).toBeNull();
    expect(parseSseMessage(['data: {}']).notice).toBeNull();
    expect(parseSseMessage(['retry: 50']).retryMs).toBe(50);
  });

  it('delivers events from a real SSE stream and reconnects with Last-Event-ID after the stream drops', async () => {
    const lastIds: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      lastIds.push(req.headers['last-event-id'] as string | undefined);
      if (req.headers.authorization !== 'Bearer tok') {
        res.writeHead(401);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (lastIds.length === 1) {
        res.write('retry: 50\n\nid: 1\ndata: {"device_id":"d1"}\n\n');
        setTimeout(() => res.destroy(), 50);
      } else {
        res.write('id: 2\r\nevent: revocation\r\ndata: {"device_id":"d2"}\r\n\r\n');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const gw = new GatewayClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'tok', deadlineMs: 500 });
    const notices: RevocationNotice[] = [];
    const connects: boolean[] = [];
    const feed = subscribeRevocations(gw, 'tok', { onRevocation: (n) => notices.push(n), onConnected: ({ reconnect }) => connects.push(reconnect) }, silentLogger, { retryMs: 50 });
    const end = Date.now() + 5000;
    while (notices.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    feed.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(notices.map((n) => n.deviceId)).toEqual(['d1', 'd2']);
    expect(lastIds).toEqual([undefined, '1']);
    expect(connects).toEqual([false, true]);
  });
});
