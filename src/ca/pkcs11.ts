/**
 * PKCS#11 (HSM) key access through pkcs11js: a `Signer` whose private key never leaves the token, and key pair
 * generation inside the token for `ca init`. Tested against SoftHSM2 (../shared/recipes/softhsm.md).
 *
 * Portability choices, each forced by SoftHSM2 2.6 and harmless on real HSMs:
 * - ECDSA: SoftHSM has no CKM_ECDSA_SHA256, so we hash in Node and sign the digest with plain CKM_ECDSA; the token
 *   returns raw r‖s (IEEE P1363), which we DER-encode into an ECDSA-Sig-Value.
 * - RSA: CKM_SHA256_RSA_PKCS over the whole TBS.
 * - Slots are chosen by token label (SoftHSM assigns random slot ids); a numeric slot id is also accepted.
 * - `C_Initialize` gets CKF_OS_LOCKING_OK because pkcs11js runs async C_Sign on libuv worker threads; several
 *   sessions form a pool, since one session can run only one signing operation at a time.
 */
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type * as Pkcs11Types from 'pkcs11js';
import { AppError } from '../domain/errors';
import { TAG, bitString, content, derNull, integerFromUnsigned, oid, readTop, seq } from './der';
import { caKeyTypeOf, signatureAlgorithmFor, type CaKeyAlgorithm, type Signer } from './signer';
import { OID } from './x509';

type Pkcs11Module = typeof Pkcs11Types;

/** How to reach one token. */
export interface Pkcs11TokenOptions {
  /** Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  readonly modulePath: string;
  /** Token label (preferred: SoftHSM slot ids are random). */
  readonly tokenLabel?: string | null;
  /** Numeric slot id, used when no label is given. */
  readonly slot?: number | null;
  /** User PIN (read by the caller from a file or env value; never logged). */
  readonly pin: string;
  /** Sessions in the signing pool (default 4). */
  readonly sessions?: number;
}

const p11Error = (code: string, message: string, cause?: unknown): AppError =>
  new AppError('internal', code, message, cause === undefined ? {} : { cause });

function loadPkcs11js(): Pkcs11Module {
  try {
    // Loaded lazily so that dev and file CAs work on machines without the native addon.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pkcs11js') as Pkcs11Module;
  } catch (cause) {
    throw p11Error('PKCS11_UNAVAILABLE', 'The pkcs11js module is not installed or failed to build.', cause);
  }
}

const ulong = (b: Buffer): number => (b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0));

/** `04 ‖ X ‖ Y` from CKA_EC_POINT, which PKCS#11 v2.40 wraps in a DER OCTET STRING (some tokens do not). */
function ecPointFromAttribute(v: Buffer): Buffer {
  if (v[0] === TAG.OCTET_STRING) {
    try {
      return content(readTop(v));
    } catch {
      /* fall through: a raw point that happens to start with 0x04 */
    }
  }
  return v;
}

/** DER ECDSA-Sig-Value from a raw r‖s signature. */
export function p1363ToDer(sig: Buffer): Buffer {
  if (sig.length === 0 || sig.length % 2 !== 0) throw p11Error('PKCS11_BAD_SIGNATURE', 'The token returned a malformed ECDSA signature.');
  const half = sig.length / 2;
  return seq(integerFromUnsigned(sig.subarray(0, half)), integerFromUnsigned(sig.subarray(half)));
}

const CURVE_PARAMS: Readonly<Record<'ec-p256' | 'ec-p384', Buffer>> = {
  'ec-p256': oid(OID.prime256v1),
  'ec-p384': oid(OID.secp384r1),
};

/**
 * An open, logged-in token. One per process and module: PKCS#11 libraries allow a single `C_Initialize` per
 * process, so a second `open` of the same module reuses the library state and does not finalize it on close.
 */
