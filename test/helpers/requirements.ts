/**
 * Gates suites that need a real component (redis-server, swtpm, openvpn, ../shared vectors, ...).
 *
 * Locally a missing component skips the suite and records it so the skip reporter names it with the install
 * command. Under CI=true a missing component is a failure: CI must never report a suite as passed that did not run.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export interface Requirement {
  /** What is missing, e.g. `redis-server` or `../shared/vectors`. */
  readonly name: string;
  /** True when the requirement is met. */
  readonly present: () => boolean;
  /** How to get it, e.g. `apt-get install -y redis-server`. */
  readonly hint: string;
}

const cache = new Map<string, boolean>();

/** A command on PATH (or an absolute path) that must exist. */
export function tool(command: string, hint = `apt-get install -y ${command}`): Requirement {
  return {
    name: command,
    hint,
    present: () => {
      const hit = cache.get(command);
      if (hit !== undefined) return hit;
      const ok = path.isAbsolute(command)
        ? existsSync(command)
        : spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
      cache.set(command, ok);
      return ok;
    },
  };
}

/** A path (file or directory) that must exist, e.g. the shared test vectors beside the clone. */
export function pathExists(p: string, hint: string): Requirement {
  return { name: p, hint, present: () => existsSync(p) };
}

/** The `../shared` folder beside the clone, holding real attestation vectors and vendor roots. */
export const sharedDir = path.resolve(__dirname, '..', '..', '..', 'shared');
export const sharedVectors: Requirement = pathExists(
  path.join(sharedDir, 'vectors'),
  'real attestation vectors live in ../shared/vectors beside the clone',
);

export const isCI = process.env.CI === 'true' || process.env.CI === '1';

function recordSkip(suite: string, r: Requirement): void {
  const dir = path.resolve(__dirname, '..', '..', '.jest-skips');
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, `${process.pid}.jsonl`), JSON.stringify({ suite, missing: r.name, hint: r.hint }) + '\n');
}

/**
 * `describe` that runs only when every requirement is present. Missing locally: skipped and reported by name.
 * Missing under CI=true: a failing test that names what is missing.
 */
export function describeWith(requirements: readonly Requirement[], title: string, body: () => void): void {
  const missing = requirements.filter((r) => !r.present());
  if (missing.length === 0) {
    describe(title, body);
    return;
  }
  if (isCI) {
    describe(title, () => {
      it(`cannot run: missing ${missing.map((m) => m.name).join(', ')}`, () => {
        throw new Error(
          `CI=true and this suite cannot run: ${missing.map((m) => `${m.name} (${m.hint})`).join('; ')}`,
        );
      });
    });
    return;
  }
  for (const m of missing) recordSkip(title, m);
  // Deliberately skipped; the skip reporter lists it with the install hint.
  describe.skip(`${title} [SKIPPED: missing ${missing.map((m) => m.name).join(', ')}]`, body);
}
