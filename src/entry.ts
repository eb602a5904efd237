/**
 * @module
 * What both entry points share: reading the configuration (one clear line and exit 1 when it is bad) and
 * a clean stop on SIGTERM/SIGINT.
 */
import { existsSync } from 'node:fs';
import { ConfigError, loadConfig, type Config } from './config.js';
import type { Logger } from './log.js';

export function readConfigOrExit(): Config {
  if (existsSync('.env')) process.loadEnvFile('.env');
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
}

/** Calls `stop` once on the first SIGTERM or SIGINT, then exits 0. */
export function onStopSignal(logger: Logger, stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    void stop(signal)
      .catch((error: unknown) => logger.error({ err: String(error) }, 'error while stopping'))
      .finally(() => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}
