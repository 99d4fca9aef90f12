/**
 * Real FreeRADIUS 3.2 (EAP-TLS) on 127.0.0.1 for tests, from a private copy of /etc/freeradius/3.0 (nothing under
 * /etc is modified) with devicegate's shipped snippets from docker/freeradius/ (rlm_rest with pool.start = 0, the
 * guarded check-eap-tls, the eap module with OCSP softfail = no), and `eapol_test` as the supplicant.
 *
 * Every path and URL is a parameter so the same harness can point at the real devicegate later.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freeUdpPort, stopChild } from './openvpn';
import { type Requirement, pathExists, tool } from './requirements';

/** Requirements for suites using this harness. */
export const freeradiusRequirements: Requirement[] = [
  tool('freeradius', 'apt-get install -y freeradius freeradius-rest'),
  tool('eapol_test', 'apt-get install -y eapoltest'),
  pathExists('/etc/freeradius/3.0/radiusd.conf', 'apt-get install -y freeradius'),
  pathExists('/usr/lib/freeradius/rlm_rest.so', 'apt-get install -y freeradius-rest'),
];

const SHIPPED = path.resolve(__dirname, '..', '..', 'docker', 'freeradius');

/** FreeRADIUS settings. */
export interface FreeRadiusOptions {
  readonly workDir: string;
  /** devicegate base URL (rlm_rest `connect_uri`). */
  readonly gatewayUrl: string;
  /** Bearer token (given to radiusd as DEVICEGATE_TOKEN, as in production). */
  readonly token: string;
  /** CA file the eap module trusts for client certificates. */
  readonly clientCaFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** OCSP responder URL for the eap module (`softfail = no`); null disables OCSP. */
  readonly ocspUrl?: string | null;
  readonly authPort?: number;
  readonly secret?: string;
  /** Command prefix to start radiusd with (e.g. `['nsenter', '-t', PID, '-n']` for a network namespace). */
  readonly wrap?: readonly string[];
}

/** A running FreeRADIUS. */
export interface FreeRadius {
  readonly authPort: number;
  readonly secret: string;
  readonly logPath: string;
  readonly raddb: string;
  log(): string;
  stop(): Promise<void>;
}

function substitute(text: string, pairs: readonly [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`shipped FreeRADIUS snippet no longer contains ${from}`);
    out = out.split(from).join(to);
  }
  return out;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

const readOr = (f: string): string => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};

