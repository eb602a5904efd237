/**
 * @module
 * Minimal JSON-lines logging to stdout/stderr (one object per line, for CloudWatch and friends).
 */
export type LogFields = Record<string, unknown>;

export function log(level: 'info' | 'warn' | 'error', msg: string, fields: LogFields = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
  if (level === 'info') console.log(line);
  else console.error(line);
}

/** Logs an error at most once per `windowMs` for one `source` (a down Redis reports every reconnect). */
export function throttledErrorLog(source: string, windowMs = 10_000): (error: unknown) => void {
  let last = 0;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < windowMs) {
      suppressed += 1;
      return;
    }
    log('error', `${source} error`, { error: error instanceof Error ? error.message : String(error), suppressed });
    last = now;
    suppressed = 0;
  };
}
