/**
 * Screenshots checked into the test folder (test/screenshots/): a fresh one is compared with the
 * committed one in Chromium itself (both decoded on a canvas), pixel by pixel with a tolerance.
 * On a mismatch, or when none is committed yet, the fresh one is written next to it as
 * `<name>.new.png` for review (UPDATE_SCREENSHOTS=1 writes it over the committed one instead).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';

export const SCREENSHOT_DIR = join(import.meta.dirname, '..', 'screenshots');

/** A pixel differs when its R, G and B differ by more than this in sum (anti-aliasing noise stays below). */
const CHANNEL_TOLERANCE = 48;

export interface ScreenshotDiff {
  /** Why it does not match, or null when it does. */
  mismatch: string | null;
  /** Share of differing pixels (1 when the sizes differ). */
  ratio: number;
}

/** Compares two PNGs in a blank page of `browser`: the share of pixels that differ. */
export async function comparePngs(browser: Browser, a: Buffer, b: Buffer): Promise<{ ratio: number; sizes: string }> {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    return await page.evaluate(
      async ([x, y, tolerance]) => {
        const load = (src: string) =>
          new Promise<HTMLImageElement>((res, rej) => {
            const img = new Image();
            img.onload = () => res(img);
            img.onerror = () => rej(new Error('not a PNG'));
            img.src = src;
          });
        const pixels = (img: HTMLImageElement) => {
          const c = document.createElement('canvas');
          c.width = img.naturalWidth;
          c.height = img.naturalHeight;
          const g = c.getContext('2d')!;
          g.drawImage(img, 0, 0);
          return g.getImageData(0, 0, c.width, c.height).data;
        };
        const [i, j] = await Promise.all([load(x as string), load(y as string)]);
        const sizes = `${i.naturalWidth}×${i.naturalHeight} vs ${j.naturalWidth}×${j.naturalHeight}`;
        if (i.naturalWidth !== j.naturalWidth || i.naturalHeight !== j.naturalHeight) return { ratio: 1, sizes };
        const p = pixels(i);
        const q = pixels(j);
        let diff = 0;
        for (let k = 0; k < p.length; k += 4) {
          if (Math.abs(p[k]! - q[k]!) + Math.abs(p[k + 1]! - q[k + 1]!) + Math.abs(p[k + 2]! - q[k + 2]!) > (tolerance as number)) diff++;
        }
        return { ratio: diff / (p.length / 4), sizes };
      },
      [`data:image/png;base64,${a.toString('base64')}`, `data:image/png;base64,${b.toString('base64')}`, CHANNEL_TOLERANCE] as const,
    );
  } finally {
    await ctx.close();
  }
}

/**
 * Checks `fresh` against the committed `test/screenshots/<name>.png`: at most `maxRatio` of the
 * pixels may differ.
 */
export async function matchScreenshot(browser: Browser, name: string, fresh: Buffer, maxRatio = 0.005): Promise<ScreenshotDiff> {
  const committed = join(SCREENSHOT_DIR, `${name}.png`);
  const review = join(SCREENSHOT_DIR, `${name}.new.png`);
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    writeFileSync(committed, fresh);
    return { mismatch: null, ratio: 0 };
  }
  if (!existsSync(committed)) {
    writeFileSync(review, fresh);
    return { mismatch: `no committed ${committed}: the fresh one is in ${review} for review`, ratio: 1 };
  }
  const { ratio, sizes } = await comparePngs(browser, readFileSync(committed), fresh);
  if (ratio <= maxRatio) return { mismatch: null, ratio };
  writeFileSync(review, fresh);
  return { mismatch: `${name}: ${(ratio * 100).toFixed(2)}% of the pixels differ (${sizes}); the fresh one is in ${review} for review`, ratio };
}
