/**
 * `devicegate-openvpn`: the OpenVPN adapters as one command (launcher: bin/devicegate-openvpn.js).
 *
 *   devicegate-openvpn mgmt (--socket PATH | --host 127.0.0.1 --port N) --gateway URL --token-file F
 *                           [--password-file F] [--ca-file F] [--gateway-id ID] [--deadline-ms 5000] [--no-revocation-feed]
 *   devicegate-openvpn hook --gateway URL --token-file F [--cache FILE] [--cache-ttl 300] [--tls-verify-miss ask|defer]
 *                           [--tls-verify-timeout-ms 1500] [--ca-file F] [--gateway-id ID] [--deadline-ms 3000]
 *                           [OpenVPN's own arguments…]
 *
 * Secrets are read from files (never from argv, which `ps` shows). OpenVPN appends its own arguments to a hook
 * command line; everything that is not one of our options is passed on to the hook as positional arguments.
 *
 * `--config FILE` reads options from a file, one `option value` per line (`#` comments; option names without the
 * leading dashes, e.g. `gateway https://…`). OpenVPN rejects config lines longer than 256 characters, so a hook
 * line should be just `tls-verify "/usr/bin/devicegate-openvpn hook --config /etc/devicegate/openvpn-hook.conf"`.
 * Options given on the command line win over the file.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { GatewayClient } from '../gateway-client';
import { type AdapterLogger, jsonLineLogger } from '../log';
import { runHook } from './hook';
import type { OpenVpnManagementAuthorizer } from './management-daemon';

/** Process-level things `main` needs, injected so the launcher is the only place touching `process`. */
export interface CliIo {
  /** argv prefix that re-runs this CLI (e.g. `[process.execPath, '/usr/lib/…/bin/devicegate-openvpn.js']`). */
  readonly self: readonly string[];
  readonly log?: AdapterLogger;
  /** Resolves when the daemon should stop (SIGTERM/SIGINT). */
  readonly stopSignal?: Promise<void>;
}

const FLAGS_WITH_VALUE = new Set([
  '--socket',
  '--host',
  '--port',
  '--gateway',
  '--token-file',
  '--password-file',
  '--ca-file',
  '--gateway-id',
  '--deadline-ms',
  '--cache',
  '--cache-ttl',
  '--tls-verify-miss',
  '--tls-verify-timeout-ms',
]);
const BOOLEAN_FLAGS = new Set(['--no-revocation-feed', '--deferred-child']);

interface Parsed {
  readonly flags: Map<string, string>;
  readonly bools: Set<string>;
  readonly positional: string[];
  /** Our own options, as given, to hand to the deferred child. */
  readonly own: string[];
}

/**
 * Reads an options file (`option value` per line, `#` comments) into argv form. Throws a plain Error for an unknown
 * option, so a typo in the file is a configuration error (deny), not a silently ignored setting.
 */
export function optionsFromFile(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z][a-z0-9-]*)(?:\s+(.+))?$/.exec(line);
    const flag = m ? `--${m[1]}` : '';
    if (!m || flag === '--config' || flag === '--deferred-child') throw new Error(`bad line in options file: ${line.slice(0, 40)}`);
    if (FLAGS_WITH_VALUE.has(flag) && m[2] !== undefined) out.push(flag, m[2].trim());
    else if (BOOLEAN_FLAGS.has(flag) && m[2] === undefined) out.push(flag);
    else throw new Error(`bad line in options file: ${line.slice(0, 40)}`);
  }
  return out;
}

/** Expands `--config FILE` (file options first, so command-line options override them). */
export function expandConfig(argv: readonly string[], readFile: (f: string) => string): string[] {
  const i = argv.indexOf('--config');
  if (i === -1) return [...argv];
  const file = argv[i + 1];
  if (file === undefined) throw new Error('--config needs a value');
  return [...optionsFromFile(readFile(file)), ...argv.slice(0, i), ...argv.slice(i + 2)];
}

/** Splits argv into our options and OpenVPN's positional arguments. Throws a plain Error on a missing value. */
export function parseArgs(argv: readonly string[]): Parsed {
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  const positional: string[] = [];
  const own: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (FLAGS_WITH_VALUE.has(a)) {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`${a} needs a value`);
      // Later wins: options from --config come first, command-line options after them.
      flags.set(a, v);
      own.push(a, v);
      i++;
    } else if (BOOLEAN_FLAGS.has(a)) {
      bools.add(a);
      if (a !== '--deferred-child') own.push(a);
    } else {
      positional.push(a);
    }
  }
  return { flags, bools, positional, own };
}

