import type { z } from 'zod';
import { AgentError } from './tpm-device';

/** The fetch function the agent uses; injectable for tests that count calls. */
export type FetchFn = typeof fetch;

/**
 * Refuses plain HTTP except to loopback: tokens and attestation evidence must not cross a network unencrypted.
 * Private CAs for the gateway's HTTPS certificate are added with NODE_EXTRA_CA_CERTS.
 */
export function checkServerUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new AgentError('AGENT_SERVER_URL', `Invalid server URL: ${server}`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new AgentError('AGENT_SERVER_URL', 'The server URL must be https:// (plain http only to localhost)');
  }
  return url;
}

/**
 * POSTs JSON and validates the answer with `schema`. A non-2xx answer becomes an AgentError carrying the
 * server's error code (`{ error: { code, message } }` or `{ code, message }`) and HTTP status.
 */
export async function postJson<T>(
  fetchFn: FetchFn,
  base: URL,
  path: string,
  body: unknown,
  schema: z.ZodType<T>,
  timeoutMs: number,
): Promise<T> {
  const url = new URL(path, base);
  let res: Response;
  try {
    res = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new AgentError('AGENT_SERVER_UNREACHABLE', `Cannot reach ${url.origin}: ${(e as Error).message}`, e);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const obj = (json ?? {}) as { error?: { code?: unknown; message?: unknown }; code?: unknown; message?: unknown };
    const code = typeof obj.error?.code === 'string' ? obj.error.code : typeof obj.code === 'string' ? obj.code : `HTTP_${res.status}`;
    const message = typeof obj.error?.message === 'string' ? obj.error.message : typeof obj.message === 'string' ? obj.message : res.statusText;
    const err = new AgentError(code, `Server refused (${res.status}): ${message}`);
    (err as { httpStatus?: number }).httpStatus = res.status;
    throw err;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new AgentError('AGENT_BAD_RESPONSE', `Unexpected response from ${path}`, parsed.error);
  return parsed.data;
}
