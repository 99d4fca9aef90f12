import { isAppError } from '../../../src/domain/errors';
import { dnEquals, dnFirst, dnKey, parseDn } from '../../../src/concentrator/dn';

describe('distinguished name parsing', () => {
  it('parses the OpenSSL one-line form FreeRADIUS sends', () => {
    expect(parseDn('/C=KG/ST=NA/O=OpenVPN-TEST/CN=Test-Client/emailAddress=me@myhost.mydomain')).toEqual([
      [{ type: 'C', value: 'KG' }],
      [{ type: 'ST', value: 'NA' }],
      [{ type: 'O', value: 'OpenVPN-TEST' }],
      [{ type: 'CN', value: 'Test-Client' }],
      [{ type: 'emailAddress', value: 'me@myhost.mydomain' }],
    ]);
  });

  it('parses the comma form OpenVPN and strongSwan print', () => {
    expect(parseDn('C=KG, ST=NA, O=OpenVPN-TEST, CN=Test-Client, emailAddress=me@myhost.mydomain')).toEqual(
      parseDn('/C=KG/ST=NA/O=OpenVPN-TEST/CN=Test-Client/emailAddress=me@myhost.mydomain'),
    );
  });

  it('compares the FreeRADIUS, OpenVPN and node:crypto forms of one name as equal', () => {
    const a = parseDn('/C=DE/O=Stadt Musterstadt/OU=devicegate/CN=devicegate Test Device CA');
    const b = parseDn('C=DE, O=Stadt Musterstadt, OU=devicegate, CN=devicegate Test Device CA');
    const c = parseDn('C=DE\nO=Stadt Musterstadt\nOU=devicegate\nCN=devicegate Test Device CA');
    const d = parseDn('countryName=de, organizationName=stadt   musterstadt, 2.5.4.11=devicegate, commonName=DEVICEGATE test device ca');
    expect(dnEquals(a, b)).toBe(true);
    expect(dnEquals(a, c)).toBe(true);
    expect(dnEquals(a, d)).toBe(true);
  });

  it('does not treat a name with a different or extra RDN as equal (issuer spoofing by look-alike)', () => {
    const ours = parseDn('C=DE, O=Stadt Musterstadt, CN=devicegate Test Device CA');
    expect(dnEquals(ours, parseDn('C=DE, O=Stadt Musterstadt, CN=devicegate Test Device CA2'))).toBe(false);
    expect(dnEquals(ours, parseDn('C=DE, O=Stadt Musterstadt, OU=x, CN=devicegate Test Device CA'))).toBe(false);
    expect(dnEquals(ours, parseDn('CN=devicegate Test Device CA, O=Stadt Musterstadt, C=DE'))).toBe(false);
  });

  it('keeps an unescaped comma inside an OpenVPN value when no attribute follows it', () => {
    const dn = parseDn('C=DE, O=Stadt Beispiel, Amt 10, CN=dev');
    expect(dnFirst(dn, 'O')).toBe('Stadt Beispiel, Amt 10');
  });

  it('handles RFC 4514 escapes, quotes and multi-valued RDNs', () => {
    const dn = parseDn('CN=a\\,b+UID=42, O="Quoted, Org", OU=caf\\C3\\A9');
    expect(dn[0]).toEqual([
      { type: 'CN', value: 'a,b' },
      { type: 'UID', value: '42' },
    ]);
    expect(dnFirst(dn, 'O')).toBe('Quoted, Org');
    expect(dnFirst(dn, 'OU')).toBe('café');
  });

  it('gives equal keys to equal names only', () => {
    expect(dnKey(parseDn('/CN=a/O=b'))).toBe(dnKey(parseDn('CN=A, O=B')));
    expect(dnKey(parseDn('/CN=a/O=b'))).not.toBe(dnKey(parseDn('CN=a/O=b')));
  });

  it.each([
    ['empty', ''],
    ['spaces only', '   '],
    ['no attribute', 'just text'],
    ['a control character (DER in a User-Name)', '0\u0010\u0006CN=x'],
    ['an empty value', 'CN='],
    ['an invalid attribute type', '1bad=x'],
    ['a huge DN', `CN=${'a'.repeat(5000)}`],
    ['too many AVAs', Array.from({ length: 70 }, (_, i) => `OU=${i}`).join(', ')],
  ])('rejects %s as bad_request DN_INVALID', (_label, input) => {
    try {
      parseDn(input);
      throw new Error('accepted');
    } catch (e) {
      expect(isAppError(e) && e.kind === 'bad_request' && e.code).toBe('DN_INVALID');
    }
  });
});
