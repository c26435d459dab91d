import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import type { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { RunService } from '../../recovery-backend/src/run/RunService';
import type { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { createTestNetwork } from './testing/testNetwork';
import { buildRunSite } from './testing/runSite';
import { webOverDataGraph } from './testing/webOverDataGraph';
import { removeCaptureImages } from './testing/removeCaptureImages';

/*
 * A network on the recovery engine that no run made (a host's own, one left by hand) holds the
 * subnet a lab needs, whole or in part: the test recovery fails before any machine is restored,
 * naming the host, the subnet and that network, and what to do; not at a machine's ready timeout
 * after the lab came up on a subnet Docker chose.
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
const NETWORK = `foreign-subnet-prod-${suffix}`;
const SUBNET = '172.29.96.0/24';
const DATA_ADDRESS = '172.29.96.10';
const store = mkdtempSync(join(tmpdir(), 'recovery-foreign-subnet-'));
const containers: string[] = [];
const foreignNetworks: string[] = [];
const runIds: string[] = [];
const timings: Record<string, number> = {};
const READY_TIMEOUT_MS = 20_000;

const DATA = 'resource:default/fs-data';
const WEB = 'resource:default/fs-web';
const WEB_SVC = 'component:default/fs-web-svc';
const DATA_SVC = 'component:default/fs-data-svc';

/** Serves HTTP on 8080 (busybox httpd). */
const HTTPD =
  'mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w';
/** Serves only once data answers at its production address, as a machine configured by address does. */
const WEB_SCRIPT = `until nc -w 1 ${DATA_ADDRESS} 8080 -e true 2>/dev/null; do sleep 0.5; done; ${HTTPD}`;

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
    HostConfig: { NetworkMode: NETWORK },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: { IPAMConfig: { IPv4Address: ipv4 }, Aliases: [name] },
      },
    },
  });
  await c.start();
  return container;
}

/** A network on the recovery engine with `subnet`, carrying no run's label. */
async function foreignNetwork(name: string, subnet: string) {
  const full = `${name}-${suffix}`;
  foreignNetworks.push(full);
  const network = await createTestNetwork(
    recovery,
    {
      Name: full,
      Driver: 'bridge',
      IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] },
    },
    suffix,
  );
  return { name: full, id: network.id };
}

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
let runStore: RunStore;
let captures: CaptureService;
let runs: RunService;
let dataContainer: string;
let webContainer: string;
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

const graph = (): RecoveryGraph =>
  webOverDataGraph(
    { serviceRef: DATA_SVC, machineRef: DATA, container: dataContainer },
    { serviceRef: WEB_SVC, machineRef: WEB, container: webContainer },
  );

async function testRun(
  mode: 'test' | 'failover' = 'test',
): Promise<RecoveryRun & { tookMs: number }> {
  const t0 = Date.now();
  const started = await runs.start({
    entityRef: WEB_SVC,
    mode,
    trigger: 'user',
  });
  runIds.push(started.id);
  await runs.waitFor(started.id);
  return {
    ...(await runStore.getRun(started.id))!,
    tookMs: Date.now() - t0,
  };
}

/** What the recovery engine holds of the run: nothing, once it failed and was torn down. */
async function leftOf(runId: string) {
  return {
    lab: await host.listLabResources(runId),
    images: (
      await recovery.listImages({
        filters: { reference: [`recovery-lab/*:*${runId}*`] },
      })
    ).length,
  };
}

