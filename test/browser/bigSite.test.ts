/*
 * The portal for a site of 150 machines in 12 waves, as the real backend plans it from its
 * catalog: the card shows its verdict and its actions, a run's page every machine, and a run that
 * failed at wave 3 says its multi-line reason on its lines. (How long they take to render is for a
 * benchmark, not a test.) The run is the backend's own shape, served to the browser for
 * its page (route): no Docker engine boots 150 machines here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, BrowserContext, Page } from 'playwright-core';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import {
  buildApp,
  demoRecoveryConfig,
  RunningBackend,
  startBackend,
} from '../e2e/backend';
import { launchChromium, shownAsGuest } from './browser';
import { bigSiteCatalog, runOf } from './bigSiteRuns';

const SYSTEM = 'system:default/big-site';

describe('the portal with a site of 150 machines in 12 waves', () => {
  let dataDir: string;
  let backend: RunningBackend;
  let browser: Browser;
  let ctx: BrowserContext;
  let plan: BootPlan;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-bigsite-'));
    buildApp();
    const catalogFile = join(dataDir, 'catalog.yaml');
    writeFileSync(catalogFile, bigSiteCatalog());
    backend = await startBackend({
      dataDir,
      serveApp: true,
      config: demoRecoveryConfig(dataDir),
      catalogFile,
      readyEntity: SYSTEM,
    });
    // Ready once the catalog holds the whole site, not its first batch.
    for (let i = 0; i < 240; i++) {
      plan = (await backend.api('GET', '/plan/system/default/big-site')).body;
      if (plan.machines?.length === 150) break;
      await new Promise(r => setTimeout(r, 500));
    }
    if (plan.machines?.length !== 150 || plan.waves?.length !== 12)
      throw new Error(
        `the site planned as ${plan.machines?.length} machines in ${plan.waves?.length} waves, not 150 in 12`,
      );
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function open(page: Page, path: string, ready: string) {
    await page.goto(`${backend.baseUrl}${path}`);
    await shownAsGuest(page, page.locator(ready).first());
  }

  it('shows the card on the Recovery tab: its verdict (never captured: not recoverable) and its actions', async () => {
    const page = await ctx.newPage();
    await open(
      page,
      '/catalog/default/system/big-site/recovery',
      'text=Recovery readiness',
    );
    await page
      .getByRole('button', { name: /Run test recovery/ })
      .first()
      .waitFor({ timeout: 60_000 });
    expect(
      await page
        .locator('[data-testid="readiness-status"]')
        .first()
        .innerText(),
    ).toBe('Not recoverable');
    await page.close();
  });

  it('keeps the card short: 20 of the 150 captures at first, Run test recovery a few Tab presses in', async () => {
    const page = await ctx.newPage();
    await open(
      page,
      '/catalog/default/system/big-site/recovery',
      'text=Recovery readiness',
    );
    const runButton = page
      .getByRole('button', { name: /Run test recovery/ })
      .first();
    await runButton.waitFor({ timeout: 60_000 });
    const captures = page.getByRole('table', { name: 'Captures' }).first();
    const card = page
      .locator('.MuiCard-root')
      .filter({
        has: page.getByRole('heading', { name: 'Recovery readiness' }),
      })
      .first();
    const height = (await card.boundingBox())!.height;
    const waves = (await page
      .getByRole('group', { name: 'Boot waves' })
      .first()
      .boundingBox())!.height;
    const tableHeight = (await captures.boundingBox())!.height;
    // Said in the run's output, for the record: counts are asserted, not sizes.
    console.log(
      `the card of 150 machines: ${Math.round(height)} px tall (captures ${Math.round(tableHeight)}, waves ${Math.round(waves)})`,
    );
    const rows = await captures.locator('tbody tr').count();

    // From the card's title, the Tab presses to its Run test recovery: past the 20 machines shown
    // and the toggle, not past 150 machine links.
    await page
      .getByRole('heading', { name: 'Recovery readiness' })
      .first()
      .click();
    let presses = 0;
    for (; presses < 400; presses++) {
      if (await runButton.evaluate(b => b === document.activeElement)) break;
      await page.keyboard.press('Tab');
    }
    console.log(`Tab presses to Run test recovery: ${presses}`);
    expect(rows).toBe(20);
    expect(presses).toBeLessThanOrEqual(30);

    const toggle = page.getByRole('button', { name: 'Show all 150 machines' });
    await toggle.click();
    expect(await captures.locator('tbody tr').count()).toBe(150);
    await page.close();
  });

  it("shows a run that failed at wave 3: every machine, its reason's lines as lines", async () => {
    const run = runOf(plan, SYSTEM, {
      id: 'run-failed-1',
      status: 'failed',
      upToWave: 2,
      failAtWave: 2,
    });
    const page = await ctx.newPage();
    await page.route(/\/api\/recovery\/runs\/run-failed-1$/, r =>
      r.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify(run),
      }),
    );
    await open(page, '/recovery/runs/run-failed-1', 'text=Recovery failed');
    await page
      .locator('[data-testid^="run-machine-"]')
      .nth(149)
      .waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-testid^="run-machine-"]').count()).toBe(
      150,
    );

    const outcome = page
      .locator('[role=alert]')
      .filter({ hasText: 'Recovery failed' })
      .first();
    // innerText is what the browser shows: a newline it folds into a space reads as one line.
    expect(await outcome.innerText()).toContain(
      'connection refused\nat 10.20.3.14:5432 (attempt 80 of 80)\nlast answer: ECONNREFUSED',
    );
    await page.close();
  });
});
