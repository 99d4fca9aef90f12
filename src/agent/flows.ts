import { createHash, X509Certificate } from 'node:crypto';
import path from 'node:path';
import { spkiEqual } from '../attestation/spki';
import {
  ENROLLMENT_PATHS,
  certificateResponseSchema,
  fromB64,
  renewStartResponseSchema,
  startResponseSchema,
  toB64,
  type CertificateResponse,
  type FinishRequest,
  type RenewFinishRequest,
  type StartRequest,
} from '../enrollment/protocol';
import { marshalPublic, parsePublic, publicToSpki, publicToTpm2b, TpmClient, openTransport, parseTcti } from '../tpm';
import { buildTpmCsr } from './csr';
import { checkServerUrl, postJson, type FetchFn } from './http';
import { loadState, saveEnrollment, saveTss2Key, AGENT_FILES, type AgentState } from './state';
import { tss2PrivateKeyPem } from './tss2-key';
import { AgentError, DEFAULT_HANDLES, DeviceTpm, ekPublicSha256, type AgentHandles } from './tpm-device';

/** Options shared by the agent commands. */
export interface AgentContext {
  /** `swtpm:host=…,port=…` or `device:/dev/tpmrm0`. */
  readonly tcti: string;
  readonly handles?: Partial<AgentHandles>;
  /** Progress lines (stderr in the CLI). */
  readonly log: (line: string) => void;
  readonly fetch?: FetchFn;
  readonly timeoutMs?: number;
  readonly nowMs?: () => number;
}

/** Result of enroll/renew. */
export interface EnrollOutcome {
  readonly deviceId: string;
  readonly notAfter: string;
  readonly certificateFile: string;
  readonly chainFile: string;
  /** tpm2-openssl key URI of the device key, e.g. `handle:0x81000002`. */
  readonly keyUri: string;
  /** TSS2 PRIVATE KEY file of the device key (written when the key was created), for OpenVPN `key`. */
  readonly keyFile: string;
  readonly akCreated: boolean;
  readonly keyCreated: boolean;
}

async function withTpm<T>(ctx: AgentContext, fn: (dev: DeviceTpm) => Promise<T>): Promise<T> {
  const client = new TpmClient(openTransport(parseTcti(ctx.tcti)));
  try {
    return await fn(new DeviceTpm(client, { ...DEFAULT_HANDLES, ...ctx.handles }));
  } finally {
    await client.transport.close();
  }
}

function checkIssued(res: CertificateResponse, deviceKeySpki: Buffer): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(res.certificate);
  } catch (e) {
    throw new AgentError('AGENT_BAD_CERTIFICATE', 'The server returned an unreadable certificate', e);
  }
  // The certificate must be for the TPM key; anything else would be useless (or an attack on the agent).
  if (!spkiEqual(cert.publicKey.export({ type: 'spki', format: 'der' }), deviceKeySpki)) {
    throw new AgentError('AGENT_BAD_CERTIFICATE', 'The issued certificate is not for the TPM device key');
  }
}

const hex = (h: number): string => `0x${h.toString(16).padStart(8, '0')}`;

/**
 * `devicegate-agent enroll`: EK/AK/device key → start → ActivateCredential → Certify(nonce) → TPM-signed CSR →
 * finish → store certificate. Each step logs one progress line.
 */
export async function enroll(
  ctx: AgentContext,
  opts: { server: string; token: string; deviceId: string; outDir: string; akAlg?: 'rsa' | 'ecc' },
): Promise<EnrollOutcome> {
  const base = checkServerUrl(opts.server);
  const fetchFn = ctx.fetch ?? fetch;
  const timeout = ctx.timeoutMs ?? 30_000;
  const now = ctx.nowMs ?? Date.now;
  return withTpm(ctx, async (dev) => {
    ctx.log(`TPM: ${dev.tpm.transport.description}`);
    const ekCert = await dev.ekCertificate();
    const ekPub = await dev.ekPublic();
    ctx.log(`EK: ${ekCert ? 'certificate found' : 'no certificate in NV'}; SHA-256 ${ekPublicSha256(ekPub)}`);
    const ak = await dev.ensureAk(opts.akAlg ?? 'rsa');
    ctx.log(`AK: ${ak.created ? 'created' : 'reused'} at ${hex(ak.handle)}`);
    const key = await dev.ensureDeviceKey();
    ctx.log(`Device key: ${key.created ? 'created' : 'reused'} at ${hex(key.handle)} (P-256, non-exportable)`);
    if (key.privateBlob) {
      const file = await saveTss2Key(opts.outDir, tss2PrivateKeyPem(key.parsed.raw, key.privateBlob));
      ctx.log(`Device key file for OpenVPN/tpm2-openssl: ${file}`);
    }

    const startReq: StartRequest = {
      deviceId: opts.deviceId,
      token: opts.token,
      ...(ekCert ? { ekCertificate: toB64(ekCert) } : {}),
      ekPublic: toB64(publicToTpm2b(marshalPublic(ekPub.public))),
      akPublic: toB64(ak.parsed.raw),
    };
    ctx.log('Enrollment: start');
    const start = await postJson(fetchFn, base, ENROLLMENT_PATHS.start, startReq, startResponseSchema, timeout);
    if (!fromB64(start.akName).equals(ak.name)) {
      throw new AgentError('AGENT_AK_NAME_MISMATCH', 'The server challenged a different AK than ours');
    }
    ctx.log('TPM: ActivateCredential');
    const secret = await dev.activateCredential(ak.handle, fromB64(start.credentialBlob), fromB64(start.encryptedSecret));
    ctx.log('TPM: Certify device key with nonce');
    const cert = await dev.certify(key.handle, ak.handle, fromB64(start.nonce));
    const keySpki = publicToSpki(key.parsed.public);
    const csr = await buildTpmCsr(keySpki, opts.deviceId, (d) => dev.signDigestDer(key.handle, d));
    const finishReq: FinishRequest = {
      enrollmentId: start.enrollmentId,
      activatedSecret: toB64(secret),
      csr,
      certifyInfo: toB64(cert.certifyInfo),
      certifySignature: toB64(cert.signature),
      keyPublic: toB64(key.parsed.raw),
    };
    ctx.log('Enrollment: finish');
    const issued = await postJson(fetchFn, base, ENROLLMENT_PATHS.finish, finishReq, certificateResponseSchema, timeout);
    checkIssued(issued, keySpki);
    const state = await saveEnrollment(
      opts.outDir,
      {
        certificate: issued.certificate,
        chain: issued.chain,
        state: { deviceId: issued.deviceId, server: opts.server, akHandle: ak.handle, keyHandle: key.handle, ekHandle: dev.handles.ek, notAfter: issued.notAfter },
      },
      now(),
    );
    ctx.log(`Certificate stored in ${state.certificateFile} (valid until ${issued.notAfter})`);
    return outcome(state, ak.created, key.created);
  });
}

