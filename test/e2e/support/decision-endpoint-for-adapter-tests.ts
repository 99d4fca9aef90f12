/**
 * decision-endpoint-for-adapter-tests: a small HTTP stand-in for devicegate's `POST /v1/decisions`, the FreeRADIUS
 * rlm_rest route and the revocation feed, used ONLY to drive the concentrator adapters until the real routes exist.
 *
 * It is not a mock of the decision logic: every answer is computed by the real pipeline of src/concentrator and
 * src/policy (normalizeDecisionRequest → gatherFacts → decide → toDecisionResponse, and the rlm_rest mapping),
 * over an in-memory "world" of certificate records (keyed by fingerprint and serial), devices and revocations. Only
 * the store and the audit log are missing. It can also misbehave on purpose (slow, 404, 500, garbage) to prove
 * that the adapters fail closed.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDn, type Dn } from '../../../src/concentrator/dn';
import { type FactLookups, gatherFacts } from '../../../src/concentrator/gather-facts';
import { normalizeDecisionRequest } from '../../../src/concentrator/normalize';
import { toDecisionResponse } from '../../../src/concentrator/response';
import type { DecisionResponse } from '../../../src/concentrator/schemas';
import { serialFromHex } from '../../../src/concentrator/serial';
import { isRlmRestSection, rlmRestReply, rlmRestToDecisionRequest } from '../../../src/adapters/freeradius/rlm-rest';
import { decide } from '../../../src/policy/decide';
import type { DecisionPolicy } from '../../../src/policy/policy';
import { constantTimeEqual } from '../../../src/lib/constant-time';
import type { CertificateRecord, Device, Revocation } from '../../../src/domain/types';

/** How the endpoint behaves; anything but `normal` is a fault the adapters must turn into a deny. */
export type EndpointBehaviour =
  | { readonly kind: 'normal' }
  | { readonly kind: 'slow'; readonly delayMs: number }
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'garbage' };

/** One request the endpoint served. */
export interface RecordedCall {
  readonly path: string;
  readonly body: unknown;
  readonly status: number;
  readonly response: DecisionResponse | null;
}

/** The in-memory registry the decisions are computed from. */
export class AdapterTestWorld {
  readonly devices = new Map<string, Device>();
  readonly certsBySha = new Map<string, CertificateRecord>();
  readonly revocations = new Map<string, Revocation>();

  /** Registers a device (status `active` unless given). */
  addDevice(id: string, patch: Partial<Device> = {}): Device {
    const d: Device = {
      id,
      serialNumber: `SN-${id.slice(0, 8)}`,
      assetTag: null,
      model: null,
      platform: 'linux',
      owner: 'max.muster',
      department: 'amt-10',
      status: 'active',
      statusReason: null,
      tpm: null,
      attestationKey: null,
      createdAt: 0,
      updatedAt: 0,
      version: 1,
      ...patch,
    };
    this.devices.set(id, d);
    return d;
  }

  /** Records a certificate devicegate "issued". */
  addCertificate(c: { sha256: string; serialDerHex: string; deviceId: string; notBefore: number; notAfter: number; pem?: string }): void {
    this.certsBySha.set(c.sha256, {
      serialHex: c.serialDerHex,
      deviceId: c.deviceId,
      sha256: c.sha256,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      pem: c.pem ?? '',
      issuedAt: c.notBefore,
      issuedVia: 'enroll',
    });
  }

  setDeviceStatus(id: string, status: Device['status']): void {
    const d = this.devices.get(id);
    if (!d) throw new Error(`no device ${id}`);
    this.devices.set(id, { ...d, status });
  }

  revokeCertificate(serialDerHex: string, deviceId: string | null): void {
    this.revocations.set(serialDerHex, { serialHex: serialDerHex, deviceId, reason: 'keyCompromise', revokedAt: 0, revokedBy: 'test' });
  }

  lookups(): FactLookups {
    return {
      certificateBySha256: async (sha) => this.certsBySha.get(sha) ?? null,
      certificateBySerial: async (serial) =>
        [...this.certsBySha.values()].find((r) => serialFromHex(r.serialHex).canonical === serial.canonical) ?? null,
      revocation: async (serialHex) => this.revocations.get(serialHex) ?? null,
      device: async (id) => this.devices.get(id) ?? null,
    };
  }
}

/** Options of the endpoint. */
export interface DecisionEndpointOptions {
  readonly token: string;
  readonly policy: DecisionPolicy;
  /** Subject DNs (any printable form) of the device CA(s) whose certificates are "ours". */
  readonly ourIssuers: readonly string[];
  readonly world: AdapterTestWorld;
  readonly nowMs?: () => number;
}

