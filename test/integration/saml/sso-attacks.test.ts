/**
 * SAML rejections, each named after the attack. Every response is the genuine output of a real round trip (our
 * `/saml/login` issues the AuthnRequest through the production passport-saml strategy, an independent samlify IdP
 * signs the answer), then tampered with as an attacker who captured it would; POST /saml/acs must refuse it with the
 * code of the check that caught it, and open no session. The IdP's reading of the AuthnRequest is covered in
 * sso-login.test.ts; here only its id is taken, which keeps this suite fast.
 */
import request from 'supertest';
import {
  ACS_URL,
  createSamlHarness,
  GROUPS,
  SP_ENTITY_ID,
  sessionCookie,
  respond as respondWith,
  type RespondOptions,
  type SamlHarness,
} from './harness';
import {
  decodeResponse,
  RSA_SHA1,
  stripSignatures,
  tamperGroups,
  TestIdp,
  xswDuplicateIdAssertion,
  xswInjectAssertionBeforeSigned,
  xswMoveSignedIntoExtensions,
  xswSignatureMovedIntoEvilAssertion,
  type TestUser,
} from '../../helpers/test-idp';
import type { AppError } from '../../../src/domain/errors';

const SP = { entityId: SP_ENTITY_ID, acsUrl: ACS_URL };
const alice: TestUser = { nameId: 'alice@stadt.test', displayName: 'Alice Admin', email: 'alice@stadt.test', groups: [GROUPS.itAdmin] };
const mallory: TestUser = { nameId: 'mallory@stadt.test', displayName: 'Mallory', groups: [GROUPS.viewer] };
const evil: TestUser = { nameId: 'root@stadt.test', groups: [GROUPS.itAdmin] };

let h: SamlHarness;
const rejections: string[] = [];

beforeAll(async () => {
  h = await createSamlHarness({
    hooks: {
      onLoginRejected: (e: AppError) => void rejections.push(e.code),
    },
  });
});
afterAll(async () => {
  await h?.close();
});

async function expectRejected(res: request.Response, code: string, status = 401): Promise<void> {
  expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
  expect(sessionCookie(res)).toBeNull();
}

const respond = (user: TestUser, opts: RespondOptions = {}) => respondWith(h, user, { readByIdp: false, ...opts });

