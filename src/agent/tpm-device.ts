import { createHash } from 'node:crypto';
import { AppError } from '../domain/errors';
import {
  EK_CERT_NV_INDEX,
  TPMA_OBJECT,
  TPM_ALG,
  TPM_RH,
  type TpmClient,
  akTemplate,
  computeName,
  deviceKeyTemplate,
  ecdsaRsToDer,
  ekRsaTemplate,
  parsePublic,
  parseSignature,
  publicToSpki,
  srkTemplate,
  type Auth,
  type ParsedPublic,
} from '../tpm';

/** Persistent handles and NV indices the agent uses; defaults follow TCG/tpm2-tools conventions. */
export interface AgentHandles {
  /** EK (TCG: RSA EK persisted at 0x81010001 by many platforms and swtpm_setup); recreated from the template if absent. */
  readonly ek: number;
  /** NV index of the EK certificate (RSA-2048: 0x01c00002). */
  readonly ekCertIndex: number;
  /** Attestation key. */
  readonly ak: number;
  /** Device (VPN client) key; the key URI for tpm2-openssl is `handle:0x…` of this. */
  readonly key: number;
}

export const DEFAULT_HANDLES: AgentHandles = {
  ek: 0x81010001,
  ekCertIndex: EK_CERT_NV_INDEX.rsa2048,
  ak: 0x81010002,
  key: 0x81000002,
};

/** A failure on the device side with a stable code (printed by the CLI). */
export class AgentError extends AppError {
  constructor(code: string, message: string, cause?: unknown) {
    super('internal', code, message, { cause });
    this.name = 'AgentError';
  }
}

const hex = (h: number): string => `0x${h.toString(16).padStart(8, '0')}`;

/** A key the agent holds in the TPM. */
export interface DeviceTpmKey {
  readonly handle: number;
  readonly parsed: ParsedPublic;
  readonly name: Buffer;
  /** True when this run created it. */
  readonly created: boolean;
  /** TPM2B_PRIVATE contents (TPM-wrapped), only when created in this run: needed for a TSS2 key file. */
  readonly privateBlob?: Buffer;
}

/**
 * The agent's TPM operations over a `TpmClient` (own command marshalling; no tpm2-tools needed). Transient
 * objects are flushed in `finally` blocks because swtpm and /dev/tpm0 have no resource manager and only ~3 slots.
 */
export class DeviceTpm {
  constructor(
    readonly tpm: TpmClient,
    readonly handles: AgentHandles = DEFAULT_HANDLES,
  ) {}

  /**
   * The EK public area: ReadPublic at the EK handle, or CreatePrimary(endorsement) from the TCG RSA template
   * (same key as the certified one, flushed afterwards). Returns the handle to use and whether it is transient.
   */
  async ek(): Promise<{ handle: number; parsed: ParsedPublic; transient: boolean }> {
    const existing = await this.tpm.tryReadPublic(this.handles.ek);
    if (existing) return { handle: this.handles.ek, parsed: parsePublic(existing.public, 'EK TPMT_PUBLIC'), transient: false };
    const created = await this.tpm.createPrimary(TPM_RH.ENDORSEMENT, ekRsaTemplate());
    return { handle: created.handle, parsed: parsePublic(created.public, 'EK TPMT_PUBLIC'), transient: true };
  }

  /** EK public area only (flushes a transient EK). */
  async ekPublic(): Promise<ParsedPublic> {
    const ek = await this.ek();
    if (ek.transient) await this.tpm.flushQuietly(ek.handle);
    return ek.parsed;
  }

  /** The EK certificate from NV, or null when the TPM has none at the configured index. */
  async ekCertificate(): Promise<Buffer | null> {
    const size = await this.tpm.nvSize(this.handles.ekCertIndex);
    if (size === null || size === 0) return null;
    return this.tpm.nvRead(this.handles.ekCertIndex, size);
  }

