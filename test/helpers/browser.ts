/**
 * Browser-test helpers: Debian's Chromium driven by playwright-core (never a downloaded browser), and the samlify
 * test IdP served over HTTP on loopback so the browser follows the real SAML bindings (HTTP-Redirect to the IdP,
 * HTTP-POST back to our ACS).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { TestIdp, type TestUser } from './test-idp';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Where browser tests keep screenshots (git-ignored). */
export const SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', 'test-artifacts', 'screenshots');

export interface Browser {
  readonly context: BrowserContext;
  /** Directory that receives downloads. */
  readonly downloads: string;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile directory (removed again by `close`). */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'dg-chromium-'));
  const downloads = path.join(profile, 'downloads');
  mkdirSync(downloads);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    downloadsPath: downloads,
    viewport: { width: 1280, height: 900 },
    locale: 'de-DE',
  });
  return {
    context,
    downloads,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as `test-artifacts/screenshots/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface LoopbackIdp {
  readonly idp: TestIdp;
  readonly url: string;
  readonly metadataUrl: string;
  /** AuthnRequests the IdP received and accepted (samlify parsed, schema-validated and signature-checked them). */
  readonly requests: string[];
  close(): Promise<void>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The samlify test IdP as a tiny web app on 127.0.0.1: `GET /metadata`, `GET /sso` (reads the signed AuthnRequest
 * and shows a "sign in as" page with one button per user), `POST /sso` (signs the response and posts it to the SP's
 * ACS with an auto-submitting form, as real IdPs do). `sp()` supplies the SP's metadata and endpoints, which the IdP
 * trusts only from there (never from the request).
 */
export async function startLoopbackIdp(
  users: Readonly<Record<string, TestUser>>,
  sp: () => Promise<{ metadataXml: string; entityId: string; acsUrl: string }>,
): Promise<LoopbackIdp> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const idp = await TestIdp.create({ ssoUrl: `${base}/sso`, entityId: `${base}/metadata`, wantAuthnRequestsSigned: true });
  const requests: string[] = [];
  const pending = new Map<string, { relayState: string | null }>();

  const send = (res: http.ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };

  server.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base);
      if (req.method === 'GET' && url.pathname === '/metadata') return send(res, 200, 'application/samlmetadata+xml', idp.metadataXml());
      if (req.method === 'GET' && url.pathname === '/sso') {
        const s = await sp();
        const authn = await idp.readAuthnRequest(url.toString(), s.metadataXml);
        if (authn.issuer !== s.entityId) return send(res, 400, 'text/plain', 'unknown SP');
        requests.push(authn.id);
        pending.set(authn.id, { relayState: authn.relayState });
        const buttons = Object.keys(users)
          .map((k) => `<button type="submit" name="user" value="${esc(k)}">${esc(k)}</button>`)
          .join(' ');
        return send(
          res,
          200,
          'text/html; charset=utf-8',
          `<!doctype html><html lang="en"><head><title>Test IdP</title></head><body><h1>Test IdP</h1>` +
            `<form method="post" action="/sso"><input type="hidden" name="request" value="${esc(authn.id)}">${buttons}</form></body></html>`,
        );
      }
      if (req.method === 'POST' && url.pathname === '/sso') {
        let raw = '';
        for await (const chunk of req) raw += String(chunk);
        const form = new URLSearchParams(raw);
        const requestId = form.get('request') ?? '';
        const user = users[form.get('user') ?? ''];
        const state = pending.get(requestId);
        if (!user || !state) return send(res, 400, 'text/plain', 'unknown request or user');
        pending.delete(requestId);
        const s = await sp();
        const response = await idp.loginResponse({ sp: { entityId: s.entityId, acsUrl: s.acsUrl }, inResponseTo: requestId, user });
        return send(
          res,
          200,
          'text/html; charset=utf-8',
          `<!doctype html><html lang="en"><head><title>Test IdP: continue</title></head><body>` +
            `<form method="post" action="${esc(s.acsUrl)}"><input type="hidden" name="SAMLResponse" value="${esc(response)}">` +
            (state.relayState ? `<input type="hidden" name="RelayState" value="${esc(state.relayState)}">` : '') +
            `<button type="submit">Continue</button></form><script>document.forms[0].submit()</script></body></html>`,
        );
      }
      send(res, 404, 'text/plain', 'not found');
    })().catch((e: unknown) => send(res, 500, 'text/plain', String(e)));
  });

  return {
    idp,
    url: base,
    metadataUrl: `${base}/metadata`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
