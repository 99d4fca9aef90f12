import { randomBytes } from 'node:crypto';
import { AppError } from '../domain/errors';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH, TPM_ST } from './constants';
import { TpmReader, TpmWriter, tpm2b } from './marshal';
import { MAX_PUBLIC_SIZE } from './public-area';
import type { TpmTransport } from './transport';

/** A TPM response code other than success, with the command that produced it. */
export class TpmCommandError extends AppError {
  constructor(
    readonly command: string,
    readonly rc: number,
  ) {
    super('unavailable', rc === TPM_RC.LOCKOUT ? 'TPM_LOCKOUT' : 'TPM_COMMAND_FAILED', `TPM2_${command} failed: ${describeRc(rc)}`, {
      details: { command, rc },
    });
    this.name = 'TpmCommandError';
  }
}

/** Short text for common response codes; the hex code is always included. */
export function describeRc(rc: number): string {
  const hex = `rc 0x${rc.toString(16).padStart(3, '0')}`;
  const format0: Record<number, string> = {
    0x921: 'TPM is in dictionary-attack lockout',
    0x922: 'TPM asks to retry',
    0x902: 'out of object memory (flush transient objects)',
    0x14c: 'NV index or persistent handle already defined',
  };
  // Format-1 codes carry the handle/parameter/session number in bits 8-11; bits 0-5 and 7 name the error.
  const format1: Record<number, string> = {
    0x8b: 'handle does not exist',
    0x9f: 'integrity check failed (credential made for another TPM or key)',
    0x8e: 'authorization failed',
    0xa2: 'bad authorization',
    0x82: 'object attributes not allowed',
  };
  const text = rc & 0x80 ? format1[rc & 0xbf] : format0[rc];
  return text ? `${text} (${hex})` : hex;
}

/** True when `rc` is TPM_RC_HANDLE for any handle: the object or index does not exist. */
export function isHandleMissing(e: unknown): boolean {
  return e instanceof TpmCommandError && (e.rc & 0x80) !== 0 && (e.rc & 0xbf) === 0x8b;
}

/** An authorization for one handle of a command. */
export type Auth = { readonly kind: 'password'; readonly value?: Buffer } | { readonly kind: 'policy'; readonly session: number };

const PASSWORD: Auth = { kind: 'password' };

interface Response {
  readonly handles: number[];
  readonly params: TpmReader;
}

/** Result of creating or loading an object. */
export interface LoadedObject {
  readonly handle: number;
  /** TPMT_PUBLIC bytes. */
  readonly public: Buffer;
  readonly name: Buffer;
}

const RETRY_CODES = new Set<number>([TPM_RC.RETRY, TPM_RC.YIELDED, TPM_RC.TESTING]);
const NO_DATA = Buffer.alloc(0);

/**
 * Hand-marshalled TPM 2.0 commands over any `TpmTransport` (no TSS library). Only what enrollment needs: key
 * creation and persistence, ReadPublic, Certify with caller-chosen qualifying data (which tpm2-tools 5.4 cannot
 * do), Sign, ActivateCredential with a PolicySecret session, NV reads for EK certificates, FlushContext, Shutdown.
 * All authorizations are empty passwords or policy sessions; no HMAC/parameter encryption (the kernel resource
 * manager or a local swtpm is the peer).
 */
export class TpmClient {
  constructor(readonly transport: TpmTransport) {}

