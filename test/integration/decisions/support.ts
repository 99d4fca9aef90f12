/**
 * Shared set-up of the decision tests: devices in the real inventory with real certificates from the app's dev CA
 * (keys made in-process with node:crypto, issued through `PkiService.issue`), decision request bodies shaped like
 * each concentrator sends them, and audit lookups.
 */
import { createHash, generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import type { CertificateRecord, Device, DeviceStatus, Platform } from '../../../src/domain/types';
import type { DecisionRequestInput } from '../../../src/concentrator/schemas';
import { cliPrincipal } from '../../../src/services/actors';
import type { Services } from '../../../src/services';
import type { Store } from '../../../src/store/types';

/** A device certificate with what concentrators report about it. */
export interface IssuedCert {
  readonly deviceId: string;
  readonly record: CertificateRecord;
  readonly pem: string;
  readonly keyPem: string;
  readonly sha256: string;
  /** DER content octets of the serial, lower-case hex (the record's serialHex). */
  readonly serialHex: string;
  readonly serialDecimal: string;
  /** node:crypto form (`CN=…` lines). */
  readonly subject: string;
  readonly issuer: string;
}

/** Issues a certificate of the app's dev CA for `deviceId` (which need not be in the inventory). */
export async function issueCert(services: Services, deviceId: string): Promise<IssuedCert> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const issued = await services.pki.issue({ deviceId, spki, via: 'manual' });
  const x = new X509Certificate(issued.pem);
  return {
    deviceId,
    record: issued,
    pem: issued.pem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    sha256: createHash('sha256').update(x.raw).digest('hex'),
    serialHex: issued.serialHex,
    serialDecimal: BigInt(`0x${issued.serialHex}`).toString(10),
    subject: x.subject,
    issuer: x.issuer,
  };
}

/**
 * Registers a device through the real registry and brings it to `status`. `active` is what enrollment sets (with
 * the attestation key it recorded); this helper writes that state directly because the TPM enrollment service is
 * not wired into the app yet. Later statuses go through the registry like IT's API does.
 */
export async function makeDevice(
  services: Services,
  store: Store,
  opts: { status?: DeviceStatus; platform?: Platform; owner?: string | null; serial?: string } = {},
): Promise<Device> {
  const actor = cliPrincipal();
  const d = await services.registry.register(
    { serial_number: opts.serial ?? `SN-${randomUUID().slice(0, 12)}`, platform: opts.platform ?? 'linux', owner: opts.owner ?? 'erika.muster' },
    actor,
  );
  const status = opts.status ?? 'active';
  if (status === 'registered') return d;
  const active = await store.devices.update(d.id, { status: 'active', attestationKey: 'test-enrollment', updatedAt: Date.now() });
  if (status === 'active') return active;
  return services.registry.changeStatus(d.id, { status, reason: 'test' }, actor);
}

/** An active device with a certificate. */
export async function activeDeviceWithCert(services: Services, store: Store, platform: Platform = 'linux'): Promise<IssuedCert & { device: Device }> {
  const device = await makeDevice(services, store, { platform });
  return { ...(await issueCert(services, device.id)), device };
}

/** What the OpenVPN management adapter sends for a certificate (fingerprint, both serial forms, DNs, CN). */
export function openvpnBody(c: Pick<IssuedCert, 'sha256' | 'serialHex' | 'serialDecimal' | 'subject' | 'issuer' | 'deviceId'>, extra: Partial<DecisionRequestInput> = {}): DecisionRequestInput {
  return {
    request_id: randomUUID(),
    gateway: { id: 'ovpn-it-01', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14' },
    event: 'connect',
    peer: { ip: '203.0.113.7', port: 51234 },
    cert: {
      sha256: c.sha256.match(/../g)!.join(':'),
      serial: { dec: c.serialDecimal, hex: c.serialHex.match(/../g)!.join(':') },
      issuer_dn: c.issuer.split('\n').join(', '),
      subject_dn: c.subject.split('\n').join(', '),
      cn: c.deviceId,
    },
    session: { ovpn_cid: 7, ovpn_kid: 1 },
    client_hints: { IV_PLAT: 'linux', UV: { DEVICE_ID: c.deviceId } },
    ...extra,
  };
}

/** What FreeRADIUS rlm_rest posts for EAP-TLS (attribute map; bare hex serial, one-line DNs). */
export function rlmRestBody(c: Pick<IssuedCert, 'serialHex' | 'subject' | 'issuer' | 'deviceId'>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const oneLine = (dn: string) => `/${dn.split('\n').join('/')}`;
  const s = (v: string) => ({ type: 'string', value: [v] });
  return {
    'User-Name': s(c.deviceId),
    'TLS-Client-Cert-Serial': s(c.serialHex),
    'TLS-Client-Cert-Issuer': s(oneLine(c.issuer)),
    'TLS-Client-Cert-Subject': s(oneLine(c.subject)),
    'TLS-Client-Cert-Common-Name': s(c.deviceId),
    'TLS-Client-Cert-Subject-Alt-Name-Uri': s(`urn:uuid:${c.deviceId}`),
    'Calling-Station-Id': s('127.0.0.1[4500]'),
    'EAP-Type': { type: 'integer', value: ['TLS'] },
    ...extra,
  };
}

/** The parsed `vpn.decision` / `vpn.session_end` entries of the audit log, newest first. */
export async function auditEvents(
  store: Store,
  filter: { type?: string; deviceId?: string; reason?: string } = {},
): Promise<{ seq: number; type: string; eventId: string; data: Record<string, unknown> }[]> {
  const page = await store.audit.query(filter, { limit: 1000 });
  return page.items.map((e) => {
    const body = JSON.parse(e.body) as { data: Record<string, unknown> };
    return { seq: e.seq, type: e.type, eventId: e.eventId, data: body.data };
  });
}

/** The audit entry of one decision (its event id is the decision id), or undefined. */
export async function decisionEntry(store: Store, decisionId: string): Promise<Record<string, unknown> | undefined> {
  const all = await auditEvents(store, { type: 'vpn.decision' });
  return all.find((e) => e.eventId === decisionId)?.data;
}
