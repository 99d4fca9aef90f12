import { badRequest } from '../domain/errors';

/**
 * A certificate serial number in the two forms devicegate compares and stores.
 *
 * - `canonical`: lower-case hex of the unsigned value without leading zeros (`"2"`, `"1001"`, `"0"` for zero).
 *   This is the comparison key of concentrators.md §8.2.
 * - `der`: lower-case hex of the DER INTEGER content octets (even length, with the `00` sign byte when the top bit
 *   is set), i.e. what `CertificateRecord.serialHex` holds for certificates devicegate issued.
 */
export interface SerialForms {
  readonly canonical: string;
  readonly der: string;
}

/**
 * RFC 5280 §4.1.2.2 caps serials at 20 octets; certificates from other CAs are sometimes longer, and they must still
 * reach a clean CERT_NOT_OURS instead of a 400, so the cap here is generous but finite.
 */
const MAX_HEX_DIGITS = 64;
const MAX_DEC_DIGITS = 80;

const BARE_HEX_RE = /^[0-9a-f]+$/;
/** OpenVPN's `tls_serial_hex_0`: two digits per octet. */
const OCTET_COLON_RE = /^(?:[0-9a-f]{2}:)+[0-9a-f]{2}$/;
const COLON_RE = /^[0-9a-f]{1,2}(:[0-9a-f]{1,2})*$/;

function fromBigInt(value: bigint): SerialForms {
  return fromCanonicalHex(value.toString(16));
}

/** `canonical` is lower-case hex without leading zeros. */
function fromCanonicalHex(canonical: string): SerialForms {
  const even = canonical.length % 2 === 1 ? `0${canonical}` : canonical;
  // DER INTEGER is two's complement: a positive value whose first octet has the top bit set gets a 00 sign octet.
  const der = parseInt(even.slice(0, 2), 16) >= 0x80 ? `00${even}` : even;
  return { canonical, der };
}

/**
 * Parses a decimal serial as OpenVPN prints it (`tls_serial_0=4097`). Guarantees: only ASCII digits are accepted,
 * leading zeros are ignored; anything else is an AppError `bad_request` / `SERIAL_INVALID`.
 */
export function serialFromDecimal(input: string): SerialForms {
  const s = input.trim();
  if (!/^[0-9]+$/.test(s) || s.length > MAX_DEC_DIGITS) {
    throw badRequest('SERIAL_INVALID', 'The certificate serial number is not a decimal number.');
  }
  return fromBigInt(BigInt(s));
}

/**
 * Parses a hexadecimal serial in any of the forms concentrators use: bare (`02`, FreeRADIUS), colon-separated
 * (`10:01`, OpenVPN `tls_serial_hex_0`, OpenSSL), with an optional `0x` prefix, any case, with or without leading
 * zeros or a `00` sign octet. Anything else is an AppError `bad_request` / `SERIAL_INVALID`.
 */
export function serialFromHex(input: string): SerialForms {
  let s = input.trim().toLowerCase();
  if (s.startsWith('0x')) s = s.slice(2);
  let hex: string;
  if (BARE_HEX_RE.test(s)) hex = s;
  else if (OCTET_COLON_RE.test(s)) hex = s.replace(/:/g, '');
  // In the colon form each group is one octet; a one-digit group ("a:1") means "0a:01", never a shifted nibble.
  else if (COLON_RE.test(s)) hex = s.split(':').map((g) => g.padStart(2, '0')).join('');
  else throw badRequest('SERIAL_INVALID', 'The certificate serial number is not hexadecimal.');
  if (hex.length > MAX_HEX_DIGITS + 2) {
    throw badRequest('SERIAL_INVALID', 'The certificate serial number is too long.');
  }
  // Leading zeros stripped as text: the same value as BigInt(`0x${hex}`).toString(16), without the BigInt.
  return fromCanonicalHex(hex.replace(/^0+(?=.)/, ''));
}

/**
 * Normalises the `cert.serial` object of a decision request. When both forms are present they must denote the same
 * number (a concentrator never sends two different serials for one certificate, so a mismatch is a malformed or
 * forged request: `bad_request` / `SERIAL_MISMATCH`). Returns null when neither form is present.
 */
export function normalizeSerial(serial: { readonly dec?: string | null; readonly hex?: string | null } | null | undefined):
  | SerialForms
  | null {
  if (!serial) return null;
  const dec = serial.dec != null && serial.dec !== '' ? serialFromDecimal(serial.dec) : null;
  const hex = serial.hex != null && serial.hex !== '' ? serialFromHex(serial.hex) : null;
  if (dec && hex && dec.canonical !== hex.canonical) {
    throw badRequest('SERIAL_MISMATCH', 'The decimal and hexadecimal serial numbers differ.');
  }
  return dec ?? hex;
}
