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
 * A tmpfs at a path the machine's image lacks: Docker made its mountpoint in the container's own
 * filesystem (root, 755), which the capture's commit holds, and Docker gives a tmpfs mounted over
 * a directory that directory's mode. A non-root machine writing into it must work in the lab as
 * it did in production.
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
const store = mkdtempSync(join(tmpdir(), 'recovery-tmpfs-'));
const CONTAINER = `tmpfs-nonroot-${suffix}`;
const RUN_ID = `it-tmpfs-nonroot-${suffix}`;
const MACHINE = 'resource:default/tmpfs-nonroot';

const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

/** Runs `cmd` in a running container; its stdout. */
async function execOut(
  id: string,
  cmd: string[],
  docker = recovery,
): Promise<string> {
  const exec = await docker
    .getContainer(id)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = (await exec.start({ hijack: true, stdin: false })) as any;
  const { stdout } = demuxDockerStream(await readAll(stream));
  return stdout;
}

/**
 * Waits until the machine's shell wrote into its tmpfs, or stopped (as it does where it cannot),
 * however slow the engine is to run it.
 */
async function untilWrittenOrStopped(docker: typeof recovery, id: string) {
  const deadline = Date.now() + 60_000;
  while (
    (await docker.getContainer(id).inspect()).State.Running &&
    (await execOut(id, ['cat', '/scratch/www/f'], docker).catch(() => '')) !==
      'up\n' &&
    Date.now() < deadline
  )
    await new Promise(r => setTimeout(r, 100));
}

beforeAll(async () => {
  await primary.ping();
  await recovery.ping();
  await buildDemoImage(primary);
});

afterAll(async () => {
  await host.teardown(RUN_ID).catch(() => {});
  await primary
    .getContainer(CONTAINER)
    .remove({ force: true, v: true })
    .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  rmSync(store, { recursive: true, force: true });
});

it('restores a non-root machine writing into a tmpfs at a path its image lacks: ready, its tmpfs at production mode', async () => {
  // As `docker run --user 1000:1000 --read-only --tmpfs /scratch:size=1m,mode=1777`.
  const c = await primary.createContainer({
    name: CONTAINER,
    Image: DEMO_IMAGE,
    User: '1000:1000',
    Cmd: [
      'sh',
      '-c',
      'mkdir /scratch/www && echo up > /scratch/www/f && exec sleep 3600',
    ],
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/scratch': 'size=1m,mode=1777' },
    },
  });
  await c.start();
  await untilWrittenOrStopped(primary, c.id);
  expect((await c.inspect()).State.Running).toBe(true);
  const captureId = `cap-tmpfs-nonroot-${suffix}`;
  const captured = await source.capture(
    { machineRef: MACHINE, engine: 'primary', container: CONTAINER },
    { captureId },
  );
  const restorable: RestorableCapture = {
    captureId,
    machineRef: MACHINE,
    imageId: captured.imageId,
    checksum: captured.checksum,
    artifact: captured.artifact,
    runtime: JSON.parse(JSON.stringify(captured.runtime)),
  };

  const lab = await host.createLab(RUN_ID, [], { internal: true });
  const { machine, adaptations } = await host.restoreMachine(lab, restorable);
  expect(adaptations).toEqual([
    'tmpfs at /scratch gets mode 1777 as in production: the captured filesystem holds its mountpoint with mode 755, which Docker would give the tmpfs',
  ]);
  await host.startMachine(machine);
  await untilWrittenOrStopped(recovery, machine.id);
  const state = await host.inspectMachine(machine);
  expect(state).toMatchObject({ running: true });
  expect(await execOut(machine.id, ['cat', '/scratch/www/f'])).toBe('up\n');
  expect(await execOut(machine.id, ['stat', '-c', '%a', '/scratch'])).toBe(
    '1777\n',
  );
  // Still read-only elsewhere, and the lab image goes with the run.
  const { HostConfig } = await recovery.getContainer(machine.id).inspect();
  expect(HostConfig.ReadonlyRootfs).toBe(true);
  await host.teardown(RUN_ID);
  expect(
    await recovery.listImages({
      filters: { reference: [`recovery-lab/*:${RUN_ID}`] },
    }),
  ).toEqual([]);
});
