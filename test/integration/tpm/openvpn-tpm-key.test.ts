/**
 * The whole path with the key never leaving the TPM: the agent enrolls a real swtpm against the REAL gateway
 * (registered EK, one-time token, attestation), then an OpenVPN 2.6 client with `--providers tpm2 default --key
 * device-key.tss2.pem` completes a TLS 1.3 handshake with a p2p OpenVPN server that trusts devicegate's CA and asks
 * devicegate at tls-verify (the shipped sh hook), which audits the allow. (Refusals of revoked, suspended and
 * unknown devices through the same hook: test/e2e/openvpn-tls-verify-sh.test.ts.) tpm2-openssl needs a user-space resource manager for TLS (TLS keeps several
 * TPM hash sequences open; swtpm has 3 object slots), so tpm2-abrmd runs on a private D-Bus session bus.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { main } from '../../../src/agent/cli';
import { ekHash } from '../../../src/agent/flows';
import { describeWith, tool } from '../../helpers/requirements';
import { SwtpmHarness, freePort, type RunningSwtpm } from '../../helpers/swtpm';
import { bearer } from '../../helpers/tokens';
import { startLiveEnrollmentServer, type LiveEnrollmentServer } from './live-enrollment-server';

const run = promisify(execFile);

function waitFor(child: ChildProcess, pattern: RegExp, timeoutMs: number, label: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    };
    const timer = setTimeout(() => reject(new Error(`${label}: no ${pattern} within ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

describeWith(
  [tool('swtpm'), tool('swtpm_setup'), tool('openssl'), tool('openvpn'), tool('tpm2-abrmd', 'apt-get install -y tpm2-abrmd libtss2-tcti-tabrmd0'), tool('dbus-daemon')],
  'OpenVPN with the TPM-held device key (tpm2-openssl provider)',
  () => {
    let h: SwtpmHarness;
    let tpm: RunningSwtpm;
    let server: LiveEnrollmentServer;
    let dir: string;
    const procs: ChildProcess[] = [];

    beforeAll(async () => {
      h = await SwtpmHarness.create();
      const ca = await h.createManufacturerCa('Acme TPM');
      tpm = await h.startSwtpm(await h.provisionTpm(ca));
      server = await startLiveEnrollmentServer({ trustedRootsPem: ca.bundlePem });
      dir = await mkdtemp(path.join(tmpdir(), 'devicegate-ovpn-'));
    }, 60_000);

    afterAll(async () => {
      for (const p of procs.reverse()) await stop(p);
      await server?.close();
      await h?.dispose();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('completes an OpenVPN TLS handshake signed by the TPM key from the agent’s TSS2 key file', async () => {
      const { deviceId, token } = await server.register((await ekHash({ tcti: tpm.tcti, log: () => undefined })).ekPublicSha256);
      let out = '';
      const code = await main(['--tcti', tpm.tcti, '--json', 'enroll', '--server', server.url, '--token', token, '--device-id', deviceId, '--out', dir], {
        stdout: (s) => (out += s),
        stderr: () => undefined,
      });
      expect(code).toBe(0);
      const enrolled = JSON.parse(out) as { certificateFile: string; keyFile: string };
      expect(await readFile(enrolled.keyFile, 'utf8')).toContain('BEGIN TSS2 PRIVATE KEY');

      // Server-side PKI for the OpenVPN server; it trusts the device CA of the reference server.
      const o = (...a: string[]) => run('openssl', a, { cwd: dir });
      await o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'vpnca.key', '-out', 'vpnca.pem', '-subj', '/CN=vpn-ca', '-days', '1');
      await o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'vpn.key', '-out', 'vpn.csr', '-subj', '/CN=vpn-server');
      await writeFile(path.join(dir, 'ext.cnf'), 'extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n');
      await o('x509', '-req', '-in', 'vpn.csr', '-CA', 'vpnca.pem', '-CAkey', 'vpnca.key', '-CAcreateserial', '-out', 'vpn.pem', '-days', '1', '-extfile', 'ext.cnf');
      await writeFile(path.join(dir, 'device-ca.pem'), server.chainPem);
      const concentratorToken = (await bearer(server.app.services, 'concentrator', 'ovpn-tpm')).replace(/^Bearer /, '');
      await writeFile(path.join(dir, 'concentrator-token'), concentratorToken, { mode: 0o600 });
      const hook = [
        '--script-security', '2',
        '--setenv', 'DEVICEGATE_URL', server.url,
        '--setenv', 'DEVICEGATE_TOKEN_FILE', path.join(dir, 'concentrator-token'),
        '--setenv', 'DEVICEGATE_GATEWAY_ID', 'ovpn-tpm',
        '--tls-verify', path.resolve(__dirname, '..', '..', '..', 'docker', 'openvpn', 'devicegate-tls-verify.sh'),
      ];

      // tpm2-abrmd owns the swtpm connection from here on.
      const dbus = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(dbus);
      const busAddress = (await waitFor(dbus, /unix:[^\n]+/, 10_000, 'dbus-daemon')).trim();
      const busName = `com.intel.tss2.Tabrmd.dg${randomBytes(4).toString('hex')}`;
      const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: busAddress, TPM2OPENSSL_TCTI: `tabrmd:bus_name=${busName},bus_type=session` };
      const abrmdArgs = ['--session', '--tcti', tpm.tcti, '--dbus-name', busName, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])];
      const abrmd = spawn('tpm2-abrmd', abrmdArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(abrmd);
      let abrmdLog = '';
      abrmd.stdout?.on('data', (d: Buffer) => (abrmdLog += d.toString()));
      abrmd.stderr?.on('data', (d: Buffer) => (abrmdLog += d.toString()));
      for (let i = 0; i < 100; i++) {
        const r = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${busName}`], { env }).catch(() => ({ stdout: '' }));
        if (r.stdout.includes('true')) break;
        if (abrmd.exitCode !== null) throw new Error(`tpm2-abrmd exited: ${abrmdLog}`);
        await new Promise((res) => setTimeout(res, 100));
      }

      const sp = await freePort();
      const cp = await freePort();
      const common = ['--dev', 'null', '--proto', 'udp', '--local', '127.0.0.1', '--verb', '3', '--ping', '1', '--connect-retry', '1'];
      const srv = spawn('openvpn', [...common, '--lport', String(sp), '--remote', '127.0.0.1', String(cp), '--tls-server', '--dh', 'none', '--ca', 'device-ca.pem', '--cert', 'vpn.pem', '--key', 'vpn.key', ...hook], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(srv);
      const srvDone = waitFor(srv, /Initialization Sequence Completed/, 30_000, 'openvpn server');
      const srvVerified = waitFor(srv, new RegExp(`VERIFY OK: depth=0, CN=${deviceId}`), 30_000, 'openvpn server verify');
      const cli = spawn('openvpn', [...common, '--lport', String(cp), '--remote', '127.0.0.1', String(sp), '--tls-client', '--ca', 'vpnca.pem', '--cert', enrolled.certificateFile, '--providers', 'tpm2', 'default', '--key', enrolled.keyFile], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(cli);
      const cliTls = waitFor(cli, /Control Channel: TLSv1\.3/, 30_000, 'openvpn client');
      let cliLog = '';
      cli.stdout?.on('data', (d: Buffer) => (cliLog += d.toString()));
      cli.stderr?.on('data', (d: Buffer) => (cliLog += d.toString()));
      const all = Promise.all([srvDone, srvVerified, cliTls, waitFor(cli, /Initialization Sequence Completed/, 30_000, 'openvpn client')]);
      await all.catch((e: Error) => {
        throw new Error(`${e.message}\n--- client ---\n${cliLog.slice(-3000)}\n--- tpm2-abrmd ---\n${abrmdLog.slice(-1500)}`);
      });
      expect(await all).toHaveLength(4);
      await server.app.services.audit.log.flush();
      const decisions = await server.app.store.audit.query({ type: 'vpn.decision', deviceId }, { limit: 10 });
      expect(decisions.items.map((e) => e.decision)).toEqual(['allow']);
      expect(JSON.parse(decisions.items[0]!.body).data.concentrator).toMatchObject({ id: 'ovpn-tpm', hook: 'tls-verify' });
    }, 60_000);
  },
);
