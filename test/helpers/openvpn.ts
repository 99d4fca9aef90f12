/**
 * Real OpenVPN 2.6 on 127.0.0.1 for tests: a server (`--dev tun` with a unique device name, no address or route put
 * on the host: ifconfig-noexec/route-noexec, DCO disabled) and clients with `--dev null`. Needs root (or
 * CAP_NET_ADMIN) and /dev/net/tun; see `openvpnRequirements`.
 *
 * The API takes every path and URL as a parameter so the same harness drives the real devicegate later.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { closeSync, copyFileSync, existsSync, openSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as Swc from '@swc/core';
import { type Requirement, tool } from './requirements';

/** Requirements for suites using this harness. */
export const openvpnRequirements: Requirement[] = [
  tool('openvpn'),
  {
    name: '/dev/net/tun as root',
    hint: 'run as root (or with CAP_NET_ADMIN) on a kernel with /dev/net/tun',
    present: () => existsSync('/dev/net/tun') && typeof process.getuid === 'function' && process.getuid() === 0,
  },
];

/** A free UDP port on 127.0.0.1 (bound then released; good enough for tests). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** How the server asks devicegate. */
export type ServerAuth =
  | { readonly kind: 'none' }
  /** `--management <socket> unix --management-client-auth --auth-user-pass-optional`. */
  | { readonly kind: 'management'; readonly socketPath: string }
  /**
   * Script hooks: `command` is the full hook command line (e.g. `node …/devicegate-openvpn.js hook --gateway … `);
   * `hooks` picks which OpenVPN hooks run it.
   */
  | {
      readonly kind: 'hook';
      readonly command: string;
      readonly hooks: readonly ('tls-verify' | 'auth-user-pass-verify' | 'client-connect' | 'client-disconnect')[];
      readonly tlsVerifyCommand?: string;
      readonly env?: Readonly<Record<string, string>>;
    }
  /** `plugin <path> "<arg>" …`: an OpenVPN plugin (.so) with its arguments. */
  | { readonly kind: 'plugin'; readonly path: string; readonly args: readonly string[] };

/** Server settings. */
export interface OpenVpnServerOptions {
  readonly workDir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly auth: ServerAuth;
  readonly port?: number;
  readonly handWindowSeconds?: number;
  readonly extraConfig?: readonly string[];
}

/** A running server. */
export interface OpenVpnServer {
  readonly port: number;
  readonly logPath: string;
  readonly configPath: string;
  log(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<boolean>;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s). */
  stop(): Promise<void>;
  /** Stops and starts it again with the same config (same port, same management socket). */
  restart(): Promise<void>;
}

