/**
 * @module
 * Debian's Chromium for the browser tests, driven by playwright-core: whether it is here (missing, a test
 * file fails under CI and says loudly elsewhere that it skipped), and a browser over a fresh profile.
 * `CHROMIUM` names another binary.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** How long one browser step may take. */
export const STEP_MS = 30_000;

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Whether Chromium is here; throws under CI when it is not (a suite whose browser is missing fails there). */
export function chromiumPresent(): boolean {
  const present = existsSync(CHROMIUM);
  if (!present && (process.env.CI === 'true' || process.env.CI === '1')) {
    throw new Error(`CI: the browser test needs Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`);
  }
  if (!present)
    console.warn(`\n*** SKIPPED: the browser test needs Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM). ***\n`);
  return present;
}

export interface Browser {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Chromium over a fresh profile under the temporary folder (`name` tells whose). */
export async function openBrowser(name: string): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), `${name}-chromium-`));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      timeout: STEP_MS,
    });
    context.setDefaultTimeout(STEP_MS);
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}
