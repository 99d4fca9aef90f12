import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, isAppError } from '../domain/errors';

/** The JSON error body of every API error: `{ "error": { "code", "message", "request_id", ...details } }`. */
export interface ErrorBody {
  error: { code: string; message: string; request_id?: string; details?: Readonly<Record<string, unknown>> };
}

/** Translates body-parser and other framework errors into AppErrors with stable codes. */
function normalise(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: string; status?: number; expose?: boolean; message?: string };
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError('payload_too_large', 'PAYLOAD_TOO_LARGE', 'The request body is too large.', { cause: err });
    case 'entity.parse.failed':
      return new AppError('bad_request', 'INVALID_JSON', 'The request body is not valid JSON.', { cause: err });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media_type', 'UNSUPPORTED_ENCODING', 'Unsupported request body encoding.', { cause: err });
    case 'request.aborted':
      return new AppError('bad_request', 'REQUEST_ABORTED', 'The request was aborted.', { cause: err });
    default:
      break;
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new AppError('bad_request', 'BAD_REQUEST', 'The request could not be processed.', { cause: err });
  }
  return new AppError('internal', 'INTERNAL', 'Internal error.', { cause: err });
}

/**
 * The single error middleware: maps AppError kinds to HTTP statuses, logs the cause (with the stack for 5xx), and
 * never sends a stack trace or an internal message to the caller.
 */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const appErr = normalise(err);
  const status = appErr.status;
  const log = req.log;
  if (status >= 500) log?.error({ err: appErr, cause: appErr.cause }, 'request failed');
  else log?.info({ code: appErr.code, status, cause: appErr.cause instanceof Error ? appErr.cause.message : undefined }, 'request rejected');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body: ErrorBody = {
    error: {
      code: appErr.code,
      message: status >= 500 && appErr.kind === 'internal' ? 'Internal error.' : appErr.message,
      request_id: req.id as string | undefined,
      ...(appErr.details ? { details: appErr.details } : {}),
    },
  };
  if (appErr.kind === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer realm="devicegate"');
  res.status(status).json(body);
};

/** JSON 404 for any route nobody handled. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', 'ROUTE_NOT_FOUND', `No route for ${req.method} ${req.path}.`));
};
