/**
 * A private SoftHSM2 token per test suite: its own config and token directory under os.tmpdir(), selected through
 * SOFTHSM2_CONF (read by the library at C_Initialize, once per process). Gate suites with `softhsmRequirements`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { pathExists, tool, type Requirement } from './requirements';

/** Where Debian's softhsm2 package puts the module. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export const softhsmRequirements: readonly Requirement[] = [
  tool('softhsm2-util', 'apt-get install -y softhsm2'),
  pathExists(SOFTHSM_MODULE, 'apt-get install -y softhsm2'),
];

export interface SoftHsmToken {
  readonly dir: string;
  readonly conf: string;
  readonly modulePath: string;
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  /** Remove the token directory (restores SOFTHSM2_CONF). */
  cleanup(): void;
}

/**
 * The real process environment. Jest gives each test file a *copy* of process.env, so assigning to it never
 * reaches setenv(3) and libsofthsm2's getenv("SOFTHSM2_CONF") would not see it. `vm.runInThisContext` evaluates in
 * Node's main context, whose `process` is the real one.
 */
function realEnv(): NodeJS.ProcessEnv {
  return (vm.runInThisContext('process') as NodeJS.Process).env;
}

/** Create and initialise a fresh token; sets SOFTHSM2_CONF in the real process environment. */
export function createSoftHsmToken(label = 'devicegate-test', pin = '1234', soPin = '12345678'): SoftHsmToken {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devicegate-hsm-'));
  const tokens = path.join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${r.stdout}${r.stderr}`);
  const env = realEnv();
  const previous = env.SOFTHSM2_CONF;
  env.SOFTHSM2_CONF = conf;
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    modulePath: SOFTHSM_MODULE,
    label,
    pin,
    soPin,
    cleanup: () => {
      if (previous === undefined) delete env.SOFTHSM2_CONF;
      else env.SOFTHSM2_CONF = previous;
      delete process.env.SOFTHSM2_CONF;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
