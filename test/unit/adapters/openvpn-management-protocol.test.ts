import {
  cmdClientAuth,
  cmdClientAuthNt,
  cmdClientDeny,
  cmdClientKill,
  ManagementParser,
  parseStatusClients,
  quoteArg,
} from '../../../src/adapters/openvpn/management-protocol';
import { requestFromOpenVpnEnv } from '../../../src/adapters/openvpn/env';
import { normalizeDecisionRequest } from '../../../src/concentrator/normalize';

describe('OpenVPN management protocol parser', () => {
  it('emits a CONNECT only after its ENV block ends, even when split across chunks', () => {
    const p = new ManagementParser();
    expect(p.push('>INFO:OpenVPN Management Interface Version 5 -- type \'help\' for more info\n>CLIENT:CONNECT,3,1\n>CLIENT:ENV,common_name=dev')).toEqual([
      { type: 'notification', source: 'INFO', text: "OpenVPN Management Interface Version 5 -- type 'help' for more info" },
    ]);
    expect(p.push('-1\n>CLIENT:ENV,tls_digest_sha256_0=ab:cd\n>CLIENT:ENV,weird=a=b\n>CLIENT:E')).toEqual([]);
    expect(p.push('NV,END\r\n')).toEqual([
      { type: 'client', kind: 'CONNECT', cid: 3, kid: 1, env: expect.objectContaining({ common_name: 'dev-1', tls_digest_sha256_0: 'ab:cd', weird: 'a=b' }) },
    ]);
  });

  it('parses ESTABLISHED/DISCONNECT (no KID), REAUTH, ADDRESS, replies, the password prompt and multi-line output', () => {
    const p = new ManagementParser();
    const out = p.push(
      '>CLIENT:ESTABLISHED,7\n>CLIENT:ENV,END\n>CLIENT:REAUTH,7,2\n>CLIENT:ENV,END\n>CLIENT:DISCONNECT,7\n>CLIENT:ENV,bytes_sent=5\n>CLIENT:ENV,END\n' +
        '>CLIENT:ADDRESS,7,10.8.0.2,1\nSUCCESS: client-auth command succeeded\nERROR: client-kill command failed\nTITLE\tx\nEND\nENTER PASSWORD:',
    );
    expect(out.map((m) => (m.type === 'client' ? `${m.kind}:${m.cid}:${m.kid}` : m.type))).toEqual([
      'ESTABLISHED:7:null',
      'REAUTH:7:2',
      'DISCONNECT:7:null',
      'client-address',
      'reply',
      'reply',
      'line',
      'line',
      'password-prompt',
    ]);
  });

  it.each([
    ['a CONNECT without KID', '>CLIENT:CONNECT,3\n'],
    ['a non-numeric CID', '>CLIENT:CONNECT,x,1\n'],
    ['an unknown client event', '>CLIENT:FOO,1,2\n'],
  ])('never turns %s into a client event (it is never answered with an allow)', (_label, input) => {
    const out = new ManagementParser().push(`${input}>CLIENT:ENV,END\n`);
    expect(out.some((m) => m.type === 'client')).toBe(false);
  });

  it('ignores ENV lines that arrive without a header', () => {
    expect(new ManagementParser().push('>CLIENT:ENV,common_name=x\n>CLIENT:ENV,END\n')).toEqual([]);
  });

  it('survives garbage and over-long lines', () => {
    const p = new ManagementParser();
    expect(() => p.push(`${'\u0000\uffff'.repeat(40_000)}\n${'x'.repeat(70_000)}`)).not.toThrow();
    expect(p.push('\n>CLIENT:CONNECT,1,1\n>CLIENT:ENV,END\n').some((m) => m.type === 'client')).toBe(true);
  });
});