/** Asserts the run failed at its lab, the host's problem, naming `foreign` and what to do. */
async function expectRefusedAtLab(
  run: RecoveryRun,
  foreign: { name: string; id: string },
  holds: RegExp,
) {
  expect(run.status).toBe('failed');
  // The host's, not a machine's: no machine is named, none restored or failed.
  expect(run.error?.machineRef).toBeUndefined();
  const message = run.error!.message;
  expect(message).toContain('hypervisor host recovery');
  expect(message).toContain(SUBNET);
  expect(message).toContain(`network ${foreign.name}`);
  expect(message).toContain(foreign.id.slice(0, 12));
  expect(message).toMatch(holds);
  expect(message).toContain(`docker network rm ${foreign.name}`);
  expect(message).toContain('another hypervisor host');
  expect(
    run.machines.map(m => [m.machineRef, m.phase, m.restoreStartedAt]),
  ).toEqual([
    [DATA, 'skipped', undefined],
    [WEB, 'skipped', undefined],
  ]);
  const messages = run.steps.map(s => s.message);
  expect(messages.some(m => m.startsWith('Created isolated network'))).toBe(
    false,
  );
  expect(messages.some(m => m.startsWith('Wave 1'))).toBe(false);
  expect(run.steps.find(s => s.level === 'error')?.message).toContain(
    `network ${foreign.name}`,
  );
  expect(await leftOf(run.id)).toEqual({
    lab: { machines: [], networks: [] },
    images: 0,
  });
  // The foreign network itself is left as it was.
  expect(
    (await recovery.getNetwork(foreign.id).inspect()).Labels ?? {},
  ).toEqual({});
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
        Config: [{ Subnet: SUBNET, Gateway: '172.29.96.1' }],
      },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    },
    suffix,
  );
  dataContainer = await machine('fs-data', DATA_ADDRESS, HTTPD);
  webContainer = await machine('fs-web', '172.29.96.20', WEB_SCRIPT);
  ({ runStore, captures, runs } = await buildRunSite({
    database: await databases.init('SQLITE_3'),
    primary,
    storeDirectory: store,
    host,
    graph,
    run: { machineReadyTimeoutMs: READY_TIMEOUT_MS },
  }));
  for (const [machineRef, container] of [
    [DATA, dataContainer],
    [WEB, webContainer],
  ])
    await captures.captureMachine({ machineRef, engine: 'primary', container });
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of foreignNetworks)
    await recovery
      .getNetwork(name)
      .remove()
      .catch(() => {});
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
  // eslint-disable-next-line no-console
  console.log('foreign subnet timings', JSON.stringify(timings));
});

describe('a lab subnet held by a network no run made (real engines)', () => {
  it('fails the test recovery before any machine is restored, naming host, subnet and network, for a network on the whole subnet and one on part of it; once removed, the run boots', async () => {
    const whole = await foreignNetwork('foreign-x', SUBNET);
    const equal = await testRun();
    timings.equal_subnet_run_ms = equal.tookMs;
    await expectRefusedAtLab(equal, whole, /holds? that subnet/);
    expect(equal.tookMs).toBeLessThan(READY_TIMEOUT_MS);
    await recovery.getNetwork(whole.id).remove();

    // Part of production's subnet: Docker refuses the lab's pool just the same.
    const part = await foreignNetwork('foreign-y', '172.29.96.128/25');
    const overlap = await testRun();
    timings.partial_overlap_run_ms = overlap.tookMs;
    await expectRefusedAtLab(overlap, part, /172\.29\.96\.128\/25/);
    expect(overlap.tookMs).toBeLessThan(READY_TIMEOUT_MS);
    await recovery.getNetwork(part.id).remove();

    // Nothing of the host's in the way: the lab gets production's subnet, web reaches data at its address.
    const booted = await testRun();
    timings.free_subnet_run_ms = booted.tookMs;
    expect(booted.error?.message).toBeUndefined();
    expect(booted.status).toBe('succeeded');
  });

  it("fails a test recovery and a failover where a network of production's name and subnet is on the recovery engine (a twin: the same compose project on both sites), not only one of another name", async () => {
    // The recovery engine is not the machines' primary: its network of that name is not production's.
    const twin = await createTestNetwork(
      recovery,
      {
        Name: NETWORK,
        Driver: 'bridge',
        IPAM: { Driver: 'default', Config: [{ Subnet: SUBNET }] },
      },
      suffix,
    );
    foreignNetworks.push(NETWORK);
    const foreign = { name: NETWORK, id: twin.id };
    const test = await testRun();
    timings.twin_test_run_ms = test.tookMs;
    await expectRefusedAtLab(test, foreign, /holds? that subnet/);
    expect(test.error!.message).toMatch(
      /run the test on another hypervisor host$/,
    );
    expect(test.tookMs).toBeLessThan(READY_TIMEOUT_MS);

    // A failover would keep its copies running off production's subnet: refused as well.
    const failover = await testRun('failover');
    timings.twin_failover_run_ms = failover.tookMs;
    await expectRefusedAtLab(failover, foreign, /holds? that subnet/);
    expect(failover.error!.message).toMatch(
      /fail over onto another hypervisor host/,
    );
    expect(failover.tookMs).toBeLessThan(READY_TIMEOUT_MS);
    await recovery.getNetwork(twin.id).remove();
  });
});
