import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { CatalogGraphLoader } from '../../recovery-backend/src/plan/catalogGraph';
import { RunService } from '../../recovery-backend/src/run/RunService';
import { FailoverSupervision } from '../../recovery-backend/src/run/supervision';
import { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { PlanService } from '../../recovery-backend/src/service/PlanService';
import { ProviderRegistry } from '../../recovery-backend/src/service/ProviderRegistry';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { webOverDataGraph } from './testing/webOverDataGraph';
import { removeCaptureImages } from './testing/removeCaptureImages';

/*
 * What production's network gave a machine beyond one IPv4 address comes back in the lab: a
 * dual-stack network's IPv6 subnet and the machine's IPv6 address (`--ipv6`, `--ip6`), and a
 * sidecar's place in another machine's network namespace (`--network container:<data>`), which
 * boots in the wave after it. Each machine serves only where the lab gave it what production did.
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
const NETWORK = `net-identity-prod-${suffix}`;
const SUBNET = '10.233.20.0/24';
const SUBNET6 = 'fd00:233::/64';
const DATA_ADDRESS6 = 'fd00:233::11';
/** fd00:233::11 as /proc/net/if_inet6 lists it. */
const DATA_ADDRESS6_PROC = 'fd000233000000000000000000000011';
const store = mkdtempSync(join(tmpdir(), 'recovery-net-identity-'));
const containers: string[] = [];
const runIds: string[] = [];
const READY_TIMEOUT_MS = 20_000;

const DATA = 'resource:default/ni-data';
const SIDECAR = 'resource:default/ni-sidecar';
const DATA_SVC = 'component:default/ni-data-svc';
const SIDECAR_SVC = 'component:default/ni-sidecar-svc';

/** Serves 8080 only once the machine has its production IPv6 address. */
const DATA_SCRIPT = `until grep -q ${DATA_ADDRESS6_PROC} /proc/net/if_inet6; do sleep 0.5; done; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w`;
/** Serves 8081 only once data answers on localhost: it shares data's network namespace. */
const SIDECAR_SCRIPT =
  'until nc -w 1 127.0.0.1 8080 -e true 2>/dev/null; do sleep 0.5; done; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8081 -h /w';

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
let runStore: RunStore;
let runs: RunService;
let providers: ProviderRegistry;
let dataId: string;
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

function graph(): RecoveryGraph {
  const g = webOverDataGraph(
    { serviceRef: DATA_SVC, machineRef: DATA, container: `ni-data-${suffix}` },
    {
      serviceRef: SIDECAR_SVC,
      machineRef: SIDECAR,
      container: `ni-sidecar-${suffix}`,
    },
  );
  g.services.get(SIDECAR_SVC)!.probes = [{ kind: 'tcp', port: 8081 }];
  return g;
}

/** Whether the container's network namespace holds data's production IPv6 address: data's own. */
async function seesDataAddress(id: string): Promise<boolean> {
  const exec = await recovery.getContainer(id).exec({
    Cmd: ['grep', '-q', DATA_ADDRESS6_PROC, '/proc/net/if_inet6'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = (await exec.start({
    hijack: true,
    stdin: false,
  })) as NodeJS.ReadableStream;
  await new Promise(resolve => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.resume();
  });
  return (await exec.inspect()).ExitCode === 0;
}

async function testRun(): Promise<RecoveryRun> {
  const started = await runs.start({
    entityRef: SIDECAR_SVC,
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
  await primary.createNetwork({
    Name: NETWORK,
    Driver: 'bridge',
    EnableIPv6: true,
    IPAM: {
      Driver: 'default',
      Config: [{ Subnet: SUBNET }, { Subnet: SUBNET6 }],
    },
    Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
  });
  const data = await primary.createContainer({
    name: `ni-data-${suffix}`,
    Hostname: 'ni-data',
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', DATA_SCRIPT],
    StopTimeout: 1,
    HostConfig: { NetworkMode: NETWORK },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: {
          IPAMConfig: {
            IPv4Address: '10.233.20.11',
            IPv6Address: DATA_ADDRESS6,
          },
        },
      },
    },
  });
  containers.push(`ni-data-${suffix}`);
  await data.start();
  dataId = data.id;
  const sidecar = await primary.createContainer({
    name: `ni-sidecar-${suffix}`,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', SIDECAR_SCRIPT],
    StopTimeout: 1,
    HostConfig: { NetworkMode: `container:${data.id}` },
  });
  containers.push(`ni-sidecar-${suffix}`);
  await sidecar.start();

  const knex = await databases.init('SQLITE_3');
  await migrate(knex);
  runStore = new RunStore(knex);
  const captureStore = new CaptureStore(knex);
  providers = new ProviderRegistry();
  providers.addCaptureSource(
    new DockerCaptureSource('primary', primary, { storeDirectory: store }),
  );
  providers.addHypervisorHost(host);
  const graphs = {
    getEntity: async () => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: 'ni-sidecar-svc' },
    }),
    load: async () => graph(),
    visibleTo: async (refs: string[]) => refs,
  };
  const plans = new PlanService(graphs as unknown as CatalogGraphLoader);
  const logger = mockServices.logger.mock();
  const captures = new CaptureService(
    captureStore,
    providers,
    plans,
    logger,
    5,
  );
  runs = new RunService(
    runStore,
    captureStore,
    providers,
    plans,
    graphs as unknown as CatalogGraphLoader,
    logger,
    {
      hypervisorHost: 'recovery',
      machineReadyTimeoutMs: READY_TIMEOUT_MS,
      probeIntervalMs: 200,
      heartbeatIntervalMs: 1_000,
      staleAfterMs: 60_000,
      stepTimeoutMs: 30_000,
      minReadyMs: 500,
      allowTestHooks: false,
    },
  );
  for (const machineRef of [DATA, SIDECAR])
    await captures.captureMachine({
      machineRef,
      engine: 'primary',
      container: graph().machines.get(machineRef)!.locator!.container,
    });
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of containers.reverse())
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

