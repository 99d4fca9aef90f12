/**
 * Test harness around the real `openssl` binary: temp directories, key and CSR generation, and command runners that
 * fail loudly with OpenSSL's stderr. Suites using it must be gated with `describeWith([tool('openssl')], ...)`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TempDir {
  readonly dir: string;
  file(name: string): string;
  write(name: string, data: string | Buffer): string;
  read(name: string): Buffer;
  cleanup(): void;
}

/** A fresh directory under os.tmpdir(); call `cleanup()` in afterAll. */
export function makeTempDir(prefix = 'devicegate-ca-'): TempDir {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name) => path.join(dir, name),
    write: (name, data) => {
      const p = path.join(dir, name);
      writeFileSync(p, data);
      return p;
    },
    read: (name) => readFileSync(path.join(dir, name)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface OpensslResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout + stderr, for assertions on messages OpenSSL prints to either. */
  readonly all: string;
}

/** Run `openssl <args>`; never throws for a non-zero exit (tests assert on `code`). */
export function openssl(args: readonly string[], opts: { cwd?: string; input?: string | Buffer } = {}): OpensslResult {
  const r = spawnSync('openssl', args, { cwd: opts.cwd, input: opts.input, encoding: 'buffer', timeout: 30_000 });
  if (r.error) throw r.error;
  const stdout = r.stdout.toString('utf8');
  const stderr = r.stderr.toString('utf8');
  return { code: r.status ?? -1, stdout, stderr, all: stdout + stderr };
}

/** Run `openssl <args>` and throw with its output unless it exits 0. */
export function opensslOk(args: readonly string[], opts: { cwd?: string; input?: string | Buffer } = {}): OpensslResult {
  const r = openssl(args, opts);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}):\n${r.all}`);
  return r;
}

export type TestKeyType = 'p256' | 'p384' | 'p521' | 'secp256k1' | 'rsa1024' | 'rsa2048' | 'rsa3072' | 'ed25519';

const GENPKEY: Record<TestKeyType, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  p521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
  secp256k1: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
  rsa1024: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  rsa3072: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'],
  ed25519: ['-algorithm', 'ED25519'],
};

/** Generate a private key with OpenSSL into `<name>.key.pem`; returns its path. */
export function genKey(dir: TempDir, name: string, type: TestKeyType): string {
  const out = dir.file(`${name}.key.pem`);
  opensslOk(['genpkey', ...GENPKEY[type], '-out', out]);
  return out;
}

/** Make a CSR with OpenSSL; `addext` entries become `-addext` options (requested extensions). */
export function makeCsr(
  dir: TempDir,
  keyPath: string,
  opts: { name?: string; subject?: string; addext?: readonly string[]; digest?: string } = {},
): { pem: string; der: Buffer; path: string } {
  const name = opts.name ?? path.basename(keyPath).replace(/\.key\.pem$/, '');
  const out = dir.file(`${name}.csr.pem`);
  const args = ['req', '-new', '-key', keyPath, '-subj', opts.subject ?? '/CN=device', '-out', out];
  if (opts.digest) args.push(`-${opts.digest}`);
  for (const e of opts.addext ?? []) args.push('-addext', e);
  opensslOk(args);
  const pem = readFileSync(out, 'utf8');
  const derOut = dir.file(`${name}.csr.der`);
  opensslOk(['req', '-in', out, '-outform', 'DER', '-out', derOut]);
  return { pem, der: readFileSync(derOut), path: out };
}