/** A running endpoint. */
export interface DecisionEndpoint {
  readonly url: string;
  readonly port: number;
  readonly calls: RecordedCall[];
  setBehaviour(b: EndpointBehaviour): void;
  /** Sends a revocation notice to every connected feed subscriber; resolves to the number of subscribers. */
  publishRevocation(event: { device_id?: string; cert_sha256?: string; reason?: string }): number;
  /** Number of connected revocation-feed subscribers. */
  subscribers(): number;
  close(): Promise<void>;
}

function readBody(req: http.IncomingMessage, max = 1024 * 1024): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        resolve(null);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(null));
  });
}

/** Starts the endpoint on 127.0.0.1 (random port). */
export async function startDecisionEndpointForAdapterTests(options: DecisionEndpointOptions): Promise<DecisionEndpoint> {
  const ourIssuers: Dn[] = options.ourIssuers.map((s) => parseDn(s));
  const now = options.nowMs ?? (() => Date.now());
  let behaviour: EndpointBehaviour = { kind: 'normal' };
  const calls: RecordedCall[] = [];
  const feeds = new Set<http.ServerResponse>();
  let eventId = 0;

  async function decideFor(raw: unknown): Promise<DecisionResponse> {
    const { request, identity } = normalizeDecisionRequest(raw);
    const facts = await gatherFacts(identity, request.event, options.world.lookups(), {
      ourIssuers,
      needUserDepartments: options.policy.usernameRule === 'department',
      deadlineMs: 1000,
    });
    return toDecisionResponse(decide(facts, options.policy, now()), randomUUID());
  }

  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    if (body === null) {
      res.writeHead(status);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const auth = req.headers.authorization ?? '';
    const authorised = constantTimeEqual(auth, `Bearer ${options.token}`);

    if (req.method === 'GET' && url.pathname === '/v1/decisions/revocations/stream') {
      if (!authorised) return send(res, 401, { code: 'UNAUTHORIZED' });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': devicegate revocation feed\n\n');
      feeds.add(res);
      req.on('close', () => feeds.delete(res));
      return;
    }
    const raw = await readBody(req);
    let body: unknown = null;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {
      body = raw;
    }

    if (behaviour.kind === 'slow') await new Promise((r) => setTimeout(r, (behaviour as { delayMs: number }).delayMs));
    if (behaviour.kind === 'status') {
      calls.push({ path: url.pathname, body, status: behaviour.status, response: null });
      return send(res, behaviour.status, { decision: 'deny' });
    }
    if (behaviour.kind === 'garbage') {
      calls.push({ path: url.pathname, body, status: 200, response: null });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"decision":"allow", this is not json');
      return;
    }

    if (req.method === 'POST' && url.pathname === '/v1/decisions') {
      if (!authorised) return send(res, 401, { code: 'UNAUTHORIZED' });
      try {
        const response = await decideFor(body);
        calls.push({ path: url.pathname, body, status: 200, response });
        return send(res, 200, response);
      } catch (e) {
        calls.push({ path: url.pathname, body, status: 400, response: null });
        return send(res, 400, { code: (e as { code?: string }).code ?? 'BAD_REQUEST' });
      }
    }
    const m = /^\/v1\/adapters\/freeradius\/([a-z-]+)$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      const section = m[1]!;
      if (!isRlmRestSection(section) || !authorised) {
        const reply = rlmRestReply('authorize', { error: new Error(authorised ? 'unknown section' : 'unauthorised') });
        calls.push({ path: url.pathname, body, status: reply.status, response: null });
        return send(res, reply.status, reply.body);
      }
      let response: DecisionResponse | null = null;
      let reply;
      try {
        response = await decideFor(rlmRestToDecisionRequest(body, { section, gatewayId: 'freeradius-test' }));
        reply = rlmRestReply(section, { response });
      } catch (error) {
        reply = rlmRestReply(section, { error });
      }
      calls.push({ path: url.pathname, body, status: reply.status, response });
      return send(res, reply.status, reply.body);
    }
    send(res, 404, { code: 'NOT_FOUND' });
  };
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { code: 'INTERNAL' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    calls,
    setBehaviour(b) {
      behaviour = b;
    },
    publishRevocation(event) {
      eventId++;
      for (const f of feeds) f.write(`id: ${eventId}\nevent: revocation\ndata: ${JSON.stringify(event)}\n\n`);
      return feeds.size;
    },
    subscribers: () => feeds.size,
    async close() {
      for (const f of feeds) f.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
