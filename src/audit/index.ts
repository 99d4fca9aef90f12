/**
 * The tamper-evident audit log. Import from here; the files behind it are: `events` (schema), `chain` (pure hash
 * chain + streaming verifier), `signing` (Ed25519 audit key), `audit-log` (durable appends with group commit and
 * spool), `export`/`verify` (auditor exports, server and offline verification), `retention`, `pseudonym`, `query`.
 */
export * from './events';
export * from './chain';
export * from './signing';
export * from './audit-log';
export * from './export';
export * from './verify';
export * from './retention';
export * from './pseudonym';
export * from './query';
export { Spool } from './spool';
