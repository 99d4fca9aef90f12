import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Principal } from './permissions';

/**
 * A concentrator identified by its TLS client certificate on the concentrator listener (mutual TLS): TLS has already
 * verified the certificate against `clientCaFile` (`authorized`); such a caller gets the concentrator role only.
 * Returns null for anything else, so the caller falls back to bearer tokens.
 */
export function mtlsConcentratorPrincipal(req: IncomingMessage): Principal | null {
  const socket = req.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return null;
  const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : cert.fingerprint256;
  return {
    kind: 'api-token',
    id: `mtls:${cert.fingerprint256.replace(/:/g, '').toLowerCase()}`,
    name: `mtls:${cn}`.slice(0, 64),
    roles: ['concentrator'],
  };
}
