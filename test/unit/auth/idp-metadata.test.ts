import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BINDING_POST,
  BINDING_REDIRECT,
  isLoopbackHost,
  loadIdpMetadata,
  parseIdpMetadata,
} from '../../../src/auth/saml/idp-metadata';
import { generateRsaKeyPair, TestIdp, type TestKeyPair } from '../../helpers/test-idp';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const b64 = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, '');

function entity(entityId: string, certPem: string, opts: { use?: string; sso?: string[]; protocol?: string } = {}): string {
  const sso = (opts.sso ?? [BINDING_REDIRECT])
    .map((b) => `<md:SingleSignOnService Binding="${b}" Location="https://idp.stadt.test/sso/${b.endsWith('POST') ? 'post' : 'redirect'}"/>`)
    .join('');
  return (
    `<md:EntityDescriptor xmlns:md="${MD}" entityID="${entityId}">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="${opts.protocol ?? 'urn:oasis:names:tc:SAML:2.0:protocol'}">` +
    `<md:KeyDescriptor${opts.use ? ` use="${opts.use}"` : ''}><ds:KeyInfo xmlns:ds="${DS}"><ds:X509Data><ds:X509Certificate>\n${b64(certPem)}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    sso +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

describe('IdP metadata', () => {
  let key: TestKeyPair;
  let idp: TestIdp;
  const now = Date.now();
  beforeAll(async () => {
    idp = await TestIdp.create();
    key = idp.keyPair;
  });

  it('reads entity ID, SSO endpoint (Redirect preferred), SLO and the signing certificate from samlify metadata', () => {
    const md = parseIdpMetadata(idp.metadataXml(), { now });
    expect(md.entityId).toBe(idp.entityId);
    expect(md.sso).toEqual({ binding: BINDING_REDIRECT, location: idp.ssoUrl });
    expect(md.slo?.location).toBe('https://idp.test.invalid/slo');
    expect(md.signingCertsPem).toHaveLength(1);
    expect(b64(md.signingCertsPem[0] as string)).toBe(b64(key.certPem));
    expect(md.warnings).toEqual([]);
  });

  it('falls back to HTTP-POST when the IdP offers no Redirect endpoint', () => {
    const md = parseIdpMetadata(entity('urn:idp', key.certPem, { sso: [BINDING_POST] }), { now });
    expect(md.sso).toEqual({ binding: BINDING_POST, location: 'https://idp.stadt.test/sso/post' });
  });

  it('picks the expected entity out of an aggregate and insists on it when there are several', async () => {
    const other = await generateRsaKeyPair('other idp');
    const agg = `<md:EntitiesDescriptor xmlns:md="${MD}">${entity('urn:a', key.certPem, { use: 'signing' })}${entity('urn:b', other.certPem)}</md:EntitiesDescriptor>`;
    expect(() => parseIdpMetadata(agg, { now })).toThrow(/exactly one SAML 2.0 IdP, found 2/);
    const b = parseIdpMetadata(agg, { now, expectedEntityId: 'urn:b' });
    expect(b64(b.signingCertsPem[0] as string)).toBe(b64(other.certPem));
    expect(() => parseIdpMetadata(agg, { now, expectedEntityId: 'urn:c' })).toThrow(/no SAML 2.0 IdP with entityID/);
  });

  it('refuses a pinned entity ID that the document does not contain (metadata for the wrong IdP)', () => {
    expect(() => parseIdpMetadata(idp.metadataXml(), { now, expectedEntityId: 'https://other-idp' })).toThrow(
      expect.objectContaining({ kind: 'bad_request', code: 'SAML_IDP_METADATA_INVALID' }),
    );
  });

  it('ignores encryption-only keys: an IdP whose only key is for encryption has no trust anchor', () => {
    expect(() => parseIdpMetadata(entity('urn:idp', key.certPem, { use: 'encryption' }), { now })).toThrow(/no signing certificate/);
  });

  it('refuses a DOCTYPE (entity expansion / XXE attempts)', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${entity('urn:idp&e;', key.certPem)}`;
    expect(() => parseIdpMetadata(xxe, { now })).toThrow(/DOCTYPE is not allowed/);
  });

  it('refuses malformed XML, a foreign root, a SAML 1.1-only IdP and a garbage certificate', () => {
    expect(() => parseIdpMetadata('<md:EntityDescriptor', { now })).toThrow(/not well-formed|root element/);
    expect(() => parseIdpMetadata('<html/>', { now })).toThrow(/root element/);
    expect(() => parseIdpMetadata(entity('urn:idp', key.certPem, { protocol: 'urn:oasis:names:tc:SAML:1.1:protocol' }), { now })).toThrow(
      /found 0/,
    );
    const garbage = entity('urn:idp', key.certPem).replace(b64(key.certPem), 'TUlJQm9ndXM=');
    expect(() => parseIdpMetadata(garbage, { now })).toThrow(/does not parse/);
  });

  it('refuses an IdP without a usable SSO endpoint (javascript: or artifact-only)', () => {
    const js = entity('urn:idp', key.certPem).replace('https://idp.stadt.test/sso/redirect', 'javascript:alert(1)');
    expect(() => parseIdpMetadata(js, { now })).toThrow(/no SingleSignOnService/);
    const artifact = entity('urn:idp', key.certPem, { sso: ['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact'] });
    expect(() => parseIdpMetadata(artifact, { now })).toThrow(/no SingleSignOnService/);
  });

  it('warns (does not refuse) when the signing certificate has expired', () => {
    const md = parseIdpMetadata(idp.metadataXml(), { now: now + 2 * 365 * 86_400_000 });
    expect(md.warnings).toEqual([expect.stringMatching(/^signing certificate .* expired on /)]);
  });

  it('refuses a document over 1 MiB', () => {
    const big = entity('urn:idp', key.certPem).replace('</md:EntityDescriptor>', `<!--${'x'.repeat(1024 * 1024)}--></md:EntityDescriptor>`);
    expect(() => parseIdpMetadata(big, { now })).toThrow(/larger than 1 MiB/);
  });

  describe('loading', () => {
    let server: http.Server;
    let base: string;
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'dg-idpmd-'));
      server = http.createServer((req, res) => {
        if (req.url === '/metadata') return void res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(idp.metadataXml());
        if (req.url === '/redirect') return void res.writeHead(302, { location: '/metadata' }).end();
        res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    });

    it('loads from a file', async () => {
      const f = path.join(dir, 'idp.xml');
      writeFileSync(f, idp.metadataXml());
      expect((await loadIdpMetadata({ file: f }, { now })).entityId).toBe(idp.entityId);
    });

    it('fetches from a loopback http URL', async () => {
      expect((await loadIdpMetadata({ url: `${base}/metadata` }, { now })).entityId).toBe(idp.entityId);
    });

    it('refuses plain http to a non-loopback host before connecting (trust anchor over an unauthenticated channel)', async () => {
      await expect(loadIdpMetadata({ url: 'http://idp.stadt.test.invalid/metadata' }, { now })).rejects.toMatchObject({
        code: 'SAML_IDP_METADATA_SOURCE',
      });
    });

    it('refuses to follow a redirect (a TLS URL must not bounce elsewhere)', async () => {
      await expect(loadIdpMetadata({ url: `${base}/redirect` }, { now })).rejects.toMatchObject({ code: 'SAML_IDP_METADATA_UNAVAILABLE' });
    });

    it('reports an HTTP error or a missing file as unavailable', async () => {
      await expect(loadIdpMetadata({ url: `${base}/nope` }, { now })).rejects.toMatchObject({ kind: 'unavailable' });
      await expect(loadIdpMetadata({ file: path.join(dir, 'missing.xml') }, { now })).rejects.toMatchObject({ kind: 'unavailable' });
    });

    it('insists on exactly one source', async () => {
      await expect(loadIdpMetadata({}, { now })).rejects.toMatchObject({ code: 'SAML_IDP_METADATA_SOURCE' });
      await expect(loadIdpMetadata({ file: 'a', url: 'https://b' }, { now })).rejects.toMatchObject({ code: 'SAML_IDP_METADATA_SOURCE' });
    });

    it('recognises loopback hosts only', () => {
      for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', '[::1]', '::1']) expect(isLoopbackHost(h)).toBe(true);
      for (const h of ['10.0.0.1', '127.0.0.1.nip.io', 'localhost.evil.example', '0.0.0.0', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
    });
  });
});