  /** Runs one command; retries TPM_RC_RETRY/YIELDED/TESTING; throws `TpmCommandError` on any other non-zero rc. */
  async execute(
    name: string,
    cc: number,
    handles: readonly number[],
    auths: readonly Auth[],
    params: Buffer,
    responseHandles = 0,
  ): Promise<Response> {
    const body = new TpmWriter().u32(cc);
    for (const h of handles) body.u32(h);
    if (auths.length > 0) {
      const area = new TpmWriter();
      for (const a of auths) {
        if (a.kind === 'password') area.u32(TPM_RH.PW).tpm2b(NO_DATA).u8(0).tpm2b(a.value ?? NO_DATA);
        else area.u32(a.session).tpm2b(NO_DATA).u8(0).tpm2b(NO_DATA);
      }
      const areaBuf = area.toBuffer();
      body.u32(areaBuf.length).bytes(areaBuf);
    }
    body.bytes(params);
    const bodyBuf = body.toBuffer();
    const cmd = new TpmWriter()
      .u16(auths.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS)
      .u32(bodyBuf.length + 6)
      .bytes(bodyBuf)
      .toBuffer();
    for (let attempt = 0; ; attempt++) {
      const rsp = await this.transport.send(cmd);
      const r = new TpmReader(rsp, `TPM2_${name} response`);
      const tag = r.u16('tag');
      r.u32('size');
      const rc = r.u32('responseCode');
      if (RETRY_CODES.has(rc) && attempt < 50) {
        await new Promise((res) => setTimeout(res, 10));
        continue;
      }
      if (rc !== TPM_RC.SUCCESS) throw new TpmCommandError(name, rc);
      const outHandles: number[] = [];
      for (let i = 0; i < responseHandles; i++) outHandles.push(r.u32('handle'));
      if (tag === TPM_ST.SESSIONS) {
        const paramSize = r.u32('parameterSize');
        return { handles: outHandles, params: new TpmReader(Buffer.from(r.bytes(paramSize, 'parameters')), `TPM2_${name} parameters`) };
      }
      return { handles: outHandles, params: new TpmReader(Buffer.from(r.bytes(r.remaining, 'parameters')), `TPM2_${name} parameters`) };
    }
  }

  /** TPM2_ReadPublic: TPMT_PUBLIC and name of a loaded or persistent object. */
  async readPublic(handle: number): Promise<{ public: Buffer; name: Buffer; qualifiedName: Buffer }> {
    const { params } = await this.execute('ReadPublic', TPM_CC.ReadPublic, [handle], [], NO_DATA);
    const pub = params.tpm2b('outPublic', MAX_PUBLIC_SIZE);
    const name = params.tpm2b('name', 66);
    const qualifiedName = params.tpm2b('qualifiedName', 66);
    return { public: pub, name, qualifiedName };
  }

  /** ReadPublic, or `null` when the handle does not exist. */
  async tryReadPublic(handle: number): Promise<{ public: Buffer; name: Buffer } | null> {
    try {
      return await this.readPublic(handle);
    } catch (e) {
      if (isHandleMissing(e)) return null;
      throw e;
    }
  }

  private static sensitiveCreate(userAuth: Buffer = NO_DATA): Buffer {
    return tpm2b(new TpmWriter().tpm2b(userAuth).tpm2b(NO_DATA).toBuffer());
  }

  /** TPM2_CreatePrimary under `hierarchy` (owner/endorsement, empty hierarchy auth) from a TPMT_PUBLIC template. */
  async createPrimary(hierarchy: number, template: Buffer, hierarchyAuth: Auth = PASSWORD): Promise<LoadedObject> {
    const params = new TpmWriter()
      .bytes(TpmClient.sensitiveCreate())
      .tpm2b(template)
      .tpm2b(NO_DATA)
      .u32(0)
      .toBuffer();
    const { handles, params: p } = await this.execute('CreatePrimary', TPM_CC.CreatePrimary, [hierarchy], [hierarchyAuth], params, 1);
    const pub = p.tpm2b('outPublic', MAX_PUBLIC_SIZE);
    p.tpm2b('creationData', 4096);
    p.tpm2b('creationHash', 64);
    p.u16('creationTicket.tag');
    p.u32('creationTicket.hierarchy');
    p.tpm2b('creationTicket.digest', 64);
    const name = p.tpm2b('name', 66);
    return { handle: handles[0]!, public: pub, name };
  }

  /** TPM2_Create: a child key of `parent`; returns TPM2B_PRIVATE contents and TPMT_PUBLIC. */
  async create(parent: number, template: Buffer, parentAuth: Auth = PASSWORD): Promise<{ private: Buffer; public: Buffer }> {
    const params = new TpmWriter().bytes(TpmClient.sensitiveCreate()).tpm2b(template).tpm2b(NO_DATA).u32(0).toBuffer();
    const { params: p } = await this.execute('Create', TPM_CC.Create, [parent], [parentAuth], params);
    const priv = p.tpm2b('outPrivate', 4096);
    const pub = p.tpm2b('outPublic', MAX_PUBLIC_SIZE);
    return { private: priv, public: pub };
  }

