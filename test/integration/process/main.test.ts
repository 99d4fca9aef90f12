import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runGatewayToExit, startGateway } from '../../helpers/gateway-process';
import { freePort } from '../../helpers/ports';

describe('the gateway process (src/main.ts)', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'dg-proc-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('starts on the embedded SQLite default and serves /healthz and /readyz', async () => {
    const port = await freePort();
    const gw = await startGateway({ DEVICEGATE_DATA_DIR: dataDir, PORT: String(port) });
    try {
      expect(gw.url).toBe(`http://127.0.0.1:${port}`);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${gw.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ store: { backend: 'sqlite', ok: true } });
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it('exits with code 2 and lists every configuration problem at once', async () => {
    const r = await runGatewayToExit({
      DEVICEGATE_DATA_DIR: dataDir,
      DEVICEGATE_STORE__BACKEND: 'mongodb',
      DEVICEGATE_LOG__LEVEL: 'loud',
      DEVICEGATE_SERVER__PORT: '70000',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/store\.backend/);
    expect(r.stderr).toMatch(/log\.level/);
    expect(r.stderr).toMatch(/server\.port/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('refuses to start in production with the dev CA, dev attestation and default secrets, naming each', async () => {
    const r = await runGatewayToExit({
      DEVICEGATE_DATA_DIR: dataDir,
      NODE_ENV: 'production',
      DEVICEGATE_TPM__ALLOW_EK_PUBLIC_ONLY: 'true',
    });
    expect(r.code).toBe(2);
    for (const key of ['ca.source', 'tpm.allowEkPublicOnly', 'server.tls.enabled', 'audit.signingKeyFile', 'audit.pseudonymKeyFile']) {
      expect(r.stderr).toContain(key);
    }
  });

  it('exits non-zero with a clear message when the Redis store is unreachable at start-up', async () => {
    const deadPort = await freePort();
    const r = await runGatewayToExit({
      DEVICEGATE_DATA_DIR: dataDir,
      DEVICEGATE_STORE__BACKEND: 'redis',
      DEVICEGATE_STORE__REDIS__URL: `redis://127.0.0.1:${deadPort}`,
      DEVICEGATE_STORE__REDIS__CONNECT_TIMEOUT_MS: '500',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot open the redis store/);
    expect(r.stderr).toContain(`127.0.0.1:${deadPort}`);
  });

  it('on SIGTERM stops accepting, finishes the in-flight request, then exits 0', async () => {
    const port = await freePort();
    const gw = await startGateway({ DEVICEGATE_DATA_DIR: dataDir, PORT: String(port) });
    // A request whose body is still arriving when the signal comes: it is in flight.
    const sock = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let response = '';
    sock.on('data', (d) => (response += d.toString()));
    const body = '{"hello":"world"}';
    sock.write(`POST /v1/echo-nothing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await new Promise((r) => setTimeout(r, 200));
    const exit = gw.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // New connections are refused once shutdown began.
    const refused = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(false);
      });
      c.on('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    sock.write(body.slice(5));
    await new Promise<void>((r) => sock.once('close', () => r()));
    expect(response).toMatch(/^HTTP\/1\.1 404/); // the in-flight request got its answer
    expect(await exit).toBe(0);
    expect(gw.stdout()).toMatch(/"msg":"stopped"/);
  });
});
