import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GatewayClient } from '../../../src/adapters/gateway-client';
import { silentLogger } from '../../../src/adapters/log';
import { expandConfig, main, optionsFromFile, parseArgs } from '../../../src/adapters/openvpn/cli';
import { readCachedDecision, writeCachedDecision } from '../../../src/adapters/openvpn/decision-cache';
import { type HookOptions, runHook } from '../../../src/adapters/openvpn/hook';

const SHA = 'ab'.repeat(32);
const SHA_COLON = SHA.match(/../g)!.join(':');
const NOW = Date.UTC(2026, 10, 26, 12);

describe('devicegate-openvpn hook', () => {
  let dir: string;
  let server: http.Server;
  let url: string;
  let answer: Record<string, unknown>;
  const bodies: Record<string, unknown>[] = [];
  const spawned: { args: readonly string[]; env: Record<string, string> }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-hook-unit-'));
    server = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        bodies.push(JSON.parse(b));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    bodies.length = 0;
    spawned.length = 0;
    answer = { decision: 'allow', decision_id: 'id-allow', device_id: 'd', reason_code: 'OK', client_message: 'ok', ttl_seconds: 600, policy_version: '1', push: ['setenv-safe DG 1'] };
  });

  const options = (patch: Partial<HookOptions> = {}): HookOptions => ({
    gateway: new GatewayClient({ url, token: 't', deadlineMs: 500 }),
    gatewayId: 'gw',
    cachePath: path.join(dir, `cache-${Math.random()}.json`),
    cacheTtlSeconds: 300,
    tlsVerifyMiss: 'ask',
    deferredChild: false,
    spawnDeferred: (args, env) => spawned.push({ args, env }),
    log: silentLogger,
    nowMs: () => NOW,
    ...patch,
  });
  const deny = { decision: 'deny', decision_id: 'id-deny', device_id: 'd', reason_code: 'DEVICE_SUSPENDED', client_message: 'Zugang verweigert [DEVICE_SUSPENDED]', ttl_seconds: 0, policy_version: '1' };

  describe('tls-verify', () => {
    const env = { script_type: 'tls-verify', tls_digest_sha256_0: SHA_COLON };
    it('passes chain elements above the leaf (OpenSSL verified them against --ca)', async () => {
      expect(await runHook(['1', 'CN=CA'], env, options())).toBe(0);
      expect(bodies).toHaveLength(0);
    });

    it('denies a malformed depth argument', async () => {
      expect(await runHook(['x', 'CN=CA'], env, options())).toBe(1);
    });

    it('answers from an unexpired cached allow without asking devicegate', async () => {
      const o = options();
      writeCachedDecision(o.cachePath!, SHA, { decision: 'allow', reason_code: 'OK', decision_id: 'x', expires_at_ms: NOW + 1000 }, NOW);
      expect(await runHook(['0', 'CN=d'], env, o)).toBe(0);
      expect(bodies).toHaveLength(0);
    });

    it('refuses from a cached deny without asking devicegate', async () => {
      const o = options();
      writeCachedDecision(o.cachePath!, SHA, { decision: 'deny', reason_code: 'CERT_REVOKED', decision_id: 'x', expires_at_ms: NOW + 1000 }, NOW);
      expect(await runHook(['0', 'CN=d'], env, o)).toBe(1);
    });

    it('ignores an expired cached allow and asks devicegate, caching its deny', async () => {
      const o = options();
      writeCachedDecision(o.cachePath!, SHA, { decision: 'allow', reason_code: 'OK', decision_id: 'x', expires_at_ms: NOW - 1 }, NOW - 10_000);
      answer = deny;
      expect(await runHook(['0', 'CN=d'], env, o)).toBe(1);
      expect(bodies[0]).toMatchObject({ gateway: { hook: 'tls-verify' } });
      expect(readCachedDecision(o.cachePath!, SHA, NOW)?.decision).toBe('deny');
    });

    it('treats a corrupt cache file as a miss, never as an allow', async () => {
      const o = options();
      writeFileSync(o.cachePath!, `{"version":1,"entries":{"${SHA}":{"decision":"allow","expires_at_ms":"never"}}}`);
      answer = deny;
      expect(await runHook(['0', 'CN=d'], env, o)).toBe(1);
      writeFileSync(o.cachePath!, 'not json');
      expect(readCachedDecision(o.cachePath!, SHA, NOW)).toBeNull();
    });

    it('defers a miss to the deferred hooks when configured to', async () => {
      expect(await runHook(['0', 'CN=d'], env, options({ tlsVerifyMiss: 'defer' }))).toBe(0);
      expect(bodies).toHaveLength(0);
    });

    it('denies a leaf without a usable SHA-256 fingerprint', async () => {
      expect(await runHook(['0', 'CN=d'], { script_type: 'tls-verify', tls_digest_sha256_0: 'garbage' }, options({ tlsVerifyMiss: 'defer' }))).toBe(1);
    });

    it('does not cache a local gateway-down deny (it must not outlive the outage)', async () => {
      const o = options({ gateway: new GatewayClient({ url: 'http://127.0.0.1:9', token: 't', deadlineMs: 300 }) });
      expect(await runHook(['0', 'CN=d'], env, o)).toBe(1);
      expect(existsSync(o.cachePath!)).toBe(false);
    });
  });

  describe('user-pass-verify (deferred)', () => {
    it('exits 2 and hands the username (not the password) to the detached child', async () => {
      const cred = path.join(dir, 'cred.txt');
      writeFileSync(cred, 'max.muster\nsecret-password\n');
      const env = { script_type: 'user-pass-verify', auth_control_file: path.join(dir, 'acf'), tls_digest_sha256_0: SHA_COLON };
      expect(await runHook([cred], env, options())).toBe(2);
      expect(spawned).toHaveLength(1);
      expect(spawned[0]!.env.username).toBe('max.muster');
      expect(JSON.stringify(spawned[0])).not.toContain('secret-password');
      expect(bodies).toHaveLength(0);
    });

    it('child: writes the client message, then 0, on a deny', async () => {
      answer = deny;
      const acf = path.join(dir, 'acf-deny');
      const reason = path.join(dir, 'reason-deny');
      const env = { script_type: 'user-pass-verify', auth_control_file: acf, auth_failed_reason_file: reason, tls_digest_sha256_0: SHA_COLON, username: 'max' };
      expect(await runHook(['-'], env, options({ deferredChild: true }))).toBe(1);
      expect(readFileSync(acf, 'utf8')).toBe('0');
      expect(readFileSync(reason, 'utf8')).toBe('Zugang verweigert [DEVICE_SUSPENDED]');
      expect(bodies[0]).toMatchObject({ gateway: { hook: 'auth' }, ids: { username: 'max' } });
    });

    it('child: writes 1 on an allow', async () => {
      const acf = path.join(dir, 'acf-allow');
      const env = { script_type: 'user-pass-verify', auth_control_file: acf, tls_digest_sha256_0: SHA_COLON };
      expect(await runHook(['-'], env, options({ deferredChild: true }))).toBe(0);
      expect(readFileSync(acf, 'utf8')).toBe('1');
    });

    it('child: writes 0 when devicegate is unreachable', async () => {
      const acf = path.join(dir, 'acf-down');
      const env = { script_type: 'user-pass-verify', auth_control_file: acf, tls_digest_sha256_0: SHA_COLON };
      const o = options({ deferredChild: true, gateway: new GatewayClient({ url: 'http://127.0.0.1:9', token: 't', deadlineMs: 300 }) });
      expect(await runHook(['-'], env, o)).toBe(1);
      expect(readFileSync(acf, 'utf8')).toBe('0');
    });
  });

  describe('client-connect (deferred) and client-disconnect', () => {
    it('writes 2 and defers; the child writes push config and then 1', async () => {
      const deferred = path.join(dir, 'ccd');
      const config = path.join(dir, 'cc-config');
      const env = { script_type: 'client-connect', client_connect_deferred_file: deferred, client_connect_config_file: config, tls_digest_sha256_0: SHA_COLON };
      expect(await runHook([config], env, options())).toBe(0);
      expect(readFileSync(deferred, 'utf8')).toBe('2');
      expect(spawned).toHaveLength(1);
      expect(await runHook([config], env, options({ deferredChild: true }))).toBe(0);
      expect(readFileSync(config, 'utf8')).toBe('push "setenv-safe DG 1"\n');
      expect(readFileSync(deferred, 'utf8')).toBe('1');
    });

    it('child: writes 0 on a deny', async () => {
      answer = deny;
      const deferred = path.join(dir, 'ccd-deny');
      const env = { script_type: 'client-connect', client_connect_deferred_file: deferred, tls_digest_sha256_0: SHA_COLON };
      expect(await runHook([path.join(dir, 'x')], env, options({ deferredChild: true }))).toBe(1);
      expect(readFileSync(deferred, 'utf8')).toBe('0');
    });

    it('reports bytes and duration on disconnect and always exits 0', async () => {
      const env = { script_type: 'client-disconnect', tls_digest_sha256_0: SHA_COLON, bytes_sent: '100', bytes_received: '200', time_duration: '42' };
      expect(await runHook([], env, options())).toBe(0);
      expect(bodies[0]).toMatchObject({ event: 'disconnect', session: { bytes_sent: 100, bytes_received: 200, duration_seconds: 42 } });
    });
  });

  it('denies an unknown script_type', async () => {
    expect(await runHook([], { script_type: 'up' }, options())).toBe(1);
    expect(await runHook([], {}, options())).toBe(1);
  });

  describe('command line', () => {
    it('splits our options from the arguments OpenVPN appends', () => {
      const p = parseArgs(['--gateway', 'http://x', '--cache', '/c', '0', 'CN=a b', '--deferred-child']);
      expect(p.flags.get('--gateway')).toBe('http://x');
      expect(p.positional).toEqual(['0', 'CN=a b']);
      expect(p.bools.has('--deferred-child')).toBe(true);
      expect(p.own).toEqual(['--gateway', 'http://x', '--cache', '/c']);
    });

    it('reads an options file and lets the command line win', () => {
      const argv = expandConfig(['--config', '/f', '--tls-verify-miss', 'defer', '0'], () => '# c\ngateway http://a\ntls-verify-miss ask\n\nno-revocation-feed\n');
      const p = parseArgs(argv);
      expect(p.flags.get('--gateway')).toBe('http://a');
      expect(p.flags.get('--tls-verify-miss')).toBe('defer');
      expect(p.bools.has('--no-revocation-feed')).toBe(true);
      expect(p.positional).toEqual(['0']);
    });

    it.each(['bogus-option x', 'gateway', 'config /other', 'deferred-child', '--gateway x'])('rejects the options-file line %p', (line) => {
      expect(() => optionsFromFile(line)).toThrow();
    });

    it('denies (exit 1) when the hook is misconfigured', async () => {
      const env = { script_type: 'tls-verify', tls_digest_sha256_0: SHA_COLON };
      expect(await main(['hook', '0', 'CN=x'], env, { self: ['node', 'x'], log: silentLogger })).toBe(1);
      expect(await main(['hook', '--gateway', url, '--token-file', path.join(dir, 'missing'), '0'], env, { self: ['node', 'x'], log: silentLogger })).toBe(1);
      const tok = path.join(dir, 'tok');
      writeFileSync(tok, 't');
      expect(await main(['hook', '--gateway', url, '--token-file', tok, '--tls-verify-miss', 'maybe', '0'], env, { self: ['node', 'x'], log: silentLogger })).toBe(1);
    });

    it('runs a tls-verify end to end through main()', async () => {
      const tok = path.join(dir, 'tok2');
      writeFileSync(tok, 't\n');
      const env = { script_type: 'tls-verify', tls_digest_sha256_0: SHA_COLON };
      expect(await main(['hook', '--gateway', url, '--token-file', tok, '0', 'CN=x'], env, { self: ['node', 'x'], log: silentLogger })).toBe(0);
      answer = deny;
      expect(await main(['hook', '--gateway', url, '--token-file', tok, '0', 'CN=x'], env, { self: ['node', 'x'], log: silentLogger })).toBe(1);
    });

    it('exits 2 for mgmt without an endpoint', async () => {
      const tok = path.join(dir, 'tok3');
      writeFileSync(tok, 't');
      expect(await main(['mgmt', '--gateway', url, '--token-file', tok], {}, { self: ['node', 'x'], log: silentLogger })).toBe(2);
    });
  });
});
