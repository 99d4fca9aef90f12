/**
 * Real strongSwan 5.9 (charon + swanctl) for tests: IKEv2 responder with `remote.auth = eap-radius` → FreeRADIUS
 * (EAP-TLS, check-eap-tls → rlm_rest → devicegate) and an initiator per client identity, childless IKE (this kernel
 * has no ESP/AH, so only the authentication runs).
 *
 * charon's socket-default plugin binds 0.0.0.0/[::] with no bind-address option, so everything strongSwan-side runs
 * in a private network namespace whose only interface is `lo` (held by a `sleep` process; joined with `nsenter`).
 * devicegate (the gateway URL) stays in the test's own namespace; FreeRADIUS reaches it through a bridge that never
 * leaves loopback: in-namespace TCP 127.0.0.1:P → a unix socket in the work dir → host TCP to the gateway.
 * Each charon also runs in its own mount namespace with a tmpfs /run (charon hard-codes /var/run/charon.pid).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type FreeRadius, freeradiusRequirements, startFreeRadius } from './freeradius';
import { stopChild } from './openvpn';
import { pathExists, type Requirement, tool } from './requirements';

/** Requirements for suites using this harness (root for network/mount namespaces). */
export const strongswanRequirements: Requirement[] = [
  ...freeradiusRequirements,
  tool('swanctl', 'apt-get install -y strongswan-swanctl strongswan-charon libcharon-extra-plugins'),
  tool('nsenter', 'apt-get install -y util-linux'),
  tool('unshare', 'apt-get install -y util-linux'),
  pathExists('/usr/lib/ipsec/charon', 'apt-get install -y strongswan-charon'),
  pathExists('/usr/lib/ipsec/plugins/libstrongswan-eap-radius.so', 'apt-get install -y libcharon-extra-plugins'),
  {
    name: 'root (network namespaces)',
    hint: 'run as root',
    present: () => typeof process.getuid === 'function' && process.getuid() === 0,
  },
];

const SHIPPED = path.resolve(__dirname, '..', '..', 'docker', 'strongswan');
const LOAD =
  'random nonce openssl kdf hmac sha1 sha2 aes gcm pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-netlink socket-default vici eap-identity eap-tls eap-radius';

/** One initiator identity. */
export interface StrongSwanClient {
  readonly name: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** IKE identity; for a DN identity it must equal the certificate subject (charon picks the cert by it). */
  readonly id: string;
}

/** Lab settings. */
export interface StrongSwanLabOptions {
  readonly workDir: string;
  readonly gatewayUrl: string;
  readonly token: string;
  /** CA(s) FreeRADIUS accepts for client certificates. */
  readonly radiusClientCaFile: string;
  /** CA that signed the responder / RADIUS server certificate (trusted by the initiators). */
  readonly serverCaFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Subject of the server certificate as a strongSwan DN, e.g. `CN=devicegate-test-server`. */
  readonly serverId: string;
  readonly clients: readonly StrongSwanClient[];
}

/** Result of one `swanctl --initiate`. */
export interface InitiateResult {
  readonly established: boolean;
  readonly rc: number | null;
  readonly output: string;
  readonly elapsedMs: number;
}

