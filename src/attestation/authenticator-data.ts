import { attestationMalformed } from './errors';
import { decodeCborPrefix, type CborValue } from './cbor';

/** Decoded WebAuthn authenticatorData (§6.1). */
export interface AuthenticatorData {
  readonly rpIdHash: Buffer;
  readonly flags: number;
  readonly signCount: number;
  readonly aaguid?: Buffer;
  readonly credentialId?: Buffer;
  readonly credentialPublicKey?: CborValue;
}

/**
 * Parses authenticatorData with attested credential data when the AT flag (0x40) is set. Extensions (ED flag)
 * must be one CBOR map and end the buffer. Throws `AUTH_DATA_MALFORMED` (bad_request) on anything else.
 */
export function parseAuthenticatorData(buf: Buffer): AuthenticatorData {
  const fail = (why: string): never => {
    throw attestationMalformed('AUTH_DATA_MALFORMED', `Invalid authenticatorData: ${why}`);
  };
  if (buf.length < 37) fail('shorter than 37 bytes');
  const rpIdHash = Buffer.from(buf.subarray(0, 32));
  const flags = buf[32]!;
  const signCount = buf.readUInt32BE(33);
  let pos = 37;
  let out: AuthenticatorData = { rpIdHash, flags, signCount };
  if (flags & 0x40) {
    if (buf.length < pos + 18) fail('truncated attested credential data');
    const aaguid = Buffer.from(buf.subarray(pos, pos + 16));
    const idLen = buf.readUInt16BE(pos + 16);
    pos += 18;
    if (idLen > 1023 || buf.length < pos + idLen) fail('credential id length');
    const credentialId = Buffer.from(buf.subarray(pos, pos + idLen));
    pos += idLen;
    const key = decodeCborPrefix(buf, pos);
    pos += key.length;
    out = { ...out, aaguid, credentialId, credentialPublicKey: key.value };
  }
  if (flags & 0x80) {
    const ext = decodeCborPrefix(buf, pos);
    if (!(ext.value instanceof Map)) fail('extensions are not a map');
    pos += ext.length;
  }
  if (pos !== buf.length) fail('trailing bytes');
  return out;
}
