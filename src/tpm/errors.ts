import { AppError, badRequest } from '../domain/errors';

/**
 * Error constructors for TPM wire structures. Every parser in `src/tpm` reports bad input only through these, so a
 * caller (HTTP route, CLI) sees `AppError` kind `bad_request` with a stable code and never an untyped throw.
 */

/** Stable codes for malformed or unsupported TPM input. */
export const TPM_ERROR_CODES = {
  malformed: 'TPM_STRUCTURE_MALFORMED',
  algUnsupported: 'TPM_ALG_UNSUPPORTED',
} as const;

/**
 * A structure that cannot be decoded: truncated, size field larger than the data or the TPM's own limit, reserved
 * bits set, or trailing bytes. `structure` names the TPM type (e.g. `TPMT_PUBLIC`) so the caller knows which field.
 */
export function tpmMalformed(structure: string, detail: string, cause?: unknown): AppError {
  return badRequest(TPM_ERROR_CODES.malformed, `Malformed ${structure}: ${detail}`, {
    cause,
    details: { structure },
  });
}

/** A well-formed structure naming an algorithm, curve or structure tag that devicegate does not implement. */
export function tpmUnsupported(structure: string, what: string, value: number): AppError {
  return badRequest(
    TPM_ERROR_CODES.algUnsupported,
    `Unsupported ${what} 0x${value.toString(16).padStart(4, '0')} in ${structure}`,
    { details: { structure, value } },
  );
}

/**
 * Runs `fn` and converts any non-AppError throw into `TPM_STRUCTURE_MALFORMED`. Used around node:crypto calls that
 * throw plain errors on bad key material (e.g. an ECC point not on the curve).
 */
export function guardTpm<T>(structure: string, detail: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw tpmMalformed(structure, detail, e);
  }
}
