import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/load';
import { productionProblems } from '../../../src/config/production';
import { ROOT } from '../../helpers/build-app';

const load = (env: Record<string, string> = {}, files: string[] = []) =>
  loadConfig({ env, rootDir: ROOT, cwd: '/srv/dg', files });

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-cfg-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives a fresh clone development mode, SQLite under ./data and 127.0.0.1:8080', () => {
    const c = load();
    expect(c.mode).toBe('development');
    expect(c.server).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(c.store.backend).toBe('sqlite');
    expect(c.dataDir).toBe('/srv/dg/data');
    expect(c.sqlitePath).toBe('/srv/dg/data/devicegate.db');
    expect(c.publicUrl).toBe('http://127.0.0.1:8080');
    expect(Object.isFrozen(c.server)).toBe(true);
  });

  it('applies PORT, DEVICEGATE_PORT (which wins), DEVICEGATE_DATA_DIR and NODE_ENV', () => {
    expect(load({ PORT: '9000' }).server.port).toBe(9000);
    expect(load({ PORT: '9000', DEVICEGATE_PORT: '9100' }).server.port).toBe(9100);
    expect(load({ DEVICEGATE_DATA_DIR: '/var/lib/dg' }).sqlitePath).toBe('/var/lib/dg/devicegate.db');
    expect(load({ NODE_ENV: 'production' }).mode).toBe('production');
  });

  it('maps nested DEVICEGATE_* variables onto keys and parses JSON values', () => {
    const c = load({
      DEVICEGATE_STORE__BACKEND: 'redis',
      DEVICEGATE_STORE__REDIS__COMMAND_TIMEOUT_MS: '750',
      DEVICEGATE_SERVER__TRUST_PROXY: 'true',
    });
    expect(c.store.backend).toBe('redis');
    expect(c.store.redis.commandTimeoutMs).toBe(750);
    expect(c.server.trustProxy).toBe(true);
  });

  it('layers YAML files: later files override earlier ones, deeply', () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    writeFileSync(a, 'server:\n  port: 7001\n  host: 0.0.0.0\n');
    writeFileSync(b, 'server:\n  port: 7002\n');
    const c = loadConfig({ env: { DEVICEGATE_CONFIG: a }, rootDir: ROOT, cwd: dir, files: [b] });
    expect(c.server).toMatchObject({ port: 7002, host: '0.0.0.0' });
    expect(c.sources).toEqual([path.join(ROOT, 'config', 'default.yaml'), a, b]);
  });

  it('reports every problem at once, each with its key path', () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'server:\n  port: 99999\n  prot: 1\nstore:\n  backend: mongodb\nlog:\n  level: loud\n');
    const problems = problemsOf(() => load({ DEVICEGATE_CONFIG: bad, DEVICEGATE_NO_SUCH__KEY: '1' }));
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['server.port', 'server.prot', 'store.backend', 'log.level', 'DEVICEGATE_NO_SUCH__KEY']),
    );
    expect(problems.find((p) => p.path === 'server.prot')?.message).toBe('unknown key');
  });

  it('reports unreadable YAML and a missing explicit config file', () => {
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'server: [unclosed\n');
    const problems = problemsOf(() => load({ DEVICEGATE_CONFIG: `${broken},${path.join(dir, 'missing.yaml')}` }));
    expect(problems.map((p) => p.message).join('\n')).toMatch(/broken\.yaml/);
    expect(problems.map((p) => p.message).join('\n')).toMatch(/missing\.yaml does not exist/);
  });
});

describe('production mode refusals', () => {
  it('refuses the dev CA, dev attestation, plain HTTP and default audit secrets, naming each', () => {
    const c = load({ NODE_ENV: 'production', DEVICEGATE_TPM__ALLOW_EK_PUBLIC_ONLY: 'true' });
    const paths = productionProblems(c, {}).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['ca.source', 'tpm.allowEkPublicOnly', 'server.tls.enabled', 'audit.signingKeyFile', 'audit.pseudonymKeyFile']),
    );
  });

  it('has nothing to say in development mode', () => {
    expect(productionProblems(load(), {})).toEqual([]);
  });
});

describe('production refuses development certificates for TLS', () => {
  it('names a TLS certificate that is a devicegate DEV ONLY certificate, or one under certs-dev/', async () => {
    const { ensureDevCa } = await import('../../../src/ca/hierarchy');
    const { devCertificateProblems } = await import('../../../src/services/production-checks');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-devcert-'));
    try {
      const { paths } = await ensureDevCa(path.join(dir, 'ca'), { nowMs: Date.now() });
      const c = load({
        NODE_ENV: 'production',
        DEVICEGATE_SERVER__TLS__ENABLED: 'true',
        DEVICEGATE_SERVER__TLS__CERT_FILE: paths.issuingCert,
        DEVICEGATE_SERVER__CONCENTRATOR_LISTENER__TLS__CLIENT_CA_FILE: path.join(ROOT, 'certs-dev', 'generated', 'x.pem'),
      });
      const problems = devCertificateProblems(c);
      expect(problems.map((p) => p.path)).toEqual(['server.tls.certFile', 'server.concentratorListener.tls.clientCaFile']);
      expect(productionProblems(c, {}, [devCertificateProblems]).map((p) => p.path)).toContain('server.tls.certFile');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
