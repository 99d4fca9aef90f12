import { AlreadyExistsError, StoreUnavailableError } from '../errors';

interface SqliteError {
  code?: string;
  message?: string;
}

/** Maps a better-sqlite3 error to a typed store error, or rethrows it unchanged. */
export function mapSqliteError(e: unknown, what: string): never {
  const code = (e as SqliteError | undefined)?.code ?? '';
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    throw new AlreadyExistsError(what, { cause: e });
  }
  if (
    code === 'SQLITE_BUSY' ||
    code === 'SQLITE_IOERR' ||
    code.startsWith('SQLITE_IOERR_') ||
    code === 'SQLITE_CANTOPEN' ||
    code === 'SQLITE_FULL' ||
    (e instanceof TypeError && /database connection is not open/.test(e.message))
  ) {
    throw new StoreUnavailableError('sqlite', { cause: e });
  }
  throw e;
}
