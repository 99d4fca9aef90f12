import { resolveSamlUrls, samlConfigSchema } from '../../../src/config/sections/saml';

const enabled = {
  enabled: true,
  idp: { metadataFile: '/etc/devicegate/idp.xml' },
  roleMapping: { 'it-admin': ['GG-IT'] },
};

const issues = (input: unknown): string[] => {
  const r = samlConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('saml config section', () => {
  it('applies hardened defaults to an empty section', () => {
    const c = samlConfigSchema.parse(undefined);
    expect(c).toMatchObject({
      enabled: false,
      clockSkewSeconds: 60,
      maxAssertionAgeSeconds: 600,
      requestIdTtlSeconds: 600,
      idp: { wantAuthnResponseSigned: false },
      attributes: { groups: 'groups', displayName: 'displayName', email: 'email' },
      roleMapping: { 'it-admin': [], auditor: [], viewer: [] },
      session: { idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 28800, cookieName: 'devicegate_session' },
    });
  });

  it('accepts a minimal enabled configuration', () => {
    expect(issues(enabled)).toEqual([]);
  });

  it('refuses a clock skew above 180 s (replay window widened by config)', () => {
    expect(issues({ ...enabled, clockSkewSeconds: 181 })).toEqual([expect.stringMatching(/^clockSkewSeconds:/)]);
    expect(issues({ ...enabled, clockSkewSeconds: 180 })).toEqual([]);
  });

  it('refuses enabling SAML without exactly one IdP metadata source', () => {
    expect(issues({ ...enabled, idp: {} })).toEqual([expect.stringMatching(/^idp\.metadataFile: set exactly one/)]);
    expect(issues({ ...enabled, idp: { metadataFile: '/a', metadataUrl: 'https://idp.example/md' } })).toHaveLength(1);
  });

  it('refuses enabling SAML with no group mapped to any role (nobody could sign in)', () => {
    expect(issues({ ...enabled, roleMapping: {} })).toEqual([expect.stringMatching(/^roleMapping:/)]);
  });

  it('refuses mapping a group to the concentrator role or a misspelt role (privilege by typo)', () => {
    expect(issues({ ...enabled, roleMapping: { 'it-admin': ['x'], concentrator: ['GG-IT'] } })).toEqual([
      expect.stringMatching(/^roleMapping: Unrecognized key/),
    ]);
    expect(issues({ ...enabled, roleMapping: { 'it-admin': ['x'], itadmin: ['GG-IT'] } })).toHaveLength(1);
  });

  it('refuses an idle timeout longer than the absolute timeout', () => {
    expect(issues({ ...enabled, session: { idleTimeoutSeconds: 7200, absoluteTimeoutSeconds: 3600 } })).toEqual([
      expect.stringMatching(/^session\.idleTimeoutSeconds:/),
    ]);
  });

  it('refuses a key without its certificate and vice versa', () => {
    expect(issues({ ...enabled, sp: { signingKeyFile: '/k.pem' } })).toEqual([expect.stringMatching(/^sp\.signingCertFile:/)]);
    expect(issues({ ...enabled, sp: { decryptionCertFile: '/c.pem' } })).toEqual([expect.stringMatching(/^sp\.decryptionKeyFile:/)]);
  });

  it('refuses a non-http(s) ACS or metadata URL', () => {
    expect(issues({ ...enabled, sp: { acsUrl: 'javascript:alert(1)' } })).toHaveLength(1);
    expect(issues({ ...enabled, idp: { metadataUrl: 'file:///etc/passwd' } }).length).toBeGreaterThan(0);
  });

  it('derives entity ID, ACS URL and the Secure cookie flag from server.publicUrl', () => {
    const c = samlConfigSchema.parse(enabled);
    expect(resolveSamlUrls(c, 'https://gw.stadt.test/')).toEqual({
      entityId: 'https://gw.stadt.test/saml/metadata',
      acsUrl: 'https://gw.stadt.test/saml/acs',
      metadataUrl: 'https://gw.stadt.test/saml/metadata',
      loginUrl: 'https://gw.stadt.test/saml/login',
      cookieSecure: true,
    });
    expect(resolveSamlUrls(c, 'http://127.0.0.1:8080').cookieSecure).toBe(false);
    const explicit = samlConfigSchema.parse({ ...enabled, sp: { entityId: 'urn:stadt:devicegate', acsUrl: 'https://sso.stadt.test/acs' } });
    expect(resolveSamlUrls(explicit, 'https://gw.stadt.test')).toMatchObject({
      entityId: 'urn:stadt:devicegate',
      acsUrl: 'https://sso.stadt.test/acs',
    });
  });
});
