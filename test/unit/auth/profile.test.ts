import { ManualClock } from '../../../src/lib/clock';
import { acceptVerifiedProfile, type AssertionPolicy } from '../../../src/auth/saml/profile';
import type { Profile } from '@node-saml/node-saml';
import { openTempStore, type TempStore } from './store-fixture';

const policy: AssertionPolicy = {
  idpEntityId: 'https://idp',
  spEntityId: 'https://sp',
  acsUrl: 'https://sp/acs',
  clockSkewMs: 0,
  maxAssertionAgeMs: 600_000,
  requestIdTtlMs: 600_000,
  attributes: { groups: 'groups', displayName: 'displayName', email: 'email' },
  roleMapping: { 'it-admin': ['g'], auditor: [], viewer: [] },
};

describe('acceptVerifiedProfile guards', () => {
  let t: TempStore;
  beforeEach(() => {
    t = openTempStore();
  });
  afterEach(async () => {
    await t.close();
  });

  it('rejects a missing profile (e.g. a NoPassive status answer) instead of signing anyone in', async () => {
    const deps = { store: t.store.nonces, clock: new ManualClock() };
    await expect(acceptVerifiedProfile(null, policy, deps)).rejects.toMatchObject({ kind: 'unauthorized', code: 'SAML_PROFILE_MISSING' });
    const bare: Profile = { nameID: 'x', issuer: 'https://idp', nameIDFormat: '' };
    await expect(acceptVerifiedProfile(bare, policy, deps)).rejects.toMatchObject({
      code: 'SAML_PROFILE_MISSING',
    });
  });
});
