/**
 * IT's console pages: device list (search, filters, pagination), device detail (identity, EK hash, certificates,
 * latest decisions), register, CSV import with a per-row result, one-time enrollment token with the agent command,
 * and status changes (suspend, resume, revoke, retire) with a reason and a confirmation step.
 *
 * Every change goes through `DeviceRegistry` with the request's principal, so it is audited with the signed-in
 * user (SAML NameID) as actor, exactly like the same change through the API.
 */
import type { Request } from 'express';
import { type AppError, badRequest, conflict, isAppError, notFound } from '../../domain/errors';
import { DEVICE_STATUSES, PLATFORMS, type Device, type DeviceStatus, type Revocation } from '../../domain/types';
import { isUuid } from '../../lib/ids';
import { IMPORT_COLUMNS, type ImportReport } from '../../services/registry';
import { principalOf } from '../params';
import { field, type ConsoleContext } from './context';
import { href, html, type Html } from './html';
import { formatDuration, type MessageKey } from './i18n';
import { csrfField, errorMessage, errorProblems, errorSummary, formatTime, notice, page, sendPage, type View } from './view';

/** Devices per list page. */
const PAGE_SIZE = 25;
/** Decisions shown on the device page. */
const DECISIONS_SHOWN = 10;
const PLATFORM_LABELS: Readonly<Record<string, string>> = { windows: 'Windows', linux: 'Linux', macos: 'macOS', ios: 'iOS', android: 'Android' };
/** Targets that need a written reason (they take the device off the network). */
const NEEDS_REASON: ReadonlySet<DeviceStatus> = new Set(['suspended', 'revoked', 'retired']);

const statusBadge = (v: View, s: DeviceStatus): Html => html`<span class="badge status-${s}">${v.t(`status.${s}` as MessageKey)}</span>`;

/** Status changes offered for a device in `d.status` (the registry enforces the same rules). */
export function offeredTargets(d: Device): DeviceStatus[] {
  switch (d.status) {
    case 'registered':
    case 'active':
      return ['suspended', 'revoked', 'retired'];
    case 'suspended':
      return [d.attestationKey ? 'active' : 'registered', 'revoked', 'retired'];
    case 'revoked':
      return ['retired'];
    case 'retired':
      return [];
  }
}

function deviceIdParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !isUuid(id)) throw notFound('DEVICE_NOT_FOUND', 'No such device.');
  return id;
}

function enumField<T extends string>(source: unknown, name: string, allowed: readonly T[]): T | undefined {
  const v = field(source, name, 64);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw badRequest('INVALID_QUERY', `"${name}" must be one of ${allowed.join(', ')}.`);
  return v as T;
}