  /** TPM2_Load of a key created by `create`. */
  async load(parent: number, priv: Buffer, pub: Buffer, parentAuth: Auth = PASSWORD): Promise<LoadedObject> {
    const params = new TpmWriter().tpm2b(priv).tpm2b(pub).toBuffer();
    const { handles, params: p } = await this.execute('Load', TPM_CC.Load, [parent], [parentAuth], params, 1);
    return { handle: handles[0]!, public: pub, name: p.tpm2b('name', 66) };
  }

  /**
   * TPM2_LoadExternal: loads a key generated outside the TPM. With `sensitive` (a marshalled TPMT_SENSITIVE) the
   * TPM refuses fixedTPM/fixedParent, which is exactly what the verifier relies on to tell software keys apart.
   */
  async loadExternal(pub: Buffer, sensitive: Buffer | null, hierarchy: number = TPM_RH.NULL): Promise<LoadedObject> {
    const params = new TpmWriter()
      .tpm2b(sensitive ?? NO_DATA)
      .tpm2b(pub)
      .u32(hierarchy)
      .toBuffer();
    const { handles, params: p } = await this.execute('LoadExternal', TPM_CC.LoadExternal, [], [], params, 1);
    return { handle: handles[0]!, public: pub, name: p.tpm2b('name', 66) };
  }

  /** TPM2_EvictControl: persists a transient object at `persistentHandle`, or removes a persistent one (owner auth). */
  async evictControl(objectHandle: number, persistentHandle: number, auth: number = TPM_RH.OWNER): Promise<void> {
    await this.execute('EvictControl', TPM_CC.EvictControl, [auth, objectHandle], [PASSWORD], new TpmWriter().u32(persistentHandle).toBuffer());
  }

  /** TPM2_FlushContext of a transient object or session. */
  async flushContext(handle: number): Promise<void> {
    await this.execute('FlushContext', TPM_CC.FlushContext, [], [], new TpmWriter().u32(handle).toBuffer());
  }

  /** FlushContext that never throws; for `finally` blocks. */
  async flushQuietly(handle: number | null | undefined): Promise<void> {
    if (handle === null || handle === undefined || handle >>> 24 === 0x81) return;
    await this.flushContext(handle).catch(() => undefined);
  }

  /**
   * TPM2_Certify: the key at `signHandle` (AK) signs a TPMS_ATTEST naming the object at `objectHandle`, with
   * `qualifyingData` (the server nonce) copied into extraData. Returns raw TPMS_ATTEST and TPMT_SIGNATURE bytes.
   */
  async certify(
    objectHandle: number,
    signHandle: number,
    qualifyingData: Buffer,
    objectAuth: Auth = PASSWORD,
    signAuth: Auth = PASSWORD,
  ): Promise<{ certifyInfo: Buffer; signature: Buffer }> {
    const params = new TpmWriter().tpm2b(qualifyingData).u16(TPM_ALG.NULL).toBuffer();
    const { params: p } = await this.execute('Certify', TPM_CC.Certify, [objectHandle, signHandle], [objectAuth, signAuth], params);
    const certifyInfo = p.tpm2b('certifyInfo', 4096);
    const signature = Buffer.from(p.bytes(p.remaining, 'signature'));
    return { certifyInfo, signature };
  }

  /**
   * TPM2_Sign of an externally computed digest (no hash-check ticket; allowed for unrestricted keys). `scheme` and
   * `hashAlg` select e.g. ECDSA/SHA-256. Returns raw TPMT_SIGNATURE bytes.
   */
  async sign(keyHandle: number, digest: Buffer, scheme: number, hashAlg: number, keyAuth: Auth = PASSWORD): Promise<Buffer> {
    const params = new TpmWriter()
      .tpm2b(digest)
      .u16(scheme)
      .u16(hashAlg)
      .u16(TPM_ST.HASHCHECK)
      .u32(TPM_RH.NULL)
      .tpm2b(NO_DATA)
      .toBuffer();
    const { params: p } = await this.execute('Sign', TPM_CC.Sign, [keyHandle], [keyAuth], params);
    return Buffer.from(p.bytes(p.remaining, 'signature'));
  }

