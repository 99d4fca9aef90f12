import { decisionsConfigSchema } from '../../../src/config/sections/decisions';
import { PLATFORMS } from '../../../src/domain/types';
import { policyFromConfig } from '../../../src/policy/policy';

describe('decisions config section → policy', () => {
  it('fills every key with a default from an empty section', () => {
    const c = decisionsConfigSchema.parse(undefined);
    expect(c).toEqual({
      ttlSeconds: 3600,
      policyVersion: '1',
      allowedPlatforms: [...PLATFORMS],
      usernameRule: 'not_checked',
      maxCertificateAgeSeconds: null,
      decisionDeadlineMs: 2000,
      posture: { mode: 'observe' },
    });
  });

  it('builds a frozen policy from the section', () => {
    const p = policyFromConfig(
      decisionsConfigSchema.parse({ allowedPlatforms: ['windows'], usernameRule: 'owner', maxCertificateAgeSeconds: 86400, policyVersion: '2026-11-26.3' }),
    );
    expect(p).toEqual({ version: '2026-11-26.3', allowedPlatforms: ['windows'], usernameRule: 'owner', maxCertificateAgeSeconds: 86400, ttlSeconds: 3600 });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.allowedPlatforms)).toBe(true);
  });

  it.each([
    ['an unknown platform', { allowedPlatforms: ['amiga'] }],
    ['an empty platform list (would deny everyone silently)', { allowedPlatforms: [] }],
    ['an unknown username rule', { usernameRule: 'anyone' }],
    ['a zero max age', { maxCertificateAgeSeconds: 0 }],
    ['a negative ttl', { ttlSeconds: -1 }],
    ['a deadline below 50 ms', { decisionDeadlineMs: 10 }],
    ['a posture mode that would enforce', { posture: { mode: 'enforce' } }],
  ])('rejects %s', (_label, input) => {
    expect(decisionsConfigSchema.safeParse(input).success).toBe(false);
  });

  it('documents every key', () => {
    const shape = decisionsConfigSchema.unwrap().shape as Record<string, { description?: string }>;
    for (const [key, schema] of Object.entries(shape)) expect([key, typeof schema.description]).toEqual([key, 'string']);
  });
});