/** A running lab. */
export interface StrongSwanLab {
  readonly radius: FreeRadius;
  initiate(name: string): Promise<InitiateResult>;
  responderLog(): string;
  stop(): Promise<void>;
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

function strongswanConf(dir: string, port: number, extra: string): string {
  return `charon {
	port = ${port}
	port_nat_t = ${port + 1}
	install_routes = no
	routing_table = 0
	install_virtual_ip = no
	retransmit_tries = 2
	retransmit_timeout = 1.0
	filelog {
		log {
			path = ${dir}/charon.log
			time_format = %H:%M:%S
			default = 1
			ike = 2
			cfg = 2
			flush_line = yes
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	load_modular = no
	load = ${LOAD}
	plugins {
		vici {
			socket = unix://${dir}/charon.vici
		}
	}
}
${extra}`;
}

/** Starts the namespace, the bridge, FreeRADIUS and both charons; loads the connections. */
export async function startStrongSwanLab(o: StrongSwanLabOptions): Promise<StrongSwanLab> {
  const w = o.workDir;
  mkdirSync(w, { recursive: true });
  const children: ChildProcess[] = [];
  const cleanup: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    for (const c of children.splice(0).reverse()) await stopChild(c, 2000);
  };
  try {
    // 1. Network namespace holder: lo only.
    const holder = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec sleep 86400'], { stdio: 'ignore' });
    children.push(holder);
    const pid = String(holder.pid);
    const nsenter = ['nsenter', '-t', pid, '-n'];
    const up = await waitFor(() => /state UNKNOWN|UP/.test(spawnSync('nsenter', ['-t', pid, '-n', 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' }).stdout ?? ''), 5000);
    if (!up) throw new Error('network namespace did not come up');

    // 2. Bridge to the gateway: unix socket (host side, this process) ← TCP in the namespace.
    const gw = new URL(o.gatewayUrl);
    const sock = path.join(w, 'gw.sock');
    const bridge = net.createServer((c) => {
      const up2 = net.connect(Number(gw.port || (gw.protocol === 'https:' ? 443 : 80)), gw.hostname);
      c.pipe(up2).pipe(c);
      c.on('error', () => up2.destroy());
      up2.on('error', () => c.destroy());
    });
    await new Promise<void>((resolve) => bridge.listen(sock, resolve));
    cleanup.push(() => new Promise<void>((resolve) => bridge.close(() => resolve())));
    const innerPort = 18082;
    const fwdCode = `const net=require('net');net.createServer(c=>{const u=net.connect(process.argv[1]);c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());}).listen(${innerPort},'127.0.0.1',()=>console.log('ready'));`;
    const fwd = spawn(nsenter[0]!, [...nsenter.slice(1), process.execPath, '-e', fwdCode, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(fwd);
    await new Promise<void>((resolve, reject) => {
      fwd.stdout.once('data', () => resolve());
      fwd.once('exit', () => reject(new Error('namespace forwarder exited')));
    });

    // 3. FreeRADIUS inside the namespace, talking to the gateway through the bridge.
    const radius = await startFreeRadius({
      workDir: path.join(w, 'radius'),
      gatewayUrl: `${gw.protocol}//127.0.0.1:${innerPort}`,
      token: o.token,
      clientCaFile: o.radiusClientCaFile,
      serverCertFile: o.serverCertFile,
      serverKeyFile: o.serverKeyFile,
      wrap: nsenter,
    });
    cleanup.push(() => radius.stop());

    // 4. Responder config: the shipped swanctl.conf / strongswan.conf with deployment values replaced.
    const resp = path.join(w, 'resp');
    const init = path.join(w, 'init');
    for (const d of [resp, init]) for (const s of ['x509', 'x509ca', 'private']) mkdirSync(path.join(d, s), { recursive: true });
    copyFileSync(o.serverCaFile, path.join(resp, 'x509ca', 'ca.pem'));
    copyFileSync(o.serverCaFile, path.join(init, 'x509ca', 'ca.pem'));
    copyFileSync(o.serverCertFile, path.join(resp, 'x509', 'vpn-server.pem'));
    copyFileSync(o.serverKeyFile, path.join(resp, 'private', 'vpn-server.key'));
    const shippedSwanctl = readFileSync(path.join(SHIPPED, 'swanctl.conf'), 'utf8');
    writeFileSync(path.join(resp, 'swanctl.conf'), shippedSwanctl.replace('id = "CN=vpn.example"', `id = "${o.serverId}"`));
    const shippedCharon = readFileSync(path.join(SHIPPED, 'strongswan.conf'), 'utf8')
      .replace('auth_port = 1812', `auth_port = ${radius.authPort}`)
      .replace('secret = CHANGE-ME-radius-shared-secret', `secret = ${radius.secret}`)
      .replace('secret = CHANGE-ME-dae-secret', 'secret = dae-test-secret');
    writeFileSync(path.join(resp, 'eap-radius.conf'), shippedCharon);
    writeFileSync(path.join(resp, 'strongswan.conf'), strongswanConf(resp, 15500, `include ${path.join(resp, 'eap-radius.conf')}\n`));
    writeFileSync(path.join(init, 'strongswan.conf'), strongswanConf(init, 15502, ''));
    let initConf = '';
    for (const c of o.clients) {
      copyFileSync(c.certFile, path.join(init, 'x509', `${c.name}.pem`));
      copyFileSync(c.keyFile, path.join(init, 'private', `${c.name}.key`));
      initConf += `connections {\n\t${c.name} {\n\t\tversion = 2\n\t\tremote_addrs = 127.0.0.1\n\t\tremote_port = 15500\n\t\tlocal {\n\t\t\tauth = eap-tls\n\t\t\tcerts = ${c.name}.pem\n\t\t\tid = "${c.id}"\n\t\t}\n\t\tremote {\n\t\t\tauth = pubkey\n\t\t\tid = "${o.serverId}"\n\t\t}\n\t\tchildless = force\n\t}\n}\n`;
    }
    writeFileSync(path.join(init, 'swanctl.conf'), initConf);

    // 5. Both charons, each in its own mount namespace (tmpfs /run) inside the network namespace.
    for (const d of [resp, init]) {
      const fd = openSync(path.join(d, 'charon.out'), 'a');
      const c = spawn(nsenter[0]!, [...nsenter.slice(1), 'unshare', '-m', 'sh', '-c', 'mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon'], {
        stdio: ['ignore', fd, fd],
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', STRONGSWAN_CONF: path.join(d, 'strongswan.conf') },
      });
      closeSync(fd);
      children.push(c);
    }
    for (const d of [resp, init]) {
      const vici = path.join(d, 'charon.vici');
      const ok = await waitFor(() => spawnSync('test', ['-S', vici]).status === 0, 10_000);
      if (!ok) throw new Error(`charon did not start:\n${readOr(path.join(d, 'charon.out')).slice(-2000)}${readOr(path.join(d, 'charon.log')).slice(-2000)}`);
      const load = spawnSync('swanctl', ['--load-all', '--noprompt', '--file', path.join(d, 'swanctl.conf'), '--uri', `unix://${vici}`], { encoding: 'utf8' });
      if (load.status !== 0) throw new Error(`swanctl --load-all failed for ${d}:\n${load.stdout}${load.stderr}`);
    }

    return {
      radius,
      responderLog: () => readOr(path.join(resp, 'charon.log')),
      async initiate(name) {
        const vici = `unix://${path.join(init, 'charon.vici')}`;
        const started = Date.now();
        const r = spawn('swanctl', ['--initiate', '--ike', name, '--timeout', '10', '--uri', vici], { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        r.stdout.on('data', (c: Buffer) => (output += c.toString()));
        r.stderr.on('data', (c: Buffer) => (output += c.toString()));
        const rc = await new Promise<number | null>((resolve) => r.on('close', (code) => resolve(code)));
        spawnSync('swanctl', ['--terminate', '--ike', name, '--uri', vici], { stdio: 'ignore' });
        return { established: rc === 0 && new RegExp(`IKE_SA ${name}\\[\\d+\\] established`).test(output), rc, output, elapsedMs: Date.now() - started };
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** strongSwan's DN string for a node:crypto subject (`C=DE\nO=x\nCN=y` → `C=DE, O=x, CN=y`). */
export function strongswanDn(nodeSubject: string): string {
  return nodeSubject.split('\n').join(', ');
}