export class Pkcs11Token {
  private readonly lib: Pkcs11Module;
  private readonly p11: Pkcs11Types.PKCS11;
  private readonly slot: Buffer;
  private readonly sessions: Buffer[] = [];
  private readonly idle: Buffer[] = [];
  private readonly waiters: Array<(s: Buffer) => void> = [];
  private readonly ownsInit: boolean;
  private closed = false;
  readonly description: string;

  private constructor(lib: Pkcs11Module, p11: Pkcs11Types.PKCS11, slot: Buffer, ownsInit: boolean, description: string) {
    this.lib = lib;
    this.p11 = p11;
    this.slot = slot;
    this.ownsInit = ownsInit;
    this.description = description;
  }

  /** Load the module, find the token, open the session pool and log in. Errors are AppError `internal`. */
  static open(opts: Pkcs11TokenOptions): Pkcs11Token {
    const lib = loadPkcs11js();
    const p11 = new lib.PKCS11();
    try {
      p11.load(opts.modulePath);
    } catch (cause) {
      throw p11Error('PKCS11_MODULE_LOAD', `The PKCS#11 module cannot be loaded: ${opts.modulePath}`, cause);
    }
    let ownsInit = true;
    try {
      p11.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
    } catch (cause) {
      if ((cause as { code?: number }).code === lib.CKR_CRYPTOKI_ALREADY_INITIALIZED) ownsInit = false;
      else throw p11Error('PKCS11_INIT', 'C_Initialize failed (check SOFTHSM2_CONF or the module configuration).', cause);
    }
    let token: Pkcs11Token | undefined;
    try {
      const slots = p11.C_GetSlotList(true);
      let slot: Buffer | undefined;
      if (opts.tokenLabel) {
        slot = slots.find((s) => p11.C_GetTokenInfo(s).label.trim() === opts.tokenLabel);
      } else if (opts.slot !== undefined && opts.slot !== null) {
        slot = slots.find((s) => ulong(s) === opts.slot);
      }
      if (!slot) throw p11Error('PKCS11_TOKEN_NOT_FOUND', 'No PKCS#11 token with the configured label or slot is present.');
      const where = opts.tokenLabel ? `token=${opts.tokenLabel}` : `slot=${String(opts.slot)}`;
      token = new Pkcs11Token(lib, p11, slot, ownsInit, `pkcs11:${where}`);
      const n = Math.max(1, Math.min(opts.sessions ?? 4, 32));
      for (let i = 0; i < n; i++) {
        const s = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
        token.sessions.push(s);
        token.idle.push(s);
      }
      try {
        p11.C_Login(token.sessions[0] as Buffer, lib.CKU_USER, opts.pin);
      } catch (cause) {
        if ((cause as { code?: number }).code !== lib.CKR_USER_ALREADY_LOGGED_IN) {
          throw p11Error('PKCS11_LOGIN', 'Login to the PKCS#11 token failed (wrong PIN?).', cause);
        }
      }
      return token;
    } catch (e) {
      if (token) token.closeSync();
      else if (ownsInit) {
        try {
          p11.C_Finalize();
        } catch {
          /* already failing */
        }
      }
      throw e instanceof AppError ? e : p11Error('PKCS11_OPEN', 'The PKCS#11 token cannot be opened.', e);
    }
  }

  private find(cls: number, label: string): Buffer[] {
    const s = this.sessions[0] as Buffer;
    this.p11.C_FindObjectsInit(s, [
      { type: this.lib.CKA_CLASS, value: cls },
      { type: this.lib.CKA_LABEL, value: label },
    ]);
    try {
      return this.p11.C_FindObjects(s, 4);
    } finally {
      this.p11.C_FindObjectsFinal(s);
    }
  }

  /** True when a private key with `label` exists on the token. */
  hasKey(label: string): boolean {
    return this.find(this.lib.CKO_PRIVATE_KEY, label).length > 0;
  }

