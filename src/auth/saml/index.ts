/**
 * SAML single sign-on for the console. Build with `loadSamlServiceProvider(config.saml, { publicUrl, store, clock })`
 * (or `createSamlServiceProvider` with already-loaded material) and mount `createSamlRouter({ sp, sessions })`.
 */
export { StoreCacheProvider, SAML_REQUEST_KEY_PREFIX, isRequestId } from './cache-provider';
export {
  parseIdpMetadata,
  loadIdpMetadata,
  isLoopbackHost,
  BINDING_POST,
  BINDING_REDIRECT,
  type IdpMetadata,
  type IdpEndpoint,
} from './idp-metadata';
export { acceptVerifiedProfile, type SamlUser, type AssertionPolicy } from './profile';
export {
  createSamlServiceProvider,
  loadSamlServiceProvider,
  SAML_STRATEGY_NAME,
  MAX_CLOCK_SKEW_MS,
  type SamlServiceProvider,
  type SamlServiceProviderOptions,
  type KeyPairPem,
} from './service-provider';
export { createSamlRouter, classifySamlError, safeReturnPath, type SamlRouterDeps, type SamlRouterHooks } from './routes';
