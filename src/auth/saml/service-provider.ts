/**
 * devicegate as a SAML 2.0 service provider: a hardened `@node-saml/passport-saml` v5 `Strategy` built from config
 * and the IdP's metadata, registered on a private `Passport` instance (no global passport singleton).
 *
 * Why each non-default setting (node-saml defaults are tuned for compatibility, not safety):
 * - `wantAssertionsSigned: true`: the assertion itself must carry a valid IdP signature; a signed Response around an
 *   unsigned assertion is refused. `wantAuthnResponseSigned` is configurable because ADFS signs only the assertion.
 * - `signatureAlgorithm`/`digestAlgorithm: 'sha256'` for what we sign (node-saml defaults to SHA-1); what we accept
 *   is limited to SHA-256+ in `profile.ts`, since xml-crypto still verifies RSA-SHA1.
 * - `audience` = our entity ID, so an assertion minted for another SP at the same IdP is useless here.
 * - `validateInResponseTo: 'always'` with the store-backed cache: no unsolicited (IdP-initiated) responses, and a
 *   request id works once, on whichever instance receives the response.
 * - `acceptedClockSkewMs` bounded (≤ 180 s) and `maxAssertionAgeMs` set, so an IdP issuing hour-long assertions
 *   does not widen our replay window.
 * - `disableRequestedAuthnContext: true`: asking for PasswordProtectedTransport makes ADFS refuse Windows
 *   integrated sign-in; the IdP decides how users authenticate.
 */
import { readFile } from 'node:fs/promises';
import { Strategy, ValidateInResponseTo, type Profile, type VerifiedCallback } from '@node-saml/passport-saml';
import passportModule, { type Strategy as PassportStrategy } from 'passport';

/** A private passport instance (not the module singleton). */
export type PassportInstance = InstanceType<typeof passportModule.Authenticator>;
import { AppError, badRequest, unauthorized, unavailable } from '../../domain/errors';
import type { Clock } from '../../lib/clock';
import type { NonceStore } from '../../store/types';
import { resolveSamlUrls, type SamlConfig } from '../../config/sections/saml';
import type { RoleMapping } from '../roles';
import { StoreCacheProvider } from './cache-provider';
import { BINDING_POST, loadIdpMetadata, type IdpMetadata } from './idp-metadata';
import { acceptVerifiedProfile, type AssertionPolicy, type SamlUser } from './profile';

/** Upper bound on clock skew, whatever the caller passes. */
export const MAX_CLOCK_SKEW_MS = 180_000;
export const SAML_STRATEGY_NAME = 'saml';
const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

export interface KeyPairPem {
  readonly keyPem: string;
  readonly certPem: string;
}

export interface SamlServiceProviderOptions {
  /** Our entity ID; also the audience assertions must name. */
  readonly entityId: string;
  /** Absolute ACS URL; also the Recipient/Destination responses must name. */
  readonly acsUrl: string;
  readonly idp: IdpMetadata;
  /** Signs AuthnRequests and is published in our metadata. */
  readonly signing?: KeyPairPem | null | undefined;
  /** Decrypts EncryptedAssertion and is published in our metadata. */
  readonly decryption?: KeyPairPem | null | undefined;
  readonly wantAuthnResponseSigned: boolean;
  readonly clockSkewMs: number;
  readonly maxAssertionAgeMs: number;
  readonly requestIdTtlMs: number;
  readonly attributes: AssertionPolicy['attributes'];
  readonly roleMapping: RoleMapping;
  readonly store: NonceStore;
  readonly clock: Clock;
}

export interface SamlServiceProvider {
  /** The passport-saml strategy, registered on `passport` under `SAML_STRATEGY_NAME`. */
  readonly strategy: Strategy;
  /** A private passport instance; use `passport.authenticate(SAML_STRATEGY_NAME, ...)`. */
  readonly passport: PassportInstance;
  readonly entityId: string;
  readonly acsUrl: string;
  readonly idp: IdpMetadata;
  /** Our SP metadata XML for `/saml/metadata` (unsigned; served over TLS). */
  metadataXml(): string;
}

/**
 * Builds the SP. Fails with `bad_request`/`SAML_CONFIG_INVALID` on out-of-range timings or non-absolute URLs.
 * The returned strategy only ever yields a `SamlUser` that passed node-saml's checks and `acceptVerifiedProfile`.
 */
