import type { RequestHandler } from 'express';
import { AppError } from '../../domain/errors';
import type { Clock } from '../../lib/clock';
import type { RateLimitStore } from '../../store/types';

/** 413 when the declared body is larger than `maxBytes` (routes with a tighter limit than the app-wide parser). */
export function maxBody(maxBytes: number): RequestHandler {
  return (req, _res, next) => {
    const len = Number(req.headers['content-length'] ?? 0);
    if (len > maxBytes) next(new AppError('payload_too_large', 'PAYLOAD_TOO_LARGE', 'The request body is too large.'));
    else next();
  };
}

/**
 * Fixed-window rate limit per client address, counted in the store so every gateway instance shares the budget.
 * Fails open on a store outage only in the sense that the request then fails anyway on its own store access.
 */
export function rateLimitByIp(store: RateLimitStore, clock: Clock, name: string, perMinute: number): RequestHandler {
  return (req, res, next) => {
    const key = `${name}:${req.ip ?? 'unknown'}`;
    store
      .hit(key, 60_000, clock.nowMs())
      .then((n) => {
        if (n > perMinute) {
          res.setHeader('Retry-After', '60');
          next(new AppError('rate_limited', 'RATE_LIMITED', 'Too many requests from this address; try again in a minute.'));
        } else next();
      })
      .catch(next);
  };
}
