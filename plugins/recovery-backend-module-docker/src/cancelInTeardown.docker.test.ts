import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { createTestNetwork } from './testing/testNetwork';
import { removeCaptureImages } from './testing/removeCaptureImages';
import { buildRunSite, type RunSite } from './testing/runSite';

/**
 * A test recovery cancelled once it has reached its result, while its lab is torn down: the
 * cancel is refused saying so, not answered as accepted for a run that then ends succeeded.
 */

const primary = dockerFromHost(
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
    'unix:///run/recovery-docker/primary.sock',
);
const recovery = dockerFromHost(
  process.env.RECOVERY_HOST_DOCKER_HOST ??
    'unix:///run/recovery-docker/recovery.sock',
);
const suffix = Date.now().toString(36);
const NETWORK = `cancel-teardown-${suffix}`;
const CONTAINER = `cancel-teardown-web-${suffix}`;
const store = mkdtempSync(join(tmpdir(), 'recovery-cancel-teardown-'));
const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});
const MACHINE = 'resource:default/web';
const SERVICE = 'component:default/web';
const runIds: string[] = [];

const graph = (): RecoveryGraph => ({
  rootRef: SERVICE,
  roots: [SERVICE],
  services: new Map([
    [
      SERVICE,
      {
        ref: SERVICE,
        machines: [MACHINE],
        dependsOn: [],
        probes: [{ kind: 'tcp', port: 8080 }],
      },
    ],
  ]),
  machines: new Map([
    [
      MACHINE,
      {
        ref: MACHINE,
        locator: {
          machineRef: MACHINE,
          engine: 'primary',
          container: CONTAINER,
        },
      },
    ],
  ]),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
});

let site: RunSite;

beforeAll(async () => {
  await buildDemoImage(primary);
  await createTestNetwork(
    primary,
    {
      Name: NETWORK,
      IPAM: { Config: [{ Subnet: '172.29.87.0/24', Gateway: '172.29.87.1' }] },
      // Its masquerade rule would also rewrite the lab's bridged traffic on this subnet, where both
      // engines share a host.
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    },
    suffix,
  );
  const web = await primary.createContainer({
    name: CONTAINER,
    Hostname: 'web',
    Image: DEMO_IMAGE,
    Cmd: [
      'sh',
      '-c',
      'mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w',
    ],
    StopTimeout: 1,
    HostConfig: { NetworkMode: NETWORK },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: { IPAMConfig: { IPv4Address: '172.29.87.10' } },
      },
    },
  });
  await web.start();
  site = await buildRunSite({
    database: await databases.init('SQLITE_3'),
    primary,
    storeDirectory: store,
    host,
    graph,
  });
  await site.captures.captureMachine({
    machineRef: MACHINE,
    engine: 'primary',
    container: CONTAINER,
  });
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  await primary
    .getContainer(CONTAINER)
    .remove({ force: true, v: true })
    .catch(() => {});
  await primary
    .getNetwork(NETWORK)
    .remove()
    .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  rmSync(store, { recursive: true, force: true });
});

it('refuses to cancel a test recovery that has succeeded and is tearing its lab down, saying so; the result stands and the lab goes', async () => {
  // The teardown held until the cancel has been answered.
  let tearingDown!: (runId: string) => void;
  const teardownStarted = new Promise<string>(r => (tearingDown = r));
  let release!: () => void;
  const released = new Promise<void>(r => (release = r));
  const teardown = host.teardown.bind(host);
  host.teardown = async (runId: string) => {
    tearingDown(runId);
    await released;
    return teardown(runId);
  };
  try {
    const run = await site.runs.start({
      entityRef: SERVICE,
      mode: 'test',
      trigger: 'user',
    });
    runIds.push(run.id);
    await teardownStarted;
    const cancel = site.runs.cancel(run.id, 'user:default/alice');
    await expect(cancel).rejects.toThrow(
      `Run ${run.id} has already succeeded and its lab is being torn down: there is nothing to cancel`,
    );
    await expect(cancel).rejects.toMatchObject({ name: 'ConflictError' });
    release();
    await site.runs.waitFor(run.id);
    const finished = (await site.runStore.getRun(run.id))!;
    expect(finished.status).toBe('succeeded');
    expect(finished.error).toBeUndefined();
    expect(await host.listLabResources(run.id)).toEqual({
      machines: [],
      networks: [],
    });
  } finally {
    release();
    host.teardown = teardown;
  }
});
