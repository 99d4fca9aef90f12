/**
 * Auditor pages: event search with the audit API's filters and pagination, CSV/NDJSON export of the same query
 * (streamed, ending with the signed trailer), and the chain verification status with the latest signed checkpoint.
 */
import { once } from 'node:events';
import { AUDIT_EVENT_TYPES } from '../../audit';
import { isAppError } from '../../domain/errors';
import type { AuditEntry } from '../../domain/types';
import { isUuid } from '../../lib/ids';
import { principalOf } from '../params';
import { AUDIT_FILTER_PARAMS, type AuditFilterParams } from '../../services/audit-access';
import { field, type ConsoleContext } from './context';
import { href, html, type Html } from './html';
import type { MessageKey } from './i18n';
import { csrfField, errorMessage, errorProblems, errorSummary, formatTime, page, sendPage, type View } from './view';

const PAGE_SIZE = 50;
const DECISIONS = ['allow', 'deny', 'pending'] as const;

/**
 * `datetime-local` gives `YYYY-MM-DDTHH:MM[:SS]` without a zone; the console labels these fields UTC, so a missing
 * zone means UTC. Anything else is passed on for the audit query parser to accept or refuse.
 */
export function formTimeToIso(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(v) ? `${v}Z` : v;
}

/** The filter values as typed into the form (for redisplay and links). */
function formFilters(query: unknown): AuditFilterParams {
  const out: AuditFilterParams = {};
  for (const k of AUDIT_FILTER_PARAMS) {
    const v = field(query, k, 200)?.trim();
    if (v) out[k] = v;
  }
  return out;
}

