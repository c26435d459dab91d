/*
 * A failover survives a restart of its recovery engine, end to end on real Docker engines: the
 * real backend fails `web` over; then every machine it kept is stopped, as an engine restart
 * (`systemctl restart dockerd`) or a host reboot leaves them (Exited, no restart policy). The
 * shared engine itself is not restarted, which would disturb other tests on it: `docker stop` of
 * the failover's containers leaves what that restart leaves. Within the supervision's sweep the
 * backend starts them again in the plan's wave order, each ready before the next, and the run's
 * timeline says so. A machine killed alone is back within seconds: the engine tells the backend of
 * its stop, with the sweep (every 30 s) left as the safety net.
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
  expectEnginesReachable,
  RunningBackend,
  startBackend,
  waitForRun,
} from './backend';
import { seconds, until } from './until';

const primary = dockerFromHost(ENGINES.primary);
const recoveryHost = dockerFromHost(ENGINES.recovery);
const WEB = 'component:default/web';
const MACHINES = [
  'resource:default/infra-01',
  'resource:default/data-01',
  'resource:default/web-01',
];
/** The supervision's sweep period, and the room its start-again takes on the demo's machines. */
const SWEEP_MS = 30_000;
const RESTART_MS = 60_000;
/** A kept machine the engine stopped is back (running and verified) within this of its stop. */
const HEARD_BACK_MS = 10_000;

/** The failover's machines on the recovery engine: state, and when each was last started. */
async function keptMachines(runId: string) {
  const containers = await recoveryHost.listContainers({
    all: true,
    filters: JSON.stringify({
      label: [
        `${RUN_ID_LABEL}=${runId}`,
        'recovery.backstage-recovery.io/machine-ref',
      ],
    }),
  });
  return Promise.all(
    containers.map(async c => {
      const info = await recoveryHost.getContainer(c.Id).inspect();
      return {
        id: c.Id,
        machineRef: c.Labels['recovery.backstage-recovery.io/machine-ref'],
        running: info.State.Running,
        startedAt: Date.parse(info.State.StartedAt),
        restartPolicy: info.HostConfig.RestartPolicy?.Name,
      };
    }),
  );
}

describe('a failover whose recovery engine restarted', () => {
  let dataDir: string;
  let backend: RunningBackend;
  let failoverId: string | undefined;
  const captureIds: string[] = [];

  beforeAll(async () => {
    await expectEnginesReachable({ primary, recovery: recoveryHost });
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-e2e-supervision-'));
    await buildDemoImage(primary);
    await startDemoSite(primary, { recreate: true });
    backend = await startBackend({
      dataDir,
      config: demoRecoveryConfig(dataDir),
    });
  });

  afterAll(async () => {
    // A failover is never torn down by itself.
    if (backend && failoverId)
      await backend.api('POST', `/runs/${failoverId}/release`).catch(() => {});
    await backend?.stop();
    await stopDemoSite(primary).catch(() => {});
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

  it('fails web over', async () => {
    const captured = await capture(backend, { entityRef: WEB });
    captureIds.push(...captured.captures.map(c => c.id));
    expect(captured.status).toBe('succeeded');
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: WEB,
      mode: 'failover',
    });
    expect(started.status).toBe(202);
    failoverId = started.body.id;
    const run = await waitForRun(backend, failoverId);
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    // No restart policy: the engine coming back would start them all at once.
    const kept = await keptMachines(failoverId);
    expect(
      kept.map(m => [m.machineRef, m.running, m.restartPolicy]).sort(),
    ).toEqual([...MACHINES].sort().map(m => [m, true, 'no']));
  });

  it('starts every stopped machine again in wave order within the sweep period, and says so on the timeline', async () => {
    expect(failoverId).toBeDefined();
    const runId = failoverId!;
    const stoppedAt = Date.now();
    // What an engine restart leaves: every machine exited at once.
    await Promise.all(
      (await keptMachines(runId)).map(m =>
        recoveryHost.getContainer(m.id).stop({ t: 2 }),
      ),
    );
    expect((await keptMachines(runId)).every(m => !m.running)).toBe(true);

    const step = await until(
      'the failover supervision starting the machines again',
      async () =>
        (
          await backend.api<RecoveryRun>('GET', `/runs/${runId}`)
        ).body.steps.find(s => s.message.startsWith('Supervision: ')),
      SWEEP_MS + RESTART_MS,
      1_000,
    );
    console.log(
      `failover supervision: back ${seconds(Date.now() - stoppedAt)} s after the stop: ${step.message}`,
    );
    expect(step.level).toBe('warning');
    expect(step.message).toMatch(
      new RegExp(
        `^Supervision: every machine \\(3\\) found stopped on recovery; 3 machines started again in wave order in [0-9.]+ s \\(${MACHINES.join(', ')}; restart 1 of this failover\\)$`,
      ),
    );

    const kept = await keptMachines(runId);
    expect(kept.every(m => m.running)).toBe(true);
    // Started in boot order: each wave once the one before it was ready.
    const startedAt = (ref: string) =>
      kept.find(m => m.machineRef === ref)!.startedAt;
    expect(startedAt(MACHINES[0])).toBeLessThan(startedAt(MACHINES[1]));
    expect(startedAt(MACHINES[1])).toBeLessThan(startedAt(MACHINES[2]));

    // Still the failover that succeeded, restarted once and not degraded.
    const run = (await backend.api<RecoveryRun>('GET', `/runs/${runId}`)).body;
    expect(run.status).toBe('succeeded');
    expect(run.supervision).toEqual({
      restarts: 1,
      lastRestartAt: step.at,
    });
  });

  it('starts a killed machine again within seconds, told by the engine, not at the next sweep', async () => {
    expect(failoverId).toBeDefined();
    const runId = failoverId!;
    const killedRef = MACHINES[1];
    // Twice in a row: the second kill comes just after a look at the failover, with the next sweep
    // a whole period away, so only the engine telling of the stop brings it back in time.
    for (let kill = 1; kill <= 2; kill++) {
      const before = (await backend.api<RecoveryRun>('GET', `/runs/${runId}`))
        .body.supervision!.restarts;
      const killed = (await keptMachines(runId)).find(
        m => m.machineRef === killedRef,
      )!;
      const killedAt = Date.now();
      await recoveryHost.getContainer(killed.id).kill();
      const step = await until(
        `the supervision starting ${killedRef} again after kill ${kill}`,
        async () =>
          (
            await backend.api<RecoveryRun>('GET', `/runs/${runId}`)
          ).body.steps.find(s =>
            s.message.endsWith(
              `(${killedRef}; restart ${before + 1} of this failover)`,
            ),
          ),
        SWEEP_MS + RESTART_MS,
        100,
      );
      const backMs = Date.now() - killedAt;
      console.log(
        `failover supervision: ${killedRef} back ${seconds(backMs)} s after docker kill ${kill}: ${step.message}`,
      );
      expect(step.message).toMatch(
        /^Supervision: 1 machine of 3 found stopped on recovery; 1 machine started again/,
      );
      const kept = await keptMachines(runId);
      expect(kept.every(m => m.running)).toBe(true);
      expect(
        kept.find(m => m.machineRef === killedRef)!.startedAt,
      ).toBeGreaterThan(killedAt);
      expect(backMs).toBeLessThan(HEARD_BACK_MS);
    }
  });
});
