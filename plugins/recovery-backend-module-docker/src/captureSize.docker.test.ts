import Docker from 'dockerode';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabases } from '@backstage/backend-test-utils';
import { buildDemoImage, DEMO_IMAGE } from '../../../demo/site';
import { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import { recordingLogger } from '../../recovery-backend/src/testing/logger';
import { DockerCaptureSource } from './DockerCaptureSource';
import { readCaptureArchive } from './lib/layerStore';
import { buildCaptureService } from './testing/captureService';

// A machine with a volume of a few MB, captured on the real primary engine: the capture's size
// counts its volume's archive as well as its image's, as the API, the CLI and the logs say it.

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
if (!PRIMARY.startsWith('unix://'))
  throw new Error(
    `these tests reach the primary engine on a unix socket, not ${PRIMARY}`,
  );
const primary = new Docker({ socketPath: PRIMARY.slice('unix://'.length) });
const suffix = Date.now().toString(36);
const name = `sized-${suffix}`;
const volumeName = `sized-data-${suffix}`;
const store = mkdtempSync(join(tmpdir(), 'capture-size-store-'));
const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
const MIB = 1024 * 1024;

beforeAll(async () => {
  await buildDemoImage(primary);
});

afterAll(async () => {
  await primary
    .getContainer(name)
    .remove({ force: true })
    .catch(() => {});
  for (const image of await primary
    .listImages({ filters: { reference: [`recovery-capture/${name}`] } })
    .catch(() => []))
    for (const tag of image.RepoTags ?? [])
      await primary
        .getImage(tag)
        .remove()
        .catch(() => {});
  await primary
    .getVolume(volumeName)
    .remove()
    .catch(() => {});
  rmSync(store, { recursive: true, force: true });
});

it("counts a machine's volume in its capture's size, as recorded and listed", async () => {
  const knex = await databases.init('SQLITE_3');
  await migrate(knex);
  const captureStore = new CaptureStore(knex);
  const logger = recordingLogger();
  const captures = buildCaptureService({
    store: captureStore,
    sources: [source],
    logger,
    keepLast: 3,
  });
  await primary.createVolume({ Name: volumeName });
  const container = await primary.createContainer({
    name,
    Image: DEMO_IMAGE,
    // 6 MiB of data in the volume, written before it runs on.
    Cmd: [
      'sh',
      '-c',
      'head -c 6291456 /dev/urandom > /data/.blob && mv /data/.blob /data/blob; trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
    ],
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [{ Type: 'volume', Source: volumeName, Target: '/data' }],
    },
  });
  await container.start();
  // In place once renamed: complete.
  const end = Date.now() + 30_000;
  while (
    !(await container
      .infoArchive({ path: '/data/blob' })
      .then(() => true)
      .catch(() => false))
  ) {
    if (Date.now() > end) throw new Error('the volume was not written');
    await new Promise(r => setTimeout(r, 200));
  }

  const locator = {
    machineRef: `resource:default/${name}`,
    engine: 'primary',
    container: name,
  };
  const capture = await captures.captureMachine(locator);
  const stored = (await captureStore.listCaptures(locator.machineRef, 1))[0];
  const [volume] = stored.runtime.volumes!;
  expect(volume.sizeBytes).toBe(statSync(join(store, volume.artifact)).size);
  expect(volume.sizeBytes).toBeGreaterThan(6 * MIB);
  // Its image archive, as a restore reads it back, plus its volume's archive.
  let imageBytes = 0;
  for await (const chunk of readCaptureArchive(
    store,
    join(store, stored.artifact),
  ))
    imageBytes += chunk.length;
  expect(imageBytes).toBeGreaterThan(0);
  expect(capture.sizeBytes).toBe(imageBytes + volume.sizeBytes);
  expect(stored.sizeBytes).toBe(capture.sizeBytes);
  expect(logger.lines).toContainEqual({
    level: 'info',
    message: expect.stringContaining(
      `Captured the machine (${capture.sizeBytes} bytes`,
    ),
    fields: { machineRef: locator.machineRef, captureId: capture.id },
  });
  // Paused for a few MB: far from half the default 5 minutes.
  expect(capture.pauseWarning).toBeUndefined();
});
