import { AppError, badRequest, forbidden } from '../domain/errors';

/**
 * Attestation outcomes as AppErrors. Two kinds only:
 *  - `bad_request` when the input cannot be decoded (the caller sent garbage), and
 *  - `forbidden` when it decodes but does not prove what it must (untrusted chain, wrong nonce, wrong attributes).
 * Every error carries `details.format` so audit events can name the attestation format (SimpleWebAuthn style).
 */
export function attestationRejected(code: string, message: string, details: Record<string, unknown> = {}, cause?: unknown): AppError {
  return forbidden(code, message, { cause, details: { format: 'tpm', ...details } });
}

/** Undecodable attestation input. */
export function attestationMalformed(code: string, message: string, cause?: unknown, details: Record<string, unknown> = {}): AppError {
  return badRequest(code, message, { cause, details: { format: 'tpm', ...details } });
}

/** Runs `fn`; any non-AppError throw becomes `attestationMalformed(code, message)`. */
export function guard<T>(code: string, message: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw attestationMalformed(code, message, e);
  }
}
