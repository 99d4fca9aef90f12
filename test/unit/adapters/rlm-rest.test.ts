import { isAppError } from '../../../src/domain/errors';
import { parseRlmRestBody, rlmRestReply, rlmRestToDecisionRequest } from '../../../src/adapters/freeradius/rlm-rest';
import { normalizeDecisionRequest } from '../../../src/concentrator/normalize';
import type { DecisionResponse } from '../../../src/concentrator/schemas';

/** Shape of a real rlm_rest body from check-eap-tls (FreeRADIUS 3.2.1, recipe L11/L12). */
const body = {
  'User-Name': { type: 'string', value: ['5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e'] },
  'NAS-IP-Address': { type: 'ipaddr', value: ['127.0.0.1'] },
  'Calling-Station-Id': { type: 'string', value: ['127.0.0.1[15503]'] },
  'NAS-Identifier': { type: 'string', value: ['strongSwan'] },
  'EAP-Type': { type: 'integer', value: ['TLS'] },
  'TLS-Cert-Serial': { type: 'string', value: ['7ca6dbdb'] },
  'TLS-Client-Cert-Serial': { type: 'string', value: ['1001'] },
  'TLS-Client-Cert-Expiration': { type: 'string', value: ['331104122339Z'] },
  'TLS-Client-Cert-Valid-Since': { type: 'string', value: ['261126221447Z'] },
  'TLS-Client-Cert-Issuer': { type: 'string', value: ['/C=DE/O=Stadt Musterstadt/OU=devicegate/CN=devicegate Test Device CA'] },
  'TLS-Client-Cert-Subject': { type: 'string', value: ['/C=DE/O=Stadt Musterstadt/CN=5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e'] },
  'TLS-Client-Cert-Common-Name': { type: 'string', value: ['5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e'] },
  'TLS-Client-Cert-Subject-Alt-Name-Email': { type: 'string', value: ['carol@vpn.test'] },
  'Message-Authenticator': { type: 'octets', value: ['0x00'] },
};

const response = (patch: Partial<DecisionResponse> = {}): DecisionResponse => ({
  decision: 'allow',
  decision_id: '7f3a1b2c-0000-4000-8000-000000000000',
  device_id: 'd',
  reason_code: 'OK',
  client_message: 'ok',
  ttl_seconds: 3600,
  policy_version: '1',
  ...patch,
});

