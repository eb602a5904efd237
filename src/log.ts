/**
 * @module
 * Logging: pino JSON lines on stdout (CloudWatch reads one object per line), human-readable only when
 * stdout is a terminal and pino-pretty is installed (development). `LOG_LEVEL` sets the level.
 */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * @example createLogger('info', 'api').info({ port: 8000 }, 'listening')
 */
export function createLogger(level: string, role: 'api' | 'worker' | 'test' = 'api'): Logger {
  const pretty = process.stdout.isTTY && prettyAvailable();
  return pino({
    level,
    base: { service: 'image-service', role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}

/** A logger that writes nothing (tests, and callers that were given none). */
export const silentLogger: Logger = pino({ level: 'silent' });

/** Logs an error at most once per `windowMs` for one `source` (a down Redis reports every reconnect). */
export function throttledErrorLog(logger: Logger, source: string, windowMs = 10_000): (error: unknown) => void {
  let last = 0;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < windowMs) {
      suppressed += 1;
      return;
    }
    logger.error({ source, err: error instanceof Error ? error.message : String(error), suppressed }, `${source} error`);
    last = now;
    suppressed = 0;
  };
}