describe("production's IPv6 addresses and shared network namespaces in the lab (real engines)", () => {
  it('boots data on its production IPv6 address and the sidecar in its network namespace, with no address lost', async () => {
    const run = await testRun();
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(run.steps.filter(s => s.level === 'warning')).toEqual([]);
    expect(
      run.steps.find(
        s => s.machineRef === SIDECAR && s.message.startsWith('Adapted:'),
      )?.message,
    ).toContain(
      `shares the network namespace of ${DATA} in the lab, as it shared that machine's container's in production (network mode container:${dataId})`,
    );
  });

  it("restarts the sidecar after data when a failover's supervision brings data back: it runs in data's network namespace again", async () => {
    const started = await runs.start({
      entityRef: SIDECAR_SVC,
      mode: 'failover',
      trigger: 'user',
    });
    runIds.push(started.id);
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    const { machines } = (await host.reattach(run.id))!;
    const data = machines.find(m => m.machineRef === DATA)!;
    const sidecar = machines.find(m => m.machineRef === SIDECAR)!;
    expect(await seesDataAddress(sidecar.id)).toBe(true);

    // data alone dies: the sidecar runs on, its namespace without data's network.
    await recovery.getContainer(data.id).kill();
    expect((await host.inspectMachine(data)).running).toBe(false);
    expect(await host.inspectMachine(sidecar)).toMatchObject({
      running: true,
      sharesNetworkOf: data.id,
    });
    expect(await seesDataAddress(sidecar.id)).toBe(false);

    const t0 = Date.now();
    const outcome = await new FailoverSupervision(
      runStore,
      providers,
      mockServices.logger.mock(),
      {
        machineReadyTimeoutMs: READY_TIMEOUT_MS,
        probeIntervalMs: 200,
        stepTimeoutMs: 30_000,
        minReadyMs: 500,
      },
    ).supervise(host, run.id);
    // eslint-disable-next-line no-console
    console.log('sidecar back in data namespace in ms', Date.now() - t0);
    expect(outcome).toMatchObject({
      kind: 'restarted',
      machineRefs: [DATA, SIDECAR],
      sharers: [{ machineRef: SIDECAR, of: DATA }],
    });
    expect(await seesDataAddress(sidecar.id)).toBe(true);
    const said = (await runStore.getRun(run.id))!.steps.at(-1)!.message;
    expect(said).toContain(
      `${SIDECAR} restarted after ${DATA}, whose network namespace it shares: it kept running without network once ${DATA} stopped`,
    );
    // Production's subnets free on the recovery engine again, for the next run.
    await runs.releaseFailover(run.id);
  });

  it("fails the test recovery before any machine is restored where a network no run made holds part of production's IPv6 subnet, naming host, subnet and network", async () => {
    // Part of fd00:233::/64, written as a person might: the IPv4 subnet is free.
    const name = `net-identity-foreign6-${suffix}`;
    const foreign = await recovery.createNetwork({
      Name: name,
      Driver: 'bridge',
      EnableIPv6: true,
      IPAM: {
        Driver: 'default',
        Config: [
          { Subnet: '10.233.21.0/24' },
          { Subnet: 'FD00:233:0:0:8000::/65' },
        ],
      },
    });
    try {
      const t0 = Date.now();
      const run = await testRun();
      // eslint-disable-next-line no-console
      console.log('IPv6 subnet held: run failed in ms', Date.now() - t0);
      expect(run.status).toBe('failed');
      // The host's problem, not a machine's: none named, none restored.
      expect(run.error?.machineRef).toBeUndefined();
      const message = run.error!.message;
      expect(message).toContain(
        `hypervisor host recovery cannot give the lab production network ${NETWORK}'s subnet ${SUBNET6}: network ${name} (id ${foreign.id.slice(0, 12)}) on its engine has subnet`,
      );
      expect(message).toContain(`docker network rm ${name}`);
      expect(
        run.machines.map(m => [m.machineRef, m.phase, m.restoreStartedAt]),
      ).toEqual([
        [DATA, 'skipped', undefined],
        [SIDECAR, 'skipped', undefined],
      ]);
      expect(
        run.steps.some(st => st.message.startsWith('Created isolated network')),
      ).toBe(false);
      expect(await host.listLabResources(run.id)).toEqual({
        machines: [],
        networks: [],
      });
    } finally {
      await recovery.getNetwork(foreign.id).remove();
    }
  });
});
