/**
 * Real swtpm instances for tests (no TPM mock).
 *
 * - `createManufacturerCa()` makes a throwaway "TPM manufacturer" PKI (P-256 root + EK-issuing intermediate) with
 *   openssl; `provisionTpm(ca)` runs swtpm_setup with swtpm_localca pointed at that CA, so the TPM's EK
 *   certificates (NV 0x01c00002 RSA-2048, 0x01c00016 P-384) chain to it. A second CA = "another manufacturer".
 * - `cloneTpm()` copies a provisioned state so each test gets an isolated TPM in ~ms instead of ~1 s.
 * - `startSwtpm()` spawns swtpm on two free loopback ports (data N, control N+1), and `stop()` sends
 *   TPM2_Shutdown(SU_CLEAR) before SIGTERM: killing swtpm without it is an unorderly shutdown, and after a few
 *   the dictionary-attack counter locks DA-protected keys (TPM_RC_LOCKOUT, recipe pitfall #3).
 * - Everything lives under one temp dir per harness; `dispose()` stops all processes and removes it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TpmClient, openTransport, parseTcti } from '../../src/tpm';

const run = promisify(execFile);

/** A test TPM manufacturer PKI. */
export interface ManufacturerCa {
  readonly name: string;
  readonly dir: string;
  /** Root certificate (PEM): what a verifier trusts. */
  readonly rootPem: string;
  /** EK-issuing intermediate (PEM): sent alongside or configured as intermediate. */
  readonly intermediatePem: string;
  /** Root + intermediate, as a `tpm.trustedRootsFile` bundle would hold them. */
  readonly bundlePem: string;
}

/** A provisioned (stopped) swtpm state. */
export interface ProvisionedTpm {
  readonly stateDir: string;
  readonly ca: ManufacturerCa;
  /** EK certificate DER files written by swtpm_setup. */
  readonly ekCertRsa: Buffer;
  readonly ekCertEcc: Buffer;
}

/** A running swtpm. */
export interface RunningSwtpm {
  readonly port: number;
  /** `swtpm:host=127.0.0.1,port=N`, for the agent's `--tcti`. */
  readonly tcti: string;
  readonly stateDir: string;
  readonly process: ChildProcess;
  /** A TpmClient with its own connection; closed by `stop()`. swtpm serves one connection at a time. */
  client(): TpmClient;
  /** Closes clients, TPM2_Shutdown(SU_CLEAR), SIGTERM, waits for exit. Idempotent. */
  stop(): Promise<void>;
}

/** Owns every temp dir and process it creates; call `dispose()` in `afterAll`. */
export class SwtpmHarness {
  private readonly running = new Set<RunningSwtpm>();
  private counter = 0;

  private constructor(readonly root: string) {}

  static async create(): Promise<SwtpmHarness> {
    return new SwtpmHarness(await mkdtemp(path.join(tmpdir(), 'devicegate-swtpm-')));
  }

  private next(prefix: string): string {
    this.counter += 1;
    return path.join(this.root, `${prefix}-${this.counter}`);
  }

  /** A fresh manufacturer CA (P-256, valid for `days`). */
  async createManufacturerCa(name = 'Test TPM Manufacturer', days = 3650): Promise<ManufacturerCa> {
    const dir = this.next('ca');
    await mkdir(dir, { recursive: true });
    const o = (...args: string[]) => run('openssl', args, { cwd: dir });
    await o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key', '-out', 'root.pem',
      '-subj', `/O=${name}/CN=${name} Root CA`, '-days', String(days),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    await o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'signkey.pem', '-out', 'int.csr',
      '-subj', `/O=${name}/CN=${name} EK CA`);
    await writeFile(path.join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
    await o('x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'issuercert.pem',
      '-days', String(days), '-extfile', 'ext.cnf');
    const rootPem = await readFile(path.join(dir, 'root.pem'), 'utf8');
    const intermediatePem = await readFile(path.join(dir, 'issuercert.pem'), 'utf8');
    return { name, dir, rootPem, intermediatePem, bundlePem: rootPem + intermediatePem };
  }

