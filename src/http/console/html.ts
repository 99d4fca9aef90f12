/**
 * A minimal HTML builder: a tagged template that escapes every interpolated value unless it is already `Html`.
 *
 * Why no template engine: the console has a dozen pages; a tagged template keeps escaping the default (a value can
 * only reach the page unescaped by being built with `html` itself), needs no dependency and no runtime template
 * files next to `dist/`. Attribute values must always be quoted in templates; escaping `"` and `'` then makes any
 * interpolated string safe inside them.
 */

/** Markup that is safe to emit as is (built by `html` or `raw`). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** Anything a template may interpolate. `null`, `undefined` and `false` render nothing; arrays are concatenated. */
export type Renderable = Html | string | number | boolean | null | undefined | readonly Renderable[];

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

function render(v: Renderable): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return (v as readonly Renderable[]).map(render).join('');
  return escapeHtml(String(v));
}

/** Tagged template: literal parts are trusted markup, interpolations are escaped (unless `Html`). */
export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0] as string;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] as string);
  return new Html(out);
}

/** Marks a trusted constant as markup. Never pass request data. */
export const raw = (s: string): Html => new Html(s);

/** Joins a path and query parameters (empty and undefined values dropped) into a same-origin URL. */
export function href(path: string, params: Readonly<Record<string, string | number | undefined | null>> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
