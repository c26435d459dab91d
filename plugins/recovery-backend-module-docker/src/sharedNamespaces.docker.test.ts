import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RestorableCapture } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { demuxDockerStream, readAll } from './lib/dockerStreams';
import { removeCaptureImages } from './testing/removeCaptureImages';

/*
 * A machine that shared another's PID and IPC namespaces in production (`--pid container:<donor>
 * --ipc container:<donor>`, a debugging or metrics sidecar) shares the restored donor's in the lab,
 * where the donor boots in an earlier wave: it sees the donor's processes and shared memory.
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
const store = mkdtempSync(join(tmpdir(), 'recovery-namespaces-'));
const DONOR = `ns-donor-${suffix}`;
const SHARER = `ns-sharer-${suffix}`;
const RUN_ID = `it-namespaces-${suffix}`;
const DONOR_REF = 'resource:default/ns-donor';
const SHARER_REF = 'resource:default/ns-sharer';
/** The donor's own process, told apart by its argument. */
const DONOR_SLEEP = 'sleep 3607';

const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

/** Runs `cmd` in a running container; its stdout. */
async function execOut(id: string, cmd: string[]): Promise<string> {
  const exec = await recovery
    .getContainer(id)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = (await exec.start({ hijack: true, stdin: false })) as any;
  const { stdout } = demuxDockerStream(await readAll(stream));
  return stdout;
}

async function captured(
  machineRef: string,
  container: string,
): Promise<RestorableCapture> {
  const captureId = `cap-${container}`;
  const c = await source.capture(
    { machineRef, engine: 'primary', container },
    { captureId },
  );
  return {
    captureId,
    machineRef,
    imageId: c.imageId,
    checksum: c.checksum,
    artifact: c.artifact,
    runtime: JSON.parse(JSON.stringify(c.runtime)),
  };
}

beforeAll(async () => {
  await primary.ping();
  await recovery.ping();
  await buildDemoImage(primary);
});

afterAll(async () => {
  await host.teardown(RUN_ID).catch(() => {});
  for (const name of [SHARER, DONOR])
    await primary
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  rmSync(store, { recursive: true, force: true });
});

it("restores a machine that shared another's PID and IPC namespaces into the restored donor's", async () => {
  const donor = await primary.createContainer({
    name: DONOR,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', `exec ${DONOR_SLEEP}`],
    HostConfig: { NetworkMode: 'none', IpcMode: 'shareable' },
  });
  await donor.start();
  const sharer = await primary.createContainer({
    name: SHARER,
    Image: DEMO_IMAGE,
    Cmd: ['sleep', '3600'],
    HostConfig: {
      NetworkMode: 'none',
      PidMode: `container:${DONOR}`,
      IpcMode: `container:${DONOR}`,
    },
  });
  await sharer.start();
  const runCaptures = [
    await captured(DONOR_REF, DONOR),
    await captured(SHARER_REF, SHARER),
  ];

  const lab = await host.createLab(RUN_ID, [], { internal: true });
  // Wave 1, the donor; wave 2, the machine that shared its namespaces.
  const first = await host.restoreMachine(lab, runCaptures[0], {
    runCaptures,
  });
  await host.startMachine(first.machine);
  const second = await host.restoreMachine(lab, runCaptures[1], {
    runCaptures,
    booted: [first.machine],
  });
  expect(second.adaptations).toEqual([
    `shares the PID namespace of ${DONOR_REF} in the lab, as it shared that machine's container's in production (PID mode container:${donor.id})`,
    `shares the IPC namespace of ${DONOR_REF} in the lab, as it shared that machine's container's in production (IPC mode container:${donor.id})`,
  ]);
  await host.startMachine(second.machine);
  expect(await host.inspectMachine(second.machine)).toMatchObject({
    running: true,
  });
  // The donor's processes and shared memory, as in production.
  expect(await execOut(second.machine.id, ['ps', '-o', 'args'])).toContain(
    DONOR_SLEEP,
  );
  await execOut(first.machine.id, ['sh', '-c', 'echo donor > /dev/shm/seg']);
  expect(await execOut(second.machine.id, ['cat', '/dev/shm/seg'])).toBe(
    'donor\n',
  );
});