  /** DER SPKI of the public key object with `label`, or null when the token holds no public object. */
  private readPublicSpki(label: string): Buffer | null {
    const [pub, dup] = this.find(this.lib.CKO_PUBLIC_KEY, label);
    if (!pub) return null;
    if (dup) throw p11Error('PKCS11_KEY_AMBIGUOUS', `More than one public key is labelled ${label}.`);
    const s = this.sessions[0] as Buffer;
    const [kt] = this.p11.C_GetAttributeValue(s, pub, [{ type: this.lib.CKA_KEY_TYPE }]);
    const keyType = ulong(kt!.value);
    if (keyType === this.lib.CKK_EC) {
      const [params, point] = this.p11.C_GetAttributeValue(s, pub, [
        { type: this.lib.CKA_EC_PARAMS },
        { type: this.lib.CKA_EC_POINT },
      ]);
      return seq(seq(oid(OID.ecPublicKey), params!.value), bitString(ecPointFromAttribute(point!.value)));
    }
    if (keyType === this.lib.CKK_RSA) {
      const [n, e] = this.p11.C_GetAttributeValue(s, pub, [
        { type: this.lib.CKA_MODULUS },
        { type: this.lib.CKA_PUBLIC_EXPONENT },
      ]);
      return seq(
        seq(oid(OID.rsaEncryption), derNull()),
        bitString(seq(integerFromUnsigned(n!.value), integerFromUnsigned(e!.value))),
      );
    }
    throw p11Error('CA_KEY_UNSUPPORTED', `The key ${label} is neither EC nor RSA.`);
  }