function intFlag(p: Parsed, name: string, def: number, min: number, max: number): number {
  const v = p.flags.get(name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new Error(`${name} must be an integer in ${min}..${max}`);
  return Number(v);
}

function readSecret(file: string | undefined, what: string): string {
  if (!file) throw new Error(`--${what}-file is required`);
  const s = readFileSync(file, 'utf8').trim();
  if (s === '') throw new Error(`${file} is empty`);
  return s;
}

function gatewayFrom(p: Parsed, defaultDeadline: number): { gateway: GatewayClient; token: string; gatewayId: string } {
  const url = p.flags.get('--gateway');
  if (!url) throw new Error('--gateway URL is required');
  const token = readSecret(p.flags.get('--token-file'), 'token');
  const caFile = p.flags.get('--ca-file');
  const gateway = new GatewayClient({
    url,
    token,
    deadlineMs: intFlag(p, '--deadline-ms', defaultDeadline, 50, 60_000),
    caPem: caFile ? readFileSync(caFile, 'utf8') : undefined,
  });
  return { gateway, token, gatewayId: p.flags.get('--gateway-id') ?? `openvpn-${os.hostname()}` };
}

/**
 * Runs one invocation; resolves to the process exit code. For `hook` the code is what OpenVPN acts on
 * (0 allow, 1 deny, 2 deferred); any configuration error is a deny (1) for `hook` and 2 for `mgmt`.
 */
export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  const log = io.log ?? jsonLineLogger(`devicegate-openvpn ${command ?? ''}`.trim());
  if (command === 'mgmt') return runMgmt(rest, log, io);
  if (command === 'hook') return runHookCommand(rest, env, log, io);
  log.error('usage: devicegate-openvpn mgmt|hook [options]');
  return command === undefined || command === '--help' ? 0 : 2;
}

async function runMgmt(argv: readonly string[], log: AdapterLogger, io: CliIo): Promise<number> {
  let daemon: OpenVpnManagementAuthorizer;
  try {
    // Loaded here, not at the top: a hook process (which blocks OpenVPN) must not pay for the daemon's imports.
    const { OpenVpnManagementAuthorizer } = await import('./management-daemon');
    const p = parseArgs(expandConfig(argv, (f) => readFileSync(f, 'utf8')));
    const { gateway, token, gatewayId } = gatewayFrom(p, 5000);
    const socket = p.flags.get('--socket');
    const host = p.flags.get('--host');
    if (!socket && !host) throw new Error('--socket PATH or --host/--port is required');
    if (host && host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
      log.warn('management interface on a non-loopback host: traffic and password travel in clear text');
    }
    const endpoint = socket ? { path: socket } : { host: host!, port: intFlag(p, '--port', 0, 1, 65535) };
    const pwFile = p.flags.get('--password-file');
    daemon = new OpenVpnManagementAuthorizer({
      endpoint,
      password: pwFile ? readSecret(pwFile, 'password') : undefined,
      gateway,
      token,
      gatewayId,
      revocationFeed: !p.bools.has('--no-revocation-feed'),
      log,
    });
  } catch (e) {
    log.error('configuration error', { err: e instanceof Error ? e.message : String(e) });
    return 2;
  }
  daemon.start();
  await (io.stopSignal ?? new Promise<void>(() => undefined));
  await daemon.stop();
  return 0;
}

async function runHookCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, log: AdapterLogger, io: CliIo): Promise<number> {
  let p: Parsed;
  let gw: ReturnType<typeof gatewayFrom>;
  try {
    p = parseArgs(expandConfig(argv, (f) => readFileSync(f, 'utf8')));
    gw = gatewayFrom(p, 3000);
  } catch (e) {
    log.error('configuration error; denying', { err: e instanceof Error ? e.message : String(e) });
    return 1;
  }
  const deferredChild = p.bools.has('--deferred-child');
  const miss = p.flags.get('--tls-verify-miss') ?? 'ask';
  if (miss !== 'ask' && miss !== 'defer') {
    log.error('--tls-verify-miss must be ask or defer; denying');
    return 1;
  }
  const deadlineMs = intFlag(p, '--deadline-ms', 3000, 50, 60_000);
  const hookPromise = runHook(p.positional, env, {
    gateway: gw.gateway,
    gatewayId: gw.gatewayId,
    cachePath: p.flags.get('--cache') ?? null,
    cacheTtlSeconds: intFlag(p, '--cache-ttl', 300, 0, 86_400),
    tlsVerifyMiss: miss,
    deferredChild,
    log,
    nowMs: () => Date.now(),
    spawnDeferred: (args, childEnv) => {
      const child = spawn(io.self[0]!, [...io.self.slice(1), 'hook', ...p.own, '--deferred-child', ...args], {
        env: childEnv,
        detached: true,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      child.unref();
    },
  });

  // Hard timeouts. tls-verify blocks every client of the OpenVPN process, so it gets its own short budget; a
  // deferred child must always leave an answer in its control file, so on timeout it writes the deny itself.
  const type = env['script_type'];
  const budget = type === 'tls-verify' ? intFlag(p, '--tls-verify-timeout-ms', 1500, 50, 10_000) : deadlineMs + 1000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<number>((resolve) => {
    timer = setTimeout(() => {
      log.error('hard timeout; denying', { scriptType: type, budgetMs: budget });
      if (deferredChild) {
        const f = type === 'user-pass-verify' ? env['auth_control_file'] : type === 'client-connect' ? env['client_connect_deferred_file'] : undefined;
        if (f) {
          try {
            writeFileSync(f, '0');
          } catch {
            // OpenVPN's hand-window expiry denies anyway
          }
        }
      }
      resolve(type === 'client-disconnect' ? 0 : 1);
    }, budget);
  });
  try {
    return await Promise.race([hookPromise.catch(() => 1), timeout]);
  } finally {
    clearTimeout(timer);
    gw.gateway.close();
  }
}
