/**
 * The gateway in production mode, as deployed: HTTPS with a configured certificate, a file CA created by
 * `devicegate ca init`, configured audit keys, and a concentrator listener that requires client certificates
 * (mutual TLS) and serves only concentrator routes.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../helpers/cli';
import { startGateway, type GatewayProcess } from '../../helpers/gateway-process';
import { freePort } from '../../helpers/ports';
import { describeWith, tool } from '../../helpers/requirements';
import { createTestPki, type TestPki } from '../../helpers/test-pki';

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function call(port: number, p: string, opts: { ca: string; cert?: string; key?: string; method?: string; body?: string; token?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: opts.method ?? 'GET',
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        servername: 'localhost',
        headers: {
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describeWith([tool('openssl')], 'production mode with HTTPS and a mutual-TLS concentrator listener (real process)', () => {
  let dir: string;
  let pki: TestPki;
  let gw: GatewayProcess | null = null;
  let port: number;
  let concentratorPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-prod-'));
    pki = createTestPki(path.join(dir, 'pki'));
    expect(runCli(['ca', 'init', '--out', path.join(dir, 'ca'), '--organization', 'Stadt Musterstadt']).status).toBe(0);
    const audit = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(path.join(dir, 'audit.key.pem'), audit, { mode: 0o600 });
    writeFileSync(path.join(dir, 'pseudonym.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    port = await freePort();
    concentratorPort = await freePort();
    gw = await startGateway({
      NODE_ENV: 'production',
      DEVICEGATE_DATA_DIR: path.join(dir, 'data'),
      PORT: String(port),
      DEVICEGATE_SERVER__TLS__ENABLED: 'true',
      DEVICEGATE_SERVER__TLS__CERT_FILE: pki.server.certPath,
      DEVICEGATE_SERVER__TLS__KEY_FILE: pki.server.keyPath,
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__ENABLED: 'true',
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__PORT: String(concentratorPort),
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__TLS__ENABLED: 'true',
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__TLS__CERT_FILE: pki.server.certPath,
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__TLS__KEY_FILE: pki.server.keyPath,
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__TLS__CLIENT_CA_FILE: pki.caCertPath,
      DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__TLS__REQUIRE_CLIENT_CERT: 'true',
      DEVICEGATE_CA__SOURCE: 'file',
      DEVICEGATE_CA__FILES__ROOT_CERT: path.join(dir, 'ca/root.crt.pem'),
      DEVICEGATE_CA__FILES__ISSUING_CERT: path.join(dir, 'ca/issuing.crt.pem'),
      DEVICEGATE_CA__FILES__ISSUING_KEY: path.join(dir, 'ca/issuing.key.pem'),
      DEVICEGATE_CA__FILES__OCSP_CERT: path.join(dir, 'ca/ocsp.crt.pem'),
      DEVICEGATE_CA__FILES__OCSP_KEY: path.join(dir, 'ca/ocsp.key.pem'),
      DEVICEGATE_AUDIT__SIGNING_KEY_FILE: path.join(dir, 'audit.key.pem'),
      DEVICEGATE_AUDIT__PSEUDONYM_KEY_FILE: path.join(dir, 'pseudonym.key'),
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ca = () => readFileSync(pki.caCertPath, 'utf8');
  const client = () => pki.issueDevice('ovpn-gw-01');

  it('serves HTTPS on the main listener with HSTS', async () => {
    expect(gw!.url).toBe(`https://127.0.0.1:${port}`);
    const r = await call(port, '/readyz', { ca: ca() });
    expect(r.status).toBe(200);
    expect(r.headers['strict-transport-security']).toMatch(/max-age=\d+/);
  });

  it('refuses a concentrator connection without a client certificate (TLS handshake fails)', async () => {
    await expect(call(concentratorPort, '/healthz', { ca: ca() })).rejects.toThrow();
  });

  it('accepts a concentrator by its client certificate alone and answers decisions (deny for an unknown certificate)', async () => {
    const c = client();
    const r = await call(concentratorPort, '/v1/decisions', {
      ca: ca(),
      cert: readFileSync(c.certPath, 'utf8'),
      key: readFileSync(c.keyPath, 'utf8'),
      method: 'POST',
      body: JSON.stringify({ gateway: { id: 'ovpn-gw-01', kind: 'openvpn' }, event: 'connect', cert: { sha256: 'ab'.repeat(32) } }),
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ decision: 'deny', reason_code: 'CERT_UNKNOWN' });
  });

  it('serves no admin, enrollment or audit routes on the concentrator listener', async () => {
    const c = client();
    const tls = { ca: ca(), cert: readFileSync(c.certPath, 'utf8'), key: readFileSync(c.keyPath, 'utf8') };
    expect((await call(concentratorPort, '/v1/devices', tls)).status).toBe(404);
    expect((await call(concentratorPort, '/v1/audit/events', tls)).status).toBe(404);
    expect((await call(concentratorPort, '/v1/enrollment/tpm/start', { ...tls, method: 'POST', body: '{}' })).status).toBe(404);
    expect((await call(concentratorPort, '/v1/crl', tls)).status).toBe(200);
  });

  it('gives a client certificate no rights on the main listener (it is not an API credential there)', async () => {
    const c = client();
    const r = await call(port, '/v1/decisions', {
      ca: ca(),
      cert: readFileSync(c.certPath, 'utf8'),
      key: readFileSync(c.keyPath, 'utf8'),
      method: 'POST',
      body: JSON.stringify({ gateway: { id: 'x', kind: 'openvpn' }, event: 'connect', cert: { sha256: 'ab'.repeat(32) } }),
    });
    expect(r.status).toBe(401);
  });
});
