/*
 * A failover's tenure on the hypervisor host end to end, on real Docker engines: the real
 * backend fails `web` over onto the recovery engine, whose machines then stay there serving
 * production; a test recovery beside them is refused, naming that failover and how to release it;
 * the real CLI releases it, removing everything labelled with its run id; then a test recovery
 * runs again.
 */
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { CAPTURE_REPOSITORY } from '@backstage-recovery/plugin-recovery-backend-module-docker';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildDemoImage,
  dockerFromHost,
  startDemoSite,
  stopDemoSite,
} from '../../demo/site';
import {
  capture,
  demoRecoveryConfig,
  ENGINES,
  recoveryCli,
  RunningBackend,
  startBackend,
  waitForRun,
  expectEnginesReachable,
} from './backend';

const primary = dockerFromHost(ENGINES.primary);
const recoveryHost = dockerFromHost(ENGINES.recovery);
const WEB = 'component:default/web';

/** What the recovery engine holds labelled with a run id, and the images its containers run. */
async function onRecoveryHost(runId: string) {
  const filters = JSON.stringify({ label: [`${RUN_ID_LABEL}=${runId}`] });
  const [containers, networks] = await Promise.all([
    recoveryHost.listContainers({ all: true, filters }),
    recoveryHost.listNetworks({ filters }),
  ]);
  return {
    containers: containers.map(c => ({
      name: c.Names[0].replace(/^\//, ''),
      state: c.State,
      imageId: c.ImageID,
    })),
    networks: networks.map(n => n.Name),
  };
}

const imageExists = (id: string) =>
  recoveryHost
    .getImage(id)
    .inspect()
    .then(
      () => true,
      e => {
        if (e?.statusCode === 404) return false;
        throw e;
      },
    );

describe('a failover kept on the hypervisor host, released through the CLI', () => {
  let dataDir: string;
  let backend: RunningBackend;
  let failoverId: string | undefined;
  const captureIds: string[] = [];

  beforeAll(async () => {
    await expectEnginesReachable({ primary, recovery: recoveryHost });
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-e2e-failover-'));
    await buildDemoImage(primary);
    await startDemoSite(primary, { recreate: true });
    backend = await startBackend({
      dataDir,
      config: demoRecoveryConfig(dataDir),
    });
  });

  afterAll(async () => {
    // A failover is never torn down by itself: released here if a check stopped the test first.
    if (backend && failoverId) {
      const left = await onRecoveryHost(failoverId);
      if (left.containers.length + left.networks.length > 0) {
        await backend
          .api('POST', `/runs/${failoverId}/release`)
          .catch(() => {});
      }
    }
    await backend?.stop();
    await stopDemoSite(primary).catch(() => {});
    // The captures' tags on the primary engine outlive the store they belong to, removed with dataDir.
    for (const id of captureIds) {
      const images = await primary.listImages({
        filters: JSON.stringify({
          reference: [`${CAPTURE_REPOSITORY}/*:${id}`],
        }),
      });
      for (const tag of images
        .flatMap(i => i.RepoTags ?? [])
        .filter(t => t.endsWith(`:${id}`))) {
        await primary
          .getImage(tag)
          .remove()
          .catch(() => {});
      }
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('captures the machines web needs', async () => {
    const captured = await capture(backend, { entityRef: WEB });
    captureIds.push(...captured.captures.map(c => c.id));
    expect({ status: captured.status, error: captured.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(captured.captures.map(c => c.machineRef)).toEqual([
      'resource:default/infra-01',
      'resource:default/data-01',
      'resource:default/web-01',
    ]);
  });

  it('fails web over onto the recovery engine, where its machines stay running', async () => {
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: WEB,
      mode: 'failover',
    });
    expect(started.status).toBe(202);
    expect(started.body.mode).toBe('failover');
    failoverId = started.body.id;
    const run = await waitForRun(backend, failoverId);
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
      ['resource:default/infra-01', 'ready'],
      ['resource:default/data-01', 'ready'],
      ['resource:default/web-01', 'ready'],
    ]);
    // Its timeline says what it keeps, and how that ends.
    expect(run.steps.map(s => s.message)).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^Kept 3 containers and 1 network on recovery, labelled with run ${failoverId} .*recovery release ${failoverId}, or POST /runs/${failoverId}/release\\)$`,
        ),
      ),
    );

    // Its three machines, running on the one network that emulates demo-prod; the lab's probe,
    // done once they were verified, gone (it held an address of production's subnet).
    const kept = await onRecoveryHost(failoverId);
    const rr = `rr-${failoverId}-`;
    expect(
      kept.containers
        .map(c => [c.name.replace(/-[0-9a-f]{8}$/, ''), c.state])
        .sort(),
    ).toEqual([
      [`${rr}data-01`, 'running'],
      [`${rr}infra-01`, 'running'],
      [`${rr}web-01`, 'running'],
    ]);
    expect(kept.networks).toEqual([`${rr}demo-prod`]);
  });

  it('refuses a test recovery of web beside it, naming the failover and how to release it, and records no run', async () => {
    expect(failoverId).toBeDefined();
    const runsBefore = (
      await backend.api('GET', `/runs?entityRef=${WEB}`)
    ).body.items.map((r: RecoveryRun) => r.id);

    const refused = await backend.api('POST', '/runs', { entityRef: WEB });
    expect(refused.status).toBe(409);
    const message: string = refused.body.error.message;
    expect(message).toMatch(
      new RegExp(
        `^${WEB} cannot be test-recovered on recovery now: failover ${failoverId} of ${WEB} \\(succeeded at [^)]+\\) keeps 3 containers and 1 network there, serving production with production's subnet 172\\.29\\.10\\.0/24; `,
      ),
    );
    expect(message).toContain(
      `release failover ${failoverId} (recovery release ${failoverId}, or POST /runs/${failoverId}/release)`,
    );

    // Refused before the run exists: no failed run counts against web.
    const runsAfter = (
      await backend.api('GET', `/runs?entityRef=${WEB}`)
    ).body.items.map((r: RecoveryRun) => r.id);
    expect(runsAfter).toEqual(runsBefore);
  });

  it('releases the failover through the CLI: what it kept on the engine is gone, and said so', async () => {
    const kept = await onRecoveryHost(failoverId!);
    // --yes: what its machines wrote since the failover started goes with them.
    const released = await recoveryCli(
      backend,
      'release',
      failoverId!,
      '--yes',
    );
    const names = (list: string[]) => [...list].sort().join(', ');
    expect(released).toEqual({
      status: 0,
      stdout:
        `Failover ${failoverId} of ${WEB}: Released by e2e-tests: removed 3 containers ` +
        `(${names(kept.containers.map(c => c.name))}) and 1 network (${kept.networks[0]}) it kept on recovery\n`,
      stderr: '',
    });
    expect(await onRecoveryHost(failoverId!)).toEqual({
      containers: [],
      networks: [],
    });
    // The captured images it restored its machines from go with them.
    const images = [...new Set(kept.containers.map(c => c.imageId))];
    expect(images).toHaveLength(3);
    expect(
      await Promise.all(images.map(async id => [id, await imageExists(id)])),
    ).toEqual(images.map(id => [id, false]));

    const run = (await backend.api<RecoveryRun>('GET', `/runs/${failoverId}`))
      .body;
    expect(run.steps.at(-1)?.message).toMatch(
      /^Released by e2e-tests: removed /,
    );
  });

  it('says nothing was left when released again', async () => {
    expect(await recoveryCli(backend, 'release', failoverId!)).toEqual({
      status: 0,
      stdout: `Failover ${failoverId} of ${WEB}: Released by e2e-tests: nothing of it was left on recovery\n`,
      stderr: '',
    });
  });

  it('test-recovers web again once the failover is released, leaving nothing behind', async () => {
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: WEB,
    });
    expect(started.status).toBe(202);
    const run = await waitForRun(backend, started.body.id);
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(run.machines.every(m => m.phase === 'ready')).toBe(true);
    expect(await onRecoveryHost(run.id)).toEqual({
      containers: [],
      networks: [],
    });
  });
});