/** Writes the private config tree and starts `freeradius -X`; resolves when it is ready. */
export async function startFreeRadius(options: FreeRadiusOptions): Promise<FreeRadius> {
  const w = options.workDir;
  const rd = path.join(w, 'raddb');
  const run = path.join(w, 'run');
  rmSync(rd, { recursive: true, force: true });
  mkdirSync(run, { recursive: true });
  cpSync('/etc/freeradius/3.0', rd, { recursive: true, verbatimSymlinks: true });
  const authPort = options.authPort ?? (await freeUdpPort());
  const secret = options.secret ?? 'testing123';

  const conf = readFileSync(path.join(rd, 'radiusd.conf'), 'utf8')
    .replace(/^raddbdir = .*$/m, `raddbdir = ${rd}`)
    .replace(/^logdir = .*$/m, `logdir = ${run}`)
    .replace(/^run_dir = .*$/m, `run_dir = ${run}`)
    .replace(/^db_dir = .*$/m, `db_dir = ${run}`)
    .replace(/^cleanup_delay = \d+/m, 'cleanup_delay = 0')
    .replace(/^proxy_requests\s*=\s*yes/m, 'proxy_requests = no')
    .replace(/^(\s*)user = freerad/m, '$1#user = freerad')
    .replace(/^(\s*)group = freerad/m, '$1#group = freerad')
    .replace(/^(\s*)reject_delay = \d+/m, '$1reject_delay = 0');
  writeFileSync(path.join(rd, 'radiusd.conf'), conf);
  writeFileSync(
    path.join(rd, 'clients.conf'),
    `client localhost {\n\tipaddr = 127.0.0.1\n\tsecret = ${secret}\n\trequire_message_authenticator = no\n\tnas_type = other\n}\n`,
  );
  for (const f of readdirSync(path.join(rd, 'sites-enabled'))) rmSync(path.join(rd, 'sites-enabled', f), { force: true });
  rmSync(path.join(rd, 'mods-enabled', 'eap'), { force: true });

  // The shipped snippets, with only their deployment-specific values replaced.
  writeFileSync(
    path.join(rd, 'mods-enabled', 'rest'),
    substitute(readFileSync(path.join(SHIPPED, 'mods-available', 'rest'), 'utf8'), [
      ['https://devicegate.example:8443', options.gatewayUrl],
      ['/etc/freeradius/3.0/certs/devicegate/devicegate-api-ca.pem', options.clientCaFile],
    ]),
  );
  writeFileSync(path.join(rd, 'sites-enabled', 'check-eap-tls'), readFileSync(path.join(SHIPPED, 'sites-available', 'check-eap-tls'), 'utf8'));
  writeFileSync(
    path.join(rd, 'mods-enabled', 'eap'),
    substitute(readFileSync(path.join(SHIPPED, 'mods-available', 'eap-devicegate'), 'utf8'), [
      ['/etc/freeradius/3.0/certs/devicegate/radius-server.key', options.serverKeyFile],
      ['/etc/freeradius/3.0/certs/devicegate/radius-server.pem', options.serverCertFile],
      ['/etc/freeradius/3.0/certs/devicegate/device-ca.pem', options.clientCaFile],
      ['https://devicegate.example:8443/v1/ocsp', options.ocspUrl ?? 'http://127.0.0.1:9/'],
      ['\t\t\tenable = yes\n\t\t\toverride_cert_url', `\t\t\tenable = ${options.ocspUrl ? 'yes' : 'no'}\n\t\t\toverride_cert_url`],
    ]),
  );
  // The outer server: EAP only; check-eap-tls (inside the eap module) makes the decision.
  writeFileSync(
    path.join(rd, 'sites-enabled', 'devicegate-test'),
    `server devicegate-test {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = ${authPort}
	}
	authorize {
		eap {
			ok = return
			updated = return
		}
	}
	authenticate {
		eap
	}
	post-auth {
		Post-Auth-Type REJECT {
			ok
		}
	}
}
`,
  );

  const logPath = path.join(run, `radiusd-${authPort}.log`);
  const fd = openSync(logPath, 'a');
  const cmd = [...(options.wrap ?? []), 'freeradius', '-X', '-d', rd];
  const child: ChildProcess = spawn(cmd[0]!, cmd.slice(1), {
    stdio: ['ignore', fd, fd],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', DEVICEGATE_TOKEN: options.token },
  });
  closeSync(fd);
  const ready = await waitFor(() => readOr(logPath).includes('Ready to process requests') || child.exitCode !== null, 15_000);
  if (!ready || child.exitCode !== null) {
    await stopChild(child);
    throw new Error(`freeradius did not start:\n${readOr(logPath).slice(-3000)}`);
  }
  return {
    authPort,
    secret,
    logPath,
    raddb: rd,
    log: () => readOr(logPath),
    stop: () => stopChild(child),
  };
}

/** Result of one EAP-TLS authentication. */
export interface EapolResult {
  /** eapol_test printed SUCCESS and exited 0. */
  readonly success: boolean;
  readonly rc: number | null;
  readonly output: string;
  readonly elapsedMs: number;
}

/** eapol_test settings. */
export interface EapolOptions {
  readonly workDir: string;
  readonly name: string;
  readonly port: number;
  readonly secret: string;
  readonly identity: string;
  /** CA the supplicant trusts for the RADIUS server certificate. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly timeoutSeconds?: number;
  readonly wrap?: readonly string[];
}

/** Runs one EAP-TLS authentication with eapol_test against 127.0.0.1. */
export async function runEapolTest(o: EapolOptions): Promise<EapolResult> {
  mkdirSync(o.workDir, { recursive: true });
  const conf = path.join(o.workDir, `eapol-${o.name}.conf`);
  writeFileSync(
    conf,
    `network={\n\tkey_mgmt=IEEE8021X\n\teap=TLS\n\tidentity="${o.identity}"\n\tca_cert="${o.caFile}"\n\tclient_cert="${o.certFile}"\n\tprivate_key="${o.keyFile}"\n\teapol_flags=0\n}\n`,
  );
  const cmd = [...(o.wrap ?? []), 'eapol_test', '-c', conf, '-a', '127.0.0.1', '-p', String(o.port), '-s', o.secret, '-M', '02:00:00:00:00:0a', '-t', String(o.timeoutSeconds ?? 8)];
  const started = Date.now();
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const rc = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { success: rc === 0 && /^SUCCESS$/m.test(output), rc, output, elapsedMs: Date.now() - started };
}

/** True when the private tree would start (the Debian package is installed with its default layout). */
export function freeradiusTreePresent(): boolean {
  return existsSync('/etc/freeradius/3.0/mods-available/eap');
}
