/**
 * The one abstraction between the CA and its key material (step-ca's `cas/apiv1` idea): the authority builds the DER
 * it wants signed and hands the bytes to a `Signer`; it never sees a private key. Implementations: an in-process
 * key (`createKeyObjectSigner`, `loadFileSigner`) and a PKCS#11 token (`./pkcs11`).
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AppError } from '../domain/errors';
import { oid, seq, derNull } from './der';
import { OID } from './x509';

/** CA key types the CA signs with. */
export type CaKeyType = 'ec-p256' | 'ec-p384' | 'rsa';

/** Key generation choice for `ca init` and the dev CA. */
export type CaKeyAlgorithm = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

/** The X.509 signature algorithm a signer produces. */
export interface SignatureAlgorithm {
  readonly name: 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'sha256WithRSAEncryption';
  readonly hash: 'sha256' | 'sha384';
  /** DER AlgorithmIdentifier to place in TBS and outer structures. */
  readonly identifier: Buffer;
}

/**
 * Signs DER structures for the CA.
 *
 * Guarantees: `sign(tbs)` returns the bytes that belong inside the X.509 `signatureValue` BIT STRING for
 * `algorithm`, i.e. a DER `ECDSA-Sig-Value` for ECDSA or the RSASSA-PKCS1-v1_5 signature block for RSA, over
 * exactly `tbs`. `spki` is the DER SubjectPublicKeyInfo of the signing key.
 */
export interface Signer {
  readonly keyType: CaKeyType;
  readonly algorithm: SignatureAlgorithm;
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  /** Where the key lives, for logs (never a secret), e.g. `file:/etc/devicegate/issuing.key.pem`. */
  readonly description: string;
  sign(tbs: Buffer): Promise<Buffer>;
  /** Release sessions or handles. Idempotent. */
  close(): Promise<void>;
}

const ALG_ECDSA_SHA256: SignatureAlgorithm = {
  name: 'ecdsa-with-SHA256',
  hash: 'sha256',
  identifier: seq(oid(OID.ecdsaWithSha256)),
};
const ALG_ECDSA_SHA384: SignatureAlgorithm = {
  name: 'ecdsa-with-SHA384',
  hash: 'sha384',
  identifier: seq(oid(OID.ecdsaWithSha384)),
};
const ALG_RSA_SHA256: SignatureAlgorithm = {
  name: 'sha256WithRSAEncryption',
  hash: 'sha256',
  // RFC 4055 §5: the parameters field for sha256WithRSAEncryption MUST be NULL.
  identifier: seq(oid(OID.sha256WithRsa), derNull()),
};

/** The signature algorithm used for each CA key type (hash strength matched to the curve). */
export function signatureAlgorithmFor(keyType: CaKeyType): SignatureAlgorithm {
  switch (keyType) {
    case 'ec-p256':
      return ALG_ECDSA_SHA256;
    case 'ec-p384':
      return ALG_ECDSA_SHA384;
    case 'rsa':
      return ALG_RSA_SHA256;
  }
}

/** Classify a public or private KeyObject as a CA key type; throws AppError for anything else. */
export function caKeyTypeOf(key: KeyObject): CaKeyType {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve === 'prime256v1') return 'ec-p256';
    if (d.namedCurve === 'secp384r1') return 'ec-p384';
  }
  if (key.asymmetricKeyType === 'rsa' && (d.modulusLength ?? 0) >= 2048) return 'rsa';
  throw new AppError('internal', 'CA_KEY_UNSUPPORTED', 'The CA key must be ECDSA P-256, P-384 or RSA of at least 2048 bits.');
}

/**
 * A signer over an in-process private KeyObject. Signing runs on the libuv thread pool (async `crypto.sign`), so an
 * RSA CA key does not block the event loop.
 */
export function createKeyObjectSigner(privateKey: KeyObject, description = 'memory'): Signer {
  if (privateKey.type !== 'private') throw new TypeError('createKeyObjectSigner needs a private key');
  const keyType = caKeyTypeOf(privateKey);
  const algorithm = signatureAlgorithmFor(keyType);
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return {
    keyType,
    algorithm,
    spki,
    publicKey,
    description,
    sign: (tbs) =>
      new Promise<Buffer>((resolve, reject) => {
        cryptoSign(algorithm.hash, tbs, privateKey, (err, sig) => (err ? reject(err) : resolve(sig)));
      }),
    close: async () => undefined,
  };
}

/** Where a file key's passphrase comes from (both optional; a file wins over an env value). */
export interface PassphraseSource {
  /** Path of a file whose first line is the passphrase. */
  readonly file?: string | null;
  /** The passphrase itself, as read from the environment by the caller (src/ca never reads process.env). */
  readonly value?: string | null;
}

/** Resolve a passphrase source to a string, or undefined when neither is set. */
export async function resolvePassphrase(src: PassphraseSource | undefined): Promise<string | undefined> {
  if (src?.file) {
    const text = await readFile(src.file, 'utf8').catch((cause: unknown) => {
      throw new AppError('internal', 'CA_PASSPHRASE_UNREADABLE', 'The CA key passphrase file cannot be read.', { cause });
    });
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line.length === 0) throw new AppError('internal', 'CA_PASSPHRASE_EMPTY', 'The CA key passphrase file is empty.');
    return line;
  }
  if (src?.value) return src.value;
  return undefined;
}

/**
 * Load a PKCS#8 private key (PEM or DER, optionally encrypted) and wrap it as a Signer. Errors never include the
 * passphrase or key bytes; a wrong passphrase and a corrupt file both give `CA_KEY_UNREADABLE`.
 */
export async function loadFileSigner(path: string, passphrase?: PassphraseSource): Promise<Signer> {
  const bytes = await readFile(path).catch((cause: unknown) => {
    throw new AppError('internal', 'CA_KEY_UNREADABLE', `The CA key file cannot be read: ${path}`, { cause });
  });
  const pass = await resolvePassphrase(passphrase);
  const isPem = bytes.subarray(0, 64).toString('latin1').includes('-----BEGIN');
  let key: KeyObject;
  try {
    key = isPem
      ? createPrivateKey({ key: bytes, format: 'pem', ...(pass !== undefined ? { passphrase: pass } : {}) })
      : createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8', ...(pass !== undefined ? { passphrase: pass } : {}) });
  } catch (cause) {
    throw new AppError(
      'internal',
      'CA_KEY_UNREADABLE',
      `The CA key in ${path} cannot be loaded (wrong passphrase, missing passphrase or not PKCS#8).`,
      { cause },
    );
  }
  return createKeyObjectSigner(key, `file:${path}`);
}
