import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabases } from '@backstage/backend-test-utils';
import {
  ANNOTATION_JOB,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import type { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import type { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { RunService } from '../../recovery-backend/src/run/RunService';
import type { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { createTestNetwork } from './testing/testNetwork';
import { removeCaptureImages } from './testing/removeCaptureImages';
import { buildRunSite } from './testing/runSite';
import { webOverDataGraph } from './testing/webOverDataGraph';

/*
 * A one-shot machine on the real engines, as a DR walkthrough found it: `init2` runs with
 * `--restart=no` and does `echo init done; exit 0`, and `app2` depends on it. Captured exited with
 * code 0, it fails a test recovery as a machine that must keep running (with a hint to annotate it);
 * annotated a job, it is ready once it exits with code 0 and app2 boots after it. A job that exits
 * with another code fails naming the code, its console tail kept.
 */

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const RECOVERY =
  process.env.RECOVERY_HOST_DOCKER_HOST ??
  'unix:///run/recovery-docker/recovery.sock';
const primary = dockerFromHost(PRIMARY);
const recovery = dockerFromHost(RECOVERY);
const suffix = Date.now().toString(36);
const NETWORK = `job-prod-${suffix}`;
const SUBNET = '172.29.93.0/24';
const store = mkdtempSync(join(tmpdir(), 'recovery-job-'));
const containers: string[] = [];
const runIds: string[] = [];

const INIT = 'resource:default/init2-01';
const FAILING = 'resource:default/init3-01';
const APP = 'resource:default/app2-01';
const INIT_SVC = 'component:default/init2';
const APP_SVC = 'component:default/app2';

/** Serves HTTP on 8080 (busybox httpd). */
const HTTPD =
  'mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w';

/** A container of the primary site running `script`, restart policy `no` (the engine's default). */
async function machine(
  name: string,
  ipv4: string,
  script: string,
): Promise<string> {
  const container = `${name}-${suffix}`;
  containers.push(container);
  const c = await primary.createContainer({
    name: container,
    Hostname: name,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', script],
    StopTimeout: 1,
    HostConfig: { NetworkMode: NETWORK, RestartPolicy: { Name: 'no' } },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: { IPAMConfig: { IPv4Address: ipv4 }, Aliases: [name] },
      },
    },
  });
  await c.start();
  return container;
}

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
let captureStore: CaptureStore;
let runStore: RunStore;
let captures: CaptureService;
let runs: RunService;
let graph: RecoveryGraph;
const containerOf: Record<string, string> = {};
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

/** app2 over `init` (init2 or init3), that one a job or not. */
const siteOf = (init: string, job: boolean): RecoveryGraph => {
  const site = webOverDataGraph(
    { serviceRef: INIT_SVC, machineRef: init, container: containerOf[init] },
    { serviceRef: APP_SVC, machineRef: APP, container: containerOf[APP] },
  );
  // A job serves nothing: its service declares no probe.
  site.services.get(INIT_SVC)!.probes = [];
  if (job) site.machines.get(init)!.job = true;
  return site;
};

async function testRun(site: RecoveryGraph): Promise<RecoveryRun> {
  graph = site;
  const started = await runs.start({
    entityRef: APP_SVC,
    mode: 'test',
    trigger: 'user',
  });
  runIds.push(started.id);
  await runs.waitFor(started.id);
  return (await runStore.getRun(started.id))!;
}

beforeAll(async () => {
  await primary.ping();
  await recovery.ping();
  await buildDemoImage(primary);
  await createTestNetwork(
    primary,
    {
      Name: NETWORK,
      Driver: 'bridge',
      IPAM: {
        Driver: 'default',
        Config: [{ Subnet: SUBNET, Gateway: '172.29.93.1' }],
      },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    },
    suffix,
  );
  containerOf[INIT] = await machine(
    'init2-01',
    '172.29.93.10',
    'echo init done; exit 0',
  );
  containerOf[FAILING] = await machine(
    'init3-01',
    '172.29.93.11',
    'echo migrating; echo "migration 7 failed: table exists" >&2; exit 3',
  );
  containerOf[APP] = await machine('app2-01', '172.29.93.20', HTTPD);
  // Production as the walkthrough found it: the inits done, exited.
  for (const ref of [INIT, FAILING])
    await primary.getContainer(containerOf[ref]).wait();
  ({ captureStore, runStore, captures, runs } = await buildRunSite({
    database: await databases.init('SQLITE_3'),
    primary,
    storeDirectory: store,
    host,
    graph: () => graph,
  }));
  for (const ref of [INIT, FAILING, APP])
    await captures.captureMachine({
      machineRef: ref,
      engine: 'primary',
      container: containerOf[ref],
    });
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of containers)
    await primary
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  await primary
    .getNetwork(NETWORK)
    .remove()
    .catch(() => {});
  rmSync(store, { recursive: true, force: true });
});

describe('a one-shot machine (real engines)', () => {
  it('fails as a machine that must keep running, suggesting the annotation; annotated a job, it is ready once it exits with code 0 and app2 boots after it', async () => {
    const [captured] = await captureStore.listCaptures(INIT);
    expect(captured.machineState).toMatchObject({
      status: 'exited',
      exitCode: 0,
    });

    const unannotated = await testRun(siteOf(INIT, false));
    expect(unannotated.status).toBe('failed');
    // Stopped at its verification, so app2 never boots; or, where it still ran at that inspect (a
    // loaded engine), counted ready with nothing else to check, app2 booted, and stopped at the
    // final check.
    const atFinalCheck = unannotated.machines.some(
      m => m.machineRef === INIT && m.readyAt !== undefined,
    );
    expect(unannotated.error?.message).toBe(
      `${INIT} failed: stopped with exit code 0${atFinalCheck ? ' after it was ready' : ''}, as its capture of ${captured.createdAt} shows it had in production (restart policy no): if ${INIT} is a job that runs to completion (an init, a migration), annotate its Resource with ${ANNOTATION_JOB}: 'true' and a run counts it ready once it exits with code 0`,
    );
    const [unannotatedInit, unannotatedApp] = [INIT, APP].map(ref =>
      unannotated.machines.find(m => m.machineRef === ref)!,
    );
    expect(unannotatedInit.phase).toBe('failed');
    // Its failure, as the run's timeline says it.
    const initFailed = unannotated.steps.find(
      s => s.machineRef === INIT && s.level === 'error',
    )!;
    expect(initFailed.message).toBe(unannotated.error?.message);
    if (atFinalCheck) {
      // app2 booted after init2 was ready, and the final check, once app2 was ready too, found
      // init2 stopped.
      expect(unannotatedApp.phase).toBe('ready');
      expect(Date.parse(unannotatedApp.startedAt!)).toBeGreaterThanOrEqual(
        Date.parse(unannotatedInit.readyAt!),
      );
      expect(Date.parse(initFailed.at)).toBeGreaterThanOrEqual(
        Date.parse(unannotatedApp.readyAt!),
      );
    } else {
      expect(unannotatedInit.readyAt).toBeUndefined();
      expect(unannotatedApp.phase).toBe('skipped');
    }

    const job = await testRun(siteOf(INIT, true));
    expect(job.error?.message).toBeUndefined();
    expect(job.status).toBe('succeeded');
    const [init, app] = [INIT, APP].map(ref =>
      job.machines.find(m => m.machineRef === ref)!,
    );
    expect([init.phase, app.phase]).toEqual(['ready', 'ready']);
    // app2 started once init2 had completed.
    expect(Date.parse(app.startedAt!)).toBeGreaterThanOrEqual(
      Date.parse(init.readyAt!),
    );
    expect(job.steps.map(s => s.message)).toContainEqual(
      expect.stringMatching(
        /^All 2 machines verified in [0-9.]+ s, 1 of them a job \(recovery\.backstage-recovery\.io\/job\) that completed; the final check found the others still running and answering$/,
      ),
    );
    // Torn down as any test lab.
    expect(await host.listLabResources(job.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('fails a job that exits with another code, naming it, with its console tail', async () => {
    const failed = await testRun(siteOf(FAILING, true));
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toBe(
      `${FAILING} failed: a job (${ANNOTATION_JOB}) that exited with code 3, not 0`,
    );
    const init = failed.machines.find(m => m.machineRef === FAILING)!;
    expect(init.phase).toBe('failed');
    expect(init.logTail).toContain('migration 7 failed: table exists');
    expect(failed.machines.find(m => m.machineRef === APP)?.phase).toBe(
      'skipped',
    );
  });
});
