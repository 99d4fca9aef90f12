/**
 * A strict RFC 4180 CSV reader for inventory imports: quoted fields with doubled quotes, CRLF or LF line ends, a
 * UTF-8 BOM tolerated, and limits so a hostile file cannot exhaust memory. Returns rows with their 1-based line
 * numbers so an import report can point at the exact line.
 */
export interface CsvRow {
  /** Line number where the row starts (1-based, counting the header). */
  readonly line: number;
  readonly fields: string[];
}

export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

export interface CsvLimits {
  readonly maxRows: number;
  readonly maxFields: number;
  readonly maxFieldLength: number;
}

export const DEFAULT_CSV_LIMITS: CsvLimits = { maxRows: 100_000, maxFields: 64, maxFieldLength: 8192 };

export function parseCsv(text: string, limits: CsvLimits = DEFAULT_CSV_LIMITS): CsvRow[] {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let rowLine = 1;
  let i = 0;
  let quoted = false;
  let fieldStarted = false;
  const pushField = (): void => {
    if (field.length > limits.maxFieldLength) throw new CsvError(`a field is longer than ${limits.maxFieldLength} characters`, rowLine);
    fields.push(field);
    if (fields.length > limits.maxFields) throw new CsvError(`more than ${limits.maxFields} fields`, rowLine);
    field = '';
    fieldStarted = false;
  };
  const pushRow = (): void => {
    pushField();
    // Blank lines are not rows.
    if (!(fields.length === 1 && fields[0] === '')) {
      rows.push({ line: rowLine, fields });
      if (rows.length > limits.maxRows + 1) throw new CsvError(`more than ${limits.maxRows} rows`, rowLine);
    }
    fields = [];
  };
  while (i < src.length) {
    const c = src[i] as string;
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = src[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
          throw new CsvError('characters after a closing quote', line);
        }
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (fieldStarted || field.length > 0) throw new CsvError('a quote inside an unquoted field', line);
      quoted = true;
      fieldStarted = true;
      i++;
      continue;
    }
    if (c === ',') {
      pushField();
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      pushRow();
      i += c === '\r' && src[i + 1] === '\n' ? 2 : 1;
      line++;
      rowLine = line;
      continue;
    }
    field += c;
    i++;
  }
  if (quoted) throw new CsvError('an unterminated quoted field', rowLine);
  if (field.length > 0 || fields.length > 0) pushRow();
  return rows;
}
