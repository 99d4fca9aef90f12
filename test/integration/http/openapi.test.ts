import request from 'supertest';
import { toOpenApiPath } from '../../../src/http/route-table';
import { buildTestApp, type TestApp } from '../../helpers/build-app';

describe('OpenAPI document', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await buildTestApp();
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('is an OpenAPI 3.1 document served at /v1/openapi.json', async () => {
    const res = await request(t.app).get('/v1/openapi.json').expect(200);
    expect(res.body.openapi).toBe('3.1.0');
  });

  it('describes every route the app serves (fails when a route is missing from openapi.yaml)', async () => {
    const doc = (await request(t.app).get('/v1/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    expect(t.app.routes.routes.length).toBeGreaterThan(3);
    const missing = t.app.routes.routes
      .filter((r) => !doc.paths[toOpenApiPath(r.path)]?.[r.method])
      .map((r) => `${r.method.toUpperCase()} ${toOpenApiPath(r.path)}`);
    expect(missing).toEqual([]);
  });

  it('documents no route the app does not serve', async () => {
    const doc = (await request(t.app).get('/v1/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const served = new Set(t.app.routes.routes.map((r) => `${r.method} ${toOpenApiPath(r.path)}`));
    const methods = ['get', 'post', 'put', 'patch', 'delete'];
    const extra = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops)
        .filter((m) => methods.includes(m))
        .filter((m) => !served.has(`${m} ${p}`))
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(extra).toEqual([]);
  });
});
