import { homedir } from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AppError } from '../domain/errors';
import { ekHash, enroll, renew, type AgentContext } from './flows';
import { DEFAULT_HANDLES } from './tpm-device';

/** Where certificates and state go when `--out` is not given: /var/lib for root (a service), else the home dir. */
export function defaultOutDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/devicegate-agent' : path.join(homedir(), '.devicegate-agent');
}

function handle(value: string): number {
  if (!/^0x[0-9a-fA-F]{1,8}$/.test(value)) throw new InvalidArgumentError('expected a hex handle such as 0x81000002');
  return Number.parseInt(value, 16);
}

/** Streams the CLI writes to; injectable for tests. */
export interface CliIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

const defaultIo: CliIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

/**
 * `devicegate-agent`: enroll, renew and ek-hash. Progress goes to stderr, the result to stdout (JSON with
 * `--json`). Exit code 0 on success, 1 on a refused or failed operation, 2 on usage errors.
 */
export function buildProgram(io: CliIo = defaultIo, extra: Partial<AgentContext> = {}): Command {
  const program = new Command('devicegate-agent')
    .description('Enroll this device with devicegate using its TPM 2.0, and keep the device certificate fresh.')
    .option('--tcti <tcti>', 'TPM access: device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=N', 'device:/dev/tpmrm0')
    .option('--json', 'print the result as JSON on stdout', false)
    .option('--timeout <ms>', 'HTTP timeout in milliseconds', (v) => Number.parseInt(v, 10), 30_000)
    .addOption(new Option('--ek-handle <hex>', 'persistent EK handle (recreated from the TCG template if absent)').argParser(handle).default(DEFAULT_HANDLES.ek, '0x81010001'))
    .addOption(new Option('--ek-cert-index <hex>', 'NV index of the EK certificate').argParser(handle).default(DEFAULT_HANDLES.ekCertIndex, '0x01c00002'))
    .addOption(new Option('--ak-handle <hex>', 'persistent handle of the attestation key').argParser(handle).default(DEFAULT_HANDLES.ak, '0x81010002'))
    .addOption(new Option('--key-handle <hex>', 'persistent handle of the device key').argParser(handle).default(DEFAULT_HANDLES.key, '0x81000002'))
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .showHelpAfterError()
    .exitOverride();

  const ctxFrom = (cmd: Command): { ctx: AgentContext; json: boolean } => {
    const o = cmd.optsWithGlobals<{ tcti: string; json: boolean; timeout: number; ekHandle: number; ekCertIndex: number; akHandle: number; keyHandle: number }>();
    return {
      json: o.json,
      ctx: {
        tcti: o.tcti,
        timeoutMs: o.timeout,
        handles: { ek: o.ekHandle, ekCertIndex: o.ekCertIndex, ak: o.akHandle, key: o.keyHandle },
        log: (line) => io.stderr(`${line}\n`),
        ...extra,
      },
    };
  };
  const report = (json: boolean, result: Record<string, unknown>, human: string): void => {
    io.stdout(json ? `${JSON.stringify({ ok: true, ...result })}\n` : `${human}\n`);
  };

  program
    .command('enroll')
    .description('Attest this TPM to the gateway with a one-time token and obtain a device certificate')
    .requiredOption('--server <url>', 'gateway base URL, e.g. https://devicegate.example')
    .requiredOption('--token <token>', 'one-time enrollment token from IT')
    .requiredOption('--device-id <uuid>', 'inventory id of this device')
    .option('--out <dir>', 'where to store the certificate and state', defaultOutDir())
    .addOption(new Option('--ak-alg <alg>', 'algorithm of a newly created AK').choices(['rsa', 'ecc']).default('rsa'))
    .action(async (opts: { server: string; token: string; deviceId: string; out: string; akAlg: 'rsa' | 'ecc' }, cmd: Command) => {
      const { ctx, json } = ctxFrom(cmd);
      const r = await enroll(ctx, { server: opts.server, token: opts.token, deviceId: opts.deviceId, outDir: opts.out, akAlg: opts.akAlg });
      report(json, { ...r }, `Enrolled ${r.deviceId}. Certificate: ${r.certificateFile} (until ${r.notAfter}). TPM key: ${r.keyUri}`);
    });

  program
    .command('renew')
    .description('Obtain a fresh certificate with a new TPM2_Certify by the enrolled attestation key')
    .option('--server <url>', 'gateway base URL (default: the one used at enrollment)')
    .option('--out <dir>', 'directory used at enrollment', defaultOutDir())
    .action(async (opts: { server?: string; out: string }, cmd: Command) => {
      const { ctx, json } = ctxFrom(cmd);
      const r = await renew(ctx, { outDir: opts.out, ...(opts.server ? { server: opts.server } : {}) });
      report(json, { ...r }, `Renewed ${r.deviceId}. Certificate: ${r.certificateFile} (until ${r.notAfter})`);
    });

  program
    .command('ek-hash')
    .description('Print the SHA-256 of the EK public key (SubjectPublicKeyInfo) that IT registers in the inventory')
    .action(async (_opts: unknown, cmd: Command) => {
      const { ctx, json } = ctxFrom(cmd);
      const r = await ekHash(ctx);
      report(json, r, r.ekPublicSha256);
    });
  return program;
}

/** Runs the CLI; resolves with the process exit code instead of exiting (bin/ calls process.exit). */
export async function main(argv: readonly string[], io: CliIo = defaultIo, extra: Partial<AgentContext> = {}): Promise<number> {
  const program = buildProgram(io, extra);
  const json = argv.includes('--json');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return err.exitCode && err.exitCode !== 0 ? 2 : 0;
    }
    const code = e instanceof AppError ? e.code : 'AGENT_FAILED';
    const message = e instanceof Error ? e.message : String(e);
    if (json) io.stdout(`${JSON.stringify({ ok: false, error: { code, message } })}\n`);
    io.stderr(`error: ${code}: ${message}\n`);
    return 1;
  }
}
