/**
 * The audit signing key (Ed25519) and the exact messages it signs.
 *
 * Why a separate key: the CA key proves device identity to concentrators; the audit key proves that the log is what
 * devicegate wrote. Keeping them apart means a CA-key custodian cannot re-sign a rewritten log and the audit key can
 * be handed to an HSM or rotated on its own schedule. Only Ed25519 is accepted, which also rules out loading the
 * (P-256) CA key here by mistake. Verification needs only the public key, so auditors can check an export on their
 * own machine (RFC 5848 "signature blocks" over a hash chain, reduced to one signature per checkpoint).
 *
 * Every signed message is canonical JSON with a `purpose` string, so a signature made for one purpose (an export
 * trailer) can never be replayed as another (a checkpoint).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AppError, badRequest } from '../domain/errors';
import { canonicalJson } from '../lib/canonical-json';

/** `purpose` strings of the signed messages (domain separation). */
export const CHECKPOINT_PURPOSE = 'devicegate.audit.checkpoint.v1';
export const RETENTION_PURPOSE = 'devicegate.audit.retention.v1';
export const TRAILER_PURPOSE = 'devicegate.audit.export-trailer.v1';

/** Something that signs audit messages; a file key today, an HSM later. */
export interface AuditSigner {
  /** Lower-case hex SHA-256 of the public key's SubjectPublicKeyInfo DER. */
  readonly keyId: string;
  /** SPKI PEM of the public key (what auditors get as `audit.pub`). */
  readonly publicKeyPem: string;
  /** Ed25519 signature of `message`, base64. */
  sign(message: Buffer): string;
}

/** Key id of a public key: hex SHA-256 of its SPKI DER. */
export function auditKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/**
 * A signer from an Ed25519 PKCS#8 PEM private key. Throws `AppError` bad_request `AUDIT_KEY_INVALID` for anything
 * else (RSA, ECDSA, a public key, garbage), so the CA key cannot be configured as the audit key.
 */
