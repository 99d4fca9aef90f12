import request from 'supertest';
import { ENROLLMENT_PATHS } from '../../../src/enrollment/protocol';
import { buildTestApp, type TestApp } from '../../helpers/build-app';

describe('enrollment endpoints are rate-limited per client address', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { DEVICEGATE_ENROLLMENT__REQUESTS_PER_MINUTE_PER_ADDRESS: '5' } });
  });
  afterAll(async () => t.cleanup());

  it('answers 429 RATE_LIMITED with Retry-After once an address exceeds its budget (token guessing)', async () => {
    const body = { deviceId: '00000000-0000-4000-8000-000000000000', token: `et_${'A'.repeat(43)}`, akPublic: 'AAAA', ekPublic: 'AAAA' };
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await request(t.app).post(ENROLLMENT_PATHS.start).send(body)).status);
    expect(statuses.slice(0, 5).every((s) => s === 403)).toBe(true);
    const limited = await request(t.app).post(ENROLLMENT_PATHS.start).send(body);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(limited.headers['retry-after']).toBe('60');
    t.clock.advance(60_000);
    expect((await request(t.app).post(ENROLLMENT_PATHS.start).send(body)).status).toBe(403);
  });
});