/** The form values as the audit query parser takes them. */
function apiFilters(f: AuditFilterParams): AuditFilterParams {
  const from = formTimeToIso(f.from);
  const to = formTimeToIso(f.to);
  return { ...f, ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

/** `kind:id` from an entry body's actor, or a dash. */
function actorText(body: Record<string, unknown>): string {
  const a = body.actor as { kind?: string; id?: string } | undefined;
  return a?.kind && a.id ? `${a.kind}:${a.id}` : '—';
}

export function registerAuditPages(c: ConsoleContext): void {
  const searchForm = (v: View, f: AuditFilterParams): Html => {
    const { t } = v;
    const text = (name: keyof AuditFilterParams, label: MessageKey, type = 'text') =>
      html`<div class="field"><label for="f-${name}">${t(label)}</label><input type="${type}" id="f-${name}" name="${name}" value="${f[name] ?? ''}" maxlength="200"${type === 'datetime-local' ? html` step="1"` : ''}></div>`;
    return html`<form method="get" action="/console/audit" class="stack" role="search">
<fieldset><legend>${t('audit.filters')}</legend>
<div class="field-row">
${text('from', 'audit.from', 'datetime-local')}
${text('to', 'audit.to', 'datetime-local')}
<div class="field"><label for="f-type">${t('audit.type')}</label><select id="f-type" name="type"><option value="">${t('form.any')}</option>
${AUDIT_EVENT_TYPES.map((ty) => html`<option value="${ty}"${f.type === ty ? html` selected` : ''}>${ty}</option>`)}</select></div>
${text('device', 'audit.device')}
${text('user', 'audit.user')}
<div class="field"><label for="f-decision">${t('audit.decision')}</label><select id="f-decision" name="decision"><option value="">${t('form.any')}</option>
${DECISIONS.map((d) => html`<option value="${d}"${f.decision === d ? html` selected` : ''}>${t(`decision.${d}`)}</option>`)}</select></div>
${text('reason', 'audit.reason')}
${text('concentrator', 'audit.concentrator')}
</div>
<p class="actions"><button type="submit">${t('audit.search')}</button> <a href="/console/audit">${t('devices.reset')}</a></p>
</fieldset></form>`;
  };

  const exportForm = (v: View, f: AuditFilterParams): Html => {
    const { t } = v;
    return html`<h2>${t('audit.export')}</h2>
<form method="get" action="/console/audit/export" class="stack">
${AUDIT_FILTER_PARAMS.filter((k) => f[k] !== undefined).map((k) => html`<input type="hidden" name="${k}" value="${f[k]}">`)}
<p class="hint" id="export-hint">${t('audit.exportHint')}</p>
<p class="actions"><button type="submit" name="format" value="csv" aria-describedby="export-hint">${t('audit.exportCsv')}</button> <button type="submit" name="format" value="ndjson" aria-describedby="export-hint">${t('audit.exportNdjson')}</button></p>
</form>`;
  };

  const resultsTable = (v: View, items: readonly AuditEntry[]): Html => {
    const { t } = v;
    if (items.length === 0) return html`<p role="status">${t('audit.none')}</p>`;
    // A wide table scrolls inside its own region, which keyboard users can focus and scroll (WCAG 2.1.1).
    return html`<div class="table-wrap" role="region" aria-label="${t('audit.caption')}" tabindex="0"><table class="audit-table"><caption>${t('audit.caption')}</caption>
<thead><tr><th scope="col">${t('col.seq')}</th><th scope="col">${t('col.time')}</th><th scope="col">${t('col.type')}</th><th scope="col">${t('col.actor')}</th><th scope="col">${t('col.device')}</th><th scope="col">${t('col.user')}</th><th scope="col">${t('audit.decision')}</th><th scope="col">${t('audit.reason')}</th><th scope="col">${t('audit.concentrator')}</th><th scope="col">${t('col.details')}</th></tr></thead>
<tbody>${items.map((e) => {
      const body = JSON.parse(e.body) as Record<string, unknown>;
      const device = e.deviceId
        ? v.can('devices:read') && isUuid(e.deviceId)
          ? html`<a href="/console/devices/${e.deviceId}"><code>${e.deviceId}</code></a>`
          : html`<code>${e.deviceId}</code>`
        : '—';
      return html`<tr data-seq="${e.seq}"><td>${e.seq}</td><td>${formatTime(e.time)}</td><td><code>${e.type}</code></td><td>${actorText(body)}</td><td>${device}</td><td>${e.user ?? '—'}</td><td>${e.decision ? html`<span class="decision-${e.decision}">${e.decision}</span>` : '—'}</td><td>${e.reason ? html`<code>${e.reason}</code>` : '—'}</td><td>${e.concentrator ?? '—'}</td>
<td><details><summary>${t('audit.show')}<span class="visually-hidden"> ${e.seq}</span></summary><pre>${JSON.stringify(body, null, 2)}</pre><p class="meta">SHA-256: <code>${e.hash}</code></p></details></td></tr>`;
    })}</tbody></table></div>`;
  };

  c.add('get', '/console/audit', 'audit:read', async (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const f = formFilters(req.query);
    const cursor = field(req.query, 'cursor', 512);
    const limit = field(req.query, 'limit', 4);
    const keep = { ...f, ...(limit ? { limit } : {}) };
    let results: Html;
    let status = 200;
    try {
      const p = await c.audit.search({ ...apiFilters(f), ...(cursor ? { cursor } : {}), limit: limit ?? String(PAGE_SIZE) });
      results = html`${resultsTable(v, p.items)}
<nav class="pagination" aria-label="${t('page.label')}">
${cursor ? html`<a href="${href('/console/audit', keep)}">${t('page.first')}</a>` : ''}
${p.nextCursor ? html`<a href="${href('/console/audit', { ...keep, cursor: p.nextCursor })}" rel="next">${t('page.next')}</a>` : ''}
</nav>
${exportForm(v, f)}`;
    } catch (e) {
      if (!isAppError(e) || e.status >= 500) throw e;
      status = e.status;
      results = errorSummary(v, [errorMessage(v, e), ...errorProblems(e)]);
    }
    sendPage(res, status, page(v, { title: t('audit.title'), nav: 'audit', body: html`${searchForm(v, f)}${results}` }));
  });

  c.add('get', '/console/audit/export', 'audit:read', async (req, res) => {
    const f = formFilters(req.query);
    const format = field(req.query, 'format', 16);
    const stream = c.audit.export({ ...apiFilters(f), ...(format ? { format } : {}) }, principalOf(req));
    const iterator = stream.chunks[Symbol.asyncIterator]();
    // The first chunk (header line) is read before any header is sent, so a refused query still gets an error page.
    const first = await iterator.next();
    res.status(200);
    res.setHeader('Content-Type', stream.contentType);
    res.setHeader('Content-Disposition', `attachment; filename="${stream.filename}"`);
    res.setHeader('Cache-Control', 'no-store');
    if (!first.done) res.write(first.value);
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      if (!res.write(r.value)) await once(res, 'drain');
    }
    res.end();
  });

  const verifyPage = async (v: View, ran: Html | null): Promise<string> => {
    const { t } = v;
    const [cp, last] = await Promise.all([c.audit.latestCheckpoint(), c.audit.lastVerification()]);
    const checkpoint = cp
      ? html`<dl class="facts">
<dt>${t('verify.cpSeq')}</dt><dd>${cp.checkpoint.seq}</dd>
<dt>${t('verify.cpHash')}</dt><dd><code>${cp.checkpoint.hash}</code></dd>
<dt>${t('verify.cpSignedAt')}</dt><dd>${cp.checkpoint.signedAt}</dd>
<dt>${t('verify.cpKey')}</dt><dd><code>${cp.checkpoint.keyId}</code></dd>
<dt>${t('verify.cpSignature')}</dt><dd>${cp.signatureValid ? html`<span class="badge state-valid" data-signature="valid">${t('verify.cpValid')}</span>` : html`<span class="badge state-revoked" data-signature="invalid">${t('verify.cpInvalid')}</span>`}</dd>
</dl>`
      : html`<p>${t('verify.cpNone')}</p>`;
    const lastText = last
      ? t('verify.last', {
          result: last.ok ? t('verify.lastOk') : `${t('verify.lastBroken')} (${last.code ?? '?'} @ ${last.brokenSeq ?? '?'})`,
          time: formatTime(last.time),
          actor: last.actor,
        })
      : t('verify.never');
    const body = html`${ran ?? ''}
<h2>${t('verify.status')}</h2>
<p id="last-verification">${lastText}</p>
<form method="post" action="/console/audit/verify">${csrfField(v)}<button type="submit">${t('verify.run')}</button></form>
<h2>${t('verify.checkpoint')}</h2>
${checkpoint}
<h2>${t('verify.publicKey')}</h2>
<pre>${c.audit.publicKeyPem}</pre>`;
    return page(v, { title: t('verify.title'), nav: 'verify', body });
  };

  c.add('get', '/console/audit/verify', 'audit:read', async (req, res) => {
    const v = c.view(req, res);
    sendPage(res, 200, await verifyPage(v, null));
  });

  c.add('post', '/console/audit/verify', 'audit:read', ...c.form(), async (req, res) => {
    const v = c.view(req, res);
    const { t } = v;
    const r = await c.audit.verify(principalOf(req));
    const text = r.ok
      ? r.checked === 0
        ? t('verify.empty')
        : t('verify.ok', { checked: r.checked, from: r.fromSeq ?? 0, to: r.toSeq ?? 0 })
      : t('verify.broken', { seq: r.brokenSeq ?? '?', code: r.code });
    const extra = r.ok && r.uncoveredTail > 0 ? html`<p>${t('verify.uncovered', { n: r.uncoveredTail })}</p>` : '';
    const ran = html`<div class="notice ${r.ok ? 'notice-ok' : 'notice-error'}" role="${r.ok ? 'status' : 'alert'}" data-verify="${r.ok ? 'ok' : 'broken'}"><p>${text}</p>${extra}${r.ok ? '' : html`<p>${r.message}</p>`}</div>`;
    // The request succeeded whatever the chain's state; the page says what was found.
    sendPage(res, 200, await verifyPage(v, ran));
  });
}
