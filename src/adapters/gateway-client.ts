import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { clientMessage } from '../policy/messages';
import type { AdapterReasonCode } from '../policy/reasons';
import type { DecisionRequestInput, DecisionResponse } from '../concentrator/schemas';
import type * as Schemas from '../concentrator/schemas';

type SchemasModule = typeof Schemas;
let schemas: SchemasModule | null = null;
/**
 * zod takes ~200 ms to load on the reference machine, and `--tls-verify` (which blocks the whole OpenVPN process)
 * answers from the cache without ever validating a response: load the schemas only when an answer arrives.
 */
function responseSchema(): SchemasModule['decisionResponseSchema'] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  schemas ??= require('../concentrator/schemas') as SchemasModule;
  return schemas.decisionResponseSchema;
}

/** Where and how an adapter reaches devicegate. */
export interface GatewayClientOptions {
  /** Base URL of devicegate, e.g. `https://devicegate.intern:8443` (no trailing path). */
  readonly url: string;
  /** Bearer token of a `concentrator` API token. */
  readonly token: string;
  /** Hard deadline of one decision call, connect to last byte. */
  readonly deadlineMs: number;
  /** Extra trusted CA certificates (PEM) for an https URL. */
  readonly caPem?: string | undefined;
  /** Largest response body accepted (default 64 KiB); a longer one is a deny. */
  readonly maxResponseBytes?: number | undefined;
}

/**
 * What an adapter acts on. `allow` is true only for an HTTP 200 whose JSON body passes the response schema with
 * `decision: "allow"` and `reason_code: "OK"`; every other outcome is a deny with a reason the adapter can log.
 */
export type GatewayAnswer =
  | { readonly allow: true; readonly response: DecisionResponse }
  | {
      readonly allow: false;
      /** The devicegate response when there was a valid one (a policy deny), else null (a local fail-closed deny). */
      readonly response: DecisionResponse | null;
      readonly reasonCode: string;
      readonly decisionId: string;
      readonly clientMessage: string;
      readonly deviceId: string | null;
      /** Why the adapter denied locally (timeout, http-503, invalid-json, ...); null for a policy deny. */
      readonly failure: string | null;
    };

/** The path of the decision API relative to the gateway URL. */
export const DECISIONS_PATH = '/v1/decisions';

function localDeny(code: AdapterReasonCode, failure: string): GatewayAnswer {
  const id = `local-${randomUUID()}`;
  return { allow: false, response: null, reasonCode: code, decisionId: id, clientMessage: clientMessage(code, id), deviceId: null, failure };
}

/**
 * Client of `POST /v1/decisions` for the adapters.
 *
 * Guarantees (fail closed, concentrators.md §8.3): `decide()` never rejects and never takes longer than
 * `deadlineMs` (plus timer slack); anything other than an explicit, schema-valid `"decision":"allow"` with reason OK
 * within the deadline (timeouts, connection errors, non-200 statuses, 404s, oversized, truncated or non-JSON bodies,
 * `pending`) is a deny.
 */
export class GatewayClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly maxBytes: number;

  constructor(private readonly options: GatewayClientOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new TypeError('gateway URL must be http(s)');
    this.maxBytes = options.maxResponseBytes ?? 64 * 1024;
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 32, ...(options.caPem ? { ca: options.caPem } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  /** The URL for a path below the gateway base URL. */
  urlFor(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base.href.endsWith('/') ? this.base.href : `${this.base.href}/`);
  }

  /** TLS options for other requests to the same gateway (the revocation feed), so both trust the same CAs. */
  get tlsOptions(): { ca?: string } {
    return this.options.caPem ? { ca: this.options.caPem } : {};
  }

  /** Asks devicegate for a decision. See the class guarantees. */
  decide(request: DecisionRequestInput): Promise<GatewayAnswer> {
    return new Promise<GatewayAnswer>((resolve) => {
      let settled = false;
      const finish = (a: GatewayAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(a);
      };
      let body: string;
      try {
        body = JSON.stringify(request);
      } catch {
        finish(localDeny('GATEWAY_RESPONSE_INVALID', 'request-not-serialisable'));
        return;
      }
      const url = this.urlFor(DECISIONS_PATH);
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept: 'application/json',
          authorization: `Bearer ${this.options.token}`,
        },
      });
      const timer = setTimeout(() => {
        finish(localDeny('GATEWAY_UNAVAILABLE', 'timeout'));
        req.destroy();
      }, this.options.deadlineMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish(localDeny('GATEWAY_UNAVAILABLE', e.code ?? 'error')));
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          finish(localDeny(res.statusCode && res.statusCode >= 500 ? 'GATEWAY_UNAVAILABLE' : 'GATEWAY_RESPONSE_INVALID', `http-${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxBytes) {
            finish(localDeny('GATEWAY_RESPONSE_INVALID', 'response-too-large'));
            res.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on('error', () => finish(localDeny('GATEWAY_UNAVAILABLE', 'response-error')));
        res.on('aborted', () => finish(localDeny('GATEWAY_UNAVAILABLE', 'response-aborted')));
        res.on('end', () => finish(interpret(Buffer.concat(chunks).toString('utf8'))));
      });
      req.end(body);
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

function interpret(text: string): GatewayAnswer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return localDeny('GATEWAY_RESPONSE_INVALID', 'invalid-json');
  }
  const parsed = responseSchema().safeParse(json);
  if (!parsed.success) return localDeny('GATEWAY_RESPONSE_INVALID', 'schema');
  const r = parsed.data;
  // Both fields must agree: an "allow" with a deny reason is an inconsistent (buggy or forged) answer.
  if (r.decision === 'allow' && r.reason_code === 'OK') return { allow: true, response: r };
  return {
    allow: false,
    response: r,
    reasonCode: r.decision === 'allow' ? 'GATEWAY_RESPONSE_INVALID' : r.reason_code,
    decisionId: r.decision_id,
    clientMessage: r.client_message,
    deviceId: r.device_id,
    failure: r.decision === 'allow' ? 'allow-without-ok' : null,
  };
}
