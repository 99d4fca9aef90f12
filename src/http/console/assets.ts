/**
 * The console's static files (CSS, JS), read once at start-up from a fixed list and served from memory. Scripts and
 * styles live in files because the CSP forbids inline ones.
 *
 * Where they are found: beside this module (`src/http/console/assets` when running from source or under Jest), else
 * under the installation root (`<rootDir>/src/http/console/assets`, where `tsc` leaves them when running `dist/`).
 * A fixed name → file map means no request path ever reaches the file system.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** One asset held in memory. */
export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  /** Strong ETag (SHA-256 prefix of the content). */
  readonly etag: string;
}

/** File names served under `/console/assets/` and their content types. */
export const ASSET_FILES: Readonly<Record<string, string>> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
};

/** Directories searched for the assets, in order. */
export function assetDirCandidates(rootDir: string): string[] {
  return [path.join(__dirname, 'assets'), path.join(rootDir, 'src', 'http', 'console', 'assets')];
}

/**
 * Loads every file of `ASSET_FILES` from the first candidate directory that has them all. Returns the assets and the
 * directory used, or `dir: null` (and no assets) when none has them; the console then works without styles and
 * scripts, and the caller logs a warning.
 */
export function loadAssets(rootDir: string): { dir: string | null; assets: ReadonlyMap<string, Asset> } {
  for (const dir of assetDirCandidates(rootDir)) {
    if (!Object.keys(ASSET_FILES).every((f) => existsSync(path.join(dir, f)))) continue;
    const assets = new Map<string, Asset>();
    for (const [name, contentType] of Object.entries(ASSET_FILES)) {
      const body = readFileSync(path.join(dir, name));
      assets.set(name, { body, contentType, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` });
    }
    return { dir, assets };
  }
  return { dir: null, assets: new Map() };
}