function outcome(state: AgentState, akCreated: boolean, keyCreated: boolean): EnrollOutcome {
  return {
    deviceId: state.deviceId,
    notAfter: state.notAfter,
    certificateFile: state.certificateFile,
    chainFile: state.chainFile,
    keyUri: `handle:${hex(state.keyHandle)}`,
    keyFile: path.join(path.dirname(state.certificateFile), AGENT_FILES.tss2Key),
    akCreated,
    keyCreated,
  };
}

/**
 * `devicegate-agent renew`: renewal nonce → Certify by the recorded AK → TPM-signed CSR → new certificate. Uses
 * `state.json` from enrollment for the device id, handles and (unless overridden) the server.
 */
export async function renew(ctx: AgentContext, opts: { outDir: string; server?: string }): Promise<EnrollOutcome> {
  const state = await loadState(opts.outDir);
  const server = opts.server ?? state.server;
  const base = checkServerUrl(server);
  const fetchFn = ctx.fetch ?? fetch;
  const timeout = ctx.timeoutMs ?? 30_000;
  const now = ctx.nowMs ?? Date.now;
  return withTpm({ ...ctx, handles: { ak: state.akHandle, key: state.keyHandle, ek: state.ekHandle, ...ctx.handles } }, async (dev) => {
    const akPub = await dev.tpm.tryReadPublic(dev.handles.ak);
    const keyPub = await dev.tpm.tryReadPublic(dev.handles.key);
    if (!akPub || !keyPub) {
      throw new AgentError('AGENT_KEYS_MISSING', 'The AK or device key is gone from the TPM (cleared?); enroll again with a new token');
    }
    ctx.log('Renewal: start');
    const start = await postJson(fetchFn, base, ENROLLMENT_PATHS.renewStart, { deviceId: state.deviceId }, renewStartResponseSchema, timeout);
    ctx.log('TPM: Certify device key with nonce');
    const cert = await dev.certify(dev.handles.key, dev.handles.ak, fromB64(start.nonce));
    const keySpki = publicToSpki(parsePublic(keyPub.public).public);
    const csr = await buildTpmCsr(keySpki, state.deviceId, (d) => dev.signDigestDer(dev.handles.key, d));
    const req: RenewFinishRequest = {
      renewalId: start.renewalId,
      csr,
      certifyInfo: toB64(cert.certifyInfo),
      certifySignature: toB64(cert.signature),
      keyPublic: toB64(keyPub.public),
    };
    ctx.log('Renewal: finish');
    const issued = await postJson(fetchFn, base, ENROLLMENT_PATHS.renewFinish, req, certificateResponseSchema, timeout);
    checkIssued(issued, keySpki);
    const saved = await saveEnrollment(
      opts.outDir,
      { certificate: issued.certificate, chain: issued.chain, state: { ...state, server, notAfter: issued.notAfter } },
      now(),
    );
    ctx.log(`Certificate renewed in ${saved.certificateFile} (valid until ${issued.notAfter})`);
    return outcome(saved, false, false);
  });
}

/** `devicegate-agent ek-hash`: the EK public SHA-256 (SPKI) for the inventory, plus whether an EK certificate exists. */
export async function ekHash(ctx: AgentContext): Promise<{ ekPublicSha256: string; ekCertificate: boolean; ekCertificateSha256: string | null }> {
  return withTpm(ctx, async (dev) => {
    const ek = await dev.ekPublic();
    const cert = await dev.ekCertificate();
    return {
      ekPublicSha256: ekPublicSha256(ek),
      ekCertificate: cert !== null,
      ekCertificateSha256: cert ? createHash('sha256').update(cert).digest('hex') : null,
    };
  });
}
