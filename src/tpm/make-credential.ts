import {
  constants,
  createCipheriv,
  createECDH,
  createHash,
  createHmac,
  publicEncrypt,
  randomBytes as nodeRandomBytes,
} from 'node:crypto';
import { CURVE_INFO, HASH_INFO, TPMA_OBJECT, TPM_ALG } from './constants';
import { tpmMalformed, tpmUnsupported } from './errors';
import { TpmWriter, tpm2b } from './marshal';
import { publicKeyOf, type TpmtPublic } from './public-area';

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/**
 * KDFa (Part 1 §11.4.10.2): SP 800-108 counter-mode KDF with HMAC. `label` is given without its terminating zero;
 * the zero is appended here as the spec requires.
 */
export function kdfa(hashAlg: number, key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const info = HASH_INFO[hashAlg];
  if (info === undefined) throw tpmUnsupported('KDFa', 'hash algorithm', hashAlg);
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const h = createHmac(info.name, key)
      .update(Buffer.concat([u32(i), Buffer.from(`${label}\0`, 'latin1'), contextU, contextV, u32(bits)]))
      .digest();
    out.push(h);
    have += h.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

/** KDFe (Part 1 §11.4.10.3): SP 800-56A concatenation KDF used to turn an ECDH shared secret into a seed. */
export function kdfe(hashAlg: number, z: Buffer, label: string, partyU: Buffer, partyV: Buffer, bits: number): Buffer {
  const info = HASH_INFO[hashAlg];
  if (info === undefined) throw tpmUnsupported('KDFe', 'hash algorithm', hashAlg);
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const h = createHash(info.name)
      .update(Buffer.concat([u32(i), z, Buffer.from(`${label}\0`, 'latin1'), partyU, partyV]))
      .digest();
    out.push(h);
    have += h.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

/** The output of MakeCredential, ready for TPM2_ActivateCredential. */
export interface MadeCredential {
  /** Contents of TPM2B_ID_OBJECT (integrityHMAC as TPM2B ‖ encIdentity), without the outer size. */
  readonly credentialBlob: Buffer;
  /** Contents of TPM2B_ENCRYPTED_SECRET (RSA-OAEP ciphertext, or a marshalled TPMS_ECC_POINT), without the outer size. */
  readonly encryptedSecret: Buffer;
}

/** Source of randomness; injectable so tests and benchmarks can be deterministic. */
export type RandomSource = (n: number) => Buffer;

/**
 * TPM2_MakeCredential done in software (Part 1 §24, Part 3 §12.6): protects `credential` so that only the TPM
 * holding the private part of `ek` can recover it, and only while an object named `objectName` is loaded on that
 * TPM. This is what binds the AK to the EK: the server learns the secret back only if both are on one chip.
 *
 * Requirements checked here: `ek` is a restricted decryption key with an AES-CFB symmetric definition (the EK
 * templates of the TCG EK Credential Profile), and `credential` is at most one digest of the EK's nameAlg.
 * RSA EKs use OAEP with the EK nameAlg and label "IDENTITY"; ECC EKs use an ephemeral ECDH key and KDFe.
 */
export function makeCredential(
  ek: TpmtPublic,
  objectName: Buffer,
  credential: Buffer,
  random: RandomSource = nodeRandomBytes,
): MadeCredential {
  const hash = HASH_INFO[ek.nameAlg];
  if (hash === undefined) throw tpmUnsupported('EK TPMT_PUBLIC', 'nameAlg', ek.nameAlg);
  const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((ek.objectAttributes & need) !== need || (ek.objectAttributes & TPMA_OBJECT.sign) !== 0) {
    throw tpmMalformed('EK TPMT_PUBLIC', 'the EK is not a restricted decryption key');
  }
  if (ek.symmetric.algorithm !== TPM_ALG.AES || ek.symmetric.mode !== TPM_ALG.CFB || ek.symmetric.keyBits === undefined) {
    throw tpmUnsupported('EK TPMT_PUBLIC', 'symmetric algorithm', ek.symmetric.algorithm);
  }
  if (credential.length === 0 || credential.length > hash.size) {
    throw tpmMalformed('MakeCredential', `credential must be 1..${hash.size} bytes`);
  }
  let seed: Buffer;
  let encryptedSecret: Buffer;
  if (ek.type === TPM_ALG.RSA) {
    seed = random(hash.size);
    encryptedSecret = publicEncrypt(
      { key: publicKeyOf(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') },
      seed,
    );
  } else {
    const curve = CURVE_INFO[ek.curveId];
    if (curve === undefined) throw tpmUnsupported('EK TPMT_PUBLIC', 'ECC curve', ek.curveId);
    publicKeyOf(ek); // rejects a point that is not on the curve before it is used in ECDH
    const pad = (b: Buffer): Buffer => (b.length >= curve.size ? b : Buffer.concat([Buffer.alloc(curve.size - b.length), b]));
    const ekPoint = Buffer.concat([Buffer.from([0x04]), pad(ek.x), pad(ek.y)]);
    const ecdh = createECDH(curve.node);
    ecdh.setPrivateKey(ephemeralScalar(random, curve.size, curve.node));
    const ephemeral = ecdh.getPublicKey();
    const ex = ephemeral.subarray(1, 1 + curve.size);
    const ey = ephemeral.subarray(1 + curve.size);
    const z = ecdh.computeSecret(ekPoint);
    seed = kdfe(ek.nameAlg, z, 'IDENTITY', ex, pad(ek.x), hash.size * 8);
    encryptedSecret = new TpmWriter().tpm2b(ex).tpm2b(ey).toBuffer();
  }
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', objectName, Buffer.alloc(0), ek.symmetric.keyBits);
  const cipher = createCipheriv(`aes-${ek.symmetric.keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(credential)), cipher.final()]);
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const integrity = createHmac(hash.name, hmacKey).update(Buffer.concat([encIdentity, objectName])).digest();
  return { credentialBlob: Buffer.concat([tpm2b(integrity), encIdentity]), encryptedSecret };
}

/** A valid private scalar for `curve` from the random source (rejection sampling on the raw bytes). */
function ephemeralScalar(random: RandomSource, size: number, curve: string): Buffer {
  for (let i = 0; i < 64; i++) {
    const candidate = random(size);
    if (size === 66) candidate[0] = candidate[0]! & 0x01; // P-521 scalars are 521 bits
    try {
      const probe = createECDH(curve);
      probe.setPrivateKey(candidate);
      return candidate;
    } catch {
      // out of range or zero: draw again
    }
  }
  throw tpmMalformed('MakeCredential', 'random source produced no valid ECC scalar');
}
