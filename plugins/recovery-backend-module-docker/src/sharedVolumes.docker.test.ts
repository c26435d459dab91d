import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import type { RestorableCapture } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { sh } from './testing/exec';
import { removeCaptureImages } from './testing/removeCaptureImages';

// Two machines mounting one volume in production (reader-01 at /data, writer-01 at /ledger) share
// one volume in the lab, test or failover: what the writer writes the reader reads. It is filled
// once, from the newer of their captures of it, and goes with the lab.

const primary = dockerFromHost(
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
    'unix:///run/recovery-docker/primary.sock',
);
const recovery = dockerFromHost(
  process.env.RECOVERY_HOST_DOCKER_HOST ??
    'unix:///run/recovery-docker/recovery.sock',
);
const suffix = Date.now().toString(36);
const store = mkdtempSync(join(tmpdir(), 'recovery-shared-volumes-'));
const VOLUME = `ledger-data-${suffix}`;
const READER = 'resource:default/reader-01';
const WRITER = 'resource:default/writer-01';
const containers = [`reader-01-${suffix}`, `writer-01-${suffix}`];
const runIds: string[] = [];
const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});
let reader: RestorableCapture;
let writer: RestorableCapture;

const restorable = (
  captureId: string,
  machineRef: string,
  c: Awaited<ReturnType<DockerCaptureSource['capture']>>,
): RestorableCapture => ({
  captureId,
  machineRef,
  imageId: c.imageId,
  checksum: c.checksum,
  artifact: c.artifact,
  runtime: c.runtime,
});

beforeAll(async () => {
  await buildDemoImage(primary);
  await primary.createVolume({ Name: VOLUME });
  for (const [name, path] of [
    [containers[0], '/data'],
    [containers[1], '/ledger'],
  ]) {
    await (
      await primary.createContainer({
        name,
        Image: DEMO_IMAGE,
        Cmd: ['sleep', '3600'],
        HostConfig: { NetworkMode: 'none', Binds: [`${VOLUME}:${path}`] },
      })
    ).start();
  }
  await sh(primary.getContainer(containers[1]), 'echo one > /ledger/entries');
  // The reader's capture first: the writer's, after one more entry, is the newer.
  reader = restorable(
    `reader-${suffix}`,
    READER,
    await source.capture(
      { machineRef: READER, engine: 'primary', container: containers[0] },
      { captureId: `reader-${suffix}` },
    ),
  );
  await sh(primary.getContainer(containers[1]), 'echo two >> /ledger/entries');
  await new Promise(r => setTimeout(r, 1100));
  writer = restorable(
    `writer-${suffix}`,
    WRITER,
    await source.capture(
      { machineRef: WRITER, engine: 'primary', container: containers[1] },
      { captureId: `writer-${suffix}` },
    ),
  );
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of containers)
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
  await primary
    .getVolume(VOLUME)
    .remove()
    .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  rmSync(store, { recursive: true, force: true });
});

describe('a volume machines share in production', () => {
  it.each([
    ['test recovery', true],
    ['failover', false],
  ])(
    'is one volume in the lab of a %s, filled from the newest capture, gone with the lab',
    async (_kind, internal) => {
      const runId = `shared-${internal ? 'test' : 'failover'}-${suffix}`;
      runIds.push(runId);
      const lab = await host.createLab(runId, [], { internal });
      const runCaptures = [reader, writer];
      const restoredReader = await host.restoreMachine(lab, reader, {
        runCaptures,
      });
      const restoredWriter = await host.restoreMachine(lab, writer, {
        runCaptures,
      });
      expect(restoredReader.adaptations).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^volume ${VOLUME} at /data shared with ${WRITER}, as in production: one lab volume \\(rr-${runId}-volume-primary-${VOLUME}\\), filled once from capture writer-${suffix} of ${WRITER} \\(copied .*\\), the newest copy of it; the machines' captures of it are \\d+s apart`,
          ),
        ),
      );
      expect((await host.listLabResources(runId)).volumes).toEqual([
        `rr-${runId}-volume-primary-${VOLUME}`,
      ]);
      await host.startMachine(restoredReader.machine);
      await host.startMachine(restoredWriter.machine);
      // Filled from the writer's capture: both entries, in the reader too.
      const restoredReaderContainer = recovery.getContainer(
        restoredReader.machine.id,
      );
      expect(await sh(restoredReaderContainer, 'cat /data/entries')).toEqual({
        exitCode: 0,
        output: 'one\ntwo',
      });
      expect(
        await sh(
          recovery.getContainer(restoredWriter.machine.id),
          'echo three >> /ledger/entries',
        ),
      ).toEqual({ exitCode: 0, output: '' });
      expect(await sh(restoredReaderContainer, 'cat /data/entries')).toEqual({
        exitCode: 0,
        output: 'one\ntwo\nthree',
      });
      const removed = await host.teardown(runId);
      expect(removed.volumes).toEqual([`rr-${runId}-volume-primary-${VOLUME}`]);
      expect(
        (
          await recovery.listVolumes({
            filters: { label: [`${RUN_ID_LABEL}=${runId}`] },
          })
        ).Volumes ?? [],
      ).toEqual([]);
    },
  );
});
