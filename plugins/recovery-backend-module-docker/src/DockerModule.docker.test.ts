import Docker from 'dockerode';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  RUN_ID_LABEL,
  type InitializationEvent,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedMachine,
  CapturedNetwork,
  LabHandle,
  MachineHandle,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import {
  DEMO_IMAGE,
  DEMO_MACHINES,
  demoSiteStatus,
  dockerFromHost,
  startDemoSite,
  stopDemoSite,
} from '../../../demo/site';
import { TestDatabases } from '@backstage/backend-test-utils';
// The backend's own store: whether replayed events are stored once is its unique key's doing.
import { EventStore } from '../../recovery-backend/src/database/EventStore';
import { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import { storedEvents } from '../../recovery-backend/src/testing/events';
import { dockerName, PRODUCTION_NETWORK_MODE_LABEL } from './adapt';
import { busyboxDigest } from './lib/busybox';
import {
  demuxDockerStream,
  followProgress,
  readAll,
} from './lib/dockerStreams';
import { createTar } from './lib/tar';
import { LAYERS_DIRECTORY, readCaptureArchive } from './lib/layerStore';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerEventSource } from './DockerEventSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import {
  MACHINE_REF_LABEL,
  PROBE_LABEL,
  labImageRef,
  labNetworkName,
  machineContainerName,
} from './labNames';
import { DEFAULT_PROBE_IMAGE, PROBE_BUSYBOX_LABEL } from './LabProbe';
import { NETWORK_REMOVAL } from './labTeardown';
import { createTestNetwork } from './testing/testNetwork';
import { buildCaptureService } from './testing/captureService';
import { until } from './testing/until';

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const RECOVERY =
  process.env.RECOVERY_HOST_DOCKER_HOST ??
  'unix:///run/recovery-docker/recovery.sock';

const primary = dockerFromHost(PRIMARY);
const recovery = dockerFromHost(RECOVERY);
const suffix = `${Date.now().toString(36)}`;
const runId = `it-${suffix}`;
const roomRunId = `it-room-${suffix}`;
const bothRunId = `it-both-${suffix}`;
const namesRunId = `it-names-${suffix}`;
const dynamicRunId = `it-dynamic-${suffix}`;
const hostNetworkRunId = `it-hostnet-${suffix}`;
const hostOnlyRunId = `it-hostonly-${suffix}`;
const hostNetworkContainer = `hostnet-${suffix}`;
const volumeRunId = `it-volume-${suffix}`;
const volumeContainer = `vol-${suffix}`;
const stoppedContainer = `stopped-${suffix}`;
const memoryContainer = `memory-${suffix}`;
const pausedContainer = `paused-${suffix}`;
const volumeName = `vol-data-${suffix}`;
const unwritableCaptureId = `cap-unwritable-${suffix}`;
const isolatedRunId = `it-isolated-${suffix}`;
const ipv6RunId = `it-ipv6-${suffix}`;
const ipv6Container = `ipv6-${suffix}`;
const ipv6ProdNetwork = `ipv6-prod-${suffix}`;
const reloadRunId = `it-reload-${suffix}`;
const killedRunId = `it-killed-${suffix}`;
const loadStoppedRunId = `it-load-stopped-${suffix}`;
const recordedContainer = `recorded-${suffix}`;
const composeRunId = `it-compose-${suffix}`;
const composeContainer = `compose-web-1-${suffix}`;
const hostListener = `host-listener-${suffix}`;
const strayContainer = `stray-${suffix}`;
const otherEngineContainer = `other-engine-${suffix}`;
const shutdownContainer = `shutdown-${suffix}`;
const limitedContainer = `limited-${suffix}`;
const limitedRunId = `it-limited-${suffix}`;
const leftRoomRunId = `it-left-room-${suffix}`;
const tmpfsContainer = `tmpfs-${suffix}`;
const tmpfsRunId = `it-tmpfs-${suffix}`;
const roVolumeContainer = `ro-volume-${suffix}`;
const roVolumeName = `ro-vol-${suffix}`;
const resumedRunId = `it-resumed-${suffix}`;
const staleProbeImage = `recovery-probe-stale-${suffix}:1`;
const keptProdNetwork = `kept-prod-${suffix}`;
const keptContainer = `kept-01-${suffix}`;
const keptFailoverRunId = `it-kept-failover-${suffix}`;
const keptTestRunId = `it-kept-test-${suffix}`;
const secondFailoverRunId = `it-second-failover-${suffix}`;
const probedFailoverRunId = `it-probed-failover-${suffix}`;
const eventContainers = [
  `evt-${suffix}`,
  `evt-before-${suffix}`,
  `evt-stopped-${suffix}`,
  `evt-buffered-${suffix}`,
  `evt-edge-${suffix}`,
  `evt-edge-after-${suffix}`,
  `evt-evicted-${suffix}`,
  `evt-buffered-running-${suffix}`,
];
const store = mkdtempSync(join(tmpdir(), 'recovery-captures-'));
const captures = new Map<string, CapturedMachine & { captureId: string }>();
const loaded: string[] = [];
let startedDemo = false;
const timings: Record<string, number> = {};

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

/** Boots a labelled container that exits with 3: a `start` and a `failure` per service. */
async function bootAndFail(name: string, services = 'alpha') {
  const c = await primary.createContainer({
    name,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', 'sleep 0.1; exit 3'],
    Labels: {
      'recovery.backstage-recovery.io/machine': name,
      'recovery.backstage-recovery.io/service': services,
    },
  });
  await c.start();
  await c.wait();
}

/** Serves HTTP on 8080 from a demo capture's image (busybox httpd), instead of its services. */
const HTTPD = [
  'sh',
  '-c',
  'mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w',
];

/** Probes until the probe passes (the machine's server may still be starting), or 15 s. */
async function probeUntilOk(lab: LabHandle, machine: MachineHandle) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const result = await host.probe(lab, machine, { kind: 'tcp', port: 8080 });
    if (result.ok || Date.now() > deadline) return result;
    await new Promise(r => setTimeout(r, 300));
  }
}

/** The address a container has on a lab network. */
async function addressOn(id: string, network: string) {
  return (await recovery.getContainer(id).inspect()).NetworkSettings.Networks[
    network
  ]?.IPAddress;
}

/** The probe container of run `id`. */
async function probeContainerOf(id: string) {
  const [probe, ...more] = await recovery.listContainers({
    all: true,
    filters: { label: [`${RUN_ID_LABEL}=${id}`, `${PROBE_LABEL}=true`] },
  });
  expect(more).toEqual([]);
  return probe;
}

/** A record callback that holds its capture in the recording phase until `release` is called. */
function heldRecord() {
  let recording!: () => void;
  let release!: () => void;
  const inRecord = new Promise<void>(resolve => {
    recording = resolve;
  });
  const released = new Promise<void>(resolve => {
    release = resolve;
  });
  const record = async () => {
    recording();
    await released;
  };
  return { record, inRecord, release };
}

/** A capture as the run store hands it to the hypervisor host. */
function restorableOf(
  machineRef: string,
  c: CapturedMachine & { captureId: string },
): RestorableCapture {
  return {
    captureId: c.captureId,
    machineRef,
    imageId: c.imageId,
    checksum: c.checksum,
    artifact: c.artifact,
    runtime: c.runtime,
  };
}

/** The primary engine with every commit held until `release`, as a large image's would be. */
function heldCommits() {
  let committing!: () => void;
  let release!: () => void;
  const inCommit = new Promise<void>(resolve => {
    committing = resolve;
  });
  const released = new Promise<void>(resolve => {
    release = resolve;
  });
  const held = Object.create(primary) as Docker;
  held.getContainer = (id: string) => {
    const container = primary.getContainer(id);
    const commit = container.commit.bind(container);
    container.commit = (async (opts: any) => {
      committing();
      await released;
      return commit(opts);
    }) as any;
    return container;
  };
  return { docker: held, inCommit, release };
}

const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

/** Runs `cmd` in a running container; its stdout. */
async function execOut(
  docker: Docker,
  id: string,
  cmd: string[],
): Promise<string> {
  const exec = await docker
    .getContainer(id)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = (await exec.start({ hijack: true, stdin: false })) as any;
  const { stdout, stderr } = demuxDockerStream(await readAll(stream));
  const { ExitCode } = await exec.inspect();
  if (ExitCode !== 0)
    throw new Error(`${cmd.join(' ')}: exit code ${ExitCode}: ${stderr}`);
  return stdout;
}

/** The exit code of `cmd` run in a running container. */
async function exitCodeOf(
  docker: Docker,
  id: string,
  cmd: string[],
): Promise<number | null> {
  const exec = await docker
    .getContainer(id)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  await readAll((await exec.start({ hijack: true, stdin: false })) as any);
  return (await exec.inspect()).ExitCode;
}

/** Keeps a container running until it is stopped. */
const IDLE = [
  'sh',
  '-c',
  'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
];

async function reachable(docker: Docker, address: string, name: string) {
  try {
    await docker.ping();
  } catch (e) {
    throw new Error(
      `${name} Docker engine ${address} is not reachable (start it with scripts/docker-engines.sh start): ${(e as Error).message}`,
    );
  }
}