  /** swtpm_setup a new TPM whose EK certificates are issued by `ca` (~0.8 s). */
  async provisionTpm(ca: ManufacturerCa): Promise<ProvisionedTpm> {
    const dir = this.next('tpm');
    const stateDir = path.join(dir, 'state');
    const conf = path.join(dir, 'conf');
    await mkdir(stateDir, { recursive: true });
    await mkdir(conf, { recursive: true });
    await writeFile(
      path.join(conf, 'swtpm-localca.conf'),
      `statedir = ${ca.dir}\nsigningkey = ${ca.dir}/signkey.pem\nissuercert = ${ca.dir}/issuercert.pem\ncertserial = ${ca.dir}/certserial\n`,
    );
    await writeFile(path.join(conf, 'swtpm-localca.options'), '--platform-manufacturer CI\n--platform-version 2.1\n--platform-model swtpm\n');
    await writeFile(
      path.join(conf, 'swtpm_setup.conf'),
      `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${conf}/swtpm-localca.conf\ncreate_certs_tool_options = ${conf}/swtpm-localca.options\nactive_pcr_banks = sha256\n`,
    );
    await run('swtpm_setup', [
      '--tpm2', '--tpmstate', stateDir, '--config', path.join(conf, 'swtpm_setup.conf'),
      '--create-ek-cert', '--lock-nvram', '--overwrite', '--write-ek-cert-files', dir, '--logfile', path.join(dir, 'setup.log'),
    ]);
    return {
      stateDir,
      ca,
      ekCertRsa: await readFile(path.join(dir, 'ek-rsa2048.crt')),
      ekCertEcc: await readFile(path.join(dir, 'ek-secp384r1.crt')),
    };
  }

  /** A copy of a provisioned (stopped) state: same EK, independent NV/persistent objects. */
  async cloneTpm(tpm: ProvisionedTpm): Promise<ProvisionedTpm> {
    const stateDir = path.join(this.next('clone'), 'state');
    await cp(tpm.stateDir, stateDir, { recursive: true });
    await rm(path.join(stateDir, '.lock'), { force: true });
    return { ...tpm, stateDir };
  }

  /** Starts swtpm on a free loopback port; retries if another process grabbed the port in between. */
  async startSwtpm(tpm: ProvisionedTpm | string): Promise<RunningSwtpm> {
    const stateDir = typeof tpm === 'string' ? tpm : tpm.stateDir;
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      // The control channel must be TCP on port+1: the tss2 `swtpm` TCTI (tpm2-tools, tpm2-abrmd, tpm2-openssl)
      // connects there to set the locality.
      const port = await freePortPair();
      const child = spawn(
        'swtpm',
        ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--flags', 'not-need-init,startup-clear',
          '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      if (await waitForPort(port, child)) {
        const r = this.makeRunning(port, stateDir, child);
        this.running.add(r);
        return r;
      }
      child.kill('SIGKILL');
      lastError = new Error(`swtpm did not start on port ${port}: ${stderr.trim()}`);
    }
    throw lastError;
  }

  private makeRunning(port: number, stateDir: string, child: ChildProcess): RunningSwtpm {
    const clients: TpmClient[] = [];
    let stopped: Promise<void> | null = null;
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    const self: RunningSwtpm = {
      port,
      tcti,
      stateDir,
      process: child,
      client: () => {
        const c = new TpmClient(openTransport(parseTcti(tcti), 20_000));
        clients.push(c);
        return c;
      },
      stop: () => {
        stopped ??= (async () => {
          for (const c of clients) await c.transport.close().catch(() => undefined);
          if (child.exitCode === null && child.signalCode === null) {
            const shutdown = new TpmClient(openTransport(parseTcti(tcti), 3000));
            await shutdown.shutdown().catch(() => undefined);
            await shutdown.transport.close().catch(() => undefined);
            const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
            await exited;
            clearTimeout(timer);
          }
          this.running.delete(self);
        })();
        return stopped;
      },
    };
    return self;
  }

  /** Stops every swtpm still running and deletes all state, CAs and sockets. */
  async dispose(): Promise<void> {
    for (const r of [...this.running]) await r.stop().catch(() => undefined);
    await rm(this.root, { recursive: true, force: true });
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port N on 127.0.0.1 such that N and N+1 were free a moment ago. */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p < 65535 && (await canListen(p + 1))) return p;
  }
  throw new Error('no free pair of loopback ports');
}

async function waitForPort(port: number, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}
