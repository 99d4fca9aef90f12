/**
 * The hand-written decision-request check (`fastDecisionRequest`) against the zod schema it stands in for: on
 * 20,000 mutated bodies it may only say "same as zod, unchanged" or "ask zod". The seed is printed on failure; set
 * DG_FUZZ_SEED to replay it.
 */
import { fastDecisionRequest } from '../../../src/concentrator/fast-request';
import { normalizeDecisionRequest } from '../../../src/concentrator/normalize';
import { decisionRequestSchema } from '../../../src/concentrator/schemas';
import { xorshift } from '../../helpers/prng';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A body using every member the schema knows. */
function fullBody(): { [k: string]: Json } {
  return {
    request_id: 'req-1',
    gateway: { id: 'ovpn-gw-01', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14' },
    event: 'connect',
    peer: { ip: '192.0.2.10', port: 51820 },
    cert: {
      sha256: `${'ab:'.repeat(31)}ab`,
      serial: { dec: '1234567890', hex: '49:96:02:d2' },
      issuer_dn: 'C=DE, O=Stadt, CN=devicegate Device CA',
      subject_dn: 'C=DE, O=Stadt, CN=0c6f7e1e-5d0b-4f8e-9a55-2f7b1a7c9e01',
      cn: '0c6f7e1e-5d0b-4f8e-9a55-2f7b1a7c9e01',
      san: { uri: ['urn:uuid:0c6f7e1e-5d0b-4f8e-9a55-2f7b1a7c9e01'], dns: ['laptop.example'], upn: [], email: ['a@example.org'] },
      not_before: '20260101000000Z',
      not_after: '20270101000000Z',
      pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
    },
    ids: { ike_remote_id: 'CN=x', eap_identity: 'anna', username: 'anna' },
    attestation: { format: 'none', token: 'abc' },
    client_hints: { IV_PLAT: 'linux', IV_VER: null, UV_X: { a: 'b' } },
    session: { ovpn_cid: 7, ovpn_kid: 1, ike_unique_id: '3', acct_session_id: 'a1', bytes_sent: 10, bytes_received: 20, duration_seconds: 30 },
  };
}


const LENGTHS = [0, 1, 63, 64, 65, 127, 128, 129, 199, 200, 201, 255, 256, 257, 511, 512, 513, 4096, 4097, 8192, 8193, 16384, 16385];
const NUMBERS = [-1, -0, 0, 1, 1.5, 65535, 65536, 2 ** 53 - 1, 2 ** 53, 1e308, -1e-9];

describe('fastDecisionRequest against the zod schema', () => {
  const seed = Number(process.env.DG_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = xorshift(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

  /** Every (container, key) pair reachable in the body. */
  function slots(v: Json, out: [Json[] | { [k: string]: Json }, string | number][] = []): [Json[] | { [k: string]: Json }, string | number][] {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push([v, i]);
        slots(x, out);
      });
    } else if (v && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        out.push([v, k]);
        slots(v[k] as Json, out);
      }
    }
    return out;
  }

  function randomValue(): Json {
    switch (Math.floor(rnd() * 8)) {
      case 0:
        return 'x'.repeat(pick(LENGTHS));
      case 1:
        return pick(NUMBERS);
      case 2:
        return null;
      case 3:
        return rnd() < 0.5;
      case 4:
        return [pick(['a', 1, null])] as Json[];
      case 5:
        return { nested: 'x' };
      case 6:
        return pick(['openvpn', 'connect', 'disconnect', 'bogus', '']);
      default:
        return {};
    }
  }

  function mutate(body: { [k: string]: Json }): void {
    const all = slots(body);
    const [container, key] = pick(all);
    const op = Math.floor(rnd() * 5);
    if (op === 0 && !Array.isArray(container)) delete container[key as string];
    else if (op === 1 && !Array.isArray(container)) container[pick(['extra', 'IV_NEW', 'serial', 'Gateway', 'constructor'])] = randomValue();
    else if (op === 2 && Array.isArray(container)) for (let i = 0; i < 20; i++) container.push('y');
    else (container as Record<string | number, Json>)[key] = randomValue();
  }

  it('never accepts a body that zod rejects and never returns anything zod would not (schema bypass, 20,000 mutated bodies)', () => {
    let fastAccepted = 0;
    let zodRejected = 0;
    let leftToZod = 0;
    try {
      for (let i = 0; i < 20_000; i++) {
        const body = fullBody();
        const n = 1 + Math.floor(rnd() * 3);
        for (let m = 0; m < n && i % 10 !== 0; m++) mutate(body);
        // Through JSON, as every real body arrives (no undefined members, plain prototypes).
        const raw = JSON.parse(JSON.stringify(body)) as unknown;
        const zod = decisionRequestSchema.safeParse(raw);
        const fast = fastDecisionRequest(raw);
        if (!zod.success) zodRejected++;
        if (fast === null) {
          if (zod.success) leftToZod++;
          continue;
        }
        fastAccepted++;
        expect(zod.success).toBe(true);
        expect(fast).toEqual(zod.data);
      }
    } catch (e) {
      throw new Error(`seed ${seed}: ${(e as Error).message}`);
    }
    // The comparison is not vacuous: both sides of the check are exercised.
    expect(fastAccepted).toBeGreaterThan(2_000);
    expect(zodRejected).toBeGreaterThan(2_000);
    expect(leftToZod).toBeGreaterThan(0);
  });

  it('agrees with zod when each member in turn holds each boundary value (length and range limits off by one)', () => {
    const values: Json[] = [...LENGTHS.map((n) => 'x'.repeat(n)), ...NUMBERS, null, true, [], {}, ['x'], 'openvpn', 'connect'];
    const paths = slots(fullBody()).length;
    let compared = 0;
    for (let p = 0; p < paths; p++) {
      for (const v of values) {
        const body = fullBody();
        const [container, key] = slots(body)[p]!;
        (container as Record<string | number, Json>)[key] = v;
        const zod = decisionRequestSchema.safeParse(body);
        const fast = fastDecisionRequest(body);
        if (fast !== null) {
          expect({ path: p, value: v, zod: zod.success }).toEqual({ path: p, value: v, zod: true });
          expect(fast).toEqual(zod.data);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(paths);
  });

  it('leaves bodies with members zod would strip to zod, so the stripped form is what gets used (unknown member smuggling)', () => {
    const body: { [k: string]: Json } = { ...fullBody(), is_admin: true };
    delete (body.cert as Record<string, Json>).pem;
    expect(fastDecisionRequest(body)).toBeNull();
    const { request } = normalizeDecisionRequest(body);
    expect(request).not.toHaveProperty('is_admin');
  });

  it('leaves a JSON __proto__ member in client hints to zod (prototype pollution)', () => {
    const raw = JSON.parse('{"gateway":{"id":"g","kind":"openvpn"},"event":"connect","client_hints":{"__proto__":{"polluted":"yes"}}}') as unknown;
    expect(fastDecisionRequest(raw)).toBeNull();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects what the schema rejects even when the fast check passed it on (a float connection id, an unknown gateway kind)', () => {
    const float = fullBody();
    (float.session as Record<string, Json>).ovpn_cid = 1.5;
    expect(fastDecisionRequest(float)).toBeNull();
    expect(() => normalizeDecisionRequest(float)).toThrow(expect.objectContaining({ code: 'DECISION_REQUEST_INVALID' }));
    const kind = fullBody();
    (kind.gateway as Record<string, Json>).kind = 'cisco';
    expect(fastDecisionRequest(kind)).toBeNull();
    expect(() => normalizeDecisionRequest(kind)).toThrow(expect.objectContaining({ code: 'DECISION_REQUEST_INVALID' }));
  });

  it('takes the plain body of the OpenVPN management adapter as it is', () => {
    const body = fullBody();
    expect(fastDecisionRequest(body)).toBe(body);
  });
});
