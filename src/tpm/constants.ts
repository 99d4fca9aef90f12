/**
 * TPM 2.0 constants (TCG TPM 2.0 Library, Part 2 "Structures", rev 1.59). Only values devicegate reads or writes.
 * Numeric values are the wire encoding; names follow the spec without the `TPM_` prefix.
 */

/** TPM_ALG_ID values (Part 2 §6.3). */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  CFB: 0x0043,
  MGF1: 0x0007,
} as const;

/** TPM_ECC_CURVE values (Part 2 §6.4). */
export const TPM_ECC = {
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
  BN_P256: 0x0010,
  BN_P638: 0x0011,
  SM2_P256: 0x0020,
} as const;

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;

/** Bits of TPMA_OBJECT that the spec reserves; a TPM never sets them, so a set bit means forged or corrupt input. */
export const TPMA_OBJECT_RESERVED = ~(
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.stClear |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.adminWithPolicy |
  TPMA_OBJECT.noDA |
  TPMA_OBJECT.encryptedDuplication |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.decrypt |
  TPMA_OBJECT.sign |
  TPMA_OBJECT.x509sign
) >>> 0;

/** TPM_ST structure tags (Part 2 §6.9). */
export const TPM_ST = {
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  ATTEST_NV_DIGEST: 0x801c,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  AUTH_SECRET: 0x8023,
  HASHCHECK: 0x8024,
  AUTH_SIGNED: 0x8025,
} as const;

/** TPM_GENERATED_VALUE: "TCG" with 0xff, the magic that only the TPM itself puts at the start of TPMS_ATTEST. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_CC command codes (Part 2 §6.5.2). */
export const TPM_CC = {
  EvictControl: 0x00000120,
  CreatePrimary: 0x00000131,
  Startup: 0x00000144,
  Shutdown: 0x00000145,
  ActivateCredential: 0x00000147,
  Certify: 0x00000148,
  NV_Read: 0x0000014e,
  PolicySecret: 0x00000151,
  Create: 0x00000153,
  Load: 0x00000157,
  Sign: 0x0000015d,
  FlushContext: 0x00000165,
  LoadExternal: 0x00000167,
  NV_ReadPublic: 0x00000169,
  StartAuthSession: 0x00000176,
  GetCapability: 0x0000017a,
  ReadPublic: 0x00000173,
} as const;

/** Permanent handles (Part 2 §7.4). */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** Response codes devicegate reacts to. */
export const TPM_RC = {
  SUCCESS: 0x000,
  /** TPM_RC_HANDLE for handle 1: the object does not exist. */
  HANDLE_1: 0x18b,
  RETRY: 0x922,
  TESTING: 0x90a,
  YIELDED: 0x908,
  LOCKOUT: 0x921,
} as const;

/** Hash algorithms by TPM id: node:crypto name and digest size. */
export const HASH_INFO: Readonly<Record<number, { readonly name: string; readonly size: number }>> = {
  [TPM_ALG.SHA1]: { name: 'sha1', size: 20 },
  [TPM_ALG.SHA256]: { name: 'sha256', size: 32 },
  [TPM_ALG.SHA384]: { name: 'sha384', size: 48 },
  [TPM_ALG.SHA512]: { name: 'sha512', size: 64 },
};

/** NIST curves by TPM id: JWK/node curve name and coordinate size in bytes. */
export const CURVE_INFO: Readonly<Record<number, { readonly jwk: string; readonly size: number; readonly node: string }>> = {
  [TPM_ECC.NIST_P256]: { jwk: 'P-256', size: 32, node: 'prime256v1' },
  [TPM_ECC.NIST_P384]: { jwk: 'P-384', size: 48, node: 'secp384r1' },
  [TPM_ECC.NIST_P521]: { jwk: 'P-521', size: 66, node: 'secp521r1' },
};

/** TCG-defined NV indices of EK certificates (TCG EK Credential Profile 2.5 §2.2.1.5). */
export const EK_CERT_NV_INDEX = {
  rsa2048: 0x01c00002,
  eccP256: 0x01c0000a,
  eccP384: 0x01c00016,
} as const;

/** Name of a hash algorithm for messages. */
export function hashName(alg: number): string {
  return HASH_INFO[alg]?.name ?? `0x${alg.toString(16)}`;
}
