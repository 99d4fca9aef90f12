import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `devicegate` CLI (current sources through the swc hook) with the given environment additions. */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}): CliResult {
  const r = spawnSync(
    process.execPath,
    ['-r', path.join(ROOT, 'scripts/ts-register.js'), path.join(ROOT, 'src/cli/index.ts'), ...args],
    { env: { ...process.env, DEVICEGATE_LOG__LEVEL: 'silent', ...env }, encoding: 'utf8', timeout: 60_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