export function createAuditSigner(privateKeyPem: string | Buffer): AuditSigner {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch (cause) {
    throw badRequest('AUDIT_KEY_INVALID', 'audit signing key is not a readable PEM private key', { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw badRequest('AUDIT_KEY_INVALID', 'audit signing key must be Ed25519 (a separate key, never the CA key)', {
      details: { keyType: key.asymmetricKeyType ?? 'unknown' },
    });
  }
  const pub = createPublicKey(key);
  const keyId = auditKeyId(pub);
  const publicKeyPem = pub.export({ type: 'spki', format: 'pem' }).toString();
  return {
    keyId,
    publicKeyPem,
    sign: (message) => sign(null, message, key).toString('base64'),
  };
}

/** Reads the signing key file. Throws `AppError` (`AUDIT_KEY_INVALID` / `AUDIT_KEY_UNREADABLE`). */
export function loadAuditSigner(file: string): AuditSigner {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (cause) {
    throw new AppError('internal', 'AUDIT_KEY_UNREADABLE', 'audit signing key file cannot be read', {
      cause,
      details: { file },
    });
  }
  return createAuditSigner(pem);
}

/**
 * Development only: loads `file`, or generates a fresh Ed25519 key there (mode 0600) and writes the public key beside
 * it as `<name>.pub.pem`. The caller (main.ts) must not call this in production, where a configured key is required.
 */
export function ensureDevAuditSigner(file: string): { signer: AuditSigner; created: boolean } {
  if (existsSync(file)) return { signer: loadAuditSigner(file), created: false };
  mkdirSync(path.dirname(file), { recursive: true });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, pem, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  const signer = createAuditSigner(pem);
  writeFileSync(publicKeyPathFor(file), signer.publicKeyPem, { mode: 0o644 });
  return { signer, created: true };
}

/** `audit-signing-key.pem` → `audit-signing-key.pub.pem`. */
export function publicKeyPathFor(privateKeyFile: string): string {
  return privateKeyFile.replace(/(\.pem)?$/, '.pub.pem');
}

/** Result of checking one signature. */
export type SignatureCheck = 'ok' | 'unknown-key' | 'bad-signature';

/**
 * The public keys a verifier trusts, by key id. Several keys allow verifying a log across a key rotation. Accepts
 * SPKI PEM public keys (or private keys, whose public half is used).
 */
export class AuditPublicKeys {
  private readonly keys = new Map<string, KeyObject>();

  constructor(pems: readonly (string | Buffer)[]) {
    for (const pem of pems) {
      let key: KeyObject;
      try {
        key = createPublicKey({ key: pem, format: 'pem' });
      } catch (cause) {
        throw badRequest('AUDIT_PUBKEY_INVALID', 'audit public key is not a readable PEM key', { cause });
      }
      if (key.asymmetricKeyType !== 'ed25519') {
        throw badRequest('AUDIT_PUBKEY_INVALID', 'audit public key must be Ed25519');
      }
      this.keys.set(auditKeyId(key), key);
    }
    if (this.keys.size === 0) throw badRequest('AUDIT_PUBKEY_INVALID', 'no audit public key given');
  }

  /** Key ids this set trusts. */
  ids(): string[] {
    return [...this.keys.keys()];
  }

  /** Checks a base64 Ed25519 signature by the key `keyId`. Never throws on malformed input. */
  check(keyId: string, message: Buffer, signatureB64: string): SignatureCheck {
    const key = this.keys.get(keyId);
    if (!key) return 'unknown-key';
    if (typeof signatureB64 !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(signatureB64)) return 'bad-signature';
    try {
      return verify(null, message, key, Buffer.from(signatureB64, 'base64')) ? 'ok' : 'bad-signature';
    } catch {
      return 'bad-signature';
    }
  }
}

/** The fields a checkpoint signature covers. */
export interface CheckpointClaim {
  /** The seq of the entry the checkpoint covers (the one right before the checkpoint entry). */
  readonly seq: number;
  readonly hash: string;
  readonly signedAt: string;
  readonly keyId: string;
}

/** A checkpoint claim with its signature (also the shape of the local witness file and of verifier anchors). */
export interface SignedCheckpoint extends CheckpointClaim {
  readonly signature: string;
}

/** Exact bytes a checkpoint signature covers. */
export function checkpointMessage(c: CheckpointClaim): Buffer {
  return Buffer.from(
    canonicalJson({ purpose: CHECKPOINT_PURPOSE, seq: c.seq, hash: c.hash, signedAt: c.signedAt, keyId: c.keyId }),
  );
}

/** Signs a checkpoint over (seq, hash) at `signedAt`. */
export function signCheckpoint(signer: AuditSigner, seq: number, hash: string, signedAt: string): SignedCheckpoint {
  const claim: CheckpointClaim = { seq, hash, signedAt, keyId: signer.keyId };
  return { ...claim, signature: signer.sign(checkpointMessage(claim)) };
}

/** The fields a retention record's signature covers. */
export interface RetentionClaim {
  readonly deletedThroughSeq: number;
  readonly deletedThroughHash: string;
  readonly deletedCount: number;
  readonly policy: Readonly<Record<string, number | null>>;
  readonly signedAt: string;
  readonly keyId: string;
}

/** Exact bytes a retention record's signature covers. */
export function retentionMessage(c: RetentionClaim): Buffer {
  return Buffer.from(
    canonicalJson({
      purpose: RETENTION_PURPOSE,
      deletedThroughSeq: c.deletedThroughSeq,
      deletedThroughHash: c.deletedThroughHash,
      deletedCount: c.deletedCount,
      policy: c.policy,
      signedAt: c.signedAt,
      keyId: c.keyId,
    }),
  );
}

/** Signed message of an export trailer: the trailer payload without its signature, plus the purpose. */
export function trailerMessage(payload: Readonly<Record<string, unknown>>): Buffer {
  return Buffer.from(canonicalJson({ ...payload, purpose: TRAILER_PURPOSE }));
}
