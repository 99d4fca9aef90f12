import { extractGroups, mapGroupsToRoles, type RoleMapping } from '../../../src/auth/roles';

const mapping: RoleMapping = {
  'it-admin': ['GG-IT-Admins', 'CN=IT-Admins,OU=Groups,DC=stadt,DC=test'],
  auditor: ['GG-Auditors'],
  viewer: ['GG-Viewers'],
};

describe('SAML group → role mapping', () => {
  it.each([
    [['GG-IT-Admins'], ['it-admin']],
    [['CN=IT-Admins,OU=Groups,DC=stadt,DC=test'], ['it-admin']],
    [['GG-Auditors'], ['auditor']],
    [['GG-Viewers', 'Domain Users'], ['viewer']],
    [['GG-Viewers', 'GG-IT-Admins', 'GG-Auditors', 'GG-IT-Admins'], ['it-admin', 'auditor', 'viewer']],
  ])('maps %j to %j', (groups, roles) => {
    expect(mapGroupsToRoles(groups, mapping)).toEqual(roles);
  });

  it('gives no role to a user in no mapped group', () => {
    expect(mapGroupsToRoles(['Domain Users'], mapping)).toEqual([]);
    expect(mapGroupsToRoles([], mapping)).toEqual([]);
  });

  it('denies a look-alike group differing only in case or whitespace (group-name confusion)', () => {
    expect(mapGroupsToRoles(['gg-it-admins', 'GG-IT-Admins ', ' GG-IT-Admins'], mapping)).toEqual([]);
  });

  it('grants nothing when the mapping is empty', () => {
    expect(mapGroupsToRoles(['GG-IT-Admins'], { 'it-admin': [], auditor: [], viewer: [] })).toEqual([]);
  });

  it('normalises node-saml attribute values and drops non-strings instead of coercing them', () => {
    expect(extractGroups('GG-Viewers')).toEqual(['GG-Viewers']);
    expect(extractGroups(['a', 'b'])).toEqual(['a', 'b']);
    expect(extractGroups(undefined)).toEqual([]);
    expect(extractGroups(null)).toEqual([]);
    // A complex AttributeValue (XML children) arrives as an object; it must never match a group name.
    expect(extractGroups([{ _: 'GG-IT-Admins', $: {} }, 42, '', 'GG-Viewers'])).toEqual(['GG-Viewers']);
    expect(extractGroups(['x'.repeat(2000)])).toEqual([]);
  });

  it('caps the number of groups considered (hostile IdP attribute flood)', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `g${i}`);
    expect(extractGroups(many)).toHaveLength(1000);
  });
});
