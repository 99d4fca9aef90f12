import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that may carry secrets anywhere in a log object. Tokens, passwords, private keys and cookies are replaced
 * before the line is written, whatever code logged them.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.token',
  '*.password',
  '*.secret',
  '*.privateKey',
  '*.passphrase',
  '*.activatedSecret',
  'token',
  'password',
  'secret',
];

/** Structured JSON logs on stdout (pino). */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'devicegate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
