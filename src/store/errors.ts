import { AppError, type AppErrorOptions } from '../domain/errors';

/**
 * Typed store errors. Every back-end throws exactly these kinds (the conformance suite checks it), so services can
 * react to "not found" or "already exists" without knowing which database is underneath. They extend `AppError`, so
 * an unhandled one still maps to a sensible HTTP status.
 */
export class NotFoundError extends AppError {
  constructor(what: string, options?: AppErrorOptions) {
    super('not_found', 'NOT_FOUND', `${what} not found`, options);
    this.name = 'NotFoundError';
  }
}

export class AlreadyExistsError extends AppError {
  constructor(what: string, options?: AppErrorOptions) {
    super('conflict', 'ALREADY_EXISTS', `${what} already exists`, options);
    this.name = 'AlreadyExistsError';
  }
}

/** A compare-and-set lost: the record changed since it was read (version, audit head, spent token). */
export class ConflictError extends AppError {
  constructor(what: string, options?: AppErrorOptions) {
    super('conflict', 'CONFLICT', `${what} changed concurrently or is no longer in the expected state`, options);
    this.name = 'ConflictError';
  }
}

/** The back-end cannot be reached; `/readyz` turns 503 and callers fail closed. */
export class StoreUnavailableError extends AppError {
  constructor(backend: string, options?: AppErrorOptions) {
    super('unavailable', 'STORE_UNAVAILABLE', `${backend} store is unavailable`, options);
    this.name = 'StoreUnavailableError';
  }
}

export const isNotFound = (e: unknown): e is NotFoundError => e instanceof NotFoundError;
export const isAlreadyExists = (e: unknown): e is AlreadyExistsError => e instanceof AlreadyExistsError;
export const isConflict = (e: unknown): e is ConflictError => e instanceof ConflictError;