describe('rlm_rest request → decision request', () => {
  it('maps the TLS-Client-Cert-* attributes and normalises the bare-hex serial and one-line DNs', () => {
    const req = rlmRestToDecisionRequest(body, { section: 'authorize', gatewayId: 'radius-1' });
    expect(req).toMatchObject({
      gateway: { id: 'radius-1', kind: 'freeradius', hook: 'radius-authorize' },
      event: 'connect',
      peer: { ip: '127.0.0.1', port: 15503 },
      cert: { serial: { hex: '1001' }, cn: '5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e', not_after: '2033-11-04T12:23:39.000Z', san: { email: ['carol@vpn.test'] } },
      ids: { eap_identity: '5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e' },
      client_hints: { 'NAS-Identifier': 'strongSwan', 'EAP-Type': 'TLS' },
    });
    const { identity } = normalizeDecisionRequest(req);
    expect(identity.serial?.canonical).toBe('1001');
    expect(identity.issuer).toEqual(normalizeDecisionRequest({ ...req, cert: { issuer_dn: 'C=DE, O=Stadt Musterstadt, OU=devicegate, CN=devicegate Test Device CA' } }).identity.issuer);
    expect(identity.claimedDeviceIds).toEqual(['5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e']);
  });

  it('drops a binary User-Name (strongSwan DER identity) and keeps a MAC Calling-Station-Id out of peer', () => {
    const req = rlmRestToDecisionRequest(
      { 'User-Name': { value: ['0\u0010\u0006\u0003U'] }, 'Calling-Station-Id': { value: ['02-00-00-00-00-0A'] } },
      { section: 'authorize', gatewayId: 'r' },
    );
    expect(req.ids?.eap_identity).toBeNull();
    expect(req.peer).toBeNull();
  });

  it('maps accounting Stop to a disconnect report with counters', () => {
    const req = rlmRestToDecisionRequest(
      { 'Acct-Status-Type': { value: ['Stop'] }, 'Acct-Session-Time': { value: [120] }, 'Acct-Input-Octets': { value: ['10'] }, 'Acct-Output-Octets': { value: ['20'] } },
      { section: 'accounting', gatewayId: 'r' },
    );
    expect(req).toMatchObject({ event: 'disconnect', session: { duration_seconds: 120, bytes_received: 10, bytes_sent: 20 } });
  });

  it.each([
    ['null', null],
    ['an array', [1, 2]],
    ['a string', 'TLS-Client-Cert-Serial=1001'],
    ['a nested object value', { 'TLS-Client-Cert-Serial': { value: [{ evil: true }] } }],
    ['a value that is not a list', { 'TLS-Client-Cert-Serial': { type: 'string', value: '1001' } }],
    ['a non-string type', { 'TLS-Client-Cert-Serial': { type: 5, value: ['1001'] } }],
    ['an attribute name with spaces', { 'TLS Client': { value: ['x'] } }],
    ['too many attributes', Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`A${i}`, { value: ['x'] }]))],
    ['too many values', { 'User-Name': { value: Array.from({ length: 100 }, () => 'x') } }],
    ['an over-long value', { 'User-Name': { value: ['x'.repeat(9000)] } }],
    ['a NaN value', { 'User-Name': { value: [Number.NaN] } }],
  ])('rejects %s as bad_request RLM_REST_BODY_INVALID, which the route answers with 401', (_label, garbage) => {
    let error: unknown = null;
    try {
      rlmRestToDecisionRequest(garbage, { section: 'authorize', gatewayId: 'r' });
    } catch (e) {
      error = e;
    }
    expect(isAppError(error) && error.code).toBe('RLM_REST_BODY_INVALID');
    expect(rlmRestReply('authorize', { error }).status).toBe(401);
  });

  it('accepts bare scalar values as older modules send them', () => {
    expect(parseRlmRestBody({ 'User-Name': 'x', 'NAS-Port': 3 }).get('NAS-Port')).toEqual(['3']);
  });

  it('yields no identity at all for a body without certificate attributes (policy: IDENTITY_MISSING)', () => {
    const { identity } = normalizeDecisionRequest(rlmRestToDecisionRequest({ 'User-Name': { value: ['bob'] } }, { section: 'authorize', gatewayId: 'r' }));
    expect(identity).toMatchObject({ sha256: null, serial: null, issuer: null });
  });
});

describe('decision → rlm_rest reply', () => {
  it('answers an allow with 200, Class = dec:<id> and Session-Timeout', () => {
    expect(rlmRestReply('authorize', { response: response() })).toEqual({
      status: 200,
      body: { 'reply:Class': 'dec:7f3a1b2c-0000-4000-8000-000000000000', 'reply:Session-Timeout': 3600 },
    });
  });

  it.each([
    ['a policy deny', { response: response({ decision: 'deny', reason_code: 'DEVICE_REVOKED', client_message: 'Zugang verweigert: Gerät gesperrt' }) }],
    ['a pending decision', { response: response({ decision: 'pending' }) }],
    ['an allow without reason OK (inconsistent)', { response: response({ reason_code: 'DEVICE_REVOKED' }) }],
    ['an error while deciding', { error: new Error('store down') }],
    ['a missing response', { response: undefined as unknown as DecisionResponse }],
  ])('answers %s with 401 and a Reply-Message, never 404 (the notfound → Accept trap)', (_label, outcome) => {
    const r = rlmRestReply('authorize', outcome);
    expect(r.status).toBe(401);
    expect(typeof r.body?.['reply:Reply-Message']).toBe('string');
    expect(Buffer.byteLength(String(r.body?.['reply:Reply-Message']))).toBeLessThanOrEqual(253);
  });

  it('truncates an over-long client message to the 253-octet RADIUS limit', () => {
    const r = rlmRestReply('authorize', { response: response({ decision: 'deny', reason_code: 'X', client_message: 'ä'.repeat(300) }) });
    expect(Buffer.byteLength(String(r.body?.['reply:Reply-Message']))).toBeLessThanOrEqual(253);
  });

  it('answers post-auth and accounting with 204 whatever the decision (reports must not flip a decision)', () => {
    expect(rlmRestReply('post-auth', { response: response({ decision: 'deny' }) })).toEqual({ status: 204, body: null });
    expect(rlmRestReply('accounting', { error: new Error('x') })).toEqual({ status: 204, body: null });
  });
});