  private async ensureKey(
    handle: number,
    what: string,
    template: Buffer,
    accept: (p: ParsedPublic) => boolean,
  ): Promise<DeviceTpmKey> {
    const existing = await this.tpm.tryReadPublic(handle);
    if (existing) {
      const parsed = parsePublic(existing.public, `${what} TPMT_PUBLIC`);
      if (!accept(parsed)) {
        throw new AgentError(
          'AGENT_HANDLE_CONFLICT',
          `Persistent handle ${hex(handle)} holds a key that is not a usable ${what}; choose another handle or remove it (tpm2_evictcontrol -C o -c ${hex(handle)})`,
        );
      }
      return { handle, parsed, name: computeName(parsed), created: false };
    }
    const srk = await this.tpm.createPrimary(TPM_RH.OWNER, srkTemplate());
    let loaded: number | null = null;
    try {
      const made = await this.tpm.create(srk.handle, template);
      const obj = await this.tpm.load(srk.handle, made.private, made.public);
      loaded = obj.handle;
      await this.tpm.evictControl(obj.handle, handle);
      const parsed = parsePublic(made.public, `${what} TPMT_PUBLIC`);
      return { handle, parsed, name: computeName(parsed), created: true, privateBlob: made.private };
    } finally {
      await this.tpm.flushQuietly(loaded);
      await this.tpm.flushQuietly(srk.handle);
    }
  }

  /** Reuses or creates the AK: a restricted signing key (RSA-2048 RSASSA-SHA256 by default) persisted at `handles.ak`. */
  ensureAk(alg: 'rsa' | 'ecc' = 'rsa'): Promise<DeviceTpmKey> {
    const need = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;
    return this.ensureKey(this.handles.ak, 'attestation key', akTemplate(alg), (p) => (p.public.objectAttributes & need) === need);
  }

  /** Reuses or creates the non-exportable P-256 device key persisted at `handles.key`. */
  ensureDeviceKey(): Promise<DeviceTpmKey> {
    const need = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.sign;
    return this.ensureKey(this.handles.key, 'device key', deviceKeyTemplate(), (p) => {
      const a = p.public.objectAttributes;
      return (a & need) === need && (a & TPMA_OBJECT.restricted) === 0 && p.public.type === TPM_ALG.ECC;
    });
  }

  /**
   * TPM2_ActivateCredential with the AK and the EK. The EK's USER role is satisfied by a PolicySecret(endorsement)
   * session when its template demands a policy (TCG L-1 RSA EK: userWithAuth clear), or by its empty password when
   * userWithAuth is set (swtpm's P-384 EK).
   */
  async activateCredential(akHandle: number, credentialBlob: Buffer, encryptedSecret: Buffer): Promise<Buffer> {
    const ek = await this.ek();
    let session: number | null = null;
    try {
      let auth: Auth = { kind: 'password' };
      if ((ek.parsed.public.objectAttributes & TPMA_OBJECT.userWithAuth) === 0) {
        session = await this.tpm.startPolicySession(ek.parsed.public.nameAlg);
        await this.tpm.policySecret(TPM_RH.ENDORSEMENT, session);
        auth = { kind: 'policy', session };
      }
      return await this.tpm.activateCredential(akHandle, ek.handle, credentialBlob, encryptedSecret, auth);
    } finally {
      await this.tpm.flushQuietly(session);
      if (ek.transient) await this.tpm.flushQuietly(ek.handle);
    }
  }

  /** TPM2_Certify(key, AK, qualifyingData = nonce). */
  certify(keyHandle: number, akHandle: number, nonce: Buffer): Promise<{ certifyInfo: Buffer; signature: Buffer }> {
    return this.tpm.certify(keyHandle, akHandle, nonce);
  }

  /** ECDSA-SHA256 signature of a 32-byte digest by the device key, DER-encoded for X.509/PKCS#10. */
  async signDigestDer(keyHandle: number, digest: Buffer): Promise<Buffer> {
    const sig = parseSignature(await this.tpm.sign(keyHandle, digest, TPM_ALG.ECDSA, TPM_ALG.SHA256));
    if (sig.sigAlg !== TPM_ALG.ECDSA) throw new AgentError('AGENT_TPM_SIGN', 'The TPM returned a non-ECDSA signature');
    return ecdsaRsToDer(sig.r, sig.s);
  }
}

/** SHA-256 (hex) of the EK public key in SPKI form: the value IT puts into the inventory. */
export function ekPublicSha256(ek: ParsedPublic): string {
  return createHash('sha256').update(publicToSpki(ek.public)).digest('hex');
}
