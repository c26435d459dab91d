import Docker from 'dockerode';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDemoImage, DEMO_IMAGE } from '../../../demo/site';
import { captureComment, captureRepository } from './captureNames';
import { DockerCaptureSource } from './DockerCaptureSource';
import { removeCaptureImages } from './testing/removeCaptureImages';

// Container names Docker accepts that are no image reference (`web-`, `a..b`, upper case): each
// is captured on the real primary engine, its image under a repository derived from the name.

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
if (!PRIMARY.startsWith('unix://'))
  throw new Error(
    `these tests reach the primary engine on a unix socket, not ${PRIMARY}`,
  );
const primary = new Docker({ socketPath: PRIMARY.slice('unix://'.length) });
const suffix = Date.now().toString(36);
const store = mkdtempSync(join(tmpdir(), 'capture-names-store-'));
const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
const NAMES = ['odd_.x', 'web-', 'a..b', 'db.-1', 'UPPER_-x'].map(
  name => `${suffix}${name}`,
);

beforeAll(async () => {
  await buildDemoImage(primary);
  for (const name of NAMES) {
    const container = await primary.createContainer({
      name,
      Image: DEMO_IMAGE,
      Cmd: ['sleep', '3600'],
      HostConfig: { NetworkMode: 'none' },
    });
    await container.start();
  }
});

afterAll(async () => {
  for (const name of NAMES)
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
  await removeCaptureImages([primary], suffix);
  rmSync(store, { recursive: true, force: true });
});

describe('capturing machines whose container names are no image reference', () => {
  it.each(NAMES)(
    'captures %s, its image tagged under a repository made of its name',
    async name => {
      const locator = {
        machineRef: `resource:default/names-${suffix}`,
        engine: 'primary',
        container: name,
      };
      const captured = await source.capture(locator, {
        captureId: `cap-${suffix}`,
      });
      const repository = captureRepository(locator);
      const image = await primary
        .getImage(`${repository}:cap-${suffix}`)
        .inspect();
      expect(image.Id).toBe(captured.imageId);
      // The repository reads as the name; whose capture it is stays in the image's comment.
      expect(repository).toMatch(
        new RegExp(
          `^recovery-capture/${name
            .toLowerCase()
            .replace(/[^a-z0-9]+/g, '-')
            .replace(/-$/, '')}-[0-9a-f]{8}$`,
        ),
      );
      expect(image.Comment).toBe(
        captureComment(`cap-${suffix}`, locator.machineRef),
      );
    },
  );
});
