/**
 * The one error type of devicegate (modelled on step-ca's `errs.Error`).
 *
 * Every failure that reaches an edge is an `AppError`: a `kind` that the single HTTP error middleware maps to a
 * status, a stable machine-readable `code`, and a public message that is safe to show to a caller. The private
 * `cause` is logged, never serialised.
 */
export type ErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

/** HTTP status for each kind; used only by the HTTP error middleware and CLI exit codes. */
export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

export interface AppErrorOptions {
  /** The underlying error; logged, never sent to a caller. */
  readonly cause?: unknown;
  /** Extra machine-readable fields that are safe to send (e.g. a per-row import report, a config key path). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export class AppError extends Error {
  readonly kind: ErrorKind;
  /** Stable, machine-readable code such as `INVALID_JSON` or `TOKEN_EXPIRED`. */
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(kind: ErrorKind, code: string, publicMessage: string, options: AppErrorOptions = {}) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.kind = kind;
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return STATUS_BY_KIND[this.kind];
  }
}

export const badRequest = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('bad_request', code, message, options);
export const unauthorized = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('unauthorized', code, message, options);
export const forbidden = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('forbidden', code, message, options);
export const notFound = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('not_found', code, message, options);
export const conflict = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('conflict', code, message, options);
export const unavailable = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('unavailable', code, message, options);
export const internal = (code: string, message: string, options?: AppErrorOptions): AppError =>
  new AppError('internal', code, message, options);

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