  /**
   * A Signer for the private key labelled `label`. The public key comes from the token's public object or, if the
   * token holds none, from `certificateSpki`; when both exist they must match. A probe signature is verified before
   * returning, so a wrong key fails at start-up, not at the first issuance.
   */
  async signer(label: string, opts: { certificateSpki?: Buffer } = {}): Promise<Signer> {
    const [priv, dup] = this.find(this.lib.CKO_PRIVATE_KEY, label);
    if (!priv) throw p11Error('PKCS11_KEY_NOT_FOUND', `No private key labelled ${label} on the token.`);
    if (dup) throw p11Error('PKCS11_KEY_AMBIGUOUS', `More than one private key is labelled ${label}.`);
    const tokenSpki = this.readPublicSpki(label);
    const spkiSource = tokenSpki ?? opts.certificateSpki;
    if (!spkiSource) throw p11Error('PKCS11_PUBLIC_KEY_MISSING', `No public key for ${label} on the token or in a certificate.`);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: spkiSource, format: 'der', type: 'spki' });
    } catch (cause) {
      throw p11Error('PKCS11_PUBLIC_KEY_INVALID', `The public key of ${label} cannot be parsed.`, cause);
    }
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    if (opts.certificateSpki && tokenSpki) {
      const certSpki = createPublicKey({ key: opts.certificateSpki, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'der' });
      if (!certSpki.equals(spki)) throw p11Error('CA_KEY_MISMATCH', `The token key ${label} does not match the CA certificate.`);
    }
    const keyType = caKeyTypeOf(publicKey);
    const algorithm = signatureAlgorithmFor(keyType);
    const isEc = keyType !== 'rsa';
    const mech = isEc ? this.lib.CKM_ECDSA : this.lib.CKM_SHA256_RSA_PKCS;
    const outLen = isEc ? 132 : 1024;

    const sign = async (tbs: Buffer): Promise<Buffer> => {
      const data = isEc ? createHash(algorithm.hash).update(tbs).digest() : tbs;
      const session = await this.acquire();
      try {
        this.p11.C_SignInit(session, { mechanism: mech }, priv);
        const sig = await new Promise<Buffer>((resolve, reject) => {
          this.p11.C_Sign(session, data, Buffer.alloc(outLen), (err, out) => (err ? reject(err) : resolve(out)));
        });
        return isEc ? p1363ToDer(sig) : Buffer.from(sig);
      } catch (cause) {
        if (cause instanceof AppError) throw cause;
        throw new AppError('unavailable', 'PKCS11_SIGN_FAILED', 'The HSM could not sign.', { cause });
      } finally {
        this.release(session);
      }
    };

    const probe = randomBytes(32);
    const probeSig = await sign(probe);
    if (!cryptoVerify(algorithm.hash, probe, publicKey, probeSig)) {
      throw p11Error('CA_KEY_MISMATCH', `The token key ${label} does not match its public key.`);
    }
    return {
      keyType,
      algorithm,
      spki,
      publicKey,
      description: `${this.description};object=${label}`,
      sign,
      close: async () => undefined,
    };
  }

  /**
   * Generate a key pair inside the token: private key sensitive, never extractable, token object. Refuses to
   * create a second key with an existing label (`PKCS11_KEY_EXISTS`).
   */
  async generateKeyPair(label: string, algorithm: CaKeyAlgorithm): Promise<Signer> {
    if (this.hasKey(label)) throw p11Error('PKCS11_KEY_EXISTS', `A key labelled ${label} already exists on the token.`);
    const L = this.lib;
    const id = randomBytes(16);
    const common: Pkcs11Types.Template = [
      { type: L.CKA_TOKEN, value: true },
      { type: L.CKA_LABEL, value: label },
      { type: L.CKA_ID, value: id },
    ];
    const priv: Pkcs11Types.Template = [
      ...common,
      { type: L.CKA_CLASS, value: L.CKO_PRIVATE_KEY },
      { type: L.CKA_PRIVATE, value: true },
      { type: L.CKA_SENSITIVE, value: true },
      { type: L.CKA_EXTRACTABLE, value: false },
      { type: L.CKA_SIGN, value: true },
    ];
    const pub: Pkcs11Types.Template = [...common, { type: L.CKA_CLASS, value: L.CKO_PUBLIC_KEY }, { type: L.CKA_VERIFY, value: true }];
    let mechanism: number;
    if (algorithm === 'ec-p256' || algorithm === 'ec-p384') {
      mechanism = L.CKM_EC_KEY_PAIR_GEN;
      pub.push({ type: L.CKA_KEY_TYPE, value: L.CKK_EC }, { type: L.CKA_EC_PARAMS, value: CURVE_PARAMS[algorithm] });
      priv.push({ type: L.CKA_KEY_TYPE, value: L.CKK_EC });
    } else {
      mechanism = L.CKM_RSA_PKCS_KEY_PAIR_GEN;
      const bits = Number(algorithm.slice(4));
      pub.push(
        { type: L.CKA_KEY_TYPE, value: L.CKK_RSA },
        { type: L.CKA_MODULUS_BITS, value: bits },
        { type: L.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      );
      priv.push({ type: L.CKA_KEY_TYPE, value: L.CKK_RSA });
    }
    const session = await this.acquire();
    try {
      this.p11.C_GenerateKeyPair(session, { mechanism }, pub, priv);
    } catch (cause) {
      throw p11Error('PKCS11_KEYGEN_FAILED', `Key generation in the token failed for ${label}.`, cause);
    } finally {
      this.release(session);
    }
    return this.signer(label);
  }

  private acquire(): Promise<Buffer> {
    if (this.closed) return Promise.reject(p11Error('PKCS11_CLOSED', 'The PKCS#11 token has been closed.'));
    const s = this.idle.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(s: Buffer): void {
    const w = this.waiters.shift();
    if (w) w(s);
    else this.idle.push(s);
  }

  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    // Only our own sessions: another Pkcs11Token in this process may share the library and the slot.
    for (const session of this.sessions) {
      try {
        this.p11.C_CloseSession(session);
      } catch {
        /* best effort */
      }
    }
    if (this.ownsInit) {
      try {
        this.p11.C_Finalize();
      } catch {
        /* best effort */
      }
    }
  }

  /** Close every session and, if this instance initialised the library, finalize it. Idempotent. */
  async close(): Promise<void> {
    // Let in-flight signatures finish: wait until every session is idle.
    while (!this.closed && this.idle.length < this.sessions.length) {
      await new Promise<void>((r) => setTimeout(r, 5));
    }
    this.closeSync();
  }
}