function sha256(file: string) {
  return `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
}

/** A capture's archive as `docker save` wrote it, its layers put back from the store. */
async function original(artifact: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of readCaptureArchive(store, join(store, artifact)))
    parts.push(chunk);
  return Buffer.concat(parts);
}
const sha256Of = (data: Buffer) =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Bytes of files under `dir`, recursively. */
function bytesUnder(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) =>
      n +
      (e.isDirectory()
        ? bytesUnder(join(dir, e.name))
        : statSync(join(dir, e.name)).size),
    0,
  );
}

beforeAll(async () => {
  await reachable(primary, PRIMARY, 'primary');
  await reachable(recovery, RECOVERY, 'recovery');
  const before = await demoSiteStatus(primary);
  startedDemo = !before.every(m => m.running);
  const t0 = Date.now();
  await startDemoSite(primary);
  timings.demoUpMs = Date.now() - t0;
});

afterAll(async () => {
  await host.teardown(runId).catch(() => {});
  await host.teardown(roomRunId).catch(() => {});
  const both = new DockerHypervisorHost('primary', primary, {
    storeDirectory: store,
  });
  await both.teardown(bothRunId).catch(() => {});
  await host.teardown(namesRunId).catch(() => {});
  for (const id of [dynamicRunId, hostNetworkRunId, hostOnlyRunId])
    await host.teardown(id).catch(() => {});
  await primary
    .getContainer(hostNetworkContainer)
    .remove({ force: true })
    .catch(() => {});
  await host.teardown(volumeRunId).catch(() => {});
  await primary
    .getContainer(volumeContainer)
    .remove({ force: true, v: true })
    .catch(() => {});
  await primary
    .getContainer(stoppedContainer)
    .remove({ force: true })
    .catch(() => {});
  await primary
    .getContainer(memoryContainer)
    .remove({ force: true })
    .catch(() => {});
  await primary
    .getContainer(pausedContainer)
    .remove({ force: true })
    .catch(() => {});
  await host.teardown(isolatedRunId).catch(() => {});
  await host.teardown(reloadRunId).catch(() => {});
  await host.teardown(killedRunId).catch(() => {});
  await host.teardown(loadStoppedRunId).catch(() => {});
  await host.teardown(composeRunId).catch(() => {});
  await primary
    .getContainer(composeContainer)
    .remove({ force: true })
    .catch(() => {});
  await recovery
    .getContainer(hostListener)
    .remove({ force: true })
    .catch(() => {});
  await recovery
    .getContainer(strayContainer)
    .remove({ force: true })
    .catch(() => {});
  await host.teardown(`it-stray-${suffix}`).catch(() => {});
  for (const id of [
    limitedRunId,
    leftRoomRunId,
    tmpfsRunId,
    resumedRunId,
    probedFailoverRunId,
  ])
    await host.teardown(id).catch(() => {});
  for (const name of [tmpfsContainer, roVolumeContainer])
    await primary
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
  await primary
    .getVolume(roVolumeName)
    .remove()
    .catch(() => {});
  await recovery
    .getImage(staleProbeImage)
    .remove({ force: true })
    .catch(() => {});
  await primary
    .getContainer(limitedContainer)
    .remove({ force: true })
    .catch(() => {});
  for (const name of [
    otherEngineContainer,
    shutdownContainer,
    recordedContainer,
  ])
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
  for (const image of await primary
    .listImages({
      filters: { reference: [`recovery-capture/${recordedContainer}`] },
    })
    .catch(() => [])) {
    for (const tag of image.RepoTags ?? [])
      await primary
        .getImage(tag)
        .remove()
        .catch(() => {});
  }
  await primary
    .getVolume(volumeName)
    .remove()
    .catch(() => {});
  for (const c of captures.values())
    await source.discard({ ...c, volumes: c.runtime.volumes }).catch(() => {});
  for (const id of loaded)
    await recovery
      .getImage(id)
      .remove({ force: true })
      .catch(() => {});
  for (const name of eventContainers)
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
  await primary
    .getImage(`recovery-capture/infra-01:${unwritableCaptureId}`)
    .remove()
    .catch(() => {});
  if (startedDemo) await stopDemoSite(primary);
  rmSync(store, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log('timings', JSON.stringify(timings));
});

describe('Docker capture source and hypervisor host (real engines)', () => {
  it('captures every demo machine: committed, saved, checksummed, network identity kept', async () => {
    for (const m of DEMO_MACHINES) {
      const captureId = `cap-${m.name}-${suffix}`;
      const t0 = Date.now();
      const c = await source.capture(
        {
          machineRef: `resource:default/${m.name}`,
          engine: 'primary',
          container: m.name,
        },
        { captureId },
      );
      timings[`capture_${m.name}_ms`] = Date.now() - t0;
      timings[`capture_${m.name}_bytes`] = c.sizeBytes;
      timings[`capture_${m.name}_paused_ms`] = c.pausedMs!;
      // Paused for the commit, unpaused before the image is saved into the store.
      expect(c.pausedMs).toBeGreaterThan(0);
      expect(c.pausedMs).toBeLessThan(c.durationMs);
      expect((await primary.getContainer(m.name).inspect()).State.Paused).toBe(
        false,
      );
      captures.set(m.name, { ...c, captureId });
      const saved = await original(c.artifact);
      expect(saved.length).toBe(c.sizeBytes);
      expect(sha256Of(saved)).toBe(c.checksum);
      expect(c.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(c.adaptations).toEqual([]);
      expect(c.runtime.hostname).toBe(m.name);
      expect(c.runtime.networks).toHaveLength(1);
      const net = c.runtime.networks[0];
      expect(net).toMatchObject({
        name: 'demo-prod',
        subnet: '172.29.10.0/24',
        gateway: '172.29.10.1',
        ipv4Address: m.ipv4,
      });
      expect(net.aliases).toEqual(
        expect.arrayContaining(m.services.map(s => s.name)),
      );
      expect(c.runtime.healthcheck?.test).toEqual([
        'CMD',
        '/usr/libexec/demo/healthcheck',
      ]);
      expect(c.runtime.labels['recovery.backstage-recovery.io/machine']).toBe(
        m.name,
      );
    }
    // One image's machines: its layers are kept once, each capture's own top layer beside them.
    const logical = [...captures.values()].reduce((n, c) => n + c.sizeBytes, 0);
    timings.store_bytes_for_demo_captures = bytesUnder(store);
    timings.saved_bytes_of_demo_captures = logical;
    expect(bytesUnder(store)).toBeLessThan(logical / 2);
    // Each capture says what it added: the first the image's layers, the others their own commits'.
    const stored = DEMO_MACHINES.map(m => captures.get(m.name)!.storedBytes!);
    expect(stored.reduce((a, b) => a + b, 0)).toBe(bytesUnder(store));
    for (const later of stored.slice(1))
      expect(later).toBeLessThan(stored[0] / 10);
  });

  it('captures a machine that is not running without pausing it', async () => {
    await primary.createContainer({
      name: stoppedContainer,
      Image: DEMO_IMAGE,
      HostConfig: { NetworkMode: 'none' },
    });
    const captureId = `cap-stopped-${suffix}`;
    const c = await source.capture(
      {
        machineRef: 'resource:default/stopped',
        engine: 'primary',
        container: stoppedContainer,
      },
      { captureId },
    );
    captures.set('stopped', { ...c, captureId });
    expect(c.pausedMs).toBe(0);
    expect(sha256Of(await original(c.artifact))).toBe(c.checksum);
    // Nothing running, nothing in memory to say.
    expect(c.runtime.memoryBytes).toBeUndefined();
  });

  it('says the memory a machine holds when captured, as docker stats counts it', async () => {
    // 40 MiB in its tmpfs: memory the machine holds, charged to its cgroup, not a cache it could drop.
    const held = 40 * 1024 ** 2;
    const c = await primary.createContainer({
      name: memoryContainer,
      Image: DEMO_IMAGE,
      Cmd: [
        'sh',
        '-c',
        `head -c ${held} /dev/zero > /dev/shm/held && echo held; trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done`,
      ],
      HostConfig: { NetworkMode: 'none' },
    });
    await c.start();
    for (
      let i = 0;
      i < 100 &&
      !String(await c.logs({ stdout: true, follow: false })).includes('held');
      i++
    ) {
      await new Promise(r => setTimeout(r, 100));
    }
    const captureId = `cap-memory-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/memory',
        engine: 'primary',
        container: memoryContainer,
      },
      { captureId },
    );
    timings.capture_memory_bytes = captured.runtime.memoryBytes!;
    expect(captured.runtime.memoryBytes).toBeGreaterThanOrEqual(held);
    // The shell and busybox's own pages beside it, no more.
    expect(captured.runtime.memoryBytes).toBeLessThan(held + 16 * 1024 ** 2);
    await source.discard({
      captureId,
      artifact: captured.artifact,
      volumes: captured.runtime.volumes,
    });
  });

  it('stops a capture that keeps production paused past the limit: unpaused, and nothing kept', async () => {
    const c = await primary.createContainer({
      name: pausedContainer,
      Image: DEMO_IMAGE,
      Cmd: [
        'sh',
        '-c',
        'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
      ],
      HostConfig: { NetworkMode: 'none' },
    });
    await c.start();
    // No commit takes under a millisecond.
    const impatient = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
      maxPauseMs: 1,
    });
    const captureId = `cap-paused-${suffix}`;
    await expect(
      impatient.capture(
        {
          machineRef: 'resource:default/paused',
          engine: 'primary',
          container: pausedContainer,
        },
        { captureId },
      ),
    ).rejects.toThrow(
      'capture of resource:default/paused kept production paused past the 1 ms limit (recovery.docker.maxCapturePause) while committing the image: unpaused, nothing kept',
    );
    const { State } = await c.inspect();
    expect({ running: State.Running, paused: State.Paused }).toEqual({
      running: true,
      paused: false,
    });
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    const left = await primary.listImages({
      filters: { reference: [`recovery-capture/*:${captureId}`] },
    });
    expect(left.flatMap(i => i.RepoTags ?? [])).toEqual([]);
  });

  it('unpauses production at the limit, not when a slow commit returns', async () => {
    // The commit is held until production is seen running again, however long the engine takes
    // to get there; the limit is 300 ms.
    const commits = heldCommits();
    const limited = new DockerCaptureSource('primary', commits.docker, {
      storeDirectory: store,
      maxPauseMs: 300,
    });
    const captureId = `cap-slow-${suffix}`;
    const capture = limited.capture(
      {
        machineRef: 'resource:default/paused',
        engine: 'primary',
        container: pausedContainer,
      },
      { captureId },
    );
    // It fails while production is looked at below: handled now, not to be reported unhandled.
    capture.catch(() => {});
    const paused = async () =>
      (await primary.getContainer(pausedContainer).inspect()).State.Paused;
    try {
      await commits.inCommit;
      await until(
        'production running again',
        async () => !(await paused()),
        10_000,
      );
      // Mid-commit, production runs again.
      expect(await paused()).toBe(false);
    } finally {
      commits.release();
    }
    await expect(capture).rejects.toThrow(
      'capture of resource:default/paused kept production paused past the 300 ms limit (recovery.docker.maxCapturePause) while committing the image: unpaused, nothing kept',
    );
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    expect(readdirSync(join(store, '.paused'))).toEqual([]);
    const left = await primary.listImages({
      filters: { reference: [`recovery-capture/*:${captureId}`] },
    });
    expect(left.flatMap(i => i.RepoTags ?? [])).toEqual([]);
  });

  it('unpauses production at once when the backend shuts down mid-capture, and keeps nothing', async () => {
    const c = await primary.createContainer({
      name: shutdownContainer,
      Image: DEMO_IMAGE,
      Cmd: IDLE,
      HostConfig: { NetworkMode: 'none' },
    });
    await c.start();
    // The commit is held until production is seen running again; the limit is far off.
    const commits = heldCommits();
    const stopped = new DockerCaptureSource('primary', commits.docker, {
      storeDirectory: store,
      maxPauseMs: 60_000,
    });
    const captureId = `cap-shutdown-${suffix}`;
    const locator = {
      machineRef: 'resource:default/shutdown',
      engine: 'primary',
      container: shutdownContainer,
    };
    const capture = stopped.capture(locator, { captureId });
    // It fails while production is looked at below: handled now, not to be reported unhandled.
    capture.catch(() => {});
    let stopping: Promise<unknown> | undefined;
    try {
      await commits.inCommit;
      expect((await c.inspect()).State.Paused).toBe(true);
      // The backend's shutdown hook: production runs again mid-commit, and when it returns.
      stopping = stopped.stopCaptures();
      await until(
        'production running again',
        async () => !(await c.inspect()).State.Paused,
        10_000,
      );
      expect((await c.inspect()).State.Paused).toBe(false);
    } finally {
      commits.release();
    }
    await stopping;
    expect((await c.inspect()).State).toMatchObject({
      Running: true,
      Paused: false,
    });
    await expect(capture).rejects.toThrow(
      'capture of resource:default/shutdown stopped as the backend shuts down: unpaused, nothing kept',
    );
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    const { Id } = await c.inspect();
    expect(
      readdirSync(join(store, '.paused')).filter(f => f.endsWith(Id)),
    ).toEqual([]);
    const left = await primary.listImages({
      filters: { reference: [`recovery-capture/*:${captureId}`] },
    });
    expect(left.flatMap(i => i.RepoTags ?? [])).toEqual([]);
    // Nor does it pause production again while the backend stops.
    await expect(
      stopped.capture(locator, { captureId: `${captureId}-late` }),
    ).rejects.toThrow(
      'capture of resource:default/shutdown stopped as the backend shuts down: nothing kept',
    );
    expect((await c.inspect()).State.Paused).toBe(false);
  });

  it('unpauses a machine that a stopped backend left paused mid-capture, and removes what that capture left', async () => {
    const c = primary.getContainer(pausedContainer);
    const { Id } = await c.inspect();
    const captureId = `cap-interrupted-${suffix}`;
    const imageRef = `recovery-capture/${pausedContainer}:${captureId}`;
    // What a backend killed while the volumes were being copied leaves: the machine paused, the
    // committed tag, a volume archive and a temporary one, and the note written before pausing.
    await c.pause();
    await c.commit({
      repo: `recovery-capture/${pausedContainer}`,
      tag: captureId,
      pause: false,
    });
    writeFileSync(join(store, `${captureId}.volume-1.tar`), 'partial');
    writeFileSync(
      join(store, `.${captureId}.volume-2.tar.1a2b3c4d.tmp`),
      'partial',
    );
    const note = (pausedAt: string) =>
      writeFileSync(
        join(store, '.paused', `primary.${Id}`),
        JSON.stringify({
          machineRef: 'resource:default/paused',
          captureId,
          imageRef,
          filePrefix: captureId,
          pausedAt,
        }),
      );
    const locator = {
      machineRef: 'resource:default/paused',
      engine: 'primary',
      container: pausedContainer,
    };

    // A note within its limit may be another backend's capture under way: left alone.
    note(new Date().toISOString());
    const restarted = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
      maxPauseMs: 60_000,
    });
    expect(await restarted.resumeInterruptedCaptures()).toEqual([]);
    await expect(
      restarted.capture(locator, { captureId: `cap-second-${suffix}` }),
    ).rejects.toThrow(
      new RegExp(
        `^machine resource:default/paused: capture ${captureId} is under way \\(paused it at .*\\); one capture of a machine at a time$`,
      ),
    );
    expect((await c.inspect()).State.Paused).toBe(true);

    // Past its limit, it was left by a capture that no longer runs.
    note(new Date(Date.now() - 3_600_000).toISOString());
    expect(await restarted.resumeInterruptedCaptures()).toEqual([
      'resource:default/paused',
    ]);
    expect((await c.inspect()).State).toMatchObject({
      Running: true,
      Paused: false,
    });
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    expect(readdirSync(join(store, '.paused'))).toEqual([]);
    const left = await primary.listImages({
      filters: { reference: [imageRef] },
    });
    expect(left).toEqual([]);

    // The same at the next capture, where start-up could not reach the engine.
    await c.pause();
    note(new Date(Date.now() - 3_600_000).toISOString());
    const next = await restarted.capture(locator, {
      captureId: `cap-next-${suffix}`,
    });
    await restarted.discard({
      captureId: `cap-next-${suffix}`,
      artifact: next.artifact,
    });
    expect(next.pausedMs).toBeGreaterThan(0);
    expect((await c.inspect()).State.Paused).toBe(false);
    expect(readdirSync(join(store, '.paused'))).toEqual([]);
  });

  it('keeps its note through the save after the unpause, so a backend starting meanwhile leaves the capture alone', async () => {
    const c = primary.getContainer(pausedContainer);
    const { Id } = await c.inspect();
    // `docker save` is held for 2 s (as a large image would be).
    let saving!: () => void;
    const saveStarted = new Promise<void>(resolve => {
      saving = resolve;
    });
    const slowSaves = Object.create(primary) as Docker;
    // The save goes through the engine's API (the modem), to be abortable: held there.
    const modem = Object.create(primary.modem) as Docker['modem'];
    modem.dial = ((options: { path: string }, callback: unknown) => {
      if (!/\/images\/.+\/get$/.test(options.path))
        return primary.modem.dial(options as any, callback as any);
      saving();
      setTimeout(
        () => primary.modem.dial(options as any, callback as any),
        2000,
      );
      return undefined;
    }) as Docker['modem']['dial'];
    slowSaves.modem = modem;
    const slow = new DockerCaptureSource('primary', slowSaves, {
      storeDirectory: store,
    });
    const captureId = `cap-slow-save-${suffix}`;
    const locator = {
      machineRef: 'resource:default/paused',
      engine: 'primary',
      container: pausedContainer,
    };
    const capture = slow.capture(locator, { captureId });
    await saveStarted;
    // Unpaused, and the note says the capture is saving.
    expect((await c.inspect()).State.Paused).toBe(false);
    const notePath = join(store, '.paused', `primary.${Id}`);
    expect(JSON.parse(readFileSync(notePath, 'utf8'))).toMatchObject({
      captureId,
      phase: 'saving',
    });
    expect(
      await new DockerCaptureSource('primary', primary, {
        storeDirectory: store,
      }).resumeInterruptedCaptures(),
    ).toEqual([]);
    await expect(
      source.capture(locator, { captureId: `${captureId}-second` }),
    ).rejects.toThrow(
      `machine resource:default/paused: capture ${captureId} is under way (saving it into the capture store); one capture of a machine at a time`,
    );
    const c1 = await capture;
    try {
      expect(sha256Of(await original(c1.artifact))).toBe(c1.checksum);
      expect(existsSync(notePath)).toBe(false);
    } finally {
      await source.discard({ captureId, artifact: c1.artifact });
    }
  });

  it('removes what a backend stopped mid-save left, its files and tag, without touching the machine', async () => {
    const c = primary.getContainer(pausedContainer);
    const { Id } = await c.inspect();
    const captureId = `cap-stopped-saving-${suffix}`;
    const imageRef = `recovery-capture/${pausedContainer}:${captureId}`;
    const notePath = join(store, '.paused', `primary.${Id}`);
    const locator = {
      machineRef: 'resource:default/paused',
      engine: 'primary',
      container: pausedContainer,
    };
    // What a backend killed while saving the image leaves: the machine unpaused, the committed
    // tag, the volume archives, a temporary image archive, and the note of the saving phase.
    const leftBehind = async () => {
      await c.commit({
        repo: `recovery-capture/${pausedContainer}`,
        tag: captureId,
        pause: false,
      });
      writeFileSync(join(store, `${captureId}.volume-1.tar`), 'archived');
      writeFileSync(join(store, `.${captureId}.tar.1a2b3c4d.tmp`), 'partial');
      const pausedAt = new Date(Date.now() - 3_600_000).toISOString();
      writeFileSync(
        notePath,
        JSON.stringify({
          machineRef: 'resource:default/paused',
          captureId,
          imageRef,
          filePrefix: captureId,
          phase: 'saving',
          pausedAt,
        }),
      );
    };
    const notRefreshedFor = (ms: number) =>
      utimesSync(
        notePath,
        new Date(Date.now() - ms),
        new Date(Date.now() - ms),
      );
    const tagsLeft = async () =>
      (
        await primary.listImages({ filters: { reference: [imageRef] } })
      ).flatMap(i => i.RepoTags ?? []);
    await leftBehind();

    // Refreshed a moment ago, it is another backend's save under way, however long ago it paused.
    const restarted = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
      maxPauseMs: 1000,
    });
    expect(await restarted.resumeInterruptedCaptures()).toEqual([]);
    await expect(
      restarted.capture(locator, { captureId: `cap-second-${suffix}` }),
    ).rejects.toThrow(
      `machine resource:default/paused: capture ${captureId} is under way (saving it into the capture store); one capture of a machine at a time`,
    );
    expect(readdirSync(store).filter(f => f.includes(captureId))).toHaveLength(
      2,
    );

    // Not refreshed for long, it was left by a backend stopped mid-save. Paused since by
    // someone else, the machine stays so: that capture had unpaused it.
    notRefreshedFor(10 * 60_000);
    await c.pause();
    try {
      expect(await restarted.resumeInterruptedCaptures()).toEqual([]);
      expect((await c.inspect()).State.Paused).toBe(true);
    } finally {
      await c.unpause();
    }
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    expect(existsSync(notePath)).toBe(false);
    expect(await tagsLeft()).toEqual([]);

    // The same at the next capture of the machine, where start-up could not reach the engine.
    await leftBehind();
    notRefreshedFor(10 * 60_000);
    const nextId = `cap-after-save-${suffix}`;
    const next = await restarted.capture(locator, { captureId: nextId });
    await restarted.discard({ captureId: nextId, artifact: next.artifact });
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    expect(await tagsLeft()).toEqual([]);
    expect(existsSync(notePath)).toBe(false);
  });

  it("leaves another engine's pause note alone, also where that engine's id begins with its own", async () => {
    const c = await primary.createContainer({
      name: otherEngineContainer,
      Image: DEMO_IMAGE,
      Cmd: IDLE,
      HostConfig: { NetworkMode: 'none' },
    });
    await c.start();
    const { Id } = await c.inspect();
    // Left by a backend stopped while capturing this machine of engine `primary.eu` (the
    // primary engine again, under another id: engines share the capture store).
    await c.pause();
    const captureId = `cap-other-engine-${suffix}`;
    const notePath = join(store, '.paused', `primary.eu.${Id}`);
    mkdirSync(join(store, '.paused'), { recursive: true });
    writeFileSync(
      notePath,
      JSON.stringify({
        machineRef: 'resource:default/eu-01',
        captureId,
        imageRef: `recovery-capture/${otherEngineContainer}:${captureId}`,
        filePrefix: captureId,
        pausedAt: new Date(Date.now() - 3_600_000).toISOString(),
      }),
    );
    // Engine `primary` starts: not its note, nor its machine.
    expect(
      await new DockerCaptureSource('primary', primary, {
        storeDirectory: store,
      }).resumeInterruptedCaptures(),
    ).toEqual([]);
    expect(existsSync(notePath)).toBe(true);
    // Engine `primary.eu` starts: it unpauses its machine.
    const eu = new DockerCaptureSource('primary.eu', primary, {
      storeDirectory: store,
    });
    expect(await eu.resumeInterruptedCaptures()).toEqual([
      'resource:default/eu-01',
    ]);
    expect((await c.inspect()).State).toMatchObject({
      Running: true,
      Paused: false,
    });
    expect(existsSync(notePath)).toBe(false);
  });

  it('removes a note cut short by a kill while it was first written, and only once it is old', async () => {
    // Written before the pause, so nothing was paused: but one a minute young may be being written.
    const notePath = join(store, '.paused', `primary.${'0'.repeat(64)}`);
    mkdirSync(join(store, '.paused'), { recursive: true });
    writeFileSync(notePath, '{"machineRef":"resource:def');
    const fresh = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
    });
    await expect(fresh.resumeInterruptedCaptures()).rejects.toThrow(
      /unreadable, so its machine may still be paused/,
    );
    expect(existsSync(notePath)).toBe(true);
    const old = new Date(Date.now() - 120_000);
    utimesSync(notePath, old, old);
    expect(await fresh.resumeInterruptedCaptures()).toEqual([]);
    expect(existsSync(notePath)).toBe(false);
  });

  /** A backend's capture service, on a database of its own, capturing through `captureSource`. */
  async function captureService(captureSource: DockerCaptureSource) {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const records = new CaptureStore(knex);
    const service = buildCaptureService({
      store: records,
      sources: [captureSource],
    });
    return { records, service };
  }
  const recordedLocator = {
    machineRef: 'resource:default/recorded',
    engine: 'primary',
    container: recordedContainer,
  };
  const filesOf = (captureId: string) =>
    readdirSync(store).filter(f => f.includes(captureId));
  const tagsOf = async (captureId: string) =>
    (
      await primary.listImages({
        filters: { reference: [`recovery-capture/*:${captureId}`] },
      })
    ).flatMap(i => i.RepoTags ?? []);

  it('removes, at the next capture of the machine, what a backend stopped before recording a capture left; keeps what is recorded', async () => {
    await (
      await primary.createContainer({
        name: recordedContainer,
        Image: DEMO_IMAGE,
        Cmd: IDLE,
        HostConfig: { NetworkMode: 'none' },
      })
    ).start();
    // Timed: the removal of what is unrecorded, in each capture.
    const sweepsMs: number[] = [];
    const timed = Object.create(source) as DockerCaptureSource;
    timed.removeUnrecorded = async (recorded, machine) => {
      const t0 = performance.now();
      try {
        return await source.removeUnrecorded(recorded, machine);
      } finally {
        sweepsMs.push(Math.round(performance.now() - t0));
      }
    };
    const { records, service } = await captureService(timed);
    const first = await service.captureMachine(recordedLocator);
    // What a backend stopped after the capture source returned, before the record, leaves: the
    // files and the tag, the note gone (the source let go of it before returning).
    const unrecordedId = `cap-unrecorded-${suffix}`;
    await source.capture(recordedLocator, { captureId: unrecordedId });
    // The same container, captured as another catalog machine: its own records keep it.
    const twinId = `cap-twin-${suffix}`;
    const twin = await source.capture(
      { ...recordedLocator, machineRef: 'resource:default/recorded-twin' },
      { captureId: twinId },
    );
    try {
      expect(filesOf(unrecordedId)).toEqual([`${unrecordedId}.tar`]);
      expect(readdirSync(join(store, '.paused'))).toEqual([]);

      const next = await service.captureMachine(recordedLocator);
      expect(filesOf(unrecordedId)).toEqual([]);
      expect(await tagsOf(unrecordedId)).toEqual([]);
      for (const kept of [first, next]) {
        expect(filesOf(kept.id)).toEqual([`${kept.id}.tar`]);
        expect(await tagsOf(kept.id)).toEqual([
          `recovery-capture/${recordedContainer}:${kept.id}`,
        ]);
      }
      expect(filesOf(twinId)).toEqual([`${twinId}.tar`]);
      expect(await tagsOf(twinId)).toHaveLength(1);
      expect(
        (await records.listCaptures(recordedLocator.machineRef))
          .map(c => c.id)
          .sort(),
      ).toEqual([first.id, next.id].sort());
      timings.sweep_nothing_left_ms = sweepsMs[0];
      timings.sweep_one_left_ms = sweepsMs[1];
    } finally {
      for (const c of await records.listCaptures(recordedLocator.machineRef))
        await source.discard({ captureId: c.id, artifact: c.artifact });
      await source.discard({ captureId: twinId, artifact: twin.artifact });
    }
  });

  it('leaves a capture being recorded alone; one whose backend stopped while recording it, to the records', async () => {
    const { Id } = await primary.getContainer(recordedContainer).inspect();
    const notePath = join(store, '.paused', `primary.${Id}`);
    const captureId = `cap-recording-${suffix}`;
    // A backend's capture whose record is under way (held until released).
    const { record, inRecord, release } = heldRecord();
    const capture = source.capture(recordedLocator, { captureId, record });
    await inRecord;
    try {
      expect(JSON.parse(readFileSync(notePath, 'utf8'))).toMatchObject({
        captureId,
        phase: 'recording',
      });
      // Another backend meanwhile: its records do not have it yet, its start finds the note fresh.
      const other = new DockerCaptureSource('primary', primary, {
        storeDirectory: store,
      });
      expect(
        await other.removeUnrecorded(async () => [], recordedLocator),
      ).toEqual([]);
      expect(await other.resumeInterruptedCaptures()).toEqual([]);
      await expect(
        other.capture(recordedLocator, { captureId: `${captureId}-second` }),
      ).rejects.toThrow(
        `machine resource:default/recorded: capture ${captureId} is under way (recording it); one capture of a machine at a time`,
      );
      expect(filesOf(captureId)).toEqual([`${captureId}.tar`]);
    } finally {
      release();
    }
    const c = await capture;
    expect(existsSync(notePath)).toBe(false);

    // A backend stopped while recording it leaves the note: stale, only the note goes, as the
    // capture may be recorded; the records then say whether its files and tag stay.
    writeFileSync(
      notePath,
      JSON.stringify({
        machineRef: recordedLocator.machineRef,
        captureId,
        imageRef: `recovery-capture/${recordedContainer}:${captureId}`,
        filePrefix: captureId,
        phase: 'recording',
      }),
    );
    utimesSync(
      notePath,
      new Date(Date.now() - 600_000),
      new Date(Date.now() - 600_000),
    );
    const restarted = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
    });
    expect(await restarted.resumeInterruptedCaptures()).toEqual([]);
    expect(existsSync(notePath)).toBe(false);
    expect(filesOf(captureId)).toEqual([c.artifact]);
    expect(
      await restarted.removeUnrecorded(
        async () => [captureId],
        recordedLocator,
      ),
    ).toEqual([]);
    expect(filesOf(captureId)).toEqual([c.artifact]);
    expect(
      await restarted.removeUnrecorded(async () => [], recordedLocator),
    ).toEqual([captureId]);
    expect(filesOf(captureId)).toEqual([]);
    expect(await tagsOf(captureId)).toEqual([]);
  });

  it('removes, in a sweep of every machine, what an unrecorded capture of a machine never captured again left; keeps what is recorded or under way', async () => {
    const machines = {
      decommissioned: {
        machineRef: 'resource:default/decommissioned',
        engine: 'primary',
        container: `swept-${suffix}`,
      },
      busy: {
        machineRef: 'resource:default/busy',
        engine: 'primary',
        container: `swept-busy-${suffix}`,
      },
      other: {
        machineRef: 'resource:default/other',
        engine: 'primary',
        container: `swept-other-${suffix}`,
      },
    };
    for (const { container } of Object.values(machines)) {
      await (
        await primary.createContainer({
          name: container,
          Image: DEMO_IMAGE,
          Cmd: IDLE,
          HostConfig: { NetworkMode: 'none' },
        })
      ).start();
    }
    // The other tests' captures, recorded in no database here: told recorded, as their backend would.
    const allTags = async () =>
      (
        await primary.listImages({
          filters: { reference: ['recovery-capture/*'] },
        })
      ).flatMap(i => i.RepoTags ?? []);
    const elsewhere = await allTags();
    const { records, service } = await captureService(source);
    const asked: string[][] = [];
    const recorded = async (machineRefs: string[]) => {
      asked.push([...machineRefs].sort());
      const ours = await Promise.all(
        machineRefs.map(ref => records.listCaptures(ref, 1000)),
      );
      return [
        ...ours.flat().map(c => c.id),
        ...elsewhere.map(ref => ref.slice(ref.lastIndexOf(':') + 1)),
      ];
    };
    const sweep = async () => {
      const t0 = performance.now();
      const removed = await source.removeUnrecorded(recorded);
      return { removed, ms: Math.round(performance.now() - t0) };
    };
    const kept = await service.captureMachine(machines.decommissioned);
    const other = await service.captureMachine(machines.other);
    // A layer no capture refers to any longer (its captures discarded), written hours ago: the
    // sweep takes it; one as old that the captures refer to stays.
    const layers = join(store, LAYERS_DIRECTORY);
    const unused = join(layers, `${'0'.repeat(64)}.layer`);
    writeFileSync(unused, 'left by discarded captures');
    const hoursAgo = new Date(Date.now() - 7 * 3600_000);
    for (const name of readdirSync(layers))
      utimesSync(join(layers, name), hoursAgo, hoursAgo);
    const used = readdirSync(layers).filter(
      name => join(layers, name) !== unused,
    );
    expect(used.length).toBeGreaterThan(0);
    // A backend stopped before recording this capture; then the machine is decommissioned.
    const leftId = `cap-left-${suffix}`;
    await source.capture(machines.decommissioned, { captureId: leftId });
    await primary
      .getContainer(machines.decommissioned.container)
      .remove({ force: true });
    // Another machine's capture whose record is under way (held until released).
    const busyId = `cap-busy-${suffix}`;
    const { record, inRecord, release } = heldRecord();
    const busy = source.capture(machines.busy, { captureId: busyId, record });
    try {
      await inRecord;
      const tagsSwept = (await allTags()).length;
      const first = await sweep();
      expect(first.removed).toEqual([leftId]);
      expect(existsSync(unused)).toBe(false);
      expect(readdirSync(layers)).toEqual(expect.arrayContaining(used));
      expect(filesOf(leftId)).toEqual([]);
      expect(await tagsOf(leftId)).toEqual([]);
      for (const c of [kept, other]) {
        expect(filesOf(c.id)).toEqual([`${c.id}.tar`]);
        expect(await tagsOf(c.id)).toHaveLength(1);
      }
      expect(filesOf(busyId)).toEqual([`${busyId}.tar`]);
      expect(await tagsOf(busyId)).toHaveLength(1);
      // The records asked once, of the machines whose captures no note accounts for.
      expect(asked).toHaveLength(1);
      expect(asked[0]).toEqual(
        expect.arrayContaining([
          'resource:default/decommissioned',
          'resource:default/other',
        ]),
      );
      expect(asked[0]).not.toContain('resource:default/busy');
      release();
      // Let go of unrecorded (its record stored nothing): the next sweep removes it.
      await busy;
      const second = await sweep();
      expect(second.removed).toEqual([busyId]);
      expect(filesOf(busyId)).toEqual([]);
      const third = await sweep();
      expect(third.removed).toEqual([]);
      expect(await allTags()).toEqual(expect.arrayContaining(elsewhere));
      expect(await tagsOf(kept.id)).toHaveLength(1);
      timings.sweep_all_one_left_ms = first.ms;
      timings.sweep_all_one_left_again_ms = second.ms;
      timings.sweep_all_nothing_left_ms = third.ms;
      timings.sweep_all_capture_tags = tagsSwept;
    } finally {
      release();
      await busy.catch(() => {});
      for (const c of [kept, other])
        await source.discard({ captureId: c.id, artifact: `${c.id}.tar` });
      await source.discard({ captureId: busyId, artifact: `${busyId}.tar` });
      for (const { container } of Object.values(machines))
        await primary
          .getContainer(container)
          .remove({ force: true })
          .catch(() => {});
    }
  });

  it('drops, with a stale note, the rewrite of it that a backend killed mid-rewrite left beside it', async () => {
    const notePath = join(store, '.paused', `primary.${'1'.repeat(64)}`);
    const captureId = `cap-torn-rewrite-${suffix}`;
    const note = {
      machineRef: 'resource:default/torn',
      captureId,
      imageRef: `recovery-capture/torn:${captureId}`,
      filePrefix: captureId,
    };
    mkdirSync(join(store, '.paused'), { recursive: true });
    // Killed between writing the rewrite and renaming it over the note.
    writeFileSync(notePath, JSON.stringify({ ...note, phase: 'saving' }));
    writeFileSync(
      `${notePath}.tmp`,
      JSON.stringify({ ...note, phase: 'recording' }),
    );
    const old = new Date(Date.now() - 600_000);
    utimesSync(notePath, old, old);
    expect(
      await new DockerCaptureSource('primary', primary, {
        storeDirectory: store,
      }).resumeInterruptedCaptures(),
    ).toEqual([]);
    expect(
      readdirSync(join(store, '.paused')).filter(f =>
        f.startsWith(`primary.${'1'.repeat(64)}`),
      ),
    ).toEqual([]);
  });

  it('restores the captures on the recovery engine in an internal lab with the same addresses and names, and they boot', async () => {
    const lab = await host.createLab(
      runId,
      captures.get('infra-01')!.runtime.networks,
      { internal: true },
    );
    expect(lab.networks).toEqual([labNetworkName(runId, 'demo-prod')]);
    const netInfo = await recovery.getNetwork(lab.networks[0]).inspect();
    expect(netInfo.Internal).toBe(true);
    expect(netInfo.IPAM!.Config![0]).toMatchObject({
      Subnet: '172.29.10.0/24',
      Gateway: '172.29.10.1',
    });
    expect(netInfo.Labels?.[RUN_ID_LABEL]).toBe(runId);

    const handles = new Map<string, MachineHandle>();
    for (const m of DEMO_MACHINES) {
      const c = captures.get(m.name)!;
      const t0 = Date.now();
      const { machine, adaptations } = await host.restoreMachine(lab, {
        captureId: c.captureId,
        machineRef: `resource:default/${m.name}`,
        imageId: c.imageId,
        checksum: c.checksum,
        artifact: c.artifact,
        runtime: c.runtime,
      });
      loaded.push(c.imageId);
      timings[`restore_${m.name}_ms`] = Date.now() - t0;
      expect(adaptations).toEqual([]);
      handles.set(m.name, machine);
      const info = await recovery.getContainer(machine.id).inspect();
      expect(info.State.Running).toBe(false);
      expect(info.Config.Hostname).toBe(m.name);
      expect(info.Config.Labels[RUN_ID_LABEL]).toBe(runId);
      const ep = info.NetworkSettings.Networks[lab.networks[0]];
      expect(ep.IPAMConfig?.IPv4Address).toBe(m.ipv4);
      expect(ep.Aliases).toEqual(
        expect.arrayContaining([m.name, ...m.services.map(s => s.name)]),
      );
      expect(info.HostConfig.PortBindings ?? {}).toEqual({});
      // boot in order, each machine's services initialized before the next
      const t1 = Date.now();
      await host.startMachine(machine);
      for (;;) {
        const log = await host.logTail(machine, 50);
        if (
          m.services.every(s => log.includes(`service=${s.name} initialized`))
        )
          break;
        expect(log).not.toMatch(/failed/);
        expect(Date.now() - t1).toBeLessThan(30_000);
        await new Promise(r => setTimeout(r, 200));
      }
      timings[`boot_${m.name}_ms`] = Date.now() - t1;
      expect((await host.inspectMachine(machine)).running).toBe(true);
    }

    // probes from inside the lab
    const data = handles.get('data-01')!;
    const web = handles.get('web-01')!;
    const ok = await host.probe(lab, data, { kind: 'tcp', port: 5432 });
    expect(ok).toMatchObject({ ok: true });
    expect(ok.message).toContain('172.29.10.12:5432');
    const closed = await host.probe(lab, data, { kind: 'tcp', port: 5433 });
    expect(closed.ok).toBe(false);
    expect(closed.message).toMatch(/5433.*refused/);
    expect(
      await host.probe(lab, web, { kind: 'http', port: 80, path: '/healthz' }),
    ).toMatchObject({ ok: true });
    const missing = await host.probe(lab, web, {
      kind: 'http',
      port: 80,
      path: '/missing',
    });
    expect(missing.ok).toBe(false);
    expect(missing.message).toMatch(/404/);
    // A probe container that stopped, then one removed, is made again for the next probe.
    const probeContainer = recovery.getContainer(
      dockerName('rr', runId, 'probe'),
    );
    await probeContainer.stop({ t: 0 });
    expect(
      await host.probe(lab, data, { kind: 'tcp', port: 5432 }),
    ).toMatchObject({ ok: true });
    await probeContainer.remove({ force: true });
    expect(
      await host.probe(lab, data, { kind: 'tcp', port: 5432 }),
    ).toMatchObject({ ok: true });

    const resources = await host.listLabResources(runId);
    expect(resources.networks).toEqual(lab.networks);
    expect(resources.machines).toHaveLength(4); // 3 machines + probe container
  });

  it('rejects an artifact whose checksum does not match, naming the capture', async () => {
    const c = captures.get('web-01')!;
    const bad = join(store, `corrupt-${suffix}.tar`);
    copyFileSync(join(store, c.artifact), bad);
    writeFileSync(bad, Buffer.from('corrupt'), { flag: 'r+' });
    await expect(
      host.restoreMachine(
        { runId, networks: [labNetworkName(runId, 'demo-prod')] },
        {
          captureId: 'cap-corrupt',
          machineRef: 'resource:default/web-01',
          imageId: `sha256:${'0'.repeat(64)}`,
          checksum: c.checksum,
          artifact: bad,
          runtime: c.runtime,
        },
      ),
    ).rejects.toThrow(/capture cap-corrupt: checksum mismatch/);
  });

  it("reads the room restoring the captures takes (layers they share once) and the engine's free space, leaving nothing", async () => {
    const all = DEMO_MACHINES.map(m =>
      restorableOf(`resource:default/${m.name}`, captures.get(m.name)!),
    );
    // What GNU tar lists, each regular file once by path (the images share their busybox layer).
    const files = new Map<string, number>();
    let archives = 0;
    const unpackedOf = new Map<string, number>();
    for (const c of all) {
      // The archive as docker save wrote it (the store keeps its layers apart).
      const saved = join(store, `.original-${c.captureId}`);
      writeFileSync(saved, await original(c.artifact));
      archives += statSync(saved).size;
      const listed = execFileSync('tar', ['-tvf', saved], { encoding: 'utf8' });
      rmSync(saved);
      let unpacked = 0;
      for (const line of listed.split('\n')) {
        const [mode, , size, , , ...path] = line.split(/\s+/);
        if (mode?.startsWith('-')) {
          files.set(path.join(' '), Number(size));
          unpacked += Number(size);
        }
      }
      unpackedOf.set(c.captureId, unpacked);
    }
    const volumes = all
      .flatMap(c => c.runtime.volumes ?? [])
      .reduce((n, v) => n + v.sizeBytes, 0);
    // The restore above left their images on the recovery engine: a run loads them no more, and
    // only their volumes take room there.
    expect((await host.room(roomRunId, [all])).neededBytes).toBe(volumes);
    // As on a host that lacks their images (named by an id no image has): their archives' files.
    const unloaded = all.map(c => ({
      ...c,
      imageId: `sha256:${'f'.repeat(64)}`,
    }));
    const t0 = Date.now();
    // One machine a wave, as the demo boots; then all three in one wave, loaded at once.
    const room = await host.room(
      roomRunId,
      unloaded.map(c => [c]),
    );
    timings.roomMs = Date.now() - t0;
    const together = await host.room(roomRunId, [unloaded]);
    const { DockerRootDir } = await recovery.info();
    // docker load unpacks an archive whole in the data root before it takes in its layers: the
    // largest wave's archives are needed beside the files of all the others.
    const layersOnce = [...files.values()].reduce((a, b) => a + b, 0) + volumes;
    const unpacked = [...unpackedOf.values()];
    expect(room).toMatchObject({
      where: `recovery:${DockerRootDir}`,
      neededBytes: layersOnce + Math.max(...unpacked),
    });
    expect(together.neededBytes).toBe(
      layersOnce + unpacked.reduce((a, b) => a + b, 0),
    );
    expect(room.neededBytes).toBeLessThan(archives);
    // The engine runs here: its data root's free space, as statfs says it, give or take what
    // other tests write meanwhile.
    const fs = statfsSync(DockerRootDir);
    expect(Math.abs(room.freeBytes! - fs.bavail * fs.bsize)).toBeLessThan(
      256 * 1024 ** 2,
    );
    // The memory the machines held when captured, all at once; the host's, as this kernel says it.
    const held = all.map(c => c.runtime.memoryBytes!);
    expect(held.every(bytes => bytes > 0)).toBe(true);
    expect(room).toMatchObject({
      neededMemoryBytes: held.reduce((a, b) => a + b, 0),
      memoryKnownFor: 3,
    });
    const memAvailable =
      Number(
        /^MemAvailable:\s+(\d+) kB$/m.exec(
          readFileSync('/proc/meminfo', 'utf8'),
        )![1],
      ) * 1024;
    expect(Math.abs(room.availableMemoryBytes! - memAvailable)).toBeLessThan(
      512 * 1024 ** 2,
    );
    expect(await host.listLabResources(roomRunId)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('on an engine that also runs production, lets Docker choose the lab subnet and says so', async () => {
    const both = new DockerHypervisorHost('primary', primary, {
      storeDirectory: store,
    });
    const c = captures.get('data-01')!;
    // Captured from this engine: its network of that name is production's own.
    const lab = await both.createLab(
      bothRunId,
      c.runtime.networks.map(n => ({ ...n, engine: 'primary' })),
      { internal: true },
    );
    const { adaptations, addressesLost } = await both.restoreMachine(lab, {
      captureId: c.captureId,
      machineRef: 'resource:default/data-01',
      imageId: c.imageId,
      checksum: c.checksum,
      artifact: c.artifact,
      runtime: c.runtime,
    });
    expect(addressesLost).toEqual([
      expect.stringMatching(
        /production subnet 172\.29\.10\.0\/24 is in use.*dynamic address instead of 172\.29\.10\.12/,
      ),
    ]);
    expect(adaptations).toEqual([]);
    const removed = await both.teardown(bothRunId);
    expect(removed.networks).toEqual(lab.networks);
  });

  it('keeps an isolated lab off the recovery host itself: nothing the host serves answers from inside', async () => {
    await host.ensureProbeImage();
    // Something the recovery host serves on all its addresses (its engine's API, sshd, a
    // backend, production's published ports on an engine of role both).
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const listener = await recovery.createContainer({
      name: hostListener,
      Image: DEFAULT_PROBE_IMAGE,
      Cmd: ['httpd', '-f', '-p', String(port), '-h', '/'],
      HostConfig: { NetworkMode: 'host' },
    });
    await listener.start();
    const prod: CapturedNetwork = {
      name: 'it-isolated-prod',
      subnet: '172.29.79.0/24',
      gateway: '172.29.79.1',
      ipv4Address: '172.29.79.2',
      aliases: [],
    };
    const lab = await host.createLab(isolatedRunId, [prod], { internal: true });
    try {
      const machine = await recovery.createContainer({
        name: `rr-${isolatedRunId}-machine`,
        Image: DEFAULT_PROBE_IMAGE,
        Cmd: IDLE,
        Labels: { [RUN_ID_LABEL]: isolatedRunId },
        HostConfig: { NetworkMode: lab.networks[0] },
        NetworkingConfig: {
          EndpointsConfig: {
            [lab.networks[0]]: {
              IPAMConfig: { IPv4Address: prod.ipv4Address },
            },
          },
        },
      });
      await machine.start();
      const connect = (id: string, address: string) =>
        exitCodeOf(recovery, id, [
          'nc',
          '-w',
          '2',
          address,
          String(port),
          '-e',
          'true',
        ]);
      // The host serves it.
      await until(
        'the published port answering',
        async () => (await connect(listener.id, '127.0.0.1')) === 0,
        10_000,
      );
      expect(await connect(listener.id, '127.0.0.1')).toBe(0);
      // Not to the lab: neither at production's gateway address nor at another of the host's.
      const hostBridge = (await recovery.getNetwork('bridge').inspect()).IPAM!
        .Config![0].Gateway!;
      expect(await connect(machine.id, prod.gateway!)).not.toBe(0);
      expect(await connect(machine.id, hostBridge)).not.toBe(0);
      // Inside the lab, the machine still answers (here: refuses a port nothing listens on).
      const handle: MachineHandle = {
        runId: isolatedRunId,
        machineRef: 'resource:default/isolated',
        id: machine.id,
        hostnames: [],
      };
      const probed = await host.probe(lab, handle, { kind: 'tcp', port: 1 });
      expect(probed.message).toMatch(/172\.29\.79\.2:1 .*refused/);
    } finally {
      await host.teardown(isolatedRunId);
      await listener.remove({ force: true });
    }
  });

  it("keeps IPv6 off in an isolated lab, whatever production's sysctls turned on: no link-local (fe80::) path to the recovery host", async () => {
    await createTestNetwork(
      primary,
      {
        Name: ipv6ProdNetwork,
        IPAM: { Config: [{ Subnet: '172.29.83.0/24' }] },
      },
      suffix,
    );
    try {
      const c = await primary.createContainer({
        name: ipv6Container,
        Image: DEMO_IMAGE,
        Cmd: IDLE,
        HostConfig: {
          NetworkMode: ipv6ProdNetwork,
          Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '0' },
        },
      });
      await c.start();
      // Production had it on.
      expect(
        await execOut(primary, c.id, [
          'cat',
          '/proc/sys/net/ipv6/conf/eth0/disable_ipv6',
        ]),
      ).toBe('0\n');
      const captureId = `cap-ipv6-${suffix}`;
      const captured = await source.capture(
        {
          machineRef: 'resource:default/ipv6',
          engine: 'primary',
          container: ipv6Container,
        },
        { captureId },
      );
      const lab = await host.createLab(ipv6RunId, captured.runtime.networks, {
        internal: true,
      });
      const { machine, adaptations } = await host.restoreMachine(
        lab,
        restorableOf('resource:default/ipv6', { ...captured, captureId }),
      );
      expect(adaptations).toContain(
        "IPv6 sysctls not applied in the test lab: net.ipv6.conf.all.disable_ipv6=0 (the test lab is IPv4-only; IPv6 on would give the machine a link-local path to the recovery host's bridge)",
      );
      await host.startMachine(machine);
      // As the machine sees it: IPv6 off on its lab interface, no link-local address, and so
      // nothing of the host's bridge answers on fe80:: (with it on, the host's side does).
      expect(
        await execOut(recovery, machine.id, [
          'cat',
          '/proc/sys/net/ipv6/conf/eth0/disable_ipv6',
        ]),
      ).toBe('1\n');
      expect(
        await execOut(recovery, machine.id, [
          'ip',
          '-6',
          'addr',
          'show',
          'dev',
          'eth0',
        ]),
      ).toBe('');
      expect(
        await exitCodeOf(recovery, machine.id, [
          'ping6',
          '-c',
          '1',
          '-W',
          '2',
          'ff02::1%eth0',
        ]),
      ).not.toBe(0);
    } finally {
      await host.teardown(ipv6RunId);
      await primary
        .getContainer(ipv6Container)
        .remove({ force: true })
        .catch(() => {});
      await primary
        .getNetwork(ipv6ProdNetwork)
        .remove()
        .catch(() => {});
    }
  });

  it('streams start and die events from the primary engine as initialization events', async () => {
    const src = new DockerEventSource('primary', primary, {
      minBackoffMs: 200,
    });
    const events: InitializationEvent[] = [];
    const abort = new AbortController();
    const running = src.start(async e => {
      events.push(...e);
    }, abort.signal);
    await new Promise(r => setTimeout(r, 300));
    const t0 = Date.now();
    const c = await primary.createContainer({
      name: `evt-${suffix}`,
      Image: DEMO_IMAGE,
      Cmd: ['sh', '-c', 'sleep 0.3; exit 3'],
      Labels: {
        'recovery.backstage-recovery.io/machine': `evt-machine-${suffix}`,
        'recovery.backstage-recovery.io/service': 'alpha,beta',
      },
    });
    await c.start();
    await c.wait();
    const deadline = Date.now() + 10_000;
    while (
      events.filter(e => e.machine === `evt-machine-${suffix}`).length < 4 &&
      Date.now() < deadline
    ) {
      await new Promise(r => setTimeout(r, 100));
    }
    abort.abort();
    await running;
    const mine = events.filter(e => e.machine === `evt-machine-${suffix}`);
    expect(mine.map(e => `${e.service}:${e.type}`).sort()).toEqual([
      'alpha:failure',
      'alpha:start',
      'beta:failure',
      'beta:start',
    ]);
    for (const e of mine) {
      expect(e.time).toBeGreaterThanOrEqual(t0 - 2000);
      expect(e.time).toBeLessThanOrEqual(Date.now());
    }
  });

  it('resumes from the newest stored event: containers started while it was stopped are stored', async () => {
    const stored: InitializationEvent[] = [];
    const collect = (resume: { since?: number }) => {
      const abort = new AbortController();
      const running = new DockerEventSource('primary', primary, {
        minBackoffMs: 200,
      }).start(
        async e => {
          stored.push(...e);
        },
        abort.signal,
        resume,
      );
      return async () => {
        abort.abort();
        await running;
      };
    };
    const boot = async (name: string) => {
      const c = await primary.createContainer({
        name,
        Image: DEMO_IMAGE,
        Cmd: ['sh', '-c', 'sleep 0.1; exit 3'],
        Labels: {
          'recovery.backstage-recovery.io/machine': name,
          'recovery.backstage-recovery.io/service': 'alpha',
        },
      });
      await c.start();
      await c.wait();
    };
    const storedOf = async (machine: string) => {
      const deadline = Date.now() + 10_000;
      while (
        stored.filter(e => e.machine === machine).length < 2 &&
        Date.now() < deadline
      ) {
        await new Promise(r => setTimeout(r, 100));
      }
      return stored
        .filter(e => e.machine === machine)
        .map(e => e.type)
        .sort();
    };

    const stopFirst = collect({});
    await new Promise(r => setTimeout(r, 300));
    await boot(`evt-before-${suffix}`);
    expect(await storedOf(`evt-before-${suffix}`)).toEqual([
      'failure',
      'start',
    ]);
    await stopFirst();

    // The backend is down: the engine buffers this boot's events.
    await boot(`evt-stopped-${suffix}`);
    await new Promise(r => setTimeout(r, 1100)); // a start from "now" (whole seconds) would miss it

    const stopSecond = collect({ since: Math.max(...stored.map(e => e.time)) });
    try {
      expect(await storedOf(`evt-stopped-${suffix}`)).toEqual([
        'failure',
        'start',
      ]);
    } finally {
      await stopSecond();
    }
  });

  it('with nothing stored from it, reads what the engine still buffers: boots before its first start are stored', async () => {
    const name = `evt-buffered-${suffix}`;
    const runs = `evt-buffered-running-${suffix}`;
    await bootAndFail(name);
    // Still running, and its start still buffered: stored from that event, not also from StartedAt.
    const running = await primary.createContainer({
      name: runs,
      Image: DEMO_IMAGE,
      Cmd: ['sh', '-c', 'sleep 300'],
      Labels: {
        'recovery.backstage-recovery.io/machine': runs,
        'recovery.backstage-recovery.io/service': 'alpha',
      },
    });
    await running.start();
    await new Promise(r => setTimeout(r, 1100)); // a start from "now" (whole seconds) would miss it
    const stored: InitializationEvent[] = [];
    const abort = new AbortController();
    const collecting = new DockerEventSource('primary', primary, {
      minBackoffMs: 200,
    }).start(async e => {
      stored.push(...e);
    }, abort.signal);
    try {
      await until(
        'three events stored',
        () =>
          stored.filter(e => e.machine === name || e.machine === runs).length >=
          3,
        10_000,
      );
      await new Promise(r => setTimeout(r, 300)); // room for a second start of `runs`
    } finally {
      abort.abort();
      await collecting;
    }
    expect(
      stored
        .filter(e => e.machine === name)
        .map(e => e.type)
        .sort(),
    ).toEqual(['failure', 'start']);
    expect(stored.filter(e => e.machine === runs).map(e => e.type)).toEqual([
      'start',
    ]);
  });

  it('resuming at the newest stored time replays the events at exactly that time: the missing stored, none twice', async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const events = new EventStore(knex);
    const edge = `evt-edge-${suffix}`;
    const after = `evt-edge-after-${suffix}`;
    const storedOf = async (machine: string) =>
      (await storedEvents(events))
        .filter(e => e.machine === machine)
        .map(e => `${e.service}:${e.type}`)
        .sort();
    // As the backend starts a source: from the newest event stored from it.
    const collect = async (
      onEvents: (batch: InitializationEvent[]) => Promise<void>,
    ) => {
      const src = new DockerEventSource('primary', primary, {
        minBackoffMs: 200,
      });
      const abort = new AbortController();
      const since = await events.newestEventTimeFrom(src.id);
      const running = src.start(onEvents, abort.signal, { since });
      return async () => {
        abort.abort();
        await running;
      };
    };

    // Its die gives two events at one time (one per service); the first run stores only one
    // of them, so the newest stored time has an event stored and one not.
    await bootAndFail(edge, 'alpha,beta');
    const stopFirst = await collect(async batch => {
      const kept = batch.filter(
        e =>
          !(e.machine === edge && e.service === 'beta' && e.type === 'failure'),
      );
      await events.insertEvents(kept, 'docker:primary');
    });
    try {
      await until(
        'three events of the edge stored',
        async () => (await storedOf(edge)).length >= 3,
        10_000,
      );
    } finally {
      await stopFirst();
    }
    expect(await storedOf(edge)).toEqual([
      'alpha:failure',
      'alpha:start',
      'beta:start',
    ]);
    const newest = (await events.newestEventTimeFrom('docker:primary'))!;
    const edgeFailure = (await storedEvents(events)).find(
      e => e.machine === edge && e.type === 'failure',
    )!;
    expect(newest).toBe(edgeFailure.time);
    const storedBefore = (await storedEvents(events)).length;

    const added: Array<{ batch: InitializationEvent[]; inserted: number }> = [];
    const stopSecond = await collect(async batch => {
      added.push({
        batch,
        inserted: await events.insertEvents(batch, 'docker:primary'),
      });
    });
    try {
      await until(
        'four events of the edge stored',
        async () => (await storedOf(edge)).length >= 4,
        10_000,
      );
      await bootAndFail(after);
      await until(
        'two events of the later machine stored',
        async () => (await storedOf(after)).length >= 2,
        10_000,
      );
    } finally {
      await stopSecond();
    }
    expect(await storedOf(edge)).toEqual([
      'alpha:failure',
      'alpha:start',
      'beta:failure',
      'beta:start',
    ]);
    expect(await storedOf(after)).toEqual(['alpha:failure', 'alpha:start']);
    // The event at the resume time came again and was not stored again.
    const replayed = added.find(a =>
      a.batch.some(
        e =>
          e.machine === edge && e.service === 'alpha' && e.type === 'failure',
      ),
    );
    expect(replayed?.inserted).toBe(1); // only beta's failure was new
    // Nothing older than the resume time was stored again: one row more, beta's failure.
    expect(
      (await storedEvents(events)).filter(e => e.time <= newest).length,
    ).toBe(storedBefore + 1);
  });

  it('stores once, timed by StartedAt, a running boot whose start event the engine no longer buffers', async () => {
    const name = `evt-evicted-${suffix}`;
    const c = await primary.createContainer({
      name,
      Image: DEMO_IMAGE,
      Cmd: ['sh', '-c', 'sleep 300'],
      Labels: {
        'recovery.backstage-recovery.io/machine': name,
        'recovery.backstage-recovery.io/service': 'alpha',
      },
    });
    await c.start();
    const { Id, State } = await c.inspect();
    const startHeld = async () => {
      const s = (await primary.getEvents({
        since: 0,
        until: Math.floor(Date.now() / 1000) + 1,
      } as any)) as any;
      let text = '';
      for await (const chunk of s) text += chunk;
      return text
        .split('\n')
        .some(
          l => l.includes(`"id":"${Id}"`) && l.includes('"Action":"start"'),
        );
    };
    // Push its start event out of the engine's buffer (256 events): a volume created and
    // removed is two events.
    for (let i = 0; i < 400 && (i % 20 !== 0 || (await startHeld())); i++) {
      const volume = `evt-evict-${suffix}-${i}`;
      await primary.createVolume({ Name: volume });
      await primary.getVolume(volume).remove();
    }
    expect(await startHeld()).toBe(false);

    const collect = async (resume: { since?: number }) => {
      const delivered: InitializationEvent[] = [];
      const abort = new AbortController();
      const running = new DockerEventSource('primary', primary, {
        minBackoffMs: 200,
      }).start(
        async e => {
          delivered.push(...e);
        },
        abort.signal,
        resume,
      );
      const delivery = until(
        'an event of the machine delivered',
        () => delivered.some(e => e.machine === name),
        // Listing the engine's containers takes seconds on a loaded engine; what must not come
        // is waited for 10 s.
        resume.since === undefined ? 60_000 : 10_000,
      );
      // Resumed after its boot, none is to come: the wait runs out, what came is checked below.
      await (resume.since === undefined ? delivery : delivery.catch(() => {}));
      await new Promise(r => setTimeout(r, 500));
      abort.abort();
      await running;
      return delivered.filter(e => e.machine === name);
    };
    const first = await collect({});
    expect(first.map(e => `${e.service}:${e.type}`)).toEqual(['alpha:start']);
    expect(Math.floor(first[0].time)).toBe(Date.parse(State.StartedAt)); // ms of its StartedAt
    // Resumed at or after that boot, it is not stored again.
    expect(await collect({ since: Math.round(first[0].time) })).toEqual([]);
  });

  it('leaves no committed image behind when the capture store cannot be written', async () => {
    const notADirectory = join(store, `not-a-directory-${suffix}`);
    writeFileSync(notADirectory, '');
    const unwritable = new DockerCaptureSource('primary', primary, {
      storeDirectory: join(notADirectory, 'captures'),
    });
    await expect(
      unwritable.capture(
        {
          machineRef: 'resource:default/infra-01',
          engine: 'primary',
          container: 'infra-01',
        },
        { captureId: unwritableCaptureId },
      ),
    ).rejects.toThrow(/ENOTDIR/);
    const left = await primary.listImages({
      filters: { reference: [`recovery-capture/*:${unwritableCaptureId}`] },
    });
    expect(left.flatMap(i => i.RepoTags ?? [])).toEqual([]);
  });

  it('restores machines sharing a hostname, or with hostname probe, as containers of their own', async () => {
    const c = captures.get('data-01')!;
    const lab = await host.createLab(namesRunId, c.runtime.networks, {
      internal: true,
    });
    const restore = (machineRef: string, runtime: CapturedMachine['runtime']) =>
      host.restoreMachine(lab, {
        captureId: c.captureId,
        machineRef,
        imageId: c.imageId,
        checksum: c.checksum,
        artifact: c.artifact,
        runtime,
      });
    try {
      // Host-network machines: no network captured, and the primary's hostname for both.
      const hostNetwork = {
        ...c.runtime,
        hostname: 'primary-host',
        networks: [],
        labels: {
          ...c.runtime.labels,
          [PRODUCTION_NETWORK_MODE_LABEL]: 'host',
        },
      };
      const a = await restore('resource:default/batch-a', hostNetwork);
      const b = await restore('resource:default/batch-b', hostNetwork);
      expect(b.machine.id).not.toBe(a.machine.id);
      for (const [machine, ref] of [
        [a.machine, 'resource:default/batch-a'],
        [b.machine, 'resource:default/batch-b'],
      ] as const) {
        const info = await recovery.getContainer(machine.id).inspect();
        expect(info.Config.Labels[MACHINE_REF_LABEL]).toBe(ref);
        expect(info.Config.Hostname).toBe('primary-host');
      }
      // A resumed run finds each machine's own container again (never started, so made anew: a
      // stopped backend may have left it without some of its networks or volume content).
      const resumed = await restore('resource:default/batch-b', hostNetwork);
      const [again, before] = [
        await recovery.getContainer(resumed.machine.id).inspect(),
        await recovery
          .getContainer(b.machine.id)
          .inspect()
          .catch(() => undefined),
      ];
      expect([
        again.Name,
        again.Config.Labels[MACHINE_REF_LABEL],
        before,
      ]).toEqual([
        `/${machineContainerName(namesRunId, 'resource:default/batch-b')}`,
        'resource:default/batch-b',
        undefined,
      ]);
      expect(
        (await recovery.getContainer(a.machine.id).inspect()).Config.Labels[
          MACHINE_REF_LABEL
        ],
      ).toBe('resource:default/batch-a');

      // Hostname probe, on the lab network (a dynamic address: this lab's subnet may differ).
      const probeHost = {
        ...c.runtime,
        hostname: 'probe',
        networks: c.runtime.networks.map(n => ({
          ...n,
          ipv4Address: undefined,
        })),
      };
      const { machine } = await restore('resource:default/probe', probeHost);
      const probed = await host.probe(lab, machine, {
        kind: 'tcp',
        port: 5432,
      });
      expect(probed.message).toContain('from the lab (probe container');
      const probes = await recovery.listContainers({
        all: true,
        filters: {
          label: [`${RUN_ID_LABEL}=${namesRunId}`, `${PROBE_LABEL}=true`],
        },
      });
      expect(probes.map(p => p.Id)).toHaveLength(1);
      expect(probes[0].Id).not.toBe(machine.id);
      // Never started: the probe must not have run inside the machine.
      expect((await host.inspectMachine(machine)).running).toBe(false);
    } finally {
      await host.teardown(namesRunId);
    }
  });

  it('gives the probe container an address no machine uses, and names who holds an address a machine cannot get', async () => {
    const c = captures.get('data-01')!;
    // Production handed out dynamic addresses from .2 up: db got .2, app (waiting for db) .3.
    const prod: CapturedNetwork = {
      name: 'it-dynamic-prod',
      subnet: '172.29.77.0/24',
      gateway: '172.29.77.1',
      aliases: [],
    };
    const restorable = (
      name: string,
      ipv4Address: string,
    ): RestorableCapture => ({
      captureId: c.captureId,
      machineRef: `resource:default/${name}`,
      imageId: c.imageId,
      checksum: c.checksum,
      artifact: c.artifact,
      runtime: {
        ...c.runtime,
        hostname: name,
        healthcheck: undefined,
        entrypoint: HTTPD.slice(0, 2),
        cmd: HTTPD.slice(2),
        networks: [{ ...prod, ipv4Address, aliases: [name] }],
      },
    });
    // Told only the first machine's address (a run tells every machine's): the probe must still
    // keep off the others' and move where it holds one.
    const lab = await host.createLab(
      dynamicRunId,
      [{ ...prod, ipv4Address: '172.29.77.2' }],
      { internal: true },
    );
    const [network] = lab.networks;
    const boot = async (name: string, ipv4Address: string) => {
      const { machine } = await host.restoreMachine(
        lab,
        restorable(name, ipv4Address),
      );
      await host.startMachine(machine);
      return machine;
    };
    try {
      const db = await boot('db', '172.29.77.2');
      // Wave 1's probe creates the probe container, before wave 2's app is restored.
      expect(await probeUntilOk(lab, db)).toMatchObject({ ok: true });
      const probe = await probeContainerOf(dynamicRunId);
      expect(await addressOn(probe.Id, network)).toBe('172.29.77.254');
      const app = await boot('app', '172.29.77.3');
      expect(await addressOn(app.id, network)).toBe('172.29.77.3');
      expect((await probeUntilOk(lab, app)).message).toContain(
        'TCP connect to 172.29.77.3:8080 from the lab',
      );
      // Docker's own dynamic addresses come from the top half, which holds no known production address.
      expect(
        (await recovery.getNetwork(network).inspect()).IPAM!.Config![0],
      ).toMatchObject({
        Subnet: '172.29.77.0/24',
        Gateway: '172.29.77.1',
        IPRange: '172.29.77.128/25',
      });

      // An address the lab was not told about, and the probe container holds: the probe moves.
      const top = await boot('top', '172.29.77.254');
      expect(await addressOn(top.id, network)).toBe('172.29.77.254');
      expect(await addressOn(probe.Id, network)).toBe('172.29.77.253');
      expect((await probeUntilOk(lab, top)).message).toContain(
        '172.29.77.254:8080',
      );
      expect(await probeUntilOk(lab, db)).toMatchObject({ ok: true });

      // Another machine's: the error names the machine, the address and who holds it.
      const { machine: clash } = await host.restoreMachine(
        lab,
        restorable('clash', '172.29.77.3'),
      );
      await expect(host.startMachine(clash)).rejects.toThrow(
        `machine resource:default/clash cannot get its production address 172.29.77.3 on lab network ${network}: machine resource:default/app (container `,
      );
    } finally {
      await host.teardown(dynamicRunId);
    }
  });

  it('puts a host-network machine on the lab network with an address Docker picks, and probes it there', async () => {
    // Never started: a capture needs none, and it would serve on the test host's own interfaces.
    await primary.createContainer({
      name: hostNetworkContainer,
      Image: DEMO_IMAGE,
      Entrypoint: HTTPD.slice(0, 2),
      Cmd: HTTPD.slice(2),
      HostConfig: { NetworkMode: 'host' },
    });
    const captureId = `cap-hostnet-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/hostnet',
        engine: 'primary',
        container: hostNetworkContainer,
      },
      { captureId },
    );
    captures.set('hostnet', { ...captured, captureId });
    expect(captured.runtime.networks).toEqual([]);
    expect(captured.adaptations).toEqual([
      expect.stringMatching(
        /^host network mode dropped: the machine gets an address on the lab network/,
      ),
    ]);
    expect(captured.runtime.labels[PRODUCTION_NETWORK_MODE_LABEL]).toBe('host');
    const hostname = captured.runtime.hostname; // the production host's own name
    const restorable: RestorableCapture = {
      captureId,
      machineRef: 'resource:default/hostnet',
      imageId: captured.imageId,
      checksum: captured.checksum,
      artifact: captured.artifact,
      runtime: captured.runtime,
    };

    const data = captures.get('data-01')!;
    const prod: CapturedNetwork = {
      name: 'it-hostnet-prod',
      subnet: '172.29.78.0/24',
      gateway: '172.29.78.1',
      ipv4Address: '172.29.78.2',
      aliases: [],
    };
    const lab = await host.createLab(hostNetworkRunId, [prod], {
      internal: true,
    });
    const [network] = lab.networks;
    try {
      const db = await host.restoreMachine(lab, {
        captureId: data.captureId,
        machineRef: 'resource:default/db',
        imageId: data.imageId,
        checksum: data.checksum,
        artifact: data.artifact,
        runtime: {
          ...data.runtime,
          hostname: 'db',
          healthcheck: undefined,
          entrypoint: HTTPD.slice(0, 2),
          cmd: HTTPD.slice(2),
          networks: [{ ...prod, aliases: ['db'] }],
        },
      });
      await host.startMachine(db.machine);
      const { machine, addressesLost } = await host.restoreMachine(
        lab,
        restorable,
      );
      await host.startMachine(machine);
      const info = await recovery.getContainer(machine.id).inspect();
      expect(info.HostConfig.NetworkMode).toBe(network);
      expect(addressesLost).toEqual([
        expect.stringMatching(
          new RegExp(`network mode host.*${network}.*address Docker picks`),
        ),
      ]);
      const address = info.NetworkSettings.Networks[network].IPAddress;
      // From the lab's own range (the top half), not a production address of the lab's machines.
      expect(address).toMatch(/^172\.29\.78\.(1(2[89]|[3-9]\d)|2\d\d)$/);
      expect(address).not.toBe(prod.ipv4Address);
      expect(await addressOn(db.machine.id, network)).toBe('172.29.78.2');
      const probed = await probeUntilOk(lab, machine);
      expect(probed).toMatchObject({ ok: true });
      expect(probed.message).toContain(
        `TCP connect to ${address}:8080 from the lab`,
      );
      // Not at the production host's name (the target is what precedes the port: the message also
      // names the lab network and probe container, whose run-id suffix may hold any short name).
      expect(probed.message).not.toContain(`${hostname}:8080`);
    } finally {
      await host.teardown(hostNetworkRunId);
    }

    // A lab of host-network machines alone: the run knows no network for it, the host makes one.
    const only = await host.createLab(hostOnlyRunId, [], { internal: true });
    try {
      expect(only.networks).toEqual([labNetworkName(hostOnlyRunId, 'host')]);
      const { machine } = await host.restoreMachine(only, restorable);
      await host.startMachine(machine);
      expect((await probeUntilOk(only, machine)).message).toContain(
        `:8080 from the lab (probe container, network ${only.networks[0]})`,
      );
    } finally {
      await host.teardown(hostOnlyRunId);
    }
  });

  it('verifies the capture file even when its image is already on the engine', async () => {
    const c = captures.get('web-01')!;
    expect(await recovery.getImage(c.imageId).inspect()).toBeTruthy();
    const lab = await host.createLab(namesRunId, c.runtime.networks, {
      internal: true,
    });
    const bad = join(store, `corrupt-present-${suffix}.tar`);
    copyFileSync(join(store, c.artifact), bad);
    writeFileSync(bad, Buffer.from('corrupt'), { flag: 'r+' });
    const restorable = {
      captureId: 'cap-corrupt-present',
      machineRef: 'resource:default/web-01',
      imageId: c.imageId,
      checksum: c.checksum,
      artifact: bad,
      runtime: c.runtime,
    };
    try {
      await expect(host.restoreMachine(lab, restorable)).rejects.toThrow(
        `capture cap-corrupt-present: checksum mismatch for ${bad}: expected ${c.checksum}, got ${sha256(bad)}`,
      );
      await expect(
        host.restoreMachine(lab, {
          ...restorable,
          artifact: join(store, `deleted-${suffix}.tar`),
        }),
      ).rejects.toThrow(
        `artifact ${join(store, `deleted-${suffix}.tar`)} not found`,
      );
      expect((await host.listLabResources(namesRunId)).machines).toEqual([]);
    } finally {
      await host.teardown(namesRunId);
    }
  });

  it("restores a machine docker compose made without the labels by which compose would take it for production's", async () => {
    const project = `shop-${suffix}`;
    // Not started: a capture needs none.
    await primary.createContainer({
      name: composeContainer,
      Image: DEMO_IMAGE,
      Labels: {
        'com.docker.compose.project': project,
        'com.docker.compose.service': 'web',
        'com.docker.compose.container-number': '1',
        'com.docker.compose.oneoff': 'False',
        'recovery.backstage-recovery.io/machine': 'web-1',
      },
      HostConfig: { NetworkMode: 'none' },
    });
    const captureId = `cap-compose-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/web-1',
        engine: 'primary',
        container: composeContainer,
      },
      { captureId },
    );
    captures.set('compose', { ...captured, captureId });
    const lab = await host.createLab(composeRunId, [], { internal: true });
    try {
      const { machine, adaptations } = await host.restoreMachine(lab, {
        captureId,
        machineRef: 'resource:default/web-1',
        imageId: captured.imageId,
        checksum: captured.checksum,
        artifact: captured.artifact,
        runtime: captured.runtime,
      });
      expect(adaptations).toEqual([
        "labels of production's orchestrator emptied (com.docker.compose.container-number, com.docker.compose.oneoff, com.docker.compose.project, com.docker.compose.service): it would take the lab's container for one of its own",
      ]);
      // How compose finds the project's containers: not the lab's (whose image has the labels too).
      const adopted = await recovery.listContainers({
        all: true,
        filters: { label: [`com.docker.compose.project=${project}`] },
      });
      expect(adopted).toEqual([]);
      const { Labels } = (await recovery.getContainer(machine.id).inspect())
        .Config;
      expect(Labels['recovery.backstage-recovery.io/machine']).toBe('web-1');
      expect(Labels['com.docker.compose.project']).toBe('');
    } finally {
      await host.teardown(composeRunId);
    }
  });

  it("loads a capture's image again when another lab's teardown removes it before the machine is created", async () => {
    const c = captures.get('stopped')!;
    const restorable = restorableOf('resource:default/stopped', c);
    // On the engine, as another lab's (a left lab, torn down by this run and the cleanup task at once).
    await host.loadCapture(restorable);
    const racing = Object.create(recovery) as Docker;
    racing.createContainer = (async (
      options: Docker.ContainerCreateOptions,
    ) => {
      // That other teardown ends now: no container uses the image yet, so it goes.
      racing.createContainer = recovery.createContainer.bind(recovery);
      await recovery.getImage(c.imageId).remove();
      return recovery.createContainer(options);
    }) as Docker['createContainer'];
    const raced = new DockerHypervisorHost('recovery', racing, {
      storeDirectory: store,
    });
    const lab = await raced.createLab(reloadRunId, [], { internal: true });
    try {
      const { machine } = await raced.restoreMachine(lab, restorable);
      expect((await recovery.getContainer(machine.id).inspect()).Image).toBe(
        c.imageId,
      );
    } finally {
      await raced.teardown(reloadRunId);
    }
    // Loaded by the run, so removed with its lab.
    await expect(recovery.getImage(c.imageId).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('removes at teardown an image a stopped backend loaded for the run before it created the machine', async () => {
    const c = captures.get('stopped')!;
    const restorable = restorableOf('resource:default/stopped', c);
    await expect(recovery.getImage(c.imageId).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    // The backend stops once the image is loaded, before the machine is created.
    const stopping = Object.create(recovery) as Docker;
    stopping.createContainer = (async () => {
      throw new Error('backend stopped');
    }) as Docker['createContainer'];
    const stopped = new DockerHypervisorHost('recovery', stopping, {
      storeDirectory: store,
    });
    const lab = await stopped.createLab(killedRunId, [], { internal: true });
    await expect(stopped.restoreMachine(lab, restorable)).rejects.toThrow(
      'backend stopped',
    );
    expect((await recovery.getImage(c.imageId).inspect()).RepoTags).toContain(
      labImageRef(killedRunId, c.imageId),
    );
    // The restarted backend's cleanup task tears the lab down: nothing of it is labelled with the
    // run but its network, and this backend loaded nothing itself.
    const restarted = new DockerHypervisorHost('recovery', recovery, {
      storeDirectory: store,
    });
    expect(await restarted.teardown(killedRunId)).toEqual({
      machines: [],
      networks: lab.networks,
    });
    await expect(recovery.getImage(c.imageId).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('names an image it loads for a run by the load itself: a backend stopped the moment the load returns leaves nothing the teardown misses', async () => {
    const c = captures.get('stopped')!;
    const restorable = restorableOf('resource:default/stopped', c);
    await expect(recovery.getImage(c.imageId).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    // Once `docker load` has answered, the backend is gone: nothing after it reaches the engine.
    let loadAnswered = false;
    const stopping = Object.create(recovery) as Docker;
    stopping.loadImage = (async (file: NodeJS.ReadableStream, opts: {}) => {
      const answer = (await recovery.loadImage(
        file,
        opts,
      )) as NodeJS.ReadableStream;
      answer.on('end', () => {
        loadAnswered = true;
      });
      return answer;
    }) as Docker['loadImage'];
    stopping.getImage = (name: string) => {
      if (loadAnswered) throw new Error('backend stopped');
      return recovery.getImage(name);
    };
    const stopped = new DockerHypervisorHost('recovery', stopping, {
      storeDirectory: store,
    });
    const lab = await stopped.createLab(loadStoppedRunId, [], {
      internal: true,
    });
    try {
      await expect(stopped.restoreMachine(lab, restorable)).rejects.toThrow(
        'backend stopped',
      );
      // Named for the run alone (not as the capture, the archive's own name).
      expect((await recovery.getImage(c.imageId).inspect()).RepoTags).toEqual([
        labImageRef(loadStoppedRunId, c.imageId),
      ]);
      const restarted = new DockerHypervisorHost('recovery', recovery, {
        storeDirectory: store,
      });
      expect(await restarted.teardown(loadStoppedRunId)).toEqual({
        machines: [],
        networks: lab.networks,
      });
      await expect(
        recovery.getImage(c.imageId).inspect(),
      ).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      await recovery
        .getImage(c.imageId)
        .remove({ force: true })
        .catch(() => {});
    }
  });

  it('carries a named volume: captured while paused, restored into the created machine before it starts', async () => {
    await primary.createVolume({ Name: volumeName });
    // Its file is written after start, owned by a user of its own: in no image.
    const c = await primary.createContainer({
      name: volumeContainer,
      Image: DEMO_IMAGE,
      Cmd: [
        'sh',
        '-c',
        'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
      ],
      HostConfig: {
        NetworkMode: 'none',
        Mounts: [
          { Type: 'volume', Source: volumeName, Target: '/data' },
          { Type: 'tmpfs', Source: '', Target: '/scratch' },
        ],
      },
    });
    await c.start();
    // Written into the running machine, not by its command: the restored machine runs that too.
    await execOut(primary, c.id, [
      'sh',
      '-c',
      'mkdir -p /data/sub; echo captured > /data/sub/f; chown 1234:1234 /data/sub/f',
    ]);
    const captureId = `cap-volume-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/vol',
        engine: 'primary',
        container: volumeContainer,
      },
      { captureId },
    );
    captures.set('volume', { ...captured, captureId });
    expect(captured.pausedMs).toBeGreaterThan(0);
    // Unpaused again, and changed on the primary after the capture.
    expect((await c.inspect()).State.Paused).toBe(false);
    await execOut(primary, c.id, ['sh', '-c', 'echo changed > /data/sub/f']);

    expect(captured.runtime.volumes).toEqual([
      {
        destination: '/data',
        artifact: `${captureId}.volume-1.tar`,
        checksum: expect.stringMatching(/^sha256:/),
        sizeBytes: expect.any(Number),
        // Which production volume, and when: machines restored together share it (sharedVolumes.ts).
        volume: { engine: 'primary', name: volumeName },
        copiedAt: expect.any(String),
      },
    ]);
    const [volume] = captured.runtime.volumes!;
    const volumeFile = join(store, volume.artifact);
    expect(statSync(volumeFile).size).toBe(volume.sizeBytes);
    expect(sha256(volumeFile)).toBe(volume.checksum);
    // In the engine's order of mounts.
    expect([...captured.adaptations].sort()).toEqual([
      'machine had no network (network mode none); it stays without one',
      expect.stringMatching(
        new RegExp(
          `^volume ${volumeName} at /data carried \\(\\d+\\.\\d KiB archive\\): the restored machine gets its content as captured$`,
        ),
      ),
    ]);
    // Stored as the run store does: JSON, no column of its own.
    const restorable: RestorableCapture = {
      captureId,
      machineRef: 'resource:default/vol',
      imageId: captured.imageId,
      checksum: captured.checksum,
      artifact: captured.artifact,
      runtime: JSON.parse(JSON.stringify(captured.runtime)),
    };

    const lab = await host.createLab(volumeRunId, [], { internal: true });
    try {
      // A corrupted volume archive: refused, naming the capture and the volume, nothing created.
      const bad = join(store, `corrupt-volume-${suffix}.tar`);
      copyFileSync(volumeFile, bad);
      writeFileSync(bad, Buffer.from('corrupt'), { flag: 'r+' });
      await expect(
        host.restoreMachine(lab, {
          ...restorable,
          runtime: {
            ...restorable.runtime,
            volumes: [{ ...volume, artifact: bad }],
          },
        }),
      ).rejects.toThrow(
        `capture ${captureId}: checksum mismatch for volume /data (${bad}): expected ${volume.checksum}, got ${sha256(bad)}`,
      );
      rmSync(bad);
      expect((await host.listLabResources(volumeRunId)).machines).toEqual([]);

      // A backend stopped while it put the volume's content back leaves the machine created, without
      // it: the resumed run's restore makes it again, with its content.
      const killed = Object.create(recovery) as Docker;
      killed.getContainer = (id: string) =>
        Object.assign(recovery.getContainer(id), {
          putArchive: () => new Promise(() => {}),
        });
      void new DockerHypervisorHost('recovery', killed, {
        storeDirectory: store,
      }).restoreMachine(lab, restorable);
      await until(
        'a machine of the run in its lab',
        async () =>
          (await host.listLabResources(volumeRunId)).machines.length > 0,
        10_000,
      );
      expect((await host.listLabResources(volumeRunId)).machines).toHaveLength(
        1,
      );

      const { machine, adaptations } = await host.restoreMachine(
        lab,
        restorable,
      );
      // Its tmpfs's mountpoint, made by Docker in production, is in the capture at 755.
      expect(adaptations).toEqual([
        'tmpfs at /scratch gets mode 1777 as in production: the captured filesystem holds its mountpoint with mode 755, which Docker would give the tmpfs',
      ]);
      expect((await host.inspectMachine(machine)).running).toBe(false);
      await host.startMachine(machine);
      expect(await execOut(recovery, machine.id, ['cat', '/data/sub/f'])).toBe(
        'captured\n',
      );
      // Its tmpfs as in production: empty, and a tmpfs.
      expect(
        await execOut(recovery, machine.id, [
          'sh',
          '-c',
          'grep " /scratch " /proc/mounts | cut -d" " -f3; ls -A /scratch',
        ]),
      ).toBe('tmpfs\n');
      expect(
        await execOut(recovery, machine.id, [
          'stat',
          '-c',
          '%u:%g',
          '/data/sub/f',
        ]),
      ).toBe('1234:1234\n');
      // The primary keeps its own.
      expect(await execOut(primary, c.id, ['cat', '/data/sub/f'])).toBe(
        'changed\n',
      );
    } finally {
      await host.teardown(volumeRunId);
    }

    // A capture from before volumes were carried restores as before: the image alone.
    const older = { ...restorable.runtime };
    delete older.volumes;
    const oldLab = await host.createLab(volumeRunId, [], { internal: true });
    try {
      const { machine } = await host.restoreMachine(oldLab, {
        ...restorable,
        runtime: older,
      });
      await host.startMachine(machine);
      expect(
        await execOut(recovery, machine.id, [
          'sh',
          '-c',
          'cat /data/sub/f 2>/dev/null || echo none',
        ]),
      ).toBe('none\n');
    } finally {
      await host.teardown(volumeRunId);
    }

    // Discarded: the image archive, the volume archive and the tag.
    await source.discard({
      captureId,
      artifact: captured.artifact,
      volumes: captured.runtime.volumes,
    });
    expect(existsSync(join(store, captured.artifact))).toBe(false);
    expect(existsSync(volumeFile)).toBe(false);
    const left = await primary.listImages({
      filters: { reference: [`recovery-capture/*:${captureId}`] },
    });
    expect(left.flatMap(i => i.RepoTags ?? [])).toEqual([]);
  });

  it('leaves nothing on the host when a capture file holds another image than recorded', async () => {
    const captureId = `cap-other-${suffix}`;
    const c = await source.capture(
      {
        machineRef: 'resource:default/paused',
        engine: 'primary',
        container: pausedContainer,
      },
      { captureId },
    );
    try {
      // The checksum matches (the file is intact), the recorded image id does not.
      const wrongId = `sha256:${'1'.repeat(64)}`;
      await expect(
        host.loadCapture({
          captureId,
          artifact: c.artifact,
          checksum: c.checksum,
          imageId: wrongId,
        }),
      ).rejects.toThrow(
        `capture ${captureId}: ${join(store, c.artifact)} loaded but image ${wrongId} is missing`,
      );
      await expect(
        recovery.getImage(c.imageId).inspect(),
      ).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      await source.discard({ captureId, artifact: c.artifact });
    }
  });

  it('imports the probe image again when it was pruned between runs', async () => {
    const probeImage = `recovery-probe-pruned-${suffix}:latest`;
    const pruned = new DockerHypervisorHost('recovery', recovery, {
      storeDirectory: store,
      probeImage,
    });
    try {
      await pruned.ensureProbeImage();
      await recovery.getImage(probeImage).remove();
      await pruned.ensureProbeImage();
      expect(
        (await recovery.getImage(probeImage).inspect()).RepoTags,
      ).toContain(probeImage);
    } finally {
      await recovery
        .getImage(probeImage)
        .remove()
        .catch(() => {});
    }
  });

  it('two teardowns of one lab at once both succeed, and leave nothing', async () => {
    const raceRunId = `it-race-${suffix}`;
    const c = captures.get('infra-01')!;
    const lab = await host.createLab(raceRunId, c.runtime.networks, {
      internal: true,
    });
    const { machine } = await host.restoreMachine(lab, {
      captureId: c.captureId,
      machineRef: 'resource:default/infra-01',
      imageId: c.imageId,
      checksum: c.checksum,
      artifact: c.artifact,
      runtime: c.runtime,
    });
    await host.startMachine(machine);
    const both = await Promise.all([
      host.teardown(raceRunId),
      host.teardown(raceRunId),
    ]);
    expect(both.flatMap(r => r.networks)).toEqual(lab.networks);
    expect(await host.listLabResources(raceRunId)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('tears a lab down also when a container not of the run was connected to its network by hand, leaving that container', async () => {
    const strayRunId = `it-stray-${suffix}`;
    const lab = await host.createLab(
      strayRunId,
      [{ name: 'demo-prod', subnet: '172.29.77.0/24', aliases: [] }],
      { internal: true },
    );
    await host.ensureProbeImage();
    const stray = await recovery.createContainer({
      name: strayContainer,
      Image: DEFAULT_PROBE_IMAGE,
      Cmd: IDLE,
      HostConfig: { NetworkMode: lab.networks[0] },
    });
    await stray.start();
    const started = Date.now();
    const removed = await host.teardown(strayRunId);
    expect(removed.networks).toEqual(lab.networks);
    expect(await host.listLabResources(strayRunId)).toEqual({
      machines: [],
      networks: [],
    });
    // Not waited for as for a removal under way (up to 30 s): it is disconnected at once.
    expect(Date.now() - started).toBeLessThan(NETWORK_REMOVAL.timeoutMs);
    // Disconnected, not removed: it is not the run's.
    const info = await stray.inspect();
    expect(info.State.Running).toBe(true);
    expect(Object.keys(info.NetworkSettings.Networks ?? {})).not.toContain(
      lab.networks[0],
    );
  });

  it('tears the lab down by label, idempotently, leaving nothing labelled nor the loaded images', async () => {
    expect(loaded.length).toBeGreaterThan(0);
    const present = async () =>
      (
        await Promise.all(
          loaded.map(id =>
            recovery
              .getImage(id)
              .inspect()
              .then(
                () => id,
                () => undefined,
              ),
          ),
        )
      ).filter(Boolean);
    expect(await present()).toEqual(loaded);
    const removed = await host.teardown(runId);
    // Restored captures must not pile up on the recovery host's disk.
    expect(await present()).toEqual([]);
    expect(removed.networks).toEqual([labNetworkName(runId, 'demo-prod')]);
    expect(removed.machines).toHaveLength(4);
    expect(await host.listLabResources(runId)).toEqual({
      machines: [],
      networks: [],
    });
    expect(await host.teardown(runId)).toEqual({ machines: [], networks: [] });
    const left = await recovery.listContainers({
      all: true,
      filters: { label: [`${RUN_ID_LABEL}=${runId}`] },
    });
    expect(left).toEqual([]);
  });

  it('restores a machine as bounded as production: limits, read-only, init, ulimits, capabilities, sysctls; no restart policy, in a failover either', async () => {
    const c = await primary.createContainer({
      name: limitedContainer,
      Image: DEMO_IMAGE,
      Cmd: IDLE,
      StopSignal: 'SIGQUIT',
      StopTimeout: 30,
      HostConfig: {
        NetworkMode: 'none',
        Memory: 64 * 1024 ** 2,
        NanoCpus: 0.5e9,
        PidsLimit: 100,
        ReadonlyRootfs: true,
        Init: true,
        RestartPolicy: { Name: 'unless-stopped' },
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
        CapDrop: ['ALL'],
        CapAdd: ['NET_BIND_SERVICE', 'SYS_ADMIN'],
        SecurityOpt: ['no-new-privileges'],
        Sysctls: { 'net.core.somaxconn': '1000' },
      },
    });
    await c.start();
    const production = (await c.inspect()).HostConfig;
    const captureId = `cap-limited-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/limited',
        engine: 'primary',
        container: limitedContainer,
      },
      { captureId },
    );
    captures.set('limited', { ...captured, captureId });
    expect(captured.adaptations).toContain(
      'added capabilities SYS_ADMIN dropped',
    );
    const restorable = restorableOf('resource:default/limited', {
      ...captured,
      captureId,
    });
    const kept = [
      'Memory',
      'MemorySwap',
      'NanoCpus',
      'PidsLimit',
      'ReadonlyRootfs',
      'Init',
      'Ulimits',
      'CapDrop',
      'SecurityOpt',
      'Sysctls',
    ] as const;

    const lab = await host.createLab(limitedRunId, [], { internal: true });
    try {
      const { machine, adaptations } = await host.restoreMachine(
        lab,
        restorable,
      );
      expect(adaptations).toEqual([
        'restart policy unless-stopped not applied in a test lab: the run starts and stops its machines',
      ]);
      const restored = await recovery.getContainer(machine.id).inspect();
      for (const key of kept)
        expect([key, restored.HostConfig[key]]).toEqual([key, production[key]]);
      expect(restored.HostConfig.CapAdd).toEqual(['NET_BIND_SERVICE']);
      expect(restored.HostConfig.RestartPolicy?.Name).toBe('no');
      expect((restored.Config as { StopSignal?: string }).StopSignal).toBe(
        'SIGQUIT',
      );
      // Removed at teardown, not stopped: no grace needed.
      expect((restored.Config as { StopTimeout?: number }).StopTimeout).toBe(5);
      await host.startMachine(machine);
      // As the machine sees it: only the capability production kept, no new privileges, its own init.
      const status = await execOut(recovery, machine.id, [
        'cat',
        '/proc/self/status',
      ]);
      expect(status).toMatch(/^CapEff:\s+0000000000000400$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      // The machine's own limits, those of its PID 1: an exec'd shell's `ulimit -n` read the hard
      // limit in one run of three.
      expect(
        await execOut(recovery, machine.id, ['cat', '/proc/1/limits']),
      ).toMatch(/^Max open files\s+1024\s+2048\s+files/m);
      expect(
        await execOut(recovery, machine.id, [
          'sh',
          '-c',
          'cat /proc/sys/net/core/somaxconn; cat /proc/1/comm',
        ]),
      ).toBe('1000\ndocker-init\n');
      expect(
        await exitCodeOf(recovery, machine.id, ['touch', '/written']),
      ).not.toBe(0);
    } finally {
      await host.teardown(limitedRunId);
    }

    // A failover boots what serves production, but not with the engine's restart policy: after the
    // host restarts, its supervision starts the machines again wave by wave, not all at once.
    const failover = await host.createLab(limitedRunId, [], {
      internal: false,
    });
    try {
      const { machine, adaptations } = await host.restoreMachine(
        failover,
        restorable,
      );
      expect(adaptations).toEqual([
        "restart policy unless-stopped not applied: the failover's supervision starts its machines again in boot order, wave by wave, where the engine would start them all at once",
      ]);
      const restored = await recovery.getContainer(machine.id).inspect();
      expect(restored.HostConfig.RestartPolicy?.Name).toBe('no');
      // Stopped with the recovery engine, it gets the time production gave it to shut down.
      expect((restored.Config as { StopTimeout?: number }).StopTimeout).toBe(
        30,
      );
    } finally {
      await host.teardown(limitedRunId);
    }

    // A capture from before limits were carried restores as before.
    const older = { ...restorable.runtime };
    delete older.limits;
    delete older.restartPolicy;
    const oldLab = await host.createLab(limitedRunId, [], { internal: true });
    try {
      const { machine, adaptations } = await host.restoreMachine(oldLab, {
        ...restorable,
        runtime: older,
      });
      expect(adaptations).toEqual([]);
      const { HostConfig } = await recovery.getContainer(machine.id).inspect();
      expect([
        HostConfig.Memory,
        HostConfig.ReadonlyRootfs,
        HostConfig.CapDrop ?? null,
      ]).toEqual([0, false, null]);
    } finally {
      await host.teardown(limitedRunId);
    }
  });

  it('restores a read-only machine with its tmpfs mounts: they are written to, the root filesystem is not', async () => {
    const c = await primary.createContainer({
      name: tmpfsContainer,
      Image: DEMO_IMAGE,
      Cmd: IDLE,
      HostConfig: {
        NetworkMode: 'none',
        ReadonlyRootfs: true,
        ShmSize: 128 * 1024 ** 2,
        Tmpfs: { '/tmp': 'size=1m' },
        Mounts: [
          {
            Type: 'tmpfs',
            Source: '',
            Target: '/run/app',
            TmpfsOptions: { SizeBytes: 2 * 1024 ** 2, Mode: 0o1770 },
          },
        ],
      },
    });
    await c.start();
    // Written in production: a tmpfs starts empty, in the lab as at every start there.
    await execOut(primary, c.id, ['sh', '-c', 'echo production > /tmp/f']);
    const captureId = `cap-tmpfs-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/tmpfs',
        engine: 'primary',
        container: tmpfsContainer,
      },
      { captureId },
    );
    captures.set('tmpfs', { ...captured, captureId });
    expect(captured.adaptations).toEqual([
      'machine had no network (network mode none); it stays without one',
    ]);
    const restorable = restorableOf('resource:default/tmpfs', {
      ...captured,
      captureId,
    });
    restorable.runtime = JSON.parse(JSON.stringify(restorable.runtime));

    const lab = await host.createLab(tmpfsRunId, [], { internal: true });
    try {
      const { machine, adaptations } = await host.restoreMachine(
        lab,
        restorable,
      );
      // /run/app, which the image lacks: its mountpoint (755) is in the capture, /tmp is the image's.
      expect(adaptations).toEqual([
        'tmpfs at /run/app gets mode 1770 as in production: the captured filesystem holds its mountpoint with mode 755, which Docker would give the tmpfs',
      ]);
      await host.startMachine(machine);
      const mounts = await execOut(recovery, machine.id, [
        'cat',
        '/proc/mounts',
      ]);
      expect(
        await execOut(recovery, machine.id, [
          'stat',
          '-c',
          '%a',
          '/tmp',
          '/run/app',
        ]),
      ).toBe('1777\n1770\n');
      expect(mounts).toMatch(/^\S+ \/ \S+ ro[,\s]/m);
      expect(mounts).toMatch(/^tmpfs \/tmp tmpfs rw,.*size=1024k/m);
      expect(mounts).toMatch(
        /^tmpfs \/run\/app tmpfs rw,.*size=2048k,mode=1770/m,
      );
      expect(mounts).toMatch(/^shm \/dev\/shm tmpfs .*size=131072k/m);
      expect(
        await execOut(recovery, machine.id, [
          'sh',
          '-c',
          'ls -A /tmp; echo lab > /tmp/f; echo lab > /run/app/f; cat /tmp/f /run/app/f',
        ]),
      ).toBe('lab\nlab\n');
      expect(
        await exitCodeOf(recovery, machine.id, ['touch', '/written']),
      ).not.toBe(0);
    } finally {
      await host.teardown(tmpfsRunId);
    }

    // A capture from before tmpfs mounts were carried (which had given read-only up) restores as before.
    const older = JSON.parse(JSON.stringify(restorable.runtime));
    delete older.limits;
    const oldLab = await host.createLab(tmpfsRunId, [], { internal: true });
    try {
      const { machine } = await host.restoreMachine(oldLab, {
        ...restorable,
        runtime: older,
      });
      const { HostConfig } = await recovery.getContainer(machine.id).inspect();
      expect([
        HostConfig.ReadonlyRootfs,
        HostConfig.Tmpfs ?? null,
        HostConfig.Mounts ?? null,
        HostConfig.ShmSize,
      ]).toEqual([false, null, null, 64 * 1024 ** 2]);
    } finally {
      await host.teardown(tmpfsRunId);
    }
  });

  it('restores a read-only machine with a read-only volume: its content put back, read-only given up, also from an older capture', async () => {
    await primary.createVolume({ Name: roVolumeName });
    const writer = await primary.createContainer({
      Image: DEMO_IMAGE,
      Cmd: ['sh', '-c', 'echo conf > /conf/app.conf'],
      HostConfig: {
        NetworkMode: 'none',
        Mounts: [{ Type: 'volume', Source: roVolumeName, Target: '/conf' }],
      },
    });
    await writer.start();
    await writer.wait();
    await writer.remove();
    const c = await primary.createContainer({
      name: roVolumeContainer,
      Image: DEMO_IMAGE,
      Cmd: IDLE,
      HostConfig: {
        NetworkMode: 'none',
        ReadonlyRootfs: true,
        Mounts: [
          {
            Type: 'volume',
            Source: roVolumeName,
            Target: '/conf',
            ReadOnly: true,
          },
        ],
      },
    });
    await c.start();
    const captureId = `cap-ro-volume-${suffix}`;
    const captured = await source.capture(
      {
        machineRef: 'resource:default/ro-volume',
        engine: 'primary',
        container: roVolumeContainer,
      },
      { captureId },
    );
    captures.set('ro-volume', { ...captured, captureId });
    expect(captured.adaptations).toContain(
      'read-only root filesystem not kept: the restore puts the content of read-only volume /conf into it, which Docker refuses while it is read-only',
    );
    const restorable = restorableOf('resource:default/ro-volume', {
      ...captured,
      captureId,
    });
    // As a capture from before read-only volumes were weighed recorded it.
    const older = {
      ...restorable,
      runtime: {
        ...restorable.runtime,
        limits: { ...restorable.runtime.limits, readOnlyRootfs: true },
      },
    };
    for (const capture of [restorable, older]) {
      const lab = await host.createLab(tmpfsRunId, [], { internal: true });
      try {
        const { machine, adaptations } = await host.restoreMachine(
          lab,
          capture,
        );
        expect(adaptations).toEqual(
          capture === older
            ? [
                'read-only root filesystem not kept: the restore puts the content of volume /conf into it, which Docker refuses while it is read-only',
              ]
            : [],
        );
        await host.startMachine(machine);
        expect(
          await execOut(recovery, machine.id, ['cat', '/conf/app.conf']),
        ).toBe('conf\n');
      } finally {
        await host.teardown(tmpfsRunId);
      }
    }
  });

  it('makes the networks of a machine whose restore a stopped backend left between its creation and its connects what the restore wants', async () => {
    const c = captures.get('infra-01')!;
    const back: CapturedNetwork = {
      name: 'back',
      subnet: '172.29.79.0/24',
      gateway: '172.29.79.1',
      ipv4Address: '172.29.79.5',
      aliases: ['infra-back'],
    };
    const runtime = { ...c.runtime, networks: [...c.runtime.networks, back] };
    const capture = {
      ...restorableOf('resource:default/infra-01', c),
      runtime,
    };
    const lab = await host.createLab(resumedRunId, runtime.networks, {
      internal: true,
    });
    try {
      expect(lab.networks).toHaveLength(2);
      // Killed as it joined its second network: created, on its first alone.
      const killed = Object.create(recovery) as Docker;
      killed.getNetwork = (id: string) =>
        Object.assign(recovery.getNetwork(id), {
          connect: () => new Promise(() => {}),
        });
      void new DockerHypervisorHost('recovery', killed, {
        storeDirectory: store,
      }).restoreMachine(lab, capture);
      await until(
        'a machine of the run in its lab',
        async () =>
          (await host.listLabResources(resumedRunId)).machines.length > 0,
        10_000,
      );

      const { machine } = await host.restoreMachine(lab, capture);
      await host.startMachine(machine);
      const { NetworkSettings } = await recovery
        .getContainer(machine.id)
        .inspect();
      expect(Object.keys(NetworkSettings.Networks).sort()).toEqual(
        [...lab.networks].sort(),
      );
      const onBack =
        NetworkSettings.Networks[labNetworkName(resumedRunId, 'back')];
      expect(onBack.IPAddress).toBe('172.29.79.5');
      expect(onBack.Aliases).toEqual(
        expect.arrayContaining(['infra-back', c.runtime.hostname]),
      );
    } finally {
      await host.teardown(resumedRunId);
    }
  });

  it('builds the probe image again where the one there was built from another busybox, or before it said which', async () => {
    // One from before the static-busybox check: a dynamic binary as its busybox, which cannot run.
    const stale = createTar([
      { type: 'dir', path: 'bin' },
      {
        type: 'file',
        path: 'bin/busybox',
        content: readFileSync('/bin/true'),
        mode: 0o755,
      },
      { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    ]);
    const [repo, tag] = staleProbeImage.split(':');
    await followProgress(
      (await recovery.importImage(
        Readable.from([stale]) as any,
        { repo, tag } as any,
      )) as any,
    );
    const staleId = (await recovery.getImage(staleProbeImage).inspect()).Id;
    const probing = new DockerHypervisorHost('recovery', recovery, {
      storeDirectory: store,
      probeImage: staleProbeImage,
    });
    const room = await probing.room(`it-stale-probe-${suffix}`, []);
    expect(room.unknown).toBeUndefined();
    expect(room.freeBytes).toBeGreaterThan(0);
    const built = await recovery.getImage(staleProbeImage).inspect();
    expect(built.Config.Labels?.[PROBE_BUSYBOX_LABEL]).toBe(busyboxDigest());
    await expect(recovery.getImage(staleId).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    // Built from this busybox: used as it is.
    await probing.ensureProbeImage();
    expect((await recovery.getImage(staleProbeImage).inspect()).Id).toBe(
      built.Id,
    );
  });

  it('checks the room of a run whose helper container a stopped backend left', async () => {
    await host.ensureProbeImage();
    const left = await recovery.createContainer({
      name: dockerName('rr', leftRoomRunId, 'room'),
      Image: DEFAULT_PROBE_IMAGE,
      Cmd: ['true'],
      Labels: { [RUN_ID_LABEL]: leftRoomRunId, [PROBE_LABEL]: 'true' },
      HostConfig: { NetworkMode: 'none' },
    });
    const room = await host.room(leftRoomRunId, []);
    expect(room.unknown).toBeUndefined();
    expect(room.freeBytes).toBeGreaterThan(0);
    await expect(left.inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await host.listLabResources(leftRoomRunId)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('refuses a test lab or a second failover on the subnets a failover kept, naming it and how to remove it; a lab beside it touches none of it', async () => {
    const prodNet = await createTestNetwork(
      primary,
      {
        Name: keptProdNetwork,
        Driver: 'bridge',
        IPAM: {
          Config: [{ Subnet: '172.29.86.0/24', Gateway: '172.29.86.1' }],
        },
      },
      suffix,
    );
    try {
      const prod = await primary.createContainer({
        name: keptContainer,
        Image: DEMO_IMAGE,
        Cmd: HTTPD,
        Hostname: 'kept-01',
        HostConfig: { NetworkMode: keptProdNetwork },
        NetworkingConfig: {
          EndpointsConfig: {
            [keptProdNetwork]: { IPAMConfig: { IPv4Address: '172.29.86.10' } },
          },
        },
      });
      await prod.start();
      const captureId = `cap-kept-${suffix}`;
      const captured = await source.capture(
        {
          machineRef: 'resource:default/kept-01',
          engine: 'primary',
          container: keptContainer,
        },
        { captureId },
      );
      captures.set('kept-01', { ...captured, captureId });
      const restorable = restorableOf('resource:default/kept-01', {
        ...captured,
        captureId,
      });
      const networks = captured.runtime.networks;
      expect(networks).toEqual([
        expect.objectContaining({
          subnet: '172.29.86.0/24',
          ipv4Address: '172.29.86.10',
        }),
      ]);

      // The failover: production's subnet and address, kept after the run.
      const failover = await host.createLab(keptFailoverRunId, networks, {
        internal: false,
      });
      const { machine: kept } = await host.restoreMachine(failover, restorable);
      await host.startMachine(kept);
      const keptBefore = await recovery.getContainer(kept.id).inspect();
      expect(
        keptBefore.NetworkSettings.Networks[failover.networks[0]].IPAddress,
      ).toBe('172.29.86.10');

      // A test recovery of it there: refused before it makes anything, naming the failover.
      await expect(
        host.createLab(keptTestRunId, networks, { internal: true }),
      ).rejects.toThrow(
        new RegExp(
          `production network ${networks[0].name} \\(172\\.29\\.86\\.0/24\\) is held on engine recovery by network ${failover.networks[0]} of failover ${keptFailoverRunId}.*a test lab cannot have it`,
        ),
      );
      expect(await host.listLabResources(keptTestRunId)).toEqual({
        machines: [],
        networks: [],
      });
      // A test lab of the same capture on a subnet no failover holds (another production site's,
      // say) runs beside it from the image the failover loaded; its room check and teardown
      // touch nothing of the failover's.
      const elsewhere = {
        ...restorable,
        runtime: {
          ...restorable.runtime,
          networks: [
            {
              ...networks[0],
              subnet: '172.29.87.0/24',
              gateway: '172.29.87.1',
              ipv4Address: '172.29.87.10',
            },
          ],
        },
      };
      const test = await host.createLab(
        keptTestRunId,
        elsewhere.runtime.networks,
        { internal: true },
      );
      const room = await host.room(keptTestRunId, [[elsewhere]]);
      expect(room.freeBytes).toBeGreaterThan(0);
      const { machine, addressesLost } = await host.restoreMachine(
        test,
        elsewhere,
      );
      expect(addressesLost).toEqual([]);
      await host.startMachine(machine);
      expect(await probeUntilOk(test, machine)).toMatchObject({ ok: true });
      const removed = await host.teardown(keptTestRunId);
      expect(removed.networks).toEqual(test.networks);
      // What the failover kept is untouched: running, on its network with production's address, its image there.
      const keptAfter = await recovery.getContainer(kept.id).inspect();
      expect(keptAfter.State).toMatchObject({
        Running: true,
        StartedAt: keptBefore.State.StartedAt,
      });
      expect(
        keptAfter.NetworkSettings.Networks[failover.networks[0]].IPAddress,
      ).toBe('172.29.86.10');
      expect(await host.listLabResources(keptFailoverRunId)).toEqual({
        machines: [keptAfter.Name.replace(/^\//, '')],
        networks: failover.networks,
      });
      await recovery.getImage(captured.imageId).inspect();

      // A second failover onto production's subnets: refused before it makes anything, naming the first and what to do.
      const refused = host.createLab(secondFailoverRunId, networks, {
        internal: false,
      });
      await expect(refused).rejects.toThrow(
        new RegExp(
          `production network ${networks[0].name} \\(172\\.29\\.86\\.0/24\\) is held on engine recovery by network ${failover.networks[0]} of failover ${keptFailoverRunId}.*release failover ${keptFailoverRunId} first \\(recovery release.*remove it by hand: docker rm -f`,
        ),
      );
      await expect(refused).rejects.toMatchObject({ name: 'ConflictError' });
      expect(await host.listLabResources(secondFailoverRunId)).toEqual({
        machines: [],
        networks: [],
      });

      // The way the refusal gives to end the first failover's tenure works, and frees the subnet.
      const commands = ((await refused.catch(e => e)) as Error).message.split(
        'remove it by hand: ',
      )[1];
      execFileSync('sh', ['-c', commands], {
        env: { ...process.env, DOCKER_HOST: RECOVERY },
        stdio: 'pipe',
      });
      expect(await host.listLabResources(keptFailoverRunId)).toEqual({
        machines: [],
        networks: [],
      });
      await expect(
        recovery.getImage(captured.imageId).inspect(),
      ).rejects.toMatchObject({ statusCode: 404 });
      const second = await host.createLab(secondFailoverRunId, networks, {
        internal: false,
      });
      expect(
        (await recovery.getNetwork(second.networks[0]).inspect()).IPAM!
          .Config![0].Subnet,
      ).toBe('172.29.86.0/24');
    } finally {
      for (const id of [keptTestRunId, secondFailoverRunId, keptFailoverRunId])
        await host.teardown(id).catch(() => {});
      await primary
        .getContainer(keptContainer)
        .remove({ force: true })
        .catch(() => {});
      await prodNet.remove().catch(() => {});
    }
  });
  it("removes a failover's probe container once its machines are verified, keeping them running on production's subnet; a probe of it after makes none again", async () => {
    // web-01's capture, on a production subnet no other test's lab has, so the lab keeps it.
    const web = restorableOf(
      'resource:default/web-01',
      captures.get('web-01')!,
    );
    const networks = [
      {
        ...web.runtime.networks[0],
        subnet: '172.29.88.0/24',
        gateway: '172.29.88.1',
        ipv4Address: '172.29.88.10',
      },
    ];
    const restorable = { ...web, runtime: { ...web.runtime, networks } };
    const lab = await host.createLab(probedFailoverRunId, networks, {
      internal: false,
    });
    const { machine } = await host.restoreMachine(lab, restorable);
    await host.startMachine(machine);
    await host.probe(lab, machine, { kind: 'tcp', port: 80 });
    const probeName = dockerName('rr', probedFailoverRunId, 'probe');
    const probe = await recovery.getContainer(probeName).inspect();
    // It holds an address on production's subnet, from the lab's helper range.
    expect(probe.NetworkSettings.Networks[lab.networks[0]].IPAddress).toMatch(
      /^172\.29\.88\./,
    );
    const machineName = (
      await recovery.getContainer(machine.id).inspect()
    ).Name.replace(/^\//, '');
    expect((await host.listLabResources(probedFailoverRunId)).machines).toEqual(
      [machineName, probeName].sort(),
    );

    expect(await host.removeProbes(probedFailoverRunId)).toEqual([probeName]);
    await expect(
      recovery.getContainer(probeName).inspect(),
    ).rejects.toMatchObject({ statusCode: 404 });
    // What the failover keeps is its machine, running, with its production address, and its network.
    expect(await host.listLabResources(probedFailoverRunId)).toEqual({
      machines: [machineName],
      networks: lab.networks,
    });
    const kept = await recovery.getContainer(machine.id).inspect();
    expect(kept.State.Running).toBe(true);
    expect(kept.NetworkSettings.Networks[lab.networks[0]].IPAddress).toBe(
      '172.29.88.10',
    );
    // A probe still under way then (one past its deadline) makes no probe container again.
    await expect(
      host.probe(lab, machine, { kind: 'tcp', port: 80 }),
    ).rejects.toThrow(/probes no more/);
    await expect(
      recovery.getContainer(probeName).inspect(),
    ).rejects.toMatchObject({ statusCode: 404 });
    expect(await host.removeProbes(probedFailoverRunId)).toEqual([]);

    // Its release removes the rest, as it always did.
    expect(await host.teardown(probedFailoverRunId)).toEqual({
      machines: [machineName],
      networks: lab.networks,
    });
    expect(await host.listLabResources(probedFailoverRunId)).toEqual({
      machines: [],
      networks: [],
    });
  });
});
