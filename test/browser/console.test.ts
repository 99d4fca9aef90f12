/**
 * The web console in a real browser (Debian's Chromium through playwright-core): the gateway listens on a loopback
 * port with SAML enabled against the samlify test IdP, itself served on loopback, so the browser follows the real
 * HTTP-Redirect and HTTP-POST bindings. IT signs in, registers a device, creates an enrollment token and revokes the
 * device; an auditor signs in, filters events, exports CSV (rows checked) and cannot reach IT pages. Screenshots of
 * the main pages go to test-artifacts/screenshots/.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Page } from 'playwright-core';
import request from 'supertest';
import { parseCsv } from '../../src/lib/csv';
import { CHROMIUM, launchChromium, screenshot, startLoopbackIdp, type Browser, type LoopbackIdp } from '../helpers/browser';
import { freePort } from '../helpers/ports';
import { validateSamlSchema } from '../helpers/test-idp';
import { describeWith, tool } from '../helpers/requirements';
import { buildSamlApp, USERS, type SamlApp } from '../integration/console/support';

describeWith([tool(CHROMIUM, 'apt-get install -y chromium')], 'web console in Chromium (real SAML bindings on loopback)', () => {
  let idp: LoopbackIdp;
  let t: SamlApp;
  let server: http.Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  let deviceId = '';

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    let app: SamlApp | null = null;
    idp = await startLoopbackIdp(
      { 'it-admin': USERS['it-admin'], auditor: USERS.auditor },
      async () => {
        if (!app) throw new Error('gateway not started yet');
        return { metadataXml: (await request(app.app).get('/saml/metadata')).text, entityId: app.entityId, acsUrl: app.acsUrl };
      },
    );
    app = t = await buildSamlApp({ idp: idp.idp, publicUrl: base, metadataUrl: idp.metadataUrl });
    server = http.createServer(t.app);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    // samlify's schema validator (xmllint compiled to JavaScript) takes seconds to warm up on first use; do it here
    // rather than inside the first browser navigation to the IdP.
    await validateSamlSchema(
      idp.idp.renderResponse({ sp: { entityId: 'urn:warm-up', acsUrl: 'http://127.0.0.1/acs' }, inResponseTo: '_warmup', user: { nameId: 'warm-up' } }),
    );
    browser = await launchChromium();
    page = await browser.context.newPage();
    // Fail a step with Playwright's own message well before the test's timeout.
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await t?.cleanup();
    await idp?.close();
  });

  /** From the console's "sign in" page through the IdP and back, as `who`. */
  async function signInAs(who: 'it-admin' | 'auditor', startAt: string): Promise<void> {
    const res = await page.goto(`${base}${startAt}`);
    expect(res?.status()).toBe(401);
    await page.getByRole('link', { name: 'Anmelden' }).click();
    await page.waitForURL(`${idp.url}/sso?**`);
    await page.getByRole('button', { name: who }).click();
    await page.waitForURL(`${base}${startAt}`);
  }

  it('signs in an IT admin through the IdP and lands on the page they asked for', async () => {
    await signInAs('it-admin', '/console');
    expect(await page.locator('h1').textContent()).toBe('Übersicht');
    expect(await page.locator('#whoami').textContent()).toContain(USERS['it-admin'].nameId);
    expect(await page.locator('html').getAttribute('lang')).toBe('de');
    expect(idp.requests.length).toBe(1);
    // Styles and script load as files under the CSP (nothing inline): the header is styled.
    const headerBg = await page.locator('.site-header').evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(headerBg).toBe('rgb(8, 59, 103)');
    // Keyboard: the first Tab reaches the skip link, which moves focus to the main content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.className)).toBe('skip-link');
    await screenshot(page, '01-home-it-admin');
  }, 60_000);

  it('registers a device through the form', async () => {
    await page.getByRole('navigation', { name: 'Hauptnavigation' }).getByRole('link', { name: 'Gerät registrieren' }).click();
    await page.getByLabel('Seriennummer').fill('BROWSER-0001');
    await page.getByLabel('Plattform').selectOption('windows');
    await page.getByLabel('Besitzer').fill('schmidt.a');
    await page.getByLabel('Abteilung').fill('Standesamt');
    await page.getByLabel(/EK-Hash/).fill('cd'.repeat(32));
    await screenshot(page, '02-register-form');
    await page.getByRole('button', { name: 'Registrieren' }).click();
    await page.waitForURL(/\/console\/devices\/[0-9a-f-]{36}\?done=created$/);
    deviceId = /\/console\/devices\/([0-9a-f-]{36})/.exec(page.url())?.[1] ?? '';
    expect(await page.getByRole('status').first().textContent()).toContain('Das Gerät wurde registriert.');
    expect(await page.locator('dl.facts').first().textContent()).toContain('cd'.repeat(32));
    await screenshot(page, '03-device-detail');
  }, 30_000);

  it('creates an enrollment token shown once with a copyable agent command', async () => {
    await page.getByRole('button', { name: 'Einrichtungstoken erzeugen' }).click();
    await page.waitForURL(`${base}/console/devices/${deviceId}/enrollment-token`);
    const token = await page.getByLabel('Token', { exact: true }).inputValue();
    expect(token).toMatch(/^et_[A-Za-z0-9_-]{43}$/);
    const command = await page.getByLabel('Befehl auf dem Gerät').inputValue();
    expect(command).toBe(`devicegate-agent enroll --server ${base} --device-id ${deviceId} --token ${token}`);
    // console.js un-hides the copy buttons (progressive enhancement).
    expect(await page.getByRole('button', { name: 'Kopieren' }).count()).toBe(2);
    await screenshot(page, '04-enrollment-token');
  }, 30_000);

  it('revokes the device after a confirmation step with a reason', async () => {
    await page.getByRole('link', { name: 'Zurück zum Gerät' }).click();
    await page.getByRole('link', { name: 'Widerrufen' }).click();
    await page.waitForURL(`${base}/console/devices/${deviceId}/status?to=revoked`);
    await page.getByLabel(/Begründung/).fill('gestohlen');
    await screenshot(page, '05-revoke-confirm');
    // The browser itself refuses to submit before the confirmation box is ticked (required), and so does the server.
    await page.getByRole('button', { name: 'Widerrufen' }).click();
    expect(page.url()).toBe(`${base}/console/devices/${deviceId}/status?to=revoked`);
    await page.getByLabel('Ich bestätige diese Änderung.').check();
    await page.getByRole('button', { name: 'Widerrufen' }).click();
    await page.waitForURL(`${base}/console/devices/${deviceId}?done=status`);
    expect(await page.locator('.badge.status-revoked').first().textContent()).toBe('Widerrufen');
    expect((await t.services.registry.get(deviceId)).status).toBe('revoked');
    await page.goto(`${base}/console/devices?q=BROWSER`);
    await screenshot(page, '06-device-list');
    await page.goto(`${base}/console/devices/import`);
    await page.getByLabel('CSV-Inhalt').fill('serial_number,platform\nBROWSER-0002,linux\nBROWSER-0003,beos\n');
    await page.getByRole('button', { name: 'Probelauf' }).click();
    expect(await page.locator('tr[data-action="rejected"]').count()).toBe(1);
    await screenshot(page, '07-import-dry-run');
  }, 30_000);

  it('signs out', async () => {
    await page.getByRole('button', { name: 'Abmelden' }).click();
    await page.waitForURL(`${base}/console/signed-out`);
    expect(await page.locator('h1').textContent()).toBe('Abgemeldet');
    const res = await page.goto(`${base}/console`);
    expect(res?.status()).toBe(401);
  }, 30_000);

  it('lets an auditor filter events, export the filtered events as CSV and verify the chain', async () => {
    await signInAs('auditor', '/console/audit');
    await page.getByLabel('Ereignistyp').selectOption('device.status_change');
    await page.getByRole('button', { name: 'Suchen' }).click();
    await page.waitForURL(/\/console\/audit\?.*type=device\.status_change/);
    const rows = page.locator('table.audit-table tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain(`user:${USERS['it-admin'].nameId}`);
    await screenshot(page, '08-audit-search');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Als CSV exportieren' }).click()]);
    const file = await download.path();
    const csv = parseCsv(readFileSync(file, 'utf8')).map((r) => r.fields);
    expect(csv[0]?.slice(0, 5)).toEqual(['seq', 'time', 'type', 'event_id', 'actor']);
    const data = csv.slice(1, -1);
    expect(data).toHaveLength(1);
    expect(data[0]?.[2]).toBe('device.status_change');
    expect(data[0]?.[4]).toBe(`user:${USERS['it-admin'].nameId}`);
    expect(data[0]?.[5]).toBe(deviceId);
    expect(JSON.parse(data[0]?.[13] as string)).toMatchObject({ data: { deviceId, from: 'registered', to: 'revoked', reason: 'gestohlen' } });
    expect(csv[csv.length - 1]?.[2]).toBe('audit.export.trailer');

    // A signed checkpoint, as the log writes one every N entries or every interval.
    const checkpoint = await t.services.audit.log.checkpointNow();
    await page.getByRole('link', { name: 'Kettenprüfung' }).click();
    await page.getByRole('button', { name: 'Kette jetzt prüfen' }).click();
    expect(await page.locator('[data-verify]').getAttribute('data-verify')).toBe('ok');
    expect(await page.locator('[data-signature]').getAttribute('data-signature')).toBe('valid');
    expect(await page.locator('main').textContent()).toContain(checkpoint?.hash ?? 'no checkpoint');
    await screenshot(page, '09-audit-verify');
  }, 60_000);

  it('keeps an auditor out of IT pages', async () => {
    expect(await page.getByRole('link', { name: 'Gerät registrieren' }).count()).toBe(0);
    for (const path of ['/console/devices/new', '/console/devices/import', `/console/devices/${deviceId}/status?to=retired`]) {
      const res = await page.goto(`${base}${path}`);
      expect({ path, status: res?.status() }).toEqual({ path, status: 403 });
      expect(await page.locator('h1').textContent()).toBe('Kein Zugriff');
    }
    await screenshot(page, '10-auditor-forbidden');
  }, 30_000);

  it('switches to English and back', async () => {
    await page.goto(`${base}/console`);
    await page.getByRole('link', { name: 'English' }).click();
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.locator('h1').textContent()).toBe('Overview');
    await page.goto(`${base}/console/audit`);
    expect(await page.locator('h1').textContent()).toBe('Search the audit log');
    await screenshot(page, '11-audit-english');
    await page.getByRole('link', { name: 'Deutsch' }).click();
    expect(await page.locator('html').getAttribute('lang')).toBe('de');
  }, 30_000);

  it('ran every page without a Content-Security-Policy violation', () => {
    expect(cspViolations).toEqual([]);
  });
});
