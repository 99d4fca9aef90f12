/**
 * The adapters' logger: one JSON object per line on stderr (OpenVPN copies a hook's stderr into its own log; the
 * management daemon runs under systemd/journald). Kept dependency-free so a hook process starts fast.
 */
export interface AdapterLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A logger writing JSON lines to `write` (default: stderr). Never throws. */
export function jsonLineLogger(component: string, write: (line: string) => void = (l) => process.stderr.write(l)): AdapterLogger {
  const emit = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    try {
      write(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields })}\n`);
    } catch {
      // logging must never take the adapter down
    }
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: AdapterLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
