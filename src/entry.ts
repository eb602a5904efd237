/**
 * @module
 * What both entry points share: reading the configuration (one clear line and exit 1 when it is bad), one
 * clear line and exit 1 when the API cannot listen, and a clean stop on SIGTERM/SIGINT.
 */
import { existsSync } from 'node:fs';
import type { Server } from 'node:net';
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

/**
 * The one line to print when listening on `host:port` fails with `error`, or undefined for an error that has
 * no plain explanation (it is then thrown as it is, stack and all).
 * @example listenFailure({ code: 'EADDRINUSE' }, '0.0.0.0', 8000) // 'port 8000 is in use (EADDRINUSE: ...'
 */
export function listenFailure(error: unknown, host: string, port: number): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return `port ${port} is in use (EADDRINUSE: another process listens there); set PORT to a free one`;
    case 'EACCES':
      return `port ${port} is privileged (EACCES: this process may not listen on it); set PORT to 1024 or above`;
    case 'EADDRNOTAVAIL':
      return `HOST ${host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, or 0.0.0.0 for all`;
    default:
      return undefined;
  }
}

/** Until `server` listens, a listen error it has a plain explanation for is printed as one line, then exit 1. */
export function exitOnListenError(server: Server, host: string, port: number): void {
  const onError = (error: unknown) => {
    const line = listenFailure(error, host, port);
    if (line === undefined) throw error;
    console.error(line);
    process.exit(1);
  };
  server.once('error', onError);
  server.once('listening', () => server.off('error', onError));
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
