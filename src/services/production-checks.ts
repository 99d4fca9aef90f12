import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDevCertificate } from '../ca/hierarchy';
import type { ConfigProblem } from '../config/load';
import type { Config } from '../config/schema';

/**
 * Production checks that need to read files: a TLS certificate that is a devicegate development certificate or lives
 * under the checkout's `certs-dev/` is refused (the CA's own files are checked by `loadCa`).
 */
export function devCertificateProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const devDir = path.resolve(config.rootDir, 'certs-dev') + path.sep;
  const check = (key: string, file: string | undefined): void => {
    if (!file) return;
    const abs = path.resolve(file);
    if (abs.startsWith(devDir)) {
      problems.push({ path: key, message: 'a development certificate (certs-dev/) is refused in production' });
      return;
    }
    if (existsSync(abs) && isDevCertificate(readFileSync(abs))) {
      problems.push({ path: key, message: 'this is a devicegate development certificate ("DEV ONLY"); refused in production' });
    }
  };
  check('server.tls.certFile', config.server.tls.certFile);
  check('server.tls.clientCaFile', config.server.tls.clientCaFile);
  check('server.concentratorListener.tls.certFile', config.server.concentratorListener.tls.certFile);
  check('server.concentratorListener.tls.clientCaFile', config.server.concentratorListener.tls.clientCaFile);
  return problems;
}
