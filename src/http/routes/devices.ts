import express, { Router } from 'express';
import { badRequest } from '../../domain/errors';
import { DEVICE_STATUSES, PLATFORMS } from '../../domain/types';
import { isUuid } from '../../lib/ids';
import { deviceToApi, type DeviceRegistry } from '../../services/registry';
import { principalOf, queryBool, queryEnum, queryLimit, queryString } from '../params';
import type { RouteTable } from '../route-table';

/** IT's inventory API: register, list, read, update, change status, retire, import, enrollment tokens. */
export function deviceRoutes(table: RouteTable, registry: DeviceRegistry, options: { importBodyLimitBytes: number }): Router {
  const router = Router();
  const id = (raw: string | string[] | undefined): string => {
    if (typeof raw !== 'string' || !isUuid(raw)) throw badRequest('INVALID_DEVICE_ID', 'The device id must be a UUID.');
    return raw;
  };

  table.add(router, '', { method: 'post', path: '/v1/devices', access: 'devices:write' }, async (req, res) => {
    const device = await registry.register(req.body, principalOf(req));
    res.status(201).location(`/v1/devices/${device.id}`).json(deviceToApi(device));
  });

  table.add(router, '', { method: 'get', path: '/v1/devices', access: 'devices:read' }, async (req, res) => {
    const page = await registry.list(
      {
        status: queryEnum(req.query, 'status', DEVICE_STATUSES),
        platform: queryEnum(req.query, 'platform', PLATFORMS),
        owner: queryString(req.query, 'owner'),
        department: queryString(req.query, 'department'),
        search: queryString(req.query, 'q'),
      },
      { cursor: queryString(req.query, 'cursor') ?? null, limit: queryLimit(req.query) },
    );
    res.json({ items: page.items.map(deviceToApi), next_cursor: page.nextCursor });
  });

  table.add(
    router,
    '',
    { method: 'post', path: '/v1/devices/import', access: 'devices:write' },
    express.text({ type: ['text/csv', 'text/plain'], limit: options.importBodyLimitBytes }),
    async (req, res) => {
      if (typeof req.body !== 'string') {
        throw badRequest('UNSUPPORTED_MEDIA_TYPE', 'Send the inventory as text/csv.');
      }
      const report = await registry.importCsv(req.body, { dryRun: queryBool(req.query, 'dry_run') }, principalOf(req));
      res.status(report.dry_run ? 200 : 201).json(report);
    },
  );

  table.add(router, '', { method: 'get', path: '/v1/devices/:id', access: 'devices:read' }, async (req, res) => {
    res.json(deviceToApi(await registry.get(id(req.params.id))));
  });

  table.add(router, '', { method: 'patch', path: '/v1/devices/:id', access: 'devices:write' }, async (req, res) => {
    res.json(deviceToApi(await registry.update(id(req.params.id), req.body, principalOf(req))));
  });

  table.add(router, '', { method: 'delete', path: '/v1/devices/:id', access: 'devices:write' }, async (req, res) => {
    const device = await registry.retire(id(req.params.id), principalOf(req), queryString(req.query, 'reason') ?? null);
    res.json(deviceToApi(device));
  });

  table.add(router, '', { method: 'post', path: '/v1/devices/:id/status', access: 'devices:write' }, async (req, res) => {
    res.json(deviceToApi(await registry.changeStatus(id(req.params.id), req.body, principalOf(req))));
  });

  table.add(
    router,
    '',
    { method: 'post', path: '/v1/devices/:id/enrollment-tokens', access: 'tokens:manage' },
    async (req, res) => {
      const body = (req.body ?? {}) as { ttl_seconds?: unknown };
      if (body.ttl_seconds !== undefined && typeof body.ttl_seconds !== 'number') {
        throw badRequest('INVALID_TTL', 'ttl_seconds must be a number.');
      }
      const t = await registry.createEnrollmentToken(id(req.params.id), { ttlSeconds: body.ttl_seconds }, principalOf(req));
      res.status(201).json({ token: t.token, device_id: t.deviceId, expires_at: new Date(t.expiresAt).toISOString() });
    },
  );

  return router;
}