async function waitFor(check: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Kills a child by PID: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Starts an OpenVPN server and waits for `Initialization Sequence Completed`. */
export async function startOpenVpnServer(options: OpenVpnServerOptions): Promise<OpenVpnServer> {
  mkdirSync(options.workDir, { recursive: true });
  const port = options.port ?? (await freeUdpPort());
  const dev = `dgt${randomBytes(4).toString('hex')}`;
  const net = `10.${200 + (port % 50)}.${port % 250}.0`;
  const tmpDir = path.join(options.workDir, 'tmp');
  mkdirSync(tmpDir, { recursive: true });
  const lines = [
    `port ${port}`,
    'proto udp4',
    'local 127.0.0.1',
    `dev ${dev}`,
    'dev-type tun',
    'disable-dco',
    'topology subnet',
    `server ${net} 255.255.255.0`,
    'ifconfig-noexec',
    'route-noexec',
    `ca ${options.caFile}`,
    `cert ${options.certFile}`,
    `key ${options.keyFile}`,
    'dh none',
    'remote-cert-tls client',
    `tmp-dir ${tmpDir}`,
    `hand-window ${options.handWindowSeconds ?? 20}`,
    'keepalive 10 60',
    'verb 3',
  ];
  const a = options.auth;
  if (a.kind === 'management') {
    lines.push(`management ${a.socketPath} unix`, 'management-client-auth', 'auth-user-pass-optional');
  } else if (a.kind === 'hook') {
    lines.push('script-security 2');
    for (const [k, v] of Object.entries(a.env ?? {})) lines.push(`setenv ${k} ${v}`);
    for (const h of a.hooks) {
      if (h === 'tls-verify') lines.push(`tls-verify "${a.tlsVerifyCommand ?? a.command}"`);
      if (h === 'auth-user-pass-verify') lines.push(`auth-user-pass-verify "${a.command}" via-file`, 'auth-user-pass-optional');
      if (h === 'client-connect') lines.push(`client-connect "${a.command}"`);
      if (h === 'client-disconnect') lines.push(`client-disconnect "${a.command}"`);
    }
  } else if (a.kind === 'plugin') {
    lines.push(`plugin ${a.path} ${a.args.map((x) => `"${x}"`).join(' ')}`);
  }
  lines.push(...(options.extraConfig ?? []));
  const configPath = path.join(options.workDir, `server-${port}.conf`);
  writeFileSync(configPath, `${lines.join('\n')}\n`);
  const logPath = path.join(options.workDir, `server-${port}.log`);
  let child: ChildProcess | null = null;
  let runs = 0;

  const start = async (): Promise<void> => {
    runs++;
    const before = readOr(logPath).length;
    // Options errors go to stdout before --log-append takes over: send both to the log file too.
    const fd = openSync(logPath, 'a');
    const c = spawn('openvpn', ['--config', configPath, '--log-append', logPath], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child = c;
    const ok = await waitFor(() => readOr(logPath).slice(before).includes('Initialization Sequence Completed') || c.exitCode !== null, 10_000);
    if (!ok || c.exitCode !== null) {
      await stopChild(c);
      throw new Error(`openvpn server did not start (run ${runs}):\n${readOr(logPath).slice(before).slice(-3000)}`);
    }
  };
  await start();

  const server: OpenVpnServer = {
    port,
    logPath,
    configPath,
    log: () => readOr(logPath),
    waitForLog: (re, timeoutMs = 10_000) => waitFor(() => re.test(readOr(logPath)), timeoutMs),
    async stop() {
      if (child) await stopChild(child);
      child = null;
    },
    async restart() {
      if (child) await stopChild(child);
      await start();
    },
  };
  return server;
}

/** How a client attempt ended. */
export type ClientOutcome = 'connected' | 'auth_failed' | 'tls_failed' | 'timeout' | 'exited';

/** Result of one client attempt. */
export interface ClientResult {
  readonly outcome: ClientOutcome;
  /** Text after `AUTH_FAILED,` when the server sent one (empty string for a bare AUTH_FAILED). */
  readonly authFailedMessage: string | null;
  readonly elapsedMs: number;
  readonly log: string;
}

/** A connected client kept running (see `keepRunning`). */
export interface LiveClient {
  /** Resolves with the client log once the process has exited (or null on timeout). */
  waitForExit(timeoutMs: number): Promise<string | null>;
  log(): string;
  stop(): Promise<void>;
}

/** Client settings. */
export interface OpenVpnClientOptions {
  readonly workDir: string;
  readonly name: string;
  readonly port: number;
  /** CA that signed the server certificate. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Client hand-window: how long it waits for the TLS handshake before giving up (TLS-level denials). */
  readonly handWindowSeconds?: number;
  readonly timeoutMs?: number;
  /** Send a username (via `--auth-user-pass`); cert-only otherwise. */
  readonly username?: string;
  /** Keep the process running after it connected and return a handle. */
  readonly keepRunning?: boolean;
  readonly extraArgs?: readonly string[];
  /** How often the client log is polled (default 25 ms; benchmarks use less). */
  readonly pollMs?: number;
}

/**
 * Runs an OpenVPN client (`--dev null`) against the server and classifies the result from its log:
 * `Initialization Sequence Completed` → connected; `AUTH_FAILED[,msg]` → auth_failed; TLS negotiation failure or
 * handshake error → tls_failed.
 */
export async function connectOpenVpnClient(options: OpenVpnClientOptions): Promise<{ result: ClientResult; live: LiveClient | null }> {
  mkdirSync(options.workDir, { recursive: true });
  const logPath = path.join(options.workDir, `client-${options.name}-${randomBytes(3).toString('hex')}.log`);
  const args = [
    '--client', '--proto', 'udp4', '--remote', '127.0.0.1', String(options.port), '--nobind', '--dev', 'null',
    '--pull-filter', 'ignore', 'tun-mtu', '--ifconfig-noexec', '--route-noexec',
    '--ca', options.caFile, '--cert', options.certFile, '--key', options.keyFile, '--remote-cert-tls', 'server',
    '--connect-retry-max', '1', '--resolv-retry', '0', '--hand-window', String(options.handWindowSeconds ?? 3),
    '--verb', '3', '--log', logPath,
  ];
  if (options.username !== undefined) {
    const cred = path.join(options.workDir, `cred-${options.name}.txt`);
    writeFileSync(cred, `${options.username}\nunused-password\n`, { mode: 0o600 });
    args.push('--auth-user-pass', cred);
  }
  args.push(...(options.extraArgs ?? []));
  const started = Date.now();
  const child = spawn('openvpn', args, { stdio: 'ignore' });
  const log = (): string => readOr(logPath);
  let outcome = 'timeout' as ClientOutcome;
  await waitFor(() => {
    const l = log();
    if (l.includes('Initialization Sequence Completed')) outcome = 'connected';
    else if (l.includes('AUTH_FAILED')) outcome = 'auth_failed';
    else if (/TLS Error: TLS (key negotiation failed|handshake failed)|TLS_ERROR|Connection reset/.test(l)) outcome = 'tls_failed';
    else if (child.exitCode !== null) outcome = 'exited';
    else return false;
    return true;
  }, options.timeoutMs ?? 15_000, options.pollMs ?? 25);
  const elapsedMs = Date.now() - started;
  const text = log();
  const m = /AUTH_FAILED,?([^\n']*)/.exec(text);
  const result: ClientResult = { outcome, authFailedMessage: m ? m[1]!.trim() : null, elapsedMs, log: text };
  if (options.keepRunning && outcome === 'connected') {
    return {
      result,
      live: {
        log,
        waitForExit: async (timeoutMs) => ((await waitFor(() => child.exitCode !== null || child.signalCode !== null, timeoutMs)) ? log() : null),
        stop: () => stopChild(child),
      },
    };
  }
  await stopChild(child);
  return { result: { ...result, log: log() }, live: null };
}

/**
 * Transpiles the adapter sources (and what they import) with @swc/core into `outDir/dist/…` and copies
 * bin/devicegate-openvpn.js to `outDir/bin/`, so OpenVPN can exec the real launcher against the current sources
 * without a full `npm run build`. Returns the launcher path. Set NODE_PATH to `nodeModulesDir()` when running it.
 */
export function buildAdapterLauncher(outDir: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const swc = require('@swc/core') as typeof Swc;
  const root = path.resolve(__dirname, '..', '..');
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = path.join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
    });
  for (const sub of ['adapters', 'concentrator', 'domain', 'lib', 'policy', 'config/sections']) {
    for (const file of walk(path.join(root, 'src', sub))) {
      const out = path.join(outDir, 'dist', path.relative(path.join(root, 'src'), file)).replace(/\.ts$/, '.js');
      mkdirSync(path.dirname(out), { recursive: true });
      const { code } = swc.transformFileSync(file, {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: false,
      });
      writeFileSync(out, code);
    }
  }
  mkdirSync(path.join(outDir, 'bin'), { recursive: true });
  const launcher = path.join(outDir, 'bin', 'devicegate-openvpn.js');
  copyFileSync(path.join(root, 'bin', 'devicegate-openvpn.js'), launcher);
  return launcher;
}

/** The repository's node_modules (for NODE_PATH of a launcher built outside the repository). */
export function nodeModulesDir(): string {
  return path.resolve(__dirname, '..', '..', 'node_modules');
}

/** True when `openvpn --version` reports 2.6.x (the version the adapters were verified with). */
export function openvpnVersion(): string | null {
  const r = spawnSync('openvpn', ['--version'], { encoding: 'utf8' });
  const m = /OpenVPN (\d+\.\d+\.\d+)/.exec(r.stdout ?? '');
  return m ? m[1]! : null;
}

/** Compiles the shipped C plugin (docker/openvpn/plugin) with scripts/build-openvpn-plugin.sh into `outPath`. */
export function buildOpenVpnPlugin(outPath: string): string {
  const script = path.resolve(__dirname, '..', '..', 'scripts', 'build-openvpn-plugin.sh');
  const build = spawnSync('sh', [script, outPath], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`plugin build failed:\n${build.stdout}${build.stderr}`);
  return outPath;
}
