import { auditDevDefaults } from './sections/audit';
import type { ConfigProblem } from './load';
import type { Config } from './schema';

/**
 * What production mode refuses: development certificates, development attestation shortcuts and default secrets.
 * Each problem names the key to change. Checks that need to read files (e.g. "is this certificate a dev
 * certificate?") are added by the modules that understand them via `extra`.
 */
export function productionProblems(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  extra: readonly ((config: Config) => ConfigProblem[])[] = [],
): ConfigProblem[] {
  if (config.mode !== 'production') return [];
  const problems: ConfigProblem[] = [];
  if (config.ca.source === 'dev') {
    problems.push({ path: 'ca.source', message: 'the development CA is refused in production; use `file` or `pkcs11`' });
  }
  if (config.tpm.allowEkPublicOnly) {
    problems.push({
      path: 'tpm.allowEkPublicOnly',
      message: 'development attestation (EK public key without a manufacturer certificate) is refused in production',
    });
  }
  if (!config.server.tls.enabled) {
    problems.push({ path: 'server.tls.enabled', message: 'production serves HTTPS only; configure a certificate' });
  }
  for (const key of auditDevDefaults(config.audit, env)) {
    problems.push({ path: key, message: 'a development default is refused in production; configure your own key' });
  }
  for (const check of extra) problems.push(...check(config));
  return problems;
}
