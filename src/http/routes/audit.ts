import { once } from 'node:events';
import { Router } from 'express';
import { parseAuditVerifyQuery } from '../../audit/query';
import type { AuditAccessService } from '../../services/audit-access';
import { principalOf } from '../params';
import type { RouteTable } from '../route-table';

/**
 * The auditor API (permission `audit:read`: auditors; it-admin only with `audit.itAdminMayReadRawLogs`). Read-only by
 * construction: there is no route that modifies or deletes an audit entry.
 */
export function auditRoutes(table: RouteTable, access: AuditAccessService): Router {
  const router = Router();

  table.add(router, '', { method: 'get', path: '/v1/audit/events', access: 'audit:read' }, async (req, res) => {
    res.json(await access.searchApi(req.query));
  });

  // Streamed with chunked transfer encoding (no Content-Length) and constant memory; the last line is the signed
  // trailer, written only after the export itself was audited, so a cut-off download fails offline verification.
  table.add(router, '', { method: 'get', path: '/v1/audit/export', access: 'audit:read' }, async (req, res) => {
    const exp = access.export(req.query, principalOf(req));
    const iterator = exp.chunks[Symbol.asyncIterator]();
    // Fetch the first chunk before committing to a 200, so bad parameters or an unavailable store still get a JSON
    // error instead of a broken stream.
    const first = await iterator.next();
    res.status(200);
    res.setHeader('Content-Type', `${exp.contentType}; charset=utf-8`);
    res.setHeader('Content-Disposition', `attachment; filename="${exp.filename}"`);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    try {
      for (let r = first; !r.done; r = await iterator.next()) {
        if (!res.write(r.value)) await once(res, 'drain');
        if (res.destroyed) return;
      }
      res.end();
    } catch (err) {
      // Headers are out: the only honest signal left is an incomplete response (no trailer line).
      req.log?.error({ err }, 'audit export failed mid-stream');
      res.destroy();
    }
  });

  table.add(router, '', { method: 'get', path: '/v1/audit/verify', access: 'audit:read' }, async (req, res) => {
    const range = parseAuditVerifyQuery(req.query);
    const r = await access.verify(principalOf(req), range);
    res.json(
      r.ok
        ? {
            ok: true,
            checked: r.checked,
            from_seq: r.fromSeq,
            to_seq: r.toSeq,
            start_anchor: r.startAnchor,
            checkpoints: r.checkpoints,
            last_checkpoint_seq: r.lastCheckpointSeq,
            uncovered_tail: r.uncoveredTail,
          }
        : { ok: false, checked: r.checked, from_seq: r.fromSeq, to_seq: r.toSeq, broken_seq: r.brokenSeq, code: r.code, reason: r.message },
    );
  });

  table.add(router, '', { method: 'get', path: '/v1/audit/public-key', access: 'audit:read' }, (_req, res) => {
    res.type('application/x-pem-file').send(access.publicKeyPem);
  });

  return router;
}
