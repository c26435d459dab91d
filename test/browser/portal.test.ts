/*
 * The demo as an engineer uses it, in a real browser: the built app served by the real
 * backend, guest sign-in, the web service's page, "Capture now", then "Run test recovery",
 * watched live until it succeeds with infra-01, data-01 and web-01 ready; then the analysis of
 * pushed boot logs, whose warnings the page shows under the boot plan.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser } from 'playwright-core';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { dockerFromHost, startDemoSite, stopDemoSite } from '../../demo/site';
import { launchChromium, shownAsGuest } from './browser';
import {
  buildApp,
  capture,
  demoRecoveryConfig,
  ENGINES,
  REPO_ROOT,
  RunningBackend,
  startBackend,
  waitForRun,
} from '../e2e/backend';

const primary = dockerFromHost(ENGINES.primary);

describe('the portal', () => {
  let dataDir: string;
  let backend: RunningBackend;
  let browser: Browser;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-browser-'));
    buildApp();
    await startDemoSite(primary, { recreate: true });
    backend = await startBackend({
      dataDir,
      serveApp: true,
      config: demoRecoveryConfig(dataDir),
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
    await stopDemoSite(primary).catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs a test recovery of web from its page and shows the machines coming up in order', async () => {
    const page = await browser.newPage({
      viewport: { width: 1400, height: 2200 },
    });
    await page.goto(`${backend.baseUrl}/catalog/default/component/web`);
    await page
      .getByRole('button', { name: /enter/i })
      .first()
      .click({ timeout: 60_000 });

    const card = page
      .locator('article, .MuiCard-root')
      .filter({ hasText: 'Recovery readiness' })
      .first();
    await card.waitFor({ timeout: 60_000 });
    await card.getByRole('button', { name: /capture now/i }).click();
    await card.getByText(/Captured 3 machines/).waitFor({ timeout: 60_000 });

    await card.getByRole('button', { name: /run test recovery/i }).click();
    await card.getByText('Recovery succeeded').waitFor({ timeout: 180_000 });
    // The run's Machines table lists machines by boot wave (RunMachinesTable), so production's boot
    // order infra-01, data-01, web-01 (demo/site.ts) must read top to bottom. Only that table: the
    // Captures table above it lists the same names in its own order.
    const machinesTable = card.getByRole('table', {
      name: 'Machines',
      exact: true,
    });
    const text = await machinesTable.innerText();
    const order = ['infra-01', 'data-01', 'web-01'].map(m => text.indexOf(m));
    expect(
      order.every(i => i >= 0),
      `all three machines in the run's Machines table:\n${text}`,
    ).toBe(true);
    expect(
      order[0] < order[1] && order[1] < order[2],
      `machines in boot order (indices ${order.join(', ')}):\n${text}`,
    ).toBe(true);

    mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
    await page.screenshot({
      path: join(REPO_ROOT, 'test-results', 'portal-test-recovery.png'),
      fullPage: true,
    });

    // The run the page started is the one the API reports, succeeded, in dependency order.
    const { body } = await backend.api(
      'GET',
      '/runs?entityRef=component:default/web',
    );
    const run = body.items[0];
    expect(run.status).toBe('succeeded');
    expect(run.trigger).toBe('user');
    const at = (m: string, field: string) =>
      Date.parse(
        run.machines.find((x: any) => x.machineRef.endsWith(m))[field],
      );
    expect(at('infra-01', 'readyAt')).toBeLessThanOrEqual(
      at('data-01', 'startedAt'),
    );
    expect(at('data-01', 'readyAt')).toBeLessThanOrEqual(
      at('web-01', 'startedAt'),
    );

    // The analysis of the site's boot history, as the scheduler runs it: twelve boots pushed as
    // JSON lines, with two readings of infra-01's clock that contradict each other.
    const min = 60_000;
    const lines: object[] = [];
    for (let boot = 0; boot < 12; boot++) {
      const t =
        Date.parse('2026-11-01T02:00:00Z') +
        boot * 86_400_000 +
        (boot % 4) * 30_000;
      const start = (time: number, service: string, machine: string) =>
        lines.push({ time: new Date(time).toISOString(), machine, service });
      start(t + min, 'dns', 'infra-01');
      start(t + 11 * min, 'directory', 'infra-01');
      start(t + 12 * min, 'database', 'data-01');
      start(t + 22 * min, 'files', 'data-01');
      start(t + 33 * min, 'web', 'web-01');
    }
    const reading = Date.parse('2026-10-31T02:00:00Z');
    lines.push({
      time: reading,
      machine: 'infra-01',
      event: 'clock',
      reference: reading + 2 * min,
    });
    lines.push({
      time: reading + 5 * min,
      machine: 'infra-01',
      event: 'clock',
      reference: reading + 4.5 * min,
    });
    const pushed = await backend.api(
      'POST',
      '/events?source=demo-history.jsonl',
      lines.map(l => JSON.stringify(l)).join('\n'),
    );
    expect(pushed.status).toBe(201);
    expect(
      (
        await backend.api('POST', '/analysis', {
          entityRef: 'system:default/demo-site',
        })
      ).status,
    ).toBe(201);

    await page.reload();
    await shownAsGuest(page, card);
    const warnings = card.getByRole('list', { name: 'Analysis warnings' });
    await warnings.waitFor({ timeout: 60_000 });
    expect(await warnings.innerText()).toContain(
      'clock readings of infra-01 contradict each other once',
    );
    await page.screenshot({
      path: join(REPO_ROOT, 'test-results', 'portal-analysis-warnings.png'),
      fullPage: true,
    });

    // The Recovery tab at a laptop's width: the card's capture table reads one line per header and
    // per machine name (beside the runs table it once broke "Machine" and "infra-01" mid-word).
    await page.goto(
      `${backend.baseUrl}/catalog/default/component/web/recovery`,
    );
    const captures = page.getByRole('table', { name: 'Captures', exact: true });
    await shownAsGuest(page, captures);
    await page.getByText('Recovery runs').waitFor({ timeout: 60_000 });
    const broken = await captures.evaluate(table =>
      [...table.querySelectorAll('th, td a')]
        .filter(cell => {
          const tops = new Set<number>();
          const texts = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
          for (let node = texts.nextNode(); node; node = texts.nextNode()) {
            const range = document.createRange();
            range.selectNodeContents(node);
            for (const rect of range.getClientRects())
              if (rect.width > 0) tops.add(Math.round(rect.top));
          }
          return tops.size > 1;
        })
        .map(cell => cell.textContent),
    );
    await page.screenshot({
      path: join(REPO_ROOT, 'test-results', 'portal-recovery-tab.png'),
      fullPage: true,
    });
    expect(broken, 'captures table cells that wrap onto a second line').toEqual(
      [],
    );
  });

  it('opens a run at its own address, and from its row in the run history', async () => {
    const web = 'component:default/web';
    // The run the test above started; where it ran alone, one of this test's own.
    const { body } = await backend.api<{ items: RecoveryRun[] }>(
      'GET',
      `/runs?entityRef=${web}`,
    );
    let run = body.items.find(r => r.status === 'succeeded');
    if (!run) {
      expect((await capture(backend, { entityRef: web })).status).toBe(
        'succeeded',
      );
      const started = await backend.api<RecoveryRun>('POST', '/runs', {
        entityRef: web,
      });
      expect(started.status).toBe(202);
      run = await waitForRun(backend, started.body.id);
      expect(run.status).toBe('succeeded');
    }

    const page = await browser.newPage({
      viewport: { width: 1400, height: 1400 },
    });
    await page.goto(`${backend.baseUrl}/recovery/runs/${run.id}`);
    const heading = page.getByRole('heading', { name: 'Test recovery of web' });
    await shownAsGuest(page, heading);
    // Its waves, in production's boot order (demo/site.ts).
    for (const [machine, wave] of [
      ['infra-01', 1],
      ['data-01', 2],
      ['web-01', 3],
    ] as const) {
      expect(
        await page.getByTestId(`run-machine-${machine}`).innerText(),
      ).toContain(`wave ${wave}`);
    }
    await page.getByText('Recovery succeeded').waitFor();
    await page.screenshot({
      path: join(REPO_ROOT, 'test-results', 'portal-run-page.png'),
      fullPage: true,
    });

    // The Recovery tab's run history links each run to that page.
    await page.goto(
      `${backend.baseUrl}/catalog/default/component/web/recovery`,
    );
    // Its row's link (the id's first 8 characters); the details below it give the id whole.
    const link = page.getByRole('link', {
      name: run.id.slice(0, 8),
      exact: true,
    });
    await link.click({ timeout: 60_000 });
    await page.waitForURL(`**/recovery/runs/${run.id}`);
    await heading.waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('run-machine-web-01').innerText()).toContain(
      'wave 3',
    );
  });
});
