/**
 * Fuzzing `POST /v1/decisions` (and the rlm_rest route) over real HTTP on 127.0.0.1 against the real app: seeds are
 * well-formed requests for active, suspended, registered, revoked, unregistered, unknown, foreign and self-signed
 * certificates; each request applies 1–4 random mutations (structure, types, identifiers, grafts of identifiers
 * between devices, raw byte damage). The oracle is independent of the decision code: an allow is acceptable only
 * when the request still names the certificate of an active device (its SHA-256 in any spelling, its PEM, or its
 * serial together with devicegate's issuing CA), and then only for that device. No request may get a 5xx.
 * The seed is printed on failure; set DG_FUZZ_SEED to replay it.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cliPrincipal } from '../../../src/services/actors';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';
import { activeDeviceWithCert, issueCert, makeDevice, openvpnBody, rlmRestBody, type IssuedCert } from './support';
import { xorshift } from '../../helpers/prng';

const REQUESTS = 10_000;
const RLM_REQUESTS = 2_000;
const CONCURRENCY = 16;


type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

describe(`fuzzing POST /v1/decisions with ${REQUESTS} mutated requests over HTTP`, () => {
  const seed = Number(process.env.DG_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = xorshift(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  let t: TestApp;
  let server: http.Server;
  let port: number;
  let conc: string;
  let ourCaCn: string;
  const active: IssuedCert[] = [];
  const seeds: { cert: Pick<IssuedCert, 'sha256' | 'serialHex' | 'serialDecimal' | 'subject' | 'issuer' | 'deviceId'> & { pem?: string } }[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  beforeAll(async () => {
    t = await buildTestApp();
    conc = await bearer(t.services, 'concentrator', 'fuzz');
    ourCaCn = /CN=([^\n]+)/.exec(new X509Certificate(t.services.pki.ca.issuingCertPem).subject)![1]!;
    for (let i = 0; i < 3; i++) active.push(await activeDeviceWithCert(t.services, t.store));
    const suspended = await makeDevice(t.services, t.store);
    const suspendedCert = await issueCert(t.services, suspended.id);
    await t.services.registry.changeStatus(suspended.id, { status: 'suspended' }, cliPrincipal());
    const registered = await issueCert(t.services, (await makeDevice(t.services, t.store, { status: 'registered' })).id);
    const revoked = await activeDeviceWithCert(t.services, t.store);
    await t.services.pki.revokeSerial(revoked.serialHex, 'keyCompromise', cliPrincipal());
    const unregistered = await issueCert(t.services, randomUUID());
    // A self-signed "private laptop" certificate claiming an active device id in CN and SAN.
    const fakeId = active[0]!.deviceId;
    const fake = {
      sha256: createHash('sha256').update(`fake-${fakeId}`).digest('hex'),
      serialHex: active[0]!.serialHex,
      serialDecimal: active[0]!.serialDecimal,
      subject: `CN=${fakeId}`,
      issuer: 'C=DE\nO=Privat\nCN=Laptop',
      deviceId: fakeId,
    };
    for (const c of active) seeds.push({ cert: c }, { cert: { ...c, pem: c.pem } });
    for (const c of [suspendedCert, registered, revoked, unregistered]) seeds.push({ cert: c }, { cert: { ...c, pem: c.pem } });
    seeds.push({ cert: fake });
    server = http.createServer(t.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    agent.destroy();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await t?.cleanup();
  });

  // ---------------------------------------------------------------------------------------------------------
  // The oracle (independent of src/concentrator): which active device, if any, does a request name?
  // ---------------------------------------------------------------------------------------------------------
  const shaForms = (v: unknown): string[] => {
    if (typeof v !== 'string') return [];
    const out = [v.replace(/^sha-?256(\s*fingerprint)?\s*[:=]\s*/i, '').replace(/[\s:-]/g, '').toLowerCase()];
    try {
      out.push(Buffer.from(v.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex'));
    } catch {
      // not base64
    }
    return out;
  };
  const serialValue = (v: unknown, radix: 10 | 16): bigint | null => {
    if (typeof v !== 'string') return null;
    const s = v.trim().replace(/:/g, '');
    try {
      if (radix === 10 && /^[0-9]+$/.test(s)) return BigInt(s);
      if (radix === 16 && /^[0-9a-fA-F]+$/.test(s)) return BigInt(`0x${s}`);
    } catch {
      return null;
    }
    return null;
  };
  /** Device ids of active devices the request legitimately names. */
  const namedActive = (body: unknown): Set<string> => {
    const named = new Set<string>();
    const cert = (body as { cert?: Record<string, unknown> } | null)?.cert;
    if (!cert || typeof cert !== 'object') return named;
    for (const a of active) {
      if (shaForms(cert.sha256).includes(a.sha256)) named.add(a.deviceId);
      if (typeof cert.pem === 'string' && cert.pem.includes(a.pem.split('\n')[5]!)) named.add(a.deviceId);
      const serial = cert.serial as Record<string, unknown> | null | undefined;
      const value = serial && typeof serial === 'object' ? (serialValue(serial.dec, 10) ?? serialValue(serial.hex, 16)) : null;
      if (value !== null && value === BigInt(`0x${a.serialHex}`) && typeof cert.issuer_dn === 'string' && cert.issuer_dn.includes(ourCaCn)) named.add(a.deviceId);
    }
    return named;
  };

  // ---------------------------------------------------------------------------------------------------------
  // Mutations
  // ---------------------------------------------------------------------------------------------------------
  const junk = (): Json =>
    pick<() => Json>([
      () => null,
      () => true,
      () => -1,
      () => 1e308,
      () => 0.5,
      () => '',
      () => ' ',
      () => 'A'.repeat(Math.floor(rnd() * 5000)),
      () => '\u0000\u0007\u001b[31m',
      () => 'Ω≈ç√∫\u202e\ud83d\ude00',
      () => [],
      () => [1, 'a', null],
      () => ({}),
      () => ({ __proto__: { allow: true } }),
      () => ({ constructor: { prototype: { decision: 'allow' } } }),
      () => 'allow',
      () => '../../etc/passwd',
      () => "' OR 1=1 --",
      () => randomUUID(),
      () => `urn:uuid:${pick(active).deviceId}`,
      () => pick(active).deviceId,
    ])();

  const paths = (o: Json, prefix: string[] = []): string[][] => {
    if (!o || typeof o !== 'object') return [prefix];
    return [prefix, ...Object.keys(o).flatMap((k) => paths((o as Record<string, Json>)[k] as Json, [...prefix, k]))];
  };
  const getAt = (o: Json, p: string[]): Json | undefined => p.reduce<Json | undefined>((x, k) => (x && typeof x === 'object' ? (x as Record<string, Json>)[k] : undefined), o);
  const setAt = (o: Json, p: string[], v: Json | undefined): Json => {
    if (p.length === 0) return v === undefined ? {} : v;
    const parent = getAt(o, p.slice(0, -1));
    if (parent && typeof parent === 'object') {
      if (v === undefined) delete (parent as Record<string, Json>)[p[p.length - 1]!];
      else (parent as Record<string, Json>)[p[p.length - 1]!] = v;
    }
    return o;
  };
  const flipHex = (s: string): string => {
    const i = Math.floor(rnd() * s.length);
    const c = s[i]!;
    const r = /[0-9a-f]/i.test(c) ? ((parseInt(c, 16) + 1 + Math.floor(rnd() * 14)) % 16).toString(16) : 'x';
    return s.slice(0, i) + r + s.slice(i + 1);
  };

  const mutations: ((b: Json) => Json)[] = [
    // structure and types
    (b) => setAt(b, pick(paths(b)).slice(), undefined),
    (b) => setAt(b, pick(paths(b)).slice(), junk()),
    (b) => setAt(b, [...pick(paths(b).filter((p) => getAt(b, p) !== null && typeof getAt(b, p) === 'object')), `x${Math.floor(rnd() * 9)}`], junk()),
    (b) => setAt(b, ['event'], pick(['connect', 'reauth', 'disconnect', 'CONNECT', 'allow', ''] as const)),
    (b) => setAt(b, ['gateway', 'kind'], pick(['openvpn', 'freeradius', 'strongswan', 'other', 'evil'] as const)),
    (b) => setAt(b, ['client_hints'], { UV: { DEVICE_ID: pick(active).deviceId }, IV_PLAT: 'linux', ALLOW: 'true' }),
    // fingerprint
    (b) => {
      const s = getAt(b, ['cert', 'sha256']);
      return typeof s === 'string' ? setAt(b, ['cert', 'sha256'], flipHex(s)) : b;
    },
    (b) => setAt(b, ['cert', 'sha256'], pick([createHash('sha256').update(String(rnd())).digest('hex'), 'a'.repeat(40), 'zz'.repeat(32), '', ':'.repeat(31)])),
    (b) => {
      const s = getAt(b, ['cert', 'sha256']);
      return typeof s === 'string' ? setAt(b, ['cert', 'sha256'], pick([s.toUpperCase(), s.replace(/:/g, ''), `SHA256 Fingerprint=${s.toUpperCase()}`, s.slice(1), `${s}:00`])) : b;
    },
    (b) => {
      const s = getAt(b, ['cert', 'sha256']);
      return typeof s === 'string' ? setAt(b, ['cert', 'sha256'], Buffer.from(s.replace(/:/g, ''), 'hex').toString('base64')) : b;
    },
    // serial and issuer
    (b) => setAt(b, ['cert', 'serial'], pick<Json>([{ dec: String(BigInt(`0x${pick(active).serialHex}`) + 1n) }, { hex: flipHex(pick(active).serialHex) }, { dec: '-1' }, { hex: '00' }, { dec: '9'.repeat(90) }, { hex: 'f'.repeat(70) }, {}])),
    (b) => setAt(b, ['cert', 'serial'], { hex: pick(active).serialHex }),
    (b) => setAt(b, ['cert', 'issuer_dn'], pick(['/C=DE/O=Privat/CN=Laptop', 'CN=Evil CA', `CN=${ourCaCn} Fake`, `CN=${ourCaCn}`, '', ',,,', '/', 'CN=a+CN=b', '=x', 'C=DE\u0000CN=x'])),
    (b) => setAt(b, ['cert', 'issuer_dn'], undefined),
    // identity grafts: claims of an active device on a non-active certificate, or another seed's identifiers
    (b) => setAt(b, ['cert', 'san'], { uri: [`urn:uuid:${pick(active).deviceId}`] }),
    (b) => setAt(b, ['cert', 'cn'], pick(active).deviceId),
    (b) => setAt(b, ['cert', 'subject_dn'], `CN=${pick(active).deviceId}`),
    (b) => {
      const other = body(pick(seeds));
      const key = pick(['sha256', 'serial', 'issuer_dn', 'pem', 'san', 'cn'] as const);
      return setAt(b, ['cert', key], getAt(other, ['cert', key]) ?? null);
    },
    (b) => setAt(b, ['cert', 'pem'], pick(['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', 'x'.repeat(20000), pick(active).pem.replace(/[A-Za-z]/, '+')])),
    (b) => setAt(b, ['ids'], { username: pick(active).deviceId, eap_identity: '\u0000root', ike_remote_id: `CN=${pick(active).deviceId}` }),
    (b) => setAt(b, ['session'], { bytes_sent: Math.floor(rnd() * 1e9), bytes_received: -5, duration_seconds: 1.5 }),
    (b) => setAt(b, ['peer'], { ip: pick(['::1', '999.1.1.1', 'fe80::1%eth0', 'localhost', '']), port: pick([0, 65536, -1, 443]) }),
  ];

  function body(s: (typeof seeds)[number]): Json {
    const b = openvpnBody(s.cert) as unknown as Json;
    if (s.cert.pem) setAt(b, ['cert', 'pem'], s.cert.pem);
    return JSON.parse(JSON.stringify(b)) as Json;
  }

  /** One fuzz case: a JSON body (object or any value) or raw bytes, and whether the bearer token is right. */
  function makeCase(): { raw: string; parsed: unknown; auth: string | null } {
    let b = body(pick(seeds));
    const n = rnd() < 0.1 ? 0 : 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < n; i++) {
      try {
        b = pick(mutations)(b);
      } catch {
        // a mutation that does not apply to this shape
      }
    }
    let raw = JSON.stringify(b) ?? 'null';
    if (rnd() < 0.05) {
      // raw byte damage
      const i = Math.floor(rnd() * raw.length);
      raw = pick([raw.slice(0, i), raw.slice(0, i) + pick(['"', '{', '\\', '\u0000', ',']) + raw.slice(i + 1), `${raw}${raw}`]);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw) as unknown;
    } catch {
      parsed = undefined;
    }
    const r = rnd();
    const auth = r < 0.02 ? null : r < 0.04 ? 'Bearer dg_deadbeef_x' : conc;
    return { raw, parsed, auth };
  }

  const post = (path: string, raw: string, auth: string | null): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(raw), ...(auth ? { authorization: auth } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(raw);
    });

  it('never allows a request that does not name an active device, never answers 5xx, never crashes', async () => {
    const stats = { allow: 0, deny: 0, s4xx: 0 };
    const failures: string[] = [];
    let done = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (done < REQUESTS) {
          done++;
          const c = makeCase();
          const res = await post('/v1/decisions', c.raw, c.auth);
          if (res.status >= 500) failures.push(`${res.status} for ${c.raw.slice(0, 300)}`);
          else if (res.status === 200) {
            const r = JSON.parse(res.text) as { decision: string; device_id: string | null };
            if (r.decision === 'allow') {
              stats.allow++;
              const named = namedActive(c.parsed);
              if (c.auth !== conc || !r.device_id || !named.has(r.device_id)) failures.push(`allow of ${r.device_id} for ${c.raw.slice(0, 400)}`);
            } else if (r.decision === 'deny') stats.deny++;
            else failures.push(`unexpected decision ${r.decision}`);
          } else if (res.status >= 400) stats.s4xx++;
          else failures.push(`status ${res.status}`);
          if (failures.length > 20) throw new Error(`seed ${seed}: ${failures.join('\n')}`);
        }
      }),
    );
    if (failures.length) throw new Error(`seed ${seed} (DG_FUZZ_SEED to replay):\n${failures.join('\n')}`);
    // Not vacuous: the corpus reaches allows, policy denies and malformed-request rejections alike.
    expect(stats.allow).toBeGreaterThan(50);
    expect(stats.deny).toBeGreaterThan(1000);
    expect(stats.s4xx).toBeGreaterThan(500);
    expect(stats.allow + stats.deny + stats.s4xx).toBe(REQUESTS);
    // The server is still answering correctly afterwards.
    const after = await post('/v1/decisions', JSON.stringify(openvpnBody(active[0]!)), conc);
    expect(JSON.parse(after.text).decision).toBe('allow');
  }, 120_000);

  it(`never answers 200 or 404 on the rlm_rest authorize route for a certificate that is not an active device's (${RLM_REQUESTS} mutated requests)`, async () => {
    const failures: string[] = [];
    let allows = 0;
    const nonActive = seeds.filter((s) => !active.some((a) => a.deviceId === s.cert.deviceId && a.sha256 === s.cert.sha256));
    let done = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (done < RLM_REQUESTS) {
          done++;
          const fromActive = rnd() < 0.2;
          const s = fromActive ? { cert: pick(active) } : pick(nonActive);
          const attrs = rlmRestBody(s.cert) as Record<string, Json>;
          const keys = Object.keys(attrs);
          for (let i = 0, n = Math.floor(rnd() * 3); i < n; i++) {
            const k = pick(keys);
            attrs[k] = pick<Json>([junk(), { type: 'string', value: [JSON.stringify(junk()) ?? ''] }, { value: [] }, null]);
          }
          if (rnd() < 0.2) attrs['TLS-Client-Cert-Subject-Alt-Name-Uri'] = { type: 'string', value: [`urn:uuid:${pick(active).deviceId}`] };
          const raw = JSON.stringify(attrs);
          const res = await post('/v1/adapters/freeradius/authorize', raw, conc);
          if (res.status === 404 || res.status >= 500) failures.push(`${res.status} for ${raw.slice(0, 300)}`);
          if (res.status === 200) {
            allows++;
            // An allow needs the unmodified serial + issuer of an active certificate.
            const serial = (attrs['TLS-Client-Cert-Serial'] as { value?: Json[] } | null)?.value?.[0];
            const issuer = (attrs['TLS-Client-Cert-Issuer'] as { value?: Json[] } | null)?.value?.[0];
            const ok = active.some((a) => typeof serial === 'string' && BigInt(`0x${serial}`) === BigInt(`0x${a.serialHex}`) && typeof issuer === 'string' && issuer.includes(ourCaCn));
            if (!ok) failures.push(`200 for ${raw.slice(0, 400)}`);
          }
          if (failures.length > 20) throw new Error(`seed ${seed}: ${failures.join('\n')}`);
        }
      }),
    );
    if (failures.length) throw new Error(`seed ${seed} (DG_FUZZ_SEED to replay):\n${failures.join('\n')}`);
    expect(allows).toBeGreaterThan(10);
  }, 120_000);
});
