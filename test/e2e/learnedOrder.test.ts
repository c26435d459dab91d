/*
 * The boot order learned end to end, on real Docker engines: the demo site boots several times
 * on the primary engine while the real backend streams that engine's events. Its catalog says
 * only which machine each service runs on, not what any service needs, so the plan the backend
 * recovers `web` by is the one it learned from those boots.
 */
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  buildDemoImage,
  DEMO_MACHINES,
  dockerFromHost,
  startDemoSite,
  stopDemoSite,
} from '../../demo/site';
import {
  capture,
  demoRecoveryConfig,
  ENGINES,
  REPO_ROOT,
  RunningBackend,
  startBackend,
  waitForRun,
  expectEnginesReachable,
} from './backend';

const primary = dockerFromHost(ENGINES.primary);
/** Whole-site boots to learn from: as many as a dependency needs samples for high confidence. */
const BOOTS = 5;
/**
 * The demo's machines are up 1.5–3.5 s after they start (containers, not VMs); the site boots each
 * 2.5 s after the one before at the soonest, as a runbook's pause would. A kernel peaking at 2 s
 * counts delays from 1.5 to 5 s at 0.7 or more, and its window (12 s) scales with it, so boots 25 s
 * apart are two boots.
 */
const KERNEL_PEAK = '2s';
const SPACING_MS = 2500;
const BETWEEN_BOOTS_MS = 25_000;

/** The repository's catalog without a single dependency of a service on another service. */
function catalogWithoutServiceDependencies(): string {
  const docs = parseAllDocuments(
    readFileSync(join(REPO_ROOT, 'catalog-info.yaml'), 'utf8'),
  ).map(d => d.toJS());
  for (const entity of docs) {
    if (entity.kind === 'Component' && entity.spec?.dependsOn) {
      entity.spec.dependsOn = entity.spec.dependsOn.filter(
        (ref: string) => !ref.startsWith('component:'),
      );
    }
  }
  return docs.map(d => JSON.stringify(d)).join('\n---\n');
}

const machineRef = (name: string) => `resource:default/${name}`;

describe('the boot order learned from the machines’ own boots', () => {
  let dataDir: string;
  let backend: RunningBackend;

  beforeAll(async () => {
    await expectEnginesReachable({ primary });
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-e2e-learned-'));
    const catalogFile = join(dataDir, 'catalog-info.yaml');
    writeFileSync(catalogFile, catalogWithoutServiceDependencies());
    await buildDemoImage(primary);
    await stopDemoSite(primary);
    const config = demoRecoveryConfig(dataDir);
    backend = await startBackend({
      dataDir,
      catalogFile,
      config: {
        recovery: { ...config.recovery, analysis: { kernelPeak: KERNEL_PEAK } },
      },
    });
  });

  afterAll(async () => {
    await backend?.stop();
    await stopDemoSite(primary).catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('plans web on its own machine alone before it has seen the site boot', async () => {
    const plan = await backend.api('GET', '/plan/component/default/web');
    expect(plan.status).toBe(200);
    expect(plan.body.waves).toEqual([[machineRef('web-01')]]);
  });

  it(`learns from ${BOOTS} boots of the site that web-01 waits for data-01, which waits for infra-01`, async () => {
    for (let boot = 0; boot < BOOTS; boot++) {
      if (boot > 0) {
        // Stopped as an operator would (no failure recorded), then a quiet spell between boots.
        await Promise.all(
          DEMO_MACHINES.map(m =>
            primary
              .getContainer(m.name)
              .stop({ t: 5 })
              .catch(() => {}),
          ),
        );
        await new Promise(r => setTimeout(r, BETWEEN_BOOTS_MS));
      }
      await startDemoSite(primary, { recreate: true, spacingMs: SPACING_MS });
    }
    // The event stream stores what the engine reports within a moment; analyse until every boot is in.
    const deadline = Date.now() + 60_000;
    let analysis: any;
    for (;;) {
      const res = await backend.api('POST', '/analysis', {
        entityRef: 'system:default/demo-site',
      });
      expect(res.status).toBe(201);
      analysis = res.body.result;
      const web = analysis.services.find(
        (s: { service: string }) =>
          analysis.entityRefs[s.service] === 'component:default/web',
      );
      if ((web?.initializations ?? 0) >= BOOTS) break;
      if (Date.now() > deadline)
        throw new Error(
          `the analysis saw ${web?.initializations ?? 0} boots of web: ${JSON.stringify(analysis.services)}`,
        );
      await new Promise(r => setTimeout(r, 1000));
    }
    expect(analysis.waves).toEqual([['infra-01'], ['data-01'], ['web-01']]);

    const plan = await backend.api('GET', '/plan/component/default/web');
    expect(plan.status).toBe(200);
    expect(plan.body.waves).toEqual(
      [['infra-01'], ['data-01'], ['web-01']].map(w => w.map(machineRef)),
    );
    const waitsFor = Object.fromEntries(
      plan.body.machines.map(
        (m: { machineRef: string; waitsFor: string[] }) => [
          m.machineRef,
          m.waitsFor,
        ],
      ),
    );
    expect(waitsFor).toEqual({
      [machineRef('infra-01')]: [],
      [machineRef('data-01')]: [machineRef('infra-01')],
      [machineRef('web-01')]: [machineRef('data-01')],
    });
    console.log(
      `learned from ${BOOTS} boots of the demo site: ${analysis.dependencies.map((d: any) => `${d.service} → ${d.dependsOn} (score ${d.score}, ${d.samples} samples)`).join(', ')}`,
    );
    // What the catalog does not declare is listed as learned, for the page to show.
    const learned = plan.body.inferred.map(
      (d: { service: string; dependsOn: string }) =>
        `${d.service} → ${d.dependsOn}`,
    );
    expect(learned).toContainEqual(
      expect.stringMatching(
        /^component:default\/web → component:default\/(database|files)$/,
      ),
    );
    expect(learned).toContainEqual(
      expect.stringMatching(
        /^component:default\/(database|files) → component:default\/(dns|directory)$/,
      ),
    );
  });

  it('recovers web in the learned order, verified, on the hypervisor host', async () => {
    const captured = await capture(backend, {
      entityRef: 'component:default/web',
    });
    expect({ status: captured.status, error: captured.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: 'component:default/web',
    });
    expect(started.status).toBe(202);
    const run = await waitForRun(backend, started.body.id);
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    const at = (name: string, key: 'startedAt' | 'readyAt') =>
      Date.parse(
        run.machines.find(m => m.machineRef === machineRef(name))![key]!,
      );
    expect(at('infra-01', 'readyAt')).toBeLessThanOrEqual(
      at('data-01', 'startedAt'),
    );
    expect(at('data-01', 'readyAt')).toBeLessThanOrEqual(
      at('web-01', 'startedAt'),
    );
  });
});
