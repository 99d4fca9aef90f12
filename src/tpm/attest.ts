import { HASH_INFO, TPM_ST } from './constants';
import { tpmMalformed, tpmUnsupported } from './errors';
import { TpmReader, TpmWriter } from './marshal';

/** TPMS_CLOCK_INFO. */
export interface ClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** TPMS_CERTIFY_INFO: the name and qualified name of the certified object. */
export interface CertifyInfo {
  readonly name: Buffer;
  readonly qualifiedName: Buffer;
}

/** TPMS_QUOTE_INFO. */
export interface QuoteInfo {
  readonly pcrSelect: ReadonlyArray<{ readonly hashAlg: number; readonly select: Buffer }>;
  readonly pcrDigest: Buffer;
}

/** TPMS_CREATION_INFO. */
export interface CreationInfo {
  readonly objectName: Buffer;
  readonly creationHash: Buffer;
}

/** A decoded TPMS_ATTEST (Part 2 §10.12.12). Exactly one of `certify`/`quote`/`creation` is set, by `type`. */
export interface TpmsAttest {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
  readonly certify?: CertifyInfo;
  readonly quote?: QuoteInfo;
  readonly creation?: CreationInfo;
}

/** sizeof(TPMU_NAME): a TPMT_HA with the largest digest. */
const MAX_NAME = 2 + 64;
/** TPM2B_DATA holds a TPMT_HA. */
const MAX_DATA = 2 + 64;
const MAX_DIGEST = 64;
const MAX_PCR_BANKS = 16;
const MAX_PCR_SELECT = 4;

/**
 * Reads a TPM2B_NAME and checks its shape: empty, a 4-byte handle, or nameAlg ‖ digest with the digest size of
 * that algorithm. A name of any other shape cannot come from a TPM.
 */
function readName(r: TpmReader, field: string): Buffer {
  const name = r.tpm2b(field, MAX_NAME);
  if (name.length === 0 || name.length === 4) return name;
  if (name.length < 2) throw tpmMalformed(r.structure, `${field} is ${name.length} bytes`);
  const alg = name.readUInt16BE(0);
  const info = HASH_INFO[alg];
  if (info === undefined) throw tpmUnsupported(r.structure, `${field} hash algorithm`, alg);
  if (name.length !== 2 + info.size) throw tpmMalformed(r.structure, `${field} digest size does not match its algorithm`);
  return name;
}

/**
 * Decodes a TPMS_ATTEST as produced by TPM2_Certify / TPM2_Quote / TPM2_CertifyCreation (the `certInfo` of a
 * WebAuthn `tpm` statement, the `certifyInfo` of enrollment). It does not check the magic or the type: that is the
 * verifier's job, with its own error codes. Guarantees: the buffer is consumed exactly, sizes are within the spec
 * limits, `clockInfo.safe` is 0 or 1; otherwise `TPM_STRUCTURE_MALFORMED` / `TPM_ALG_UNSUPPORTED` (bad_request).
 */
export function parseAttest(buf: Buffer): TpmsAttest {
  const r = new TpmReader(buf, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  const type = r.u16('type');
  const qualifiedSigner = readName(r, 'qualifiedSigner');
  const extraData = r.tpm2b('extraData', MAX_DATA);
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safeByte = r.u8('clockInfo.safe');
  if (safeByte > 1) throw tpmMalformed('TPMS_ATTEST', 'clockInfo.safe is not a TPMI_YES_NO');
  const firmwareVersion = r.u64('firmwareVersion');
  const base = {
    magic,
    type,
    qualifiedSigner,
    extraData,
    clockInfo: { clock, resetCount, restartCount, safe: safeByte === 1 },
    firmwareVersion,
  };
  let result: TpmsAttest;
  switch (type) {
    case TPM_ST.ATTEST_CERTIFY:
      result = { ...base, certify: { name: readName(r, 'attested.name'), qualifiedName: readName(r, 'attested.qualifiedName') } };
      break;
    case TPM_ST.ATTEST_QUOTE: {
      const count = r.u32('attested.pcrSelect.count');
      if (count > MAX_PCR_BANKS) throw tpmMalformed('TPMS_ATTEST', `pcrSelect.count ${count} too large`);
      const pcrSelect: Array<{ hashAlg: number; select: Buffer }> = [];
      for (let i = 0; i < count; i++) {
        const hashAlg = r.u16('attested.pcrSelect.hash');
        const n = r.u8('attested.pcrSelect.sizeofSelect');
        if (n > MAX_PCR_SELECT) throw tpmMalformed('TPMS_ATTEST', `sizeofSelect ${n} too large`);
        pcrSelect.push({ hashAlg, select: Buffer.from(r.bytes(n, 'attested.pcrSelect.pcrSelect')) });
      }
      result = { ...base, quote: { pcrSelect, pcrDigest: r.tpm2b('attested.pcrDigest', MAX_DIGEST) } };
      break;
    }
    case TPM_ST.ATTEST_CREATION:
      result = {
        ...base,
        creation: { objectName: readName(r, 'attested.objectName'), creationHash: r.tpm2b('attested.creationHash', MAX_DIGEST) },
      };
      break;
    default:
      throw tpmUnsupported('TPMS_ATTEST', 'attestation type', type);
  }
  r.end();
  return result;
}

/** Encodes a TPMS_ATTEST of type certify; for tests and fixtures (a real one comes from the TPM). */
export function marshalCertifyAttest(a: TpmsAttest & { readonly certify: CertifyInfo }): Buffer {
  return new TpmWriter()
    .u32(a.magic)
    .u16(a.type)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData)
    .u64(a.clockInfo.clock)
    .u32(a.clockInfo.resetCount)
    .u32(a.clockInfo.restartCount)
    .u8(a.clockInfo.safe ? 1 : 0)
    .u64(a.firmwareVersion)
    .tpm2b(a.certify.name)
    .tpm2b(a.certify.qualifiedName)
    .toBuffer();
}
