/** Headless Chromium for dashboard tests: Debian's chromium (or CHROMIUM_PATH), one line when missing. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { buildServer } from '../../api/server.js';
import type { Platform } from '../../engine/platform.js';

function runnable(f: string): boolean {
  try {
    accessSync(f, constants.X_OK);
    return statSync(f).isFile();
  } catch {
    return false;
  }
}

/** The Chromium executable; throws one line naming what to install when there is none. */
export function findChromium(): string {
  const env = process.env.CHROMIUM_PATH;
  if (env) {
    if (runnable(env)) return env;
    throw new Error(`dashboard tests: CHROMIUM_PATH=${env} is not an executable file`);
  }
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && runnable(join(dir, name))) return join(dir, name);
  }
  throw new Error("dashboard tests need Debian's chromium: apt-get install chromium (or set CHROMIUM_PATH)");
}

/** Launches headless Chromium with no background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The API server (with its dashboard) on 127.0.0.1 and headless Chromium, for a dashboard test file. */
export interface ServedDashboard {
  base: string;
  browser: Browser;
  /** Closes the browser, the server and the platform. */
  close(): Promise<void>;
}

/** Serves `platform` through the API server on a free port and launches Chromium. */
export async function serveDashboard(platform: Platform, opts?: Parameters<typeof buildServer>[1]): Promise<ServedDashboard> {
  const app = await buildServer(platform, opts);
  try {
    const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');
    const browser = await launchChromium();
    return {
      base,
      browser,
      async close() {
        await browser.close();
        await app.close();
        await platform.close();
      },
    };
  } catch (err) {
    await app.close();
    throw err;
  }
}
