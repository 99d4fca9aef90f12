/**
 * The scenarios every synchronous tls-verify adapter (the POSIX-sh hook, the C plugin) must pass against a real
 * OpenVPN and the real devicegate, registered as `it` blocks inside the caller's `describe`. The adapters share one
 * protocol and one cache format, so they share one specification; each suite adds what only its adapter does.
 */
import path from 'node:path';
import { type ClientResult, connectOpenVpnClient } from '../../helpers/openvpn';
import type { TestCert } from '../../helpers/test-pki';
import type { LiveGateway } from './devicegate';
import type { Fault, FaultyProxy } from './faulty-proxy';

export interface TlsVerifyAdapterContext {
  readonly gw: LiveGateway;
  /** Sits between OpenVPN's adapter and devicegate; counts decision calls and injects faults. */
  readonly proxy: FaultyProxy;
  /** The `gateway.id` the adapter reports. */
  readonly gatewayId: string;
  connect(name: string, cert: TestCert): Promise<{ result: ClientResult }>;
}

/**
 * Connects a `--dev null` client with `cert`. A synchronous adapter answers inside the TLS handshake, so a short
 * hand-window suffices and keeps refused connects quick.
 */
export function connectTlsVerifyClient(
  at: { readonly port: number; readonly workDir: string; readonly caFile: string },
  name: string,
  cert: TestCert,
): Promise<{ result: ClientResult }> {
  return connectOpenVpnClient({
    workDir: path.join(at.workDir, 'clients'),
    name,
    port: at.port,
    caFile: at.caFile,
    certFile: cert.certPath,
    keyFile: cert.keyPath,
    handWindowSeconds: 3,
    timeoutMs: 20_000,
  });
}

/** Faults of devicegate (or the network to it) under which an enrolled device must be refused. */
export const DEVICEGATE_FAULTS: readonly (readonly [string, Fault])[] = [
  ['devicegate answers too slowly', { kind: 'slow', delayMs: 2500 }],
  ['devicegate answers HTTP 500', { kind: 'status', status: 500 }],
  ['devicegate answers a truncated allow', { kind: 'garbage' }],
];

/** Registers the shared scenarios; `ctx` is read when the tests run (after the caller's beforeAll). */
export function tlsVerifyAdapterCases(ctx: () => TlsVerifyAdapterContext): void {
  it('connects an enrolled device, audited as an allow from tls-verify', async () => {
    const { gw, connect, gatewayId } = ctx();
    const cert = await gw.enrollDevice('laptop');
    expect((await connect('laptop', cert)).result.outcome).toBe('connected');
    const [d] = await gw.decisions({ deviceId: cert.deviceId! });
    expect(d).toMatchObject({ decision: 'allow', reason: 'OK', concentrator: { id: gatewayId, kind: 'openvpn', hook: 'tls-verify' } });
  });

  it('reuses a cached allow without asking devicegate again', async () => {
    const { gw, proxy, connect } = ctx();
    const cert = await gw.enrollDevice('repeat');
    expect((await connect('repeat-1', cert)).result.outcome).toBe('connected');
    const calls = proxy.decisionCalls.length;
    expect((await connect('repeat-2', cert)).result.outcome).toBe('connected');
    expect(proxy.decisionCalls.length).toBe(calls);
  });

  it('refuses a certificate of a device that is not in the inventory (CERT_UNKNOWN or DEVICE_NOT_REGISTERED)', async () => {
    const { gw, connect } = ctx();
    const cert = await gw.issueForUnknownDevice('ghost');
    expect((await connect('ghost', cert)).result.outcome).toBe('tls_failed');
    const [d] = await gw.decisions({ deviceId: cert.deviceId! });
    expect(d?.decision ?? 'deny').toBe('deny');
  });

  it('refuses a suspended device with DEVICE_SUSPENDED in the audit log', async () => {
    const { gw, connect } = ctx();
    const cert = await gw.enrollDevice('suspended');
    await gw.setStatus(cert.deviceId!, 'suspended', 'reported lost');
    expect((await connect('suspended', cert)).result.outcome).toBe('tls_failed');
    expect((await gw.decisions({ deviceId: cert.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'DEVICE_SUSPENDED' });
  });

  it('refuses a revoked certificate with CERT_REVOKED in the audit log', async () => {
    const { gw, connect } = ctx();
    const cert = await gw.enrollDevice('revoked');
    await gw.revokeCertificate(cert);
    expect((await connect('revoked', cert)).result.outcome).toBe('tls_failed');
    expect((await gw.decisions({ deviceId: cert.deviceId! }))[0]).toMatchObject({ decision: 'deny', reason: 'CERT_REVOKED' });
  });

  it.each(DEVICEGATE_FAULTS)('refuses an enrolled device when %s (fail closed)', async (_label, fault) => {
    const { gw, proxy, connect } = ctx();
    const cert = await gw.enrollDevice(`fault-${fault.kind}`);
    proxy.setFault(fault);
    try {
      expect((await connect(`fault-${fault.kind}`, cert)).result.outcome).toBe('tls_failed');
    } finally {
      proxy.setFault({ kind: 'none' });
    }
  });
}
