import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

/** The OpenAPI 3.1 document (`openapi.yaml` at the installation root) as a JSON-ready object. */
export function loadOpenApi(rootDir: string): Record<string, unknown> {
  return YAML.parse(readFileSync(path.join(rootDir, 'openapi.yaml'), 'utf8')) as Record<string, unknown>;
}
