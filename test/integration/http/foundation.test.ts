import request from 'supertest';
import { buildTestApp, type TestApp } from '../../helpers/build-app';

describe('HTTP foundation', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await buildTestApp();
  });

  afterEach(async () => {
    await t.cleanup();
  });

  it('answers /healthz with 200 and a request id', async () => {
    const res = await request(t.app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps a plain caller-supplied request id and replaces an unsafe one', async () => {
    const kept = await request(t.app).get('/healthz').set('X-Request-Id', 'ovpn-42.7').expect(200);
    expect(kept.headers['x-request-id']).toBe('ovpn-42.7');
    const replaced = await request(t.app).get('/healthz').set('X-Request-Id', 'a\tb<script>').expect(200);
    expect(replaced.headers['x-request-id']).not.toContain('<');
  });

  it('answers /readyz 200 while the store answers and 503 once it is gone', async () => {
    const ok = await request(t.app).get('/readyz').expect(200);
    expect(ok.body).toMatchObject({ status: 'ready', store: { backend: 'sqlite', ok: true } });
    await t.store.close();
    const down = await request(t.app).get('/readyz').expect(503);
    expect(down.body).toMatchObject({ status: 'not_ready', store: { ok: false } });
  });

  it('gives unknown routes a JSON 404 with a code', async () => {
    const res = await request(t.app).get('/v1/nope').expect(404);
    expect(res.body.error).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect(res.headers['content-type']).toMatch(/application\/json/);
  });

  it('rejects malformed JSON with 400 INVALID_JSON and no stack trace', async () => {
    const res = await request(t.app)
      .post('/v1/nope')
      .set('Content-Type', 'application/json')
      .send('{"a": ')
      .expect(400);
    expect(res.body.error.code).toBe('INVALID_JSON');
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.js|SyntaxError/);
  });

  it('rejects an oversized body (1 MB) with 413 PAYLOAD_TOO_LARGE', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(1024 * 1024) });
    const res = await request(t.app).post('/v1/nope').set('Content-Type', 'application/json').send(big).expect(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('rejects a malformed bearer token with 401 and does not fall back to anonymous', async () => {
    const res = await request(t.app).get('/healthz').set('Authorization', 'Bearer not-a-token').expect(401);
    expect(res.body.error.code).toBe('INVALID_TOKEN');
    const basic = await request(t.app).get('/healthz').set('Authorization', 'Basic YTpi').expect(401);
    expect(basic.body.error.code).toBe('INVALID_AUTHORIZATION');
  });

  it('serves security headers on every response', async () => {
    const res = await request(t.app).get('/healthz');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('exposes Prometheus metrics with HTTP and store histograms from its own registry', async () => {
    await request(t.app).get('/readyz').expect(200);
    await t.store.nonces.put('k', 'v', 1000, Date.now());
    const res = await request(t.app).get('/metrics').expect(200);
    expect(res.text).toMatch(/devicegate_http_request_duration_seconds_count\{[^}]*route="\/readyz"[^}]*status="200"/);
    expect(res.text).toMatch(
      /devicegate_store_operation_duration_seconds_count\{[^}]*backend="sqlite",aggregate="nonces",operation="put",outcome="ok"/,
    );
  });
});