describe('SAML single sign-on (passport-saml SP ↔ samlify IdP, SQLite store)', () => {
  describe('rejections, each named after the attack', () => {
    it('rejects an unsigned assertion (no signature anywhere)', async () => {
      const { response } = await respond(alice, { sign: 'none' });
      await expectRejected(await h.postResponse(response), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects an unsigned assertion inside a signed Response (assertion signature required)', async () => {
      const { response } = await respond(alice, { sign: 'response' });
      expect(decodeResponse(response)).toContain('Signature');
      await expectRejected(await h.postResponse(response), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects a response whose signatures were stripped', async () => {
      const { response } = await respond(alice);
      await expectRejected(await h.postResponse(stripSignatures(response)), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects a signature by another key (an IdP impersonator with its own certificate)', async () => {
      const impostor = await TestIdp.create({ entityId: h.idp.entityId });
      const { response } = await respond(alice, { idp: impostor });
      await expectRejected(await h.postResponse(response), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects an assertion whose groups were edited after signing (privilege escalation by tampering)', async () => {
      const { response } = await respond(mallory, { sign: 'assertion' });
      await expectRejected(await h.postResponse(tamperGroups(response, GROUPS.itAdmin)), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects XML signature wrapping: an unsigned evil assertion injected beside the signed one', async () => {
      const { response } = await respond(mallory, { sign: 'assertion' });
      await expectRejected(await h.postResponse(xswInjectAssertionBeforeSigned(response, evil)), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects XML signature wrapping: the signed assertion moved into Extensions, an evil one in its place', async () => {
      const { response } = await respond(mallory, { sign: 'assertion' });
      await expectRejected(await h.postResponse(xswMoveSignedIntoExtensions(response, evil)), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects XML signature wrapping: the genuine signature moved into an evil assertion, signed bytes hidden in ds:Object', async () => {
      const { response } = await respond(mallory, { sign: 'assertion' });
      await expectRejected(await h.postResponse(xswSignatureMovedIntoEvilAssertion(response, evil)), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects XML signature wrapping: an evil assertion reusing the signed assertion ID', async () => {
      const { response } = await respond(mallory, { sign: 'assertion' });
      await expectRejected(await h.postResponse(xswDuplicateIdAssertion(response, evil)), 'SAML_SIGNATURE_INVALID');
    });

    it('rejects an expired assertion (NotOnOrAfter in the past beyond the clock skew)', async () => {
      const now = Date.now();
      const { response } = await respond(alice, {
        overrides: { issueInstant: now - 7 * 60_000, notBefore: now - 8 * 60_000, notOnOrAfter: now - 2 * 60_000 },
      });
      await expectRejected(await h.postResponse(response), 'SAML_EXPIRED');
    });

    it('rejects an assertion issued longer ago than maxAssertionAge even if NotOnOrAfter is still ahead', async () => {
      const now = Date.now();
      const { response } = await respond(alice, {
        overrides: { issueInstant: now - 20 * 60_000, notBefore: now - 20 * 60_000, notOnOrAfter: now + 5 * 60_000 },
      });
      await expectRejected(await h.postResponse(response), 'SAML_EXPIRED');
    });

    it('rejects an assertion that is not yet valid (NotBefore in the future beyond the clock skew)', async () => {
      const now = Date.now();
      const { response } = await respond(alice, { overrides: { notBefore: now + 5 * 60_000 } });
      await expectRejected(await h.postResponse(response), 'SAML_NOT_YET_VALID');
    });

    it('rejects an assertion with the wrong audience (minted for another service provider)', async () => {
      const { response } = await respond(alice, { overrides: { audience: 'https://other-sp.stadt.test/saml' } });
      await expectRejected(await h.postResponse(response), 'SAML_AUDIENCE_MISMATCH');
    });

    it('rejects a replayed response (InResponseTo reused after a successful login)', async () => {
      const { response } = await respond(alice);
      expect((await h.postResponse(response)).status).toBe(303);
      await expectRejected(await h.postResponse(response), 'SAML_UNKNOWN_REQUEST');
    });

    it('rejects a replayed response posted concurrently: exactly one of several simultaneous posts signs in', async () => {
      const { response } = await respond(alice);
      const results = await Promise.all([1, 2, 3, 4].map(() => h.postResponse(response)));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([303, 401, 401, 401]);
      const codes = results.filter((r) => r.status === 401).map((r) => r.body.code as string);
      for (const c of codes) expect(['SAML_UNKNOWN_REQUEST', 'SAML_REPLAYED']).toContain(c);
    });

    it('rejects a response for an unknown request (InResponseTo never issued by us)', async () => {
      const response = await h.idp.loginResponse({ sp: SP, inResponseTo: '_0123456789abcdef0123456789abcdef01234567', user: alice });
      await expectRejected(await h.postResponse(response), 'SAML_UNKNOWN_REQUEST');
    });

    it('rejects an unsolicited (IdP-initiated) response without InResponseTo', async () => {
      const response = await h.idp.loginResponse({ sp: SP, inResponseTo: null, user: alice });
      await expectRejected(await h.postResponse(response), 'SAML_UNKNOWN_REQUEST');
    });

    it("rejects a signed assertion re-wrapped to answer the attacker's own pending request (InResponseTo swap)", async () => {
      const victim = await respond(alice, { sign: 'assertion' });
      const attackerReq = await h.startLogin(undefined, { readByIdp: false });
      const xml = decodeResponse(victim.response).replace(`InResponseTo="${victim.id}"`, `InResponseTo="${attackerReq.id}"`);
      // Only the first (Response-level, unsigned) occurrence changed; the signed SubjectConfirmationData still says victim.id.
      expect(xml).toContain(`InResponseTo="${victim.id}"`);
      await expectRejected(await h.postResponse(Buffer.from(xml).toString('base64')), 'SAML_UNKNOWN_REQUEST');
    });

    it('rejects an assertion whose signed SubjectConfirmationData carries no InResponseTo (not bound to our request)', async () => {
      const { response } = await respond(alice, { overrides: { subjectInResponseTo: null } });
      await expectRejected(await h.postResponse(response), 'SAML_UNSOLICITED');
    });

    it('rejects a SHA-1 signature (RSA-SHA1 / SHA-1 digest, collision-forgeable)', async () => {
      const sha1Idp = await TestIdp.create({ entityId: h.idp.entityId, keyPair: h.idp.keyPair, signatureAlgorithm: RSA_SHA1 });
      const { response } = await respond(alice, { idp: sha1Idp });
      expect(decodeResponse(response)).toContain('xmldsig#rsa-sha1');
      await expectRejected(await h.postResponse(response), 'SAML_WEAK_ALGORITHM');
    });

    it('rejects an assertion for another recipient (SubjectConfirmationData Recipient is another ACS)', async () => {
      const { response } = await respond(alice, { overrides: { recipient: 'https://other-sp.stadt.test/saml/acs' } });
      await expectRejected(await h.postResponse(response), 'SAML_RECIPIENT_MISMATCH');
    });

    it('rejects a response addressed to another endpoint (Destination mismatch)', async () => {
      const { response } = await respond(alice, { overrides: { destination: 'https://other-sp.stadt.test/saml/acs' } });
      await expectRejected(await h.postResponse(response), 'SAML_DESTINATION_MISMATCH');
    });

    it('rejects an assertion from another issuer signed with a trusted key (issuer pinning)', async () => {
      const otherEntity = await TestIdp.create({ entityId: 'https://rogue-idp.stadt.test', keyPair: h.idp.keyPair });
      const { response } = await respond(alice, { idp: otherEntity });
      await expectRejected(await h.postResponse(response), 'SAML_ISSUER_MISMATCH');
    });

    it('rejects an assertion without an AuthnStatement (not an authentication assertion)', async () => {
      const { response } = await respond(alice, { overrides: { omitAuthnStatement: true } });
      await expectRejected(await h.postResponse(response), 'SAML_NO_AUTHN_STATEMENT');
    });

    it('refuses a session to a user in no mapped group (no role)', async () => {
      const { response } = await respond({ nameId: 'nobody@stadt.test', groups: ['Domain Users'] });
      await expectRejected(await h.postResponse(response), 'SAML_NO_ROLE', 403);
    });

    it('rejects a body without SAMLResponse, or a LogoutRequest posted to the ACS', async () => {
      const a = await request(h.app).post('/saml/acs').type('form').send({ foo: 'bar' });
      expect([a.status, a.body.code]).toEqual([400, 'SAML_RESPONSE_MISSING']);
      const b = await request(h.app).post('/saml/acs').type('form').send({ SAMLRequest: 'PHg+', SAMLResponse: 'PHg+' });
      expect([b.status, b.body.code]).toEqual([400, 'SAML_RESPONSE_MISSING']);
    });

    it('rejects garbage instead of crashing (non-XML SAMLResponse)', async () => {
      const res = await h.postResponse(Buffer.from('not xml at all <<<').toString('base64'));
      expect(res.status).toBe(401);
      expect(res.body.code).toMatch(/^SAML_/);
    });

    it('reports every rejection to the onLoginRejected hook (for the audit log)', () => {
      expect(rejections).toEqual(expect.arrayContaining(['SAML_SIGNATURE_INVALID', 'SAML_EXPIRED', 'SAML_NO_ROLE']));
    });
  });

});