  /** TPM2_StartAuthSession: an unbound, unsalted policy session using `hashAlg`. */
  async startPolicySession(hashAlg: number): Promise<number> {
    const params = new TpmWriter()
      .tpm2b(randomBytes(16))
      .tpm2b(NO_DATA)
      .u8(0x01) // TPM_SE_POLICY
      .u16(TPM_ALG.NULL)
      .u16(hashAlg)
      .toBuffer();
    // tpmKey = bind = TPM_RH_NULL: no salt, no bind, so no HMAC key is derived and none is needed.
    const { handles } = await this.execute('StartAuthSession', TPM_CC.StartAuthSession, [TPM_RH.NULL, TPM_RH.NULL], [], params, 1);
    return handles[0]!;
  }

  /** TPM2_PolicySecret(authHandle) on `session`, authorised with the (empty) password of `authHandle`. */
  async policySecret(authHandle: number, session: number): Promise<void> {
    const params = new TpmWriter().tpm2b(NO_DATA).tpm2b(NO_DATA).tpm2b(NO_DATA).i32(0).toBuffer();
    await this.execute('PolicySecret', TPM_CC.PolicySecret, [authHandle, session], [PASSWORD], params);
  }

  /**
   * TPM2_ActivateCredential: recovers the secret protected by MakeCredential for the object at `activateHandle`
   * (AK, ADMIN role: password) using `keyHandle` (EK, USER role: `keyAuth`, normally a PolicySecret(endorsement)
   * session). Fails with rc 0x1df when the credential was made for another name or another EK.
   */
  async activateCredential(
    activateHandle: number,
    keyHandle: number,
    credentialBlob: Buffer,
    encryptedSecret: Buffer,
    keyAuth: Auth,
  ): Promise<Buffer> {
    const params = new TpmWriter().tpm2b(credentialBlob).tpm2b(encryptedSecret).toBuffer();
    const { params: p } = await this.execute(
      'ActivateCredential',
      TPM_CC.ActivateCredential,
      [activateHandle, keyHandle],
      [PASSWORD, keyAuth],
      params,
    );
    return p.tpm2b('certInfo', 64);
  }

  /** TPM2_NV_ReadPublic: the data size of an NV index, or `null` if it does not exist. */
  async nvSize(index: number): Promise<number | null> {
    try {
      const { params } = await this.execute('NV_ReadPublic', TPM_CC.NV_ReadPublic, [index], [], NO_DATA);
      const pub = new TpmReader(params.tpm2b('nvPublic', 4096), 'TPMS_NV_PUBLIC');
      pub.u32('nvIndex');
      pub.u16('nameAlg');
      pub.u32('attributes');
      pub.tpm2b('authPolicy', 64);
      return pub.u16('dataSize');
    } catch (e) {
      if (isHandleMissing(e)) return null;
      throw e;
    }
  }

  /** TPM2_NV_Read of a whole index in chunks (authorised by the index itself, empty password). */
  async nvRead(index: number, size: number, chunk = 768): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let off = 0; off < size; off += chunk) {
      const n = Math.min(chunk, size - off);
      const { params } = await this.execute('NV_Read', TPM_CC.NV_Read, [index, index], [PASSWORD], new TpmWriter().u16(n).u16(off).toBuffer());
      parts.push(params.tpm2b('data', chunk));
    }
    return Buffer.concat(parts);
  }

  /** TPM2_GetCapability(TPM_CAP_HANDLES) from `first`: the persistent handles in use. */
  async persistentHandles(first = 0x81000000): Promise<number[]> {
    const { params } = await this.execute('GetCapability', TPM_CC.GetCapability, [], [], new TpmWriter().u32(1).u32(first).u32(256).toBuffer());
    params.u8('moreData');
    params.u32('capability');
    const count = params.u32('count');
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(params.u32('handle'));
    return out;
  }

  /** TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES) of one property, e.g. 0x20e TPM_PT_LOCKOUT_COUNTER. */
  async getProperty(property: number): Promise<number | null> {
    const { params } = await this.execute('GetCapability', TPM_CC.GetCapability, [], [], new TpmWriter().u32(6).u32(property).u32(1).toBuffer());
    params.u8('moreData');
    params.u32('capability');
    const count = params.u32('count');
    for (let i = 0; i < count; i++) {
      const p = params.u32('property');
      const v = params.u32('value');
      if (p === property) return v;
    }
    return null;
  }

  /** TPM2_Shutdown(SU_CLEAR): an orderly shutdown, so the next start does not count as a dictionary attack. */
  async shutdown(): Promise<void> {
    await this.execute('Shutdown', TPM_CC.Shutdown, [], [], new TpmWriter().u16(0).toBuffer());
  }
}
