import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { renderConfigReference } from '../../../src/config/docs';
import { configSchema } from '../../../src/config/schema';
import { ROOT } from '../../helpers/build-app';

describe('configuration reference (config/README.md)', () => {
  it('is generated from the schema and up to date (run `npm run config:docs` after changing a config key)', () => {
    expect(readFileSync(path.join(ROOT, 'config', 'README.md'), 'utf8')).toBe(renderConfigReference());
  });

  it('documents every key with a description', () => {
    const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, unknown> };
    const missing: string[] = [];
    const walk = (s: { properties?: Record<string, { description?: string; properties?: unknown }> }, p: string): void => {
      for (const [k, v] of Object.entries(s.properties ?? {})) {
        if (!v.description) missing.push(`${p}${k}`);
        if (v.properties) walk(v as never, `${p}${k}.`);
      }
    };
    walk(json as never, '');
    expect(missing).toEqual([]);
  });
});
