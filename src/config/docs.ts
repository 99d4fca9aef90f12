import { z } from 'zod';
import { configSchema } from './schema';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  format?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
}

const toEnvName = (keyPath: string[]): string =>
  `DEVICEGATE_${keyPath.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__')}`;

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? `≤ ${s.maximum}` : '';
  const min = s.minimum !== undefined && s.minimum > Number.MIN_SAFE_INTEGER ? `≥ ${s.minimum}` : '';
  const bounds = [min, max]
    .filter(Boolean)
    .join(', ');
  return `${t}${s.format ? ` (${s.format})` : ''}${bounds ? ` (${bounds})` : ''}`;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * Renders the configuration reference (config/README.md) from the schema: every key with its type, default,
 * environment variable and description. A test keeps the committed file in step with the schema.
 */
export function renderConfigReference(): string {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const lines: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run config:docs`. Do not edit by hand. -->',
    '',
    'devicegate reads `config/default.yaml`, then the YAML files named in `DEVICEGATE_CONFIG` (comma-separated), then',
    'environment variables. Every key below can be set in YAML or through the environment variable shown',
    '(`__` separates path segments; values are parsed as JSON when possible, e.g. `true`, `8080`, `["a","b"]`).',
    'Shortcuts: `PORT` or `DEVICEGATE_PORT` set `server.port`, `DEVICEGATE_DATA_DIR` sets `dataDir`,',
    '`NODE_ENV=production` sets `mode: production`. Unknown keys are errors; all errors are reported at once and the',
    'process exits with code 2.',
    '',
    'Secrets are never values in these files: keys ending in `File` name a file holding the secret.',
    'See `config/production.example.yaml` for a production set-up.',
    '',
  ];
  const walk = (s: JsonSchema, keyPath: string[], depth: number): void => {
    for (const [key, child] of Object.entries(s.properties ?? {})) {
      const p = [...keyPath, key];
      const isSection = child.type === 'object' && child.properties && Object.keys(child.properties).length > 0;
      if (isSection) {
        lines.push(`${'#'.repeat(Math.min(depth + 2, 4))} \`${p.join('.')}\``, '');
        if (child.description) lines.push(child.description, '');
        const leaves = Object.entries(child.properties ?? {}).filter(
          ([, c]) => !(c.type === 'object' && c.properties && Object.keys(c.properties).length > 0),
        );
        if (leaves.length) {
          lines.push('| Key | Type | Default | Environment | Description |', '|---|---|---|---|---|');
          for (const [k, c] of leaves) {
            const def = c.default === undefined ? '' : `\`${JSON.stringify(c.default)}\``;
            lines.push(
              `| \`${[...p, k].join('.')}\` | ${typeOf(c)} | ${cell(def)} | \`${toEnvName([...p, k])}\` | ${cell(c.description ?? '')} |`,
            );
          }
          lines.push('');
        }
        walk({ properties: Object.fromEntries(Object.entries(child.properties ?? {}).filter(([, c]) => c.type === 'object' && c.properties && Object.keys(c.properties).length > 0)) }, p, depth + 1);
      } else if (depth === 0) {
        const def = child.default === undefined ? '' : ` Default: \`${JSON.stringify(child.default)}\`.`;
        lines.push(`## \`${key}\``, '', `${typeOf(child)}. Environment: \`${toEnvName(p)}\`.${def}`, '', child.description ?? '', '');
      }
    }
  };
  walk(root, [], 0);
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
