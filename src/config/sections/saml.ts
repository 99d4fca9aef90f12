import { z } from 'zod';

/**
 * `saml`: single sign-on for IT staff and auditors (src/auth/saml) and the server-side console sessions
 * (src/auth/session.ts). Owned by the auth module.
 *
 * Secrets (SP keys) are referenced by path, never inlined. The ACS URL and SP entity ID default to URLs under
 * `server.publicUrl`; `resolveSamlUrls()` derives them, so this section never reads another section itself.
 */

/** Roles a SAML user can be given; `concentrator` is for machine callers only and can never come from SAML. */
export const SAML_ROLES = ['it-admin', 'auditor', 'viewer'] as const;
export type SamlRole = (typeof SAML_ROLES)[number];

const groupList = (role: SamlRole) =>
  z
    .array(z.string().min(1).max(1024))
    .max(100)
    .default([])
    .describe(`IdP group values (exact, case-sensitive match) that grant the \`${role}\` role.`);

const optionalPath = (what: string) => z.string().min(1).optional().describe(what);

export const samlConfigSchema = z
  .object({
    enabled: z.boolean().default(false).describe('Enable SAML single sign-on and the web console.'),
    sp: z
      .object({
        entityId: z
          .string()
          .min(1)
          .max(1024)
          .optional()
          .describe('SAML entity ID of devicegate (the audience IdP assertions must name). Default: `<server.publicUrl>/saml/metadata`.'),
        acsUrl: z
          .url({ protocol: /^https?$/ })
          .optional()
          .describe('Assertion Consumer Service URL (where the IdP posts responses). Default: `<server.publicUrl>/saml/acs`.'),
        signingKeyFile: optionalPath(
          'PEM private key that signs AuthnRequests (HTTP-Redirect binding). With `signingCertFile`; both or neither.',
        ),
        signingCertFile: optionalPath('PEM certificate for `signingKeyFile`, published in the SP metadata.'),
        decryptionKeyFile: optionalPath(
          'PEM private key that decrypts encrypted assertions. With `decryptionCertFile`; both or neither.',
        ),
        decryptionCertFile: optionalPath('PEM certificate for `decryptionKeyFile`, published in the SP metadata.'),
      })
      .prefault({})
      .describe('devicegate as SAML service provider.'),
    idp: z
      .object({
        metadataFile: optionalPath('Path of the IdP metadata XML. Exactly one of `metadataFile` and `metadataUrl` when enabled.'),
        metadataUrl: z
          .url({ protocol: /^https?$/ })
          .optional()
          .describe(
            'URL of the IdP metadata XML, fetched once at start-up. Must be https (plain http only for a loopback host), since it carries the signing certificates.',
          ),
        entityId: z
          .string()
          .min(1)
          .max(1024)
          .optional()
          .describe('Expected IdP entity ID; required when the metadata describes several entities, checked when set.'),
        wantAuthnResponseSigned: z
          .boolean()
          .default(false)
          .describe(
            'Also require a signature over the whole Response. Assertions must always be signed; ADFS signs only the assertion by default, so this is off by default.',
          ),
      })
      .prefault({})
      .describe('The identity provider (ADFS, Keycloak, ...).'),
    clockSkewSeconds: z
      .number()
      .int()
      .min(0)
      .max(180)
      .default(60)
      .describe('Clock skew allowed when checking NotBefore/NotOnOrAfter (at most 180 s).'),
    maxAssertionAgeSeconds: z
      .number()
      .int()
      .min(30)
      .max(3600)
      .default(600)
      .describe('Reject assertions issued longer ago than this, even if the IdP gave them a longer NotOnOrAfter.'),
    requestIdTtlSeconds: z
      .number()
      .int()
      .min(30)
      .max(3600)
      .default(600)
      .describe('How long an issued AuthnRequest ID stays valid for a response (InResponseTo); the login must finish in this time.'),
    attributes: z
      .object({
        groups: z
          .string()
          .min(1)
          .default('groups')
          .describe(
            'Attribute carrying group memberships, e.g. `http://schemas.microsoft.com/ws/2008/06/identity/claims/groups` (ADFS) or `groups` (Keycloak group mapper).',
          ),
        displayName: z.string().min(1).default('displayName').describe('Attribute carrying the display name.'),
        email: z.string().min(1).default('email').describe('Attribute carrying the e-mail address (falls back to `mail`).'),
      })
      .prefault({})
      .describe('SAML attribute names.'),
    roleMapping: z
      .object({
        'it-admin': groupList('it-admin'),
        auditor: groupList('auditor'),
        viewer: groupList('viewer'),
      })
      // Strict: a misspelt role (or `concentrator`, which SAML users can never hold) must fail loudly, not vanish.
      .strict()
      .prefault({})
      .describe('Group → role mapping. A user in none of these groups gets no role and cannot sign in.'),
    session: z
      .object({
        idleTimeoutSeconds: z
          .number()
          .int()
          .min(60)
          .max(12 * 3600)
          .default(30 * 60)
          .describe('A console session ends after this long without a request.'),
        absoluteTimeoutSeconds: z
          .number()
          .int()
          .min(300)
          .max(24 * 3600)
          .default(8 * 3600)
          .describe('A console session ends this long after sign-in, however active.'),
        cookieName: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/)
          .default('devicegate_session')
          .describe('Name of the session cookie.'),
        cookieSecure: z
          .boolean()
          .optional()
          .describe('Set the Secure flag on the session cookie. Default: true when `server.publicUrl` is https.'),
      })
      .prefault({})
      .describe('Server-side console sessions.'),
    requestsPerMinutePerAddress: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(120)
      .describe(
        'Sign-in starts and assertion posts per client address and minute, counted across instances through the store; more get 429 (keeps a flood of failed sign-ins out of the audit log). Raise it when many staff sign in through one NAT address.',
      ),
  })
  .superRefine((c, ctx) => {
    if (c.session.idleTimeoutSeconds > c.session.absoluteTimeoutSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['session', 'idleTimeoutSeconds'],
        message: 'must not exceed session.absoluteTimeoutSeconds',
      });
    }
    const pairs: [keyof typeof c.sp, keyof typeof c.sp][] = [
      ['signingKeyFile', 'signingCertFile'],
      ['decryptionKeyFile', 'decryptionCertFile'],
    ];
    for (const [a, b] of pairs) {
      if ((c.sp[a] === undefined) !== (c.sp[b] === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['sp', c.sp[a] === undefined ? a : b], message: `set both ${a} and ${b}, or neither` });
      }
    }
    if (!c.enabled) return;
    const sources = [c.idp.metadataFile, c.idp.metadataUrl].filter((s) => s !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['idp', 'metadataFile'],
        message: 'set exactly one of idp.metadataFile and idp.metadataUrl when saml.enabled is true',
      });
    }
    const mapped = c.roleMapping['it-admin'].length + c.roleMapping.auditor.length + c.roleMapping.viewer.length;
    if (mapped === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['roleMapping'],
        message: 'map at least one IdP group to a role when saml.enabled is true (otherwise nobody can sign in)',
      });
    }
  })
  .prefault({})
  .describe('SAML single sign-on.');

export type SamlConfig = z.infer<typeof samlConfigSchema>;

/**
 * The SP URLs: explicit config wins; otherwise they hang off `publicUrl` (the gateway's external base URL, from the
 * `server` section). Guarantees absolute URLs without a trailing slash on the base.
 */
export function resolveSamlUrls(
  config: SamlConfig,
  publicUrl: string,
): { entityId: string; acsUrl: string; metadataUrl: string; loginUrl: string; cookieSecure: boolean } {
  const base = new URL(publicUrl).toString().replace(/\/+$/, '');
  return {
    entityId: config.sp.entityId ?? `${base}/saml/metadata`,
    acsUrl: config.sp.acsUrl ?? `${base}/saml/acs`,
    metadataUrl: `${base}/saml/metadata`,
    loginUrl: `${base}/saml/login`,
    cookieSecure: config.session.cookieSecure ?? base.startsWith('https:'),
  };
}
