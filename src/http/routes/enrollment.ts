import { Router, type Request } from 'express';
import { ENROLLMENT_PATHS } from '../../enrollment/protocol';
import type { Clock } from '../../lib/clock';
import type { EnrollmentService, Peer } from '../../services/enrollment';
import type { RateLimitStore } from '../../store/types';
import { maxBody, rateLimitByIp } from '../middleware/limits';
import type { RouteTable } from '../route-table';

const peerOf = (req: Request): Peer => ({ ip: req.ip ? req.ip.replace(/^::ffff:/, '') : null });

/**
 * The device-facing enrollment protocol (src/enrollment/protocol.ts). Public routes: the proof is in the body (the
 * one-time token and the TPM evidence, or for renewal a Certify by the recorded AK). Rate-limited per address.
 */
export function enrollmentRoutes(
  table: RouteTable,
  enrollment: EnrollmentService,
  deps: { rateLimits: RateLimitStore; clock: Clock; maxRequestBytes: number; perMinute: number },
): Router {
  const router = Router();
  const guard = [maxBody(deps.maxRequestBytes), rateLimitByIp(deps.rateLimits, deps.clock, 'enroll', deps.perMinute)];
  table.add(router, '', { method: 'post', path: ENROLLMENT_PATHS.start, access: 'public' }, ...guard, async (req, res) => {
    res.json(await enrollment.start(req.body, peerOf(req)));
  });
  table.add(router, '', { method: 'post', path: ENROLLMENT_PATHS.finish, access: 'public' }, ...guard, async (req, res) => {
    res.status(201).json(await enrollment.finish(req.body, peerOf(req)));
  });
  table.add(router, '', { method: 'post', path: ENROLLMENT_PATHS.renewStart, access: 'public' }, ...guard, async (req, res) => {
    res.json(await enrollment.renewStart(req.body, peerOf(req)));
  });
  table.add(router, '', { method: 'post', path: ENROLLMENT_PATHS.renewFinish, access: 'public' }, ...guard, async (req, res) => {
    res.status(201).json(await enrollment.renewFinish(req.body, peerOf(req)));
  });
  return router;
}
