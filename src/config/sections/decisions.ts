import { z } from 'zod';
import { PLATFORMS } from '../../domain/types';

/** `decisions`: the connection-time policy (src/policy) and concentrator adapters. */
export const decisionsConfigSchema = z
  .object({
    ttlSeconds: z
      .number()
      .int()
      .min(0)
      .default(3600)
      .describe('How long a concentrator may rely on an allow before asking again (`ttl_seconds`); capped at the certificate expiry.'),
    policyVersion: z
      .string()
      .min(1)
      .max(128)
      .default('1')
      .describe('Version label of this policy, echoed as `policy_version` in every decision and audit entry. Change it whenever the policy changes.'),
    allowedPlatforms: z
      .array(z.enum(PLATFORMS))
      .min(1)
      .default([...PLATFORMS])
      .describe(`Device platforms allowed to connect; a device of any other platform is denied with PLATFORM_NOT_ALLOWED. One or more of: ${PLATFORMS.join(', ')}.`),
    usernameRule: z
      .enum(['not_checked', 'owner', 'department'])
      .default('not_checked')
      .describe(
        'How the connecting username must relate to the device: `not_checked` (certificate-only clients), `owner` (must equal the device owner, case-insensitive), `department` (the user must belong to the device department). With `owner`/`department` a client that sends no username is denied with USER_NOT_ALLOWED.',
      ),
    maxCertificateAgeSeconds: z
      .number()
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe('Deny certificates issued longer ago than this (CERT_TOO_OLD), forcing regular re-attestation; null = only the certificate expiry applies.'),
    decisionDeadlineMs: z
      .number()
      .int()
      .min(50)
      .max(30000)
      .default(2000)
      .describe('Time budget of one decision (fact gathering included); when it passes the answer is a deny with INTERNAL_ERROR. Keep it below the adapters\' own deadline.'),
    posture: z
      .object({
        mode: z
          .enum(['off', 'observe'])
          .default('observe')
          .describe('`observe`: posture signals, when present, are recorded with the decision but deny nothing (enforcement comes with the posture issue); `off`: ignored.'),
      })
      .prefault({})
      .describe('Posture signals (typed slot; never denies yet).'),
  })
  .prefault({})
  .describe('Connection-time decisions.');

export type DecisionsConfig = z.infer<typeof decisionsConfigSchema>;
