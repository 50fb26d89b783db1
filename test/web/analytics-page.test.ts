import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { simulateRun } from '../analytics/runs.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { launchChromium } from '../support/browser.js';
import { silentLog, startServer } from '../support/service.js';
import { until } from '../support/wait.js';

const ARTIFACTS = process.env.SCREENSHOT_DIR ?? 'test/artifacts';
const prefix = uniquePrefix();
let browser: Browser;
let service: Service;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [browser, service] = await Promise.all([launchChromium(), startServer({ REDIS_KEY_PREFIX: prefix, SNAPSHOT_INTERVAL_MS: '60000' })]);
  // Twelve runs over the last hours, skewed step times, two failed: history for the model and the charts.
  const worker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600, log: silentLog, timeoutMs: 2_000 });
  try {
    await worker.ready(5_000);
    const now = Date.now();
    for (let i = 0; i < 12; i++) {
      let previous: BookProgress | null = null;
      const shape = { chapters: 3 + (i % 4), sections: 2, stepMs: 3_000 + ((i * 7_919) % 5_000), sectionMs: 1_500 + ((i * 3_571) % 1_000), start: now - (12 - i) * 1_500_000, ...(i % 6 === 5 ? { failAtChapter: 2 } : {}) };
      for (const state of simulateRun(`chart-${i}-${now}`, shape)) {
        await worker.commit(state, previous?.version ?? null);
        previous = state;
      }
    }
  } finally {
    await worker.close();
  }
  await until(async () => {
    await service.timelines.flush();
    return ((await service.eta.refresh())?.runs ?? 0) >= 10;
  }, 10_000, 'the runs recorded and learned from');
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

describe('the /analytics page in Chromium', () => {
  it('draws the three charts under the dashboard CSP, without violations', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    try {
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.addInitScript(() => {
        const violations: string[] = [];
        (window as unknown as { violations: string[] }).violations = violations;
        document.addEventListener('securitypolicyviolation', (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
      });
      const res = await page.goto(`${service.url}/analytics`);
      expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
      await page.locator('body[data-analytics=ready]').waitFor({ timeout: 15_000 });
      expect(await page.locator('#figures').innerText()).toMatch(/Started\s+12/);
      // Each chart is a canvas with something drawn on it (not blank).
      for (const id of ['steps-chart', 'runs-chart', 'eta-chart']) {
        const inked = await page.evaluate((slot) => {
          const canvas = document.querySelector<HTMLCanvasElement>(`#${slot} canvas`);
          if (!canvas) return -1;
          const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
          let colored = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i + 3]! > 0 && Math.max(Math.abs(data[i]! - data[i + 1]!), Math.abs(data[i + 1]! - data[i + 2]!)) > 40) colored++;
          return colored;
        }, id);
        expect(inked, `${id} has colored pixels`).toBeGreaterThan(200);
      }
      await page.locator('#window button[data-days="7"]').click();
      await page.locator('body[data-analytics=ready]').waitFor();
      await page.screenshot({ path: `${ARTIFACTS}/analytics-1280.png`, fullPage: true });
      expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('fits a phone\'s 390 px without sideways scroll', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 860 } });
    try {
      await page.goto(`${service.url}/analytics`);
      await page.locator('body[data-analytics=ready]').waitFor({ timeout: 15_000 });
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.screenshot({ path: `${ARTIFACTS}/analytics-390.png`, fullPage: true });
    } finally {
      await page.close();
    }
  });
});