describe('OpenVPN management commands', () => {
  it('formats allow, deny and kill commands', () => {
    expect(cmdClientAuthNt(3, 1)).toBe('client-auth-nt 3 1\n');
    expect(cmdClientAuth(3, 1, ['push "setenv-safe DECISION_ID x"'])).toBe('client-auth 3 1\npush "setenv-safe DECISION_ID x"\nEND\n');
    expect(cmdClientDeny(3, 1, 'CERT_REVOKED id', 'Zugang verweigert')).toBe('client-deny 3 1 "CERT_REVOKED id" "Zugang verweigert"\n');
    expect(cmdClientKill(9)).toBe('client-kill 9 HALT\n');
  });

  it('cannot be made to run a second command through a newline in the client message (command injection)', () => {
    const cmd = cmdClientDeny(1, 1, 'r', 'x"\nclient-auth-nt 2 1\n"');
    expect(cmd.split('\n').filter(Boolean)).toHaveLength(1);
    expect(cmd).toBe('client-deny 1 1 "r" "x\\" client-auth-nt 2 1 \\""\n');
  });

  it('escapes backslashes and quotes the way OpenVPN reads them back', () => {
    expect(quoteArg('a\\b"c')).toBe('"a\\\\b\\"c"');
  });

  it('drops config lines that would end the client-auth block early or add lines', () => {
    expect(cmdClientAuth(1, 1, ['END', 'push "a"\nclient-auth-nt 9 9', 'push "ok"'])).toBe('client-auth 1 1\npush "ok"\nEND\n');
  });

  it('keeps the kill message to safe characters', () => {
    expect(cmdClientKill(1, 'HALT\nsignal SIGTERM')).toBe('client-kill 1 HALTsignalSIGTERM\n');
  });
});

describe('status 3 parsing', () => {
  it('reads CID and CN from CLIENT_LIST rows by header position', () => {
    const lines = [
      'TITLE\tOpenVPN 2.6.14',
      'HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher',
      'CLIENT_LIST\t5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e\t127.0.0.1:4000\t10.8.0.2\t\t100\t200\t2026-11-26 12:00:00\t1795000000\tUNDEF\t4\t0\tAES-256-GCM',
      'CLIENT_LIST\tbroken',
    ];
    expect(parseStatusClients(lines)).toEqual([{ commonName: '5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e', realAddress: '127.0.0.1:4000', username: 'UNDEF', cid: 4 }]);
  });
});

describe('OpenVPN env → decision request', () => {
  const env = {
    tls_digest_sha256_0: '7f:9b:'.repeat(16).slice(0, 95),
    tls_serial_0: '4097',
    tls_serial_hex_0: '10:01',
    tls_id_0: 'C=DE, O=Stadt, CN=dev',
    tls_id_1: 'C=DE, O=Stadt, CN=devicegate CA',
    X509_0_CN: 'dev',
    untrusted_ip: '127.0.0.1',
    untrusted_port: '51234',
    username: 'max',
    IV_PLAT: 'linux',
    IV_GUI_VER: 'x'.repeat(1000),
    UV_DEVICE_ID: 'dev-4711',
    bytes_sent: '10',
    time_duration: '5',
  };

  it('maps identity, peer, hints and session counters', () => {
    const r = requestFromOpenVpnEnv(env, { gatewayId: 'gw', hook: 'mgmt-connect', event: 'connect', cid: 3, kid: 1 });
    expect(r).toMatchObject({
      gateway: { id: 'gw', kind: 'openvpn', hook: 'mgmt-connect' },
      peer: { ip: '127.0.0.1', port: 51234 },
      cert: { serial: { dec: '4097', hex: '10:01' }, issuer_dn: 'C=DE, O=Stadt, CN=devicegate CA', subject_dn: 'C=DE, O=Stadt, CN=dev', cn: 'dev' },
      ids: { username: 'max' },
      client_hints: { IV_PLAT: 'linux', UV: { DEVICE_ID: 'dev-4711' } },
      session: { ovpn_cid: 3, ovpn_kid: 1, bytes_sent: 10, duration_seconds: 5 },
    });
  });

  it('clips self-asserted hints so an over-long IV_GUI_VER cannot make the request invalid', () => {
    const r = requestFromOpenVpnEnv({ ...env, tls_digest_sha256_0: 'ab'.repeat(32) }, { gatewayId: 'gw', hook: 'auth', event: 'connect' });
    expect(() => normalizeDecisionRequest(r)).not.toThrow();
  });

  it('passes identity fields through unmodified, so garbage reaches devicegate as garbage (400/deny), not as a fixed identity', () => {
    const r = requestFromOpenVpnEnv({ tls_digest_sha256_0: 'zz' }, { gatewayId: 'gw', hook: 'auth', event: 'connect' });
    expect(r.cert?.sha256).toBe('zz');
    expect(() => normalizeDecisionRequest(r)).toThrow(expect.objectContaining({ code: 'FINGERPRINT_INVALID' }));
  });

  it('sends the username as null when the client sent none (certificate-only)', () => {
    expect(requestFromOpenVpnEnv({ username: '' }, { gatewayId: 'gw', hook: 'auth', event: 'connect' }).ids?.username).toBeNull();
  });
});
