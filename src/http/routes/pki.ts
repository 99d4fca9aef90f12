import express, { Router } from 'express';
import { parseRevocationReason, type PkiService } from '../../services/pki';
import { principalOf, queryEnum } from '../params';
import type { RouteTable } from '../route-table';

const OCSP_TYPE = 'application/ocsp-response';

/**
 * Public PKI endpoints (CRL, OCSP, chain: concentrators and devices fetch them without credentials) and IT's
 * certificate revocation.
 */
export function pkiRoutes(table: RouteTable, pki: PkiService, options: { ocspMaxRequestBytes: number }): Router {
  const router = Router();

  table.add(router, '', { method: 'get', path: '/v1/crl', access: 'public' }, async (req, res) => {
    const format = queryEnum(req.query, 'format', ['der', 'pem'] as const) ?? 'der';
    const crl = await pki.crl();
    // Caches (proxies, concentrators) may keep it until the CRL's own nextUpdate.
    res.setHeader('Cache-Control', `public, max-age=${Math.max(0, Math.floor((crl.nextUpdateMs - Date.now()) / 1000))}`);
    if (format === 'pem') res.type('application/x-pem-file').send(crl.pem);
    else res.type('application/pkix-crl').send(crl.der);
  });

  table.add(router, '', { method: 'get', path: '/v1/ca/chain', access: 'public' }, (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.type('application/x-pem-file').send(pki.ca.chainPem);
  });

  table.add(
    router,
    '',
    { method: 'post', path: '/v1/ocsp', access: 'public' },
    express.raw({ type: () => true, limit: options.ocspMaxRequestBytes }),
    async (req, res) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = await pki.ocspRespond(body);
      res.status(200).type(OCSP_TYPE).send(result.der);
    },
  );

  // RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}; base64 may contain '/'.
  table.add(router, '', { method: 'get', path: '/v1/ocsp/*request', access: 'public' }, async (req, res) => {
    const raw = req.originalUrl.slice(req.originalUrl.indexOf('/v1/ocsp/') + '/v1/ocsp/'.length).split('?')[0] ?? '';
    res.status(200).type(OCSP_TYPE).send(await pki.ocspRespondGet(raw, options.ocspMaxRequestBytes));
  });

  table.add(router, '', { method: 'post', path: '/v1/certificates/:serial/revoke', access: 'certificates:revoke' }, async (req, res) => {
    const body = (req.body ?? {}) as { reason?: unknown };
    const cert = await pki.revokeSerial(String(req.params.serial), parseRevocationReason(body.reason), principalOf(req));
    res.json({ serial_hex: cert.serialHex, device_id: cert.deviceId, revoked: true });
  });

  return router;
}