export function registerDevicePages(c: ConsoleContext): void {
  const registry = c.deps.services.registry;
  const store = c.deps.store;

  // --- list -------------------------------------------------------------------------------------------------
  c.add('get', '/console/devices', 'devices:read', async (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const q = field(req.query, 'q', 200)?.trim() || undefined;
    const status = enumField(req.query, 'status', DEVICE_STATUSES);
    const platform = enumField(req.query, 'platform', PLATFORMS);
    const cursor = field(req.query, 'cursor', 512);
    const result = await registry.list({ status, platform, search: q }, { cursor: cursor ?? null, limit: PAGE_SIZE });
    const filters = { q, status, platform };
    const body = html`
${v.can('devices:write')
  ? html`<p class="actions"><a class="button" href="/console/devices/new">${t('nav.register')}</a> <a class="button button-secondary" href="/console/devices/import">${t('nav.import')}</a></p>`
  : html`<p class="meta">${t('devices.readOnly')}</p>`}
<form method="get" action="/console/devices" class="stack" role="search">
  <div class="field-row">
    <div class="field"><label for="q">${t('devices.search')} <span class="hint" id="q-hint">${t('devices.searchHint')}</span></label>
      <input type="search" id="q" name="q" value="${q ?? ''}" maxlength="200" aria-describedby="q-hint"></div>
    <div class="field"><label for="status">${t('col.status')}</label>
      <select id="status" name="status"><option value="">${t('form.any')}</option>
      ${DEVICE_STATUSES.map((s) => html`<option value="${s}"${status === s ? html` selected` : ''}>${t(`status.${s}` as MessageKey)}</option>`)}</select></div>
    <div class="field"><label for="platform">${t('col.platform')}</label>
      <select id="platform" name="platform"><option value="">${t('form.any')}</option>
      ${PLATFORMS.map((p) => html`<option value="${p}"${platform === p ? html` selected` : ''}>${PLATFORM_LABELS[p]}</option>`)}</select></div>
    <div class="field actions"><button type="submit">${t('devices.filter')}</button> <a href="/console/devices">${t('devices.reset')}</a></div>
  </div>
</form>
${result.items.length === 0
  ? html`<p role="status">${t('devices.none')}</p>`
  : html`<div class="table-wrap"><table>
<caption>${t('devices.caption')}</caption>
<thead><tr><th scope="col">${t('col.serial')}</th><th scope="col">${t('col.assetTag')}</th><th scope="col">${t('col.model')}</th><th scope="col">${t('col.platform')}</th><th scope="col">${t('col.owner')}</th><th scope="col">${t('col.department')}</th><th scope="col">${t('col.status')}</th><th scope="col">${t('col.enrolled')}</th></tr></thead>
<tbody>${result.items.map(
      (d) => html`<tr><th scope="row"><a href="/console/devices/${d.id}">${d.serialNumber}</a></th><td>${d.assetTag ?? t('none')}</td><td>${d.model ?? t('none')}</td><td>${PLATFORM_LABELS[d.platform]}</td><td>${d.owner ?? t('none')}</td><td>${d.department ?? t('none')}</td><td>${statusBadge(v, d.status)}</td><td>${d.attestationKey ? t('yes') : t('no')}</td></tr>`,
    )}</tbody></table></div>`}
<nav class="pagination" aria-label="${t('page.label')}">
${cursor ? html`<a href="${href('/console/devices', filters)}">${t('page.first')}</a>` : ''}
${result.nextCursor ? html`<a href="${href('/console/devices', { ...filters, cursor: result.nextCursor })}" rel="next">${t('page.next')}</a>` : ''}
</nav>`;
    sendPage(res, 200, page(v, { title: t('devices.title'), body, nav: 'devices' }));
  });

  // --- register ---------------------------------------------------------------------------------------------
  const FORM_FIELDS = ['serial_number', 'asset_tag', 'model', 'platform', 'owner', 'department', 'ek_public_sha256', 'ek_certificate_pem'] as const;
  type RegisterValues = Partial<Record<(typeof FORM_FIELDS)[number], string>>;

  const registerForm = (v: View, values: RegisterValues, errors: string[]): string => {
    const { t } = v;
    const invalid = (name: string) => (errors.some((e) => e.startsWith(`${name}:`)) ? html` aria-invalid="true"` : '');
    const text = (name: (typeof FORM_FIELDS)[number], label: string, opts: { required?: boolean; max: number; hint?: string }) =>
      html`<div class="field"><label for="${name}">${label}${opts.required ? html` <span class="required-mark" aria-hidden="true">*</span><span class="visually-hidden"> (${t('form.required')})</span>` : ''}${opts.hint ? html` <span class="hint" id="${name}-hint">${opts.hint}</span>` : ''}</label>
<input type="text" id="${name}" name="${name}" value="${values[name] ?? ''}" maxlength="${opts.max}"${opts.required ? html` required` : ''}${opts.hint ? html` aria-describedby="${name}-hint"` : ''}${invalid(name)}></div>`;
    const body = html`${errorSummary(v, errors)}
<form method="post" action="/console/devices" class="stack">
${csrfField(v)}
<div class="field-row">
${text('serial_number', t('col.serial'), { required: true, max: 128 })}
${text('asset_tag', t('col.assetTag'), { max: 64 })}
${text('model', t('col.model'), { max: 128 })}
<div class="field"><label for="platform">${t('col.platform')} <span class="required-mark" aria-hidden="true">*</span><span class="visually-hidden"> (${t('form.required')})</span></label>
<select id="platform" name="platform" required${invalid('platform')}><option value="">${t('form.choose')}</option>
${PLATFORMS.map((p) => html`<option value="${p}"${values.platform === p ? html` selected` : ''}>${PLATFORM_LABELS[p]}</option>`)}</select></div>
${text('owner', t('col.owner'), { max: 200 })}
${text('department', t('col.department'), { max: 200 })}
</div>
${text('ek_public_sha256', t('device.ekHash'), { max: 100, hint: t('register.ekHint') })}
<div class="field"><label for="ek_certificate_pem">${t('register.ekCert')}</label>
<textarea id="ek_certificate_pem" name="ek_certificate_pem" rows="6"${invalid('ek_certificate_pem')}>${values.ek_certificate_pem ?? ''}</textarea></div>
<p class="actions"><button type="submit">${t('register.submit')}</button> <a href="/console/devices">${t('cancel')}</a></p>
</form>`;
    return page(v, { title: t('register.title'), body, nav: 'register' });
  };

  c.add('get', '/console/devices/new', 'devices:write', (req, res) => {
    sendPage(res, 200, registerForm(c.view(req, res), {}, []));
  });

  c.add('post', '/console/devices', 'devices:write', ...c.form(), async (req, res) => {
    const v = c.view(req, res);
    const values: RegisterValues = {};
    for (const f of FORM_FIELDS) {
      const x = field(req.body, f, f === 'ek_certificate_pem' ? 16_384 : 1000);
      if (x !== undefined) values[f] = x;
    }
    try {
      const device = await registry.register(values, principalOf(req));
      res.redirect(303, href(`/console/devices/${device.id}`, { done: 'created' }));
    } catch (e) {
      if (!isAppError(e) || e.status >= 500) throw e;
      sendPage(res, e.status, registerForm(v, values, [errorMessage(v, e), ...errorProblems(e)]));
    }
  });

  // --- CSV import -------------------------------------------------------------------------------------------
  const importPage = (v: View, csv: string, outcome: { report?: ImportReport; error?: AppError } = {}): string => {
    const { t } = v;
    const r = outcome.report;
    const result = r
      ? html`<h2 id="result">${t('import.result')}</h2>
${outcome.error ? notice(t('import.rejected'), 'error') : notice(r.applied ? t('import.applied') : t('import.dryRunDone'))}
<p>${t('import.summary', { rows: r.rows, created: r.created, updated: r.updated, rejected: r.rejected })}</p>
<div class="table-wrap"><table><caption>${t('import.caption')}</caption>
<thead><tr><th scope="col">${t('col.line')}</th><th scope="col">${t('col.serial')}</th><th scope="col">${t('col.action')}</th><th scope="col">${t('col.reasons')}</th></tr></thead>
<tbody>${r.report.map(
          (row) =>
            html`<tr data-action="${row.action}"><td>${row.line}</td><td>${row.serial_number ?? t('none')}</td><td>${t(row.action === 'create' ? 'import.create' : row.action === 'update' ? 'import.update' : 'import.rejectedRow')}</td><td>${row.reasons.length > 0 ? html`<ul>${row.reasons.map((x) => html`<li>${x}</li>`)}</ul>` : t('none')}</td></tr>`,
        )}</tbody></table></div>`
      : outcome.error
        ? errorSummary(v, [errorMessage(v, outcome.error), ...errorProblems(outcome.error)])
        : '';
    const body = html`<p>${t('import.help', { columns: IMPORT_COLUMNS.join(', ') })}</p>
${r ? '' : result}
<form method="post" action="/console/devices/import" class="stack">
${csrfField(v)}
<div class="field" hidden><label for="csv-file">${t('import.file')}</label><input type="file" id="csv-file" accept=".csv,text/csv,text/plain" data-read-into="csv"></div>
<div class="field"><label for="csv">${t('import.csv')} <span class="required-mark" aria-hidden="true">*</span><span class="visually-hidden"> (${t('form.required')})</span></label>
<textarea id="csv" name="csv" rows="12" required spellcheck="false">${csv}</textarea></div>
<p class="actions"><button type="submit" name="mode" value="dry-run">${t('import.dryRun')}</button> <button type="submit" name="mode" value="apply" class="button-danger">${t('import.apply')}</button></p>
</form>
${r ? result : ''}`;
    return page(v, { title: t('import.title'), body, nav: 'import' });
  };

  c.add('get', '/console/devices/import', 'devices:write', (req, res) => {
    sendPage(res, 200, importPage(c.view(req, res), `${IMPORT_COLUMNS.join(',')}\n`));
  });

  c.add('post', '/console/devices/import', 'devices:write', ...c.form(c.deps.config.server.importBodyLimitBytes), async (req, res) => {
    const v = c.view(req, res);
    const csv = field(req.body, 'csv', c.deps.config.server.importBodyLimitBytes) ?? '';
    const mode = field(req.body, 'mode', 16) ?? 'dry-run';
    if (mode !== 'dry-run' && mode !== 'apply') throw badRequest('INVALID_FORM', '"mode" must be dry-run or apply.');
    try {
      const report = await registry.importCsv(csv, { dryRun: mode === 'dry-run' }, principalOf(req));
      sendPage(res, 200, importPage(v, csv, { report }));
    } catch (e) {
      if (!isAppError(e) || e.status >= 500) throw e;
      const details = e.details as Partial<ImportReport> | undefined;
      const report = e.code === 'IMPORT_REJECTED' && Array.isArray(details?.report) ? (details as ImportReport) : undefined;
      sendPage(res, e.status, importPage(v, csv, { error: e, ...(report ? { report } : {}) }));
    }
  });

  // --- detail -----------------------------------------------------------------------------------------------
  c.add('get', '/console/devices/:id', 'devices:read', async (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const device = await registry.get(deviceIdParam(req));
    const now = c.deps.clock.nowMs();
    const certs = v.can('certificates:read') ? await store.certificates.listByDevice(device.id) : null;
    const revocations = new Map<string, Revocation>();
    for (const cert of certs ?? []) {
      const r = await store.revocations.get(cert.serialHex);
      if (r) revocations.set(cert.serialHex, r);
    }
    const decisions = await c.audit.deviceDecisions(device.id, DECISIONS_SHOWN);
    const done = field(req.query, 'done', 16);
    const tokenPossible = device.status === 'registered' || device.status === 'active';
    const defaultTtl = c.deps.config.enrollment.tokenTtlSeconds;
    const ttlChoices = [3600, 86_400, 7 * 86_400].filter((s) => s !== defaultTtl);

    const identity = html`<dl class="facts">
<dt>${t('device.id')}</dt><dd><code>${device.id}</code></dd>
<dt>${t('col.serial')}</dt><dd>${device.serialNumber}</dd>
<dt>${t('col.assetTag')}</dt><dd>${device.assetTag ?? t('none')}</dd>
<dt>${t('col.model')}</dt><dd>${device.model ?? t('none')}</dd>
<dt>${t('col.platform')}</dt><dd>${PLATFORM_LABELS[device.platform]}</dd>
<dt>${t('col.owner')}</dt><dd>${device.owner ?? t('none')}</dd>
<dt>${t('col.department')}</dt><dd>${device.department ?? t('none')}</dd>
<dt>${t('col.status')}</dt><dd>${statusBadge(v, device.status)}</dd>
<dt>${t('device.statusReason')}</dt><dd>${device.statusReason ?? t('none')}</dd>
<dt>${t('device.ekHash')}</dt><dd><code>${device.tpm?.ekPublicSha256 ?? t('none')}</code></dd>
<dt>${t('device.ekCert')}</dt><dd>${device.tpm?.ekCertificatePem ? t('yes') : t('no')}</dd>
<dt>${t('col.enrolled')}</dt><dd>${device.attestationKey ? t('yes') : t('no')}</dd>
<dt>${t('device.created')}</dt><dd>${formatTime(device.createdAt)}</dd>
<dt>${t('device.updated')}</dt><dd>${formatTime(device.updatedAt)}</dd>
</dl>`;

    const certSection =
      certs === null
        ? ''
        : html`<h2>${t('device.certs')}</h2>
${certs.length === 0
  ? html`<p>${t('device.certsNone')}</p>`
  : html`<div class="table-wrap"><table><caption>${t('device.certsCaption')}</caption>
<thead><tr><th scope="col">${t('cert.serial')}</th><th scope="col">${t('cert.notBefore')}</th><th scope="col">${t('cert.notAfter')}</th><th scope="col">${t('cert.via')}</th><th scope="col">${t('cert.state')}</th></tr></thead>
<tbody>${certs.map((cert) => {
      const r = revocations.get(cert.serialHex);
      const state = r
        ? html`<span class="state-revoked">${t('cert.revoked', { date: formatTime(r.revokedAt), reason: r.reason })}</span>`
        : now > cert.notAfter
          ? html`<span class="state-expired">${t('cert.expired')}</span>`
          : now < cert.notBefore
            ? html`<span class="state-expired">${t('cert.notYet')}</span>`
            : html`<span class="state-valid">${t('cert.valid')}</span>`;
      const via = ['enroll', 'renew', 'manual'].includes(cert.issuedVia) ? t(`cert.via.${cert.issuedVia}` as MessageKey) : cert.issuedVia;
      return html`<tr><td><code>${cert.serialHex}</code></td><td>${formatTime(cert.notBefore)}</td><td>${formatTime(cert.notAfter)}</td><td>${via}</td><td>${state}</td></tr>`;
    })}</tbody></table></div>`}`;

    const decisionSection = html`<h2>${t('device.decisions')}</h2>
${decisions.length === 0
  ? html`<p>${t('device.decisionsNone')}</p>`
  : html`<div class="table-wrap"><table><caption>${t('device.decisionsCaption', { n: DECISIONS_SHOWN })}</caption>
<thead><tr><th scope="col">${t('dec.time')}</th><th scope="col">${t('dec.event')}</th><th scope="col">${t('dec.decision')}</th><th scope="col">${t('dec.reason')}</th><th scope="col">${t('dec.concentrator')}</th></tr></thead>
<tbody>${decisions.map(
      (d) =>
        html`<tr><td>${formatTime(d.time)}</td><td>${d.event}</td><td><span class="decision-${d.decision}">${['allow', 'deny', 'pending'].includes(d.decision) ? t(`decision.${d.decision}` as MessageKey) : d.decision}</span></td><td><code>${d.reason}</code></td><td>${d.concentrator}</td></tr>`,
    )}</tbody></table></div>`}`;

    const targets = v.can('devices:write') ? offeredTargets(device) : [];
    const actions =
      v.can('tokens:manage') || targets.length > 0
        ? html`<h2>${t('device.actions')}</h2>
${v.can('tokens:manage')
  ? tokenPossible
    ? html`<form method="post" action="/console/devices/${device.id}/enrollment-token" class="stack">
${csrfField(v)}
<fieldset><legend>${t('device.token')}</legend>
<p class="hint">${t('device.tokenHelp')}</p>
<div class="field"><label for="ttl_seconds">${t('device.tokenTtl')}</label>
<select id="ttl_seconds" name="ttl_seconds"><option value="" selected>${t('ttl.default', { duration: formatDuration(t, defaultTtl) })}</option>
${ttlChoices.map((s) => html`<option value="${s}">${formatDuration(t, s)}</option>`)}</select></div>
<p class="actions"><button type="submit">${t('device.tokenCreate')}</button></p>
</fieldset></form>`
    : html`<p>${t('device.tokenNotPossible', { status: t(`status.${device.status}` as MessageKey) })}</p>`
  : ''}
${targets.length > 0
  ? html`<h3>${t('device.statusActions')}</h3><p class="actions">${targets.map(
      (to) =>
        html`<a class="button${to === 'revoked' || to === 'retired' ? ' button-danger' : ''}" href="${href(`/console/devices/${device.id}/status`, { to })}">${t(`action.${to}` as MessageKey)}</a>`,
    )}</p>`
  : ''}`
        : '';

    const body = html`${done === 'created' ? notice(t('notice.created')) : done === 'status' ? notice(t('notice.status')) : ''}
<h2>${t('device.identity')}</h2>
${identity}
${actions}
${certSection}
${decisionSection}
<p><a href="/console/devices">${t('nav.devices')}</a></p>`;
    sendPage(res, 200, page(v, { title: t('device.title', { serial: device.serialNumber }), body, nav: 'devices' }));
  });

  // --- enrollment token (shown once) -------------------------------------------------------------------------
  c.add('post', '/console/devices/:id/enrollment-token', 'tokens:manage', ...c.form(), async (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const id = deviceIdParam(req);
    const ttlRaw = field(req.body, 'ttl_seconds', 10);
    if (ttlRaw !== undefined && !/^\d{1,7}$/.test(ttlRaw)) throw badRequest('INVALID_TTL', 'ttl_seconds must be a whole number of seconds.');
    const device = await registry.get(id);
    const token = await registry.createEnrollmentToken(id, { ttlSeconds: ttlRaw === undefined ? undefined : Number(ttlRaw) }, principalOf(req));
    const command = `devicegate-agent enroll --server ${c.deps.config.publicUrl} --device-id ${id} --token ${token.token}`;
    const body = html`<div class="secret">
<p role="status">${t('token.once', { expires: formatTime(token.expiresAt) })}</p>
<div class="field"><label for="token-value">${t('token.token')}</label>
<div class="copy-row"><input type="text" id="token-value" value="${token.token}" readonly spellcheck="false" autocomplete="off">
<button type="button" data-copy-target="token-value" data-copied-text="${t('token.copied')}" hidden>${t('token.copy')}</button></div></div>
<div class="field"><label for="agent-command">${t('token.command')}</label>
<div class="copy-row"><input type="text" id="agent-command" value="${command}" readonly spellcheck="false" autocomplete="off">
<button type="button" data-copy-target="agent-command" data-copied-text="${t('token.copied')}" hidden>${t('token.copy')}</button></div></div>
</div>
<p><a href="/console/devices/${id}">${t('token.back')}</a></p>`;
    sendPage(res, 200, page(v, { title: t('token.title', { serial: device.serialNumber }), body, nav: 'devices' }));
  });

  // --- status change with confirmation ----------------------------------------------------------------------
  const statusPage = (v: View, device: Device, to: DeviceStatus, values: { reason?: string }, errors: string[]): string => {
    const { t } = v;
    const action = t(`action.${to}` as MessageKey);
    const reasonRequired = NEEDS_REASON.has(to);
    const body = html`${errorSummary(v, errors)}
<p>${t(`status.explain.${to}` as MessageKey)}</p>
<dl class="facts"><dt>${t('col.serial')}</dt><dd>${device.serialNumber}</dd><dt>${t('status.current')}</dt><dd>${statusBadge(v, device.status)}</dd></dl>
<form method="post" action="/console/devices/${device.id}/status" class="stack">
${csrfField(v)}
<input type="hidden" name="to" value="${to}">
<div class="field"><label for="reason">${t('status.reason')}${reasonRequired ? html` <span class="required-mark" aria-hidden="true">*</span><span class="visually-hidden"> (${t('form.required')})</span>` : ''} <span class="hint" id="reason-hint">${t('status.reasonHint')}</span></label>
<textarea id="reason" name="reason" rows="3" maxlength="500" aria-describedby="reason-hint"${reasonRequired ? html` required` : ''}>${values.reason ?? ''}</textarea></div>
<label class="checkbox" for="confirm"><input type="checkbox" id="confirm" name="confirm" value="yes" required> ${t('status.confirm')}</label>
<p class="actions"><button type="submit" class="${to === 'revoked' || to === 'retired' ? 'button-danger' : ''}">${action}</button> <a href="/console/devices/${device.id}">${t('cancel')}</a></p>
</form>`;
    return page(v, { title: t('status.title', { action, serial: device.serialNumber }), body, nav: 'devices' });
  };

  const targetOf = (source: unknown, device: Device): DeviceStatus => {
    const to = field(source, 'to', 32);
    if (!to || !(DEVICE_STATUSES as readonly string[]).includes(to) || !offeredTargets(device).includes(to as DeviceStatus)) {
      throw conflict('INVALID_TRANSITION', `A ${device.status} device cannot become ${to ?? '(nothing)'}.`);
    }
    return to as DeviceStatus;
  };

  c.add('get', '/console/devices/:id/status', 'devices:write', async (req, res) => {
    const v = c.view(req, res);
    const device = await registry.get(deviceIdParam(req));
    sendPage(res, 200, statusPage(v, device, targetOf(req.query, device), {}, []));
  });

  c.add('post', '/console/devices/:id/status', 'devices:write', ...c.form(), async (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const device = await registry.get(deviceIdParam(req));
    const to = targetOf(req.body, device);
    const reason = field(req.body, 'reason', 500)?.trim() || undefined;
    const errors: string[] = [];
    if (field(req.body, 'confirm', 8) !== 'yes') errors.push(t('err.confirmRequired'));
    if (NEEDS_REASON.has(to) && !reason) errors.push(t('err.reasonRequired'));
    if (errors.length > 0) {
      sendPage(res, 400, statusPage(v, device, to, { ...(reason ? { reason } : {}) }, errors));
      return;
    }
    try {
      await registry.changeStatus(device.id, { status: to, ...(reason ? { reason } : {}) }, principalOf(req));
    } catch (e) {
      if (!isAppError(e) || e.status >= 500) throw e;
      sendPage(res, e.status, statusPage(v, device, to, { ...(reason ? { reason } : {}) }, [errorMessage(v, e), ...errorProblems(e)]));
      return;
    }
    res.redirect(303, href(`/console/devices/${device.id}`, { done: 'status' }));
  });
}