export function createSamlServiceProvider(o: SamlServiceProviderOptions): SamlServiceProvider {
  assertConfig(o);
  const policy: AssertionPolicy = {
    idpEntityId: o.idp.entityId,
    spEntityId: o.entityId,
    acsUrl: o.acsUrl,
    clockSkewMs: o.clockSkewMs,
    maxAssertionAgeMs: o.maxAssertionAgeMs,
    requestIdTtlMs: o.requestIdTtlMs,
    attributes: o.attributes,
    roleMapping: o.roleMapping,
  };
  const cacheProvider = new StoreCacheProvider({ store: o.store, clock: o.clock, ttlMs: o.requestIdTtlMs });

  const verify = (profile: Profile | null, done: VerifiedCallback): void => {
    acceptVerifiedProfile(profile, policy, { store: o.store, clock: o.clock }).then(
      (user) => done(null, user as unknown as Record<string, unknown>),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  };
  // IdP-initiated logout requests to the ACS are not supported (POST /saml/logout ends sessions locally).
  const refuseLogout = (_profile: Profile | null, done: VerifiedCallback): void =>
    done(unauthorized('SAML_LOGOUT_UNSUPPORTED', 'SAML logout requests are not accepted here'));

  const strategy = new Strategy(
    {
      name: SAML_STRATEGY_NAME,
      callbackUrl: o.acsUrl,
      entryPoint: o.idp.sso.location,
      authnRequestBinding: o.idp.sso.binding === BINDING_POST ? 'HTTP-POST' : 'HTTP-Redirect',
      issuer: o.entityId,
      audience: o.entityId,
      idpIssuer: o.idp.entityId,
      idpCert: [...o.idp.signingCertsPem],
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: o.wantAuthnResponseSigned,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      ...(o.signing ? { privateKey: o.signing.keyPem, publicCert: o.signing.certPem } : {}),
      ...(o.decryption ? { decryptionPvk: o.decryption.keyPem } : {}),
      acceptedClockSkewMs: o.clockSkewMs,
      maxAssertionAgeMs: o.maxAssertionAgeMs,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: o.requestIdTtlMs,
      cacheProvider,
      identifierFormat: NAMEID_UNSPECIFIED,
      disableRequestedAuthnContext: true,
      forceAuthn: false,
      passive: false,
      signMetadata: false,
      ...(o.idp.slo ? { logoutUrl: o.idp.slo.location } : {}),
      passReqToCallback: false,
    },
    verify,
    refuseLogout,
  );
  const passport = new passportModule.Authenticator();
  // passport-saml is typed against express 4's Request; the runtime contract is the same under express 5.
  passport.use(SAML_STRATEGY_NAME, strategy as unknown as PassportStrategy);

  return {
    strategy,
    passport,
    entityId: o.entityId,
    acsUrl: o.acsUrl,
    idp: o.idp,
    metadataXml: () => strategy.generateServiceProviderMetadata(o.decryption?.certPem ?? null, o.signing?.certPem ?? null),
  };
}

export interface LoadSamlServiceProviderDeps {
  /** `server.publicUrl`: the external base URL the ACS and entity ID default to. */
  readonly publicUrl: string;
  readonly store: NonceStore;
  readonly clock: Clock;
}

/**
 * Reads the key files and IdP metadata named in `config` and builds the SP. Returns the IdP metadata warnings for
 * the start-up log. Fails with `bad_request` (invalid config or metadata) or `unavailable` (unreadable file or URL).
 */
export async function loadSamlServiceProvider(
  config: SamlConfig,
  deps: LoadSamlServiceProviderDeps,
): Promise<{ sp: SamlServiceProvider; warnings: readonly string[] }> {
  if (!config.enabled) throw badRequest('SAML_DISABLED', 'saml.enabled is false');
  const urls = resolveSamlUrls(config, deps.publicUrl);
  const idp = await loadIdpMetadata(
    { file: config.idp.metadataFile, url: config.idp.metadataUrl },
    { expectedEntityId: config.idp.entityId, now: deps.clock.nowMs() },
  );
  const pair = async (key?: string, cert?: string): Promise<KeyPairPem | null> =>
    key && cert ? { keyPem: await readPem(key), certPem: await readPem(cert) } : null;
  const sp = createSamlServiceProvider({
    entityId: urls.entityId,
    acsUrl: urls.acsUrl,
    idp,
    signing: await pair(config.sp.signingKeyFile, config.sp.signingCertFile),
    decryption: await pair(config.sp.decryptionKeyFile, config.sp.decryptionCertFile),
    wantAuthnResponseSigned: config.idp.wantAuthnResponseSigned,
    clockSkewMs: config.clockSkewSeconds * 1000,
    maxAssertionAgeMs: config.maxAssertionAgeSeconds * 1000,
    requestIdTtlMs: config.requestIdTtlSeconds * 1000,
    attributes: config.attributes,
    roleMapping: config.roleMapping,
    store: deps.store,
    clock: deps.clock,
  });
  const warnings = [...idp.warnings];
  if (idp.wantAuthnRequestsSigned && !config.sp.signingKeyFile) {
    warnings.push('the IdP wants signed AuthnRequests but saml.sp.signingKeyFile is not set');
  }
  return { sp, warnings };
}

async function readPem(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw unavailable('SAML_KEY_UNAVAILABLE', 'a SAML key or certificate file cannot be read', { cause });
  }
}

function assertConfig(o: SamlServiceProviderOptions): void {
  const problems: string[] = [];
  const intIn = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`${name} must be an integer in [${min}, ${max}]`);
  };
  intIn('clockSkewMs', o.clockSkewMs, 0, MAX_CLOCK_SKEW_MS);
  intIn('maxAssertionAgeMs', o.maxAssertionAgeMs, 1_000, 3_600_000);
  intIn('requestIdTtlMs', o.requestIdTtlMs, 1_000, 3_600_000);
  for (const [name, url] of [
    ['acsUrl', o.acsUrl],
    ['idp.sso.location', o.idp.sso.location],
  ] as const) {
    try {
      const u = new URL(url);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push(`${name} must be http(s)`);
    } catch {
      problems.push(`${name} must be an absolute URL`);
    }
  }
  if (o.entityId.length === 0) problems.push('entityId must not be empty');
  if (o.idp.signingCertsPem.length === 0) problems.push('the IdP has no signing certificate');
  if (problems.length > 0) {
    throw new AppError('bad_request', 'SAML_CONFIG_INVALID', `SAML configuration invalid: ${problems.join('; ')}`);
  }
}

export type { SamlUser };
