import { tpmMalformed } from './errors';

/**
 * Bounded big-endian reader for TPM wire structures. Every read checks the remaining length first, so truncated
 * input and size fields that point past the end become `TPM_STRUCTURE_MALFORMED` instead of a RangeError.
 */
export class TpmReader {
  private offset = 0;

  constructor(
    private readonly buf: Buffer,
    /** TPM type being decoded, used in error messages. */
    readonly structure: string,
  ) {}

  /** Bytes not yet consumed. */
  get remaining(): number {
    return this.buf.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  private need(n: number, field: string): void {
    if (n > this.remaining) {
      throw tpmMalformed(this.structure, `truncated at ${field} (need ${n} bytes, have ${this.remaining})`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.offset++] as number;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  i32(field: string): number {
    this.need(4, field);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /**
   * A TPM2B: u16 size then that many bytes. `max` is the spec's buffer size for the type; a larger size field is
   * rejected even if the bytes are present, as a TPM would (TPM_RC_SIZE).
   */
  tpm2b(field: string, max: number): Buffer {
    const size = this.u16(`${field}.size`);
    if (size > max) throw tpmMalformed(this.structure, `${field}.size ${size} exceeds the maximum ${max}`);
    return Buffer.from(this.bytes(size, field));
  }

  /** Fails on trailing bytes: a structure must be consumed exactly, so nothing can be smuggled after it. */
  end(): void {
    if (this.remaining !== 0) throw tpmMalformed(this.structure, `${this.remaining} trailing byte(s)`);
  }
}

/** Big-endian writer for TPM commands and structures. */
export class TpmWriter {
  private readonly parts: Buffer[] = [];

  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v & 0xffff);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }

  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v | 0);
    this.parts.push(b);
    return this;
  }

  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }

  /** u16 size followed by the bytes. */
  tpm2b(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Wraps bytes in a TPM2B (u16 size prefix). */
export function tpm2b(b: Uint8Array): Buffer {
  return new TpmWriter().tpm2b(b).toBuffer();
}

/** Unwraps a TPM2B that must span the whole buffer (e.g. a TPM2B_PUBLIC file from `tpm2_createak -u`). */
export function unwrapTpm2b(buf: Buffer, structure: string, max: number): Buffer {
  const r = new TpmReader(buf, structure);
  const inner = r.tpm2b('buffer', max);
  r.end();
  return inner;
}
