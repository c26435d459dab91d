import { createHash } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import {
  CaptureDamagedError,
  isCaptureDamaged,
  type RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { LAYERS_DIRECTORY, writeThinArchive } from './lib/layerStore';
import { createTar } from './lib/tar';

const sha256 = (data: Buffer) =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** An archive laid out as `docker save` lays one out: the machine's base layer, its commit's own, a manifest. */
const saved = createTar([
  { type: 'file', path: 'base/layer.tar', content: Buffer.alloc(300_000, 7) },
  { type: 'file', path: 'top/layer.tar', content: Buffer.alloc(100_000, 1) },
  {
    type: 'file',
    path: 'manifest.json',
    content: '[{"Layers":["base/layer.tar","top/layer.tar"]}]',
  },
]);
const volume = createTar([{ type: 'file', path: 'data/db', content: 'rows' }]);

describe("the Docker host's verification of a capture, before a run builds its lab", () => {
  let dir: string;
  let store: string;
  let capture: RestorableCapture;
  // No engine call: verifying reads the capture store alone.
  const host = () =>
    new DockerHypervisorHost('dr-host', {} as Docker, {
      storeDirectory: store,
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'verify-capture-'));
    store = join(dir, 'captures');
    mkdirSync(store);
    const image = await writeThinArchive(
      Readable.from([saved]),
      store,
      'cap-1.tar',
      [],
    );
    writeFileSync(join(store, 'cap-1-data.tar'), volume);
    capture = {
      captureId: 'cap-1',
      machineRef: 'resource:default/web-01',
      imageId: 'sha256:img',
      checksum: image.checksum,
      artifact: 'cap-1.tar',
      runtime: {
        hostname: 'web-01',
        networks: [],
        env: [],
        exposedPorts: [],
        labels: {},
        volumes: [
          {
            destination: '/data',
            artifact: 'cap-1-data.tar',
            checksum: sha256(volume),
            sizeBytes: volume.length,
          },
        ],
      },
    };
  });
  afterEach(() => {
    chmodSync(store, 0o755);
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes an intact capture, its layers read back from the store and its volumes', async () => {
    expect(sha256(saved)).toBe(capture.checksum);
    await expect(host().verifyCapture(capture)).resolves.toBeUndefined();
  });

  it('names a layer file overwritten as damage, without promising that a capture mends it', async () => {
    // The commit's own layer: no later capture of the machine writes it again.
    const layers = join(store, LAYERS_DIRECTORY);
    const top = readdirSync(layers).find(
      name => statSync(join(layers, name)).size === 100_000,
    )!;
    const bytes = readFileSync(join(layers, top));
    bytes[50_000] ^= 0xff;
    writeFileSync(join(layers, top), bytes);
    const error = await host()
      .verifyCapture(capture)
      .catch(e => e);
    expect(error).toBeInstanceOf(CaptureDamagedError);
    expect(error).toMatchObject({
      name: 'CaptureDamagedError',
      captureId: 'cap-1',
    });
    expect(error.message).toBe(
      `capture cap-1: checksum mismatch for ${join(store, 'cap-1.tar')} (layer file ${join(layers, top)} no longer holds its content; every capture referring to it is damaged too): ` +
        `expected ${capture.checksum}, got ${sha256(Buffer.concat([saved.subarray(0, saved.indexOf(Buffer.alloc(100_000, 1))), bytes, saved.subarray(saved.indexOf(Buffer.alloc(100_000, 1)) + 100_000)]))}; ` +
        'the capture is damaged and cannot be restored',
    );
    expect(error.message).not.toMatch(/next capture/);
  });

  it('finds damaged a capture whose layer, volume archive or image archive is gone from the store', async () => {
    const layers = join(store, LAYERS_DIRECTORY);
    rmSync(
      join(
        layers,
        readdirSync(layers).find(name => name.endsWith('.layer'))!,
      ),
    );
    const gone = await host()
      .verifyCapture(capture)
      .catch(e => e);
    expect(isCaptureDamaged(gone)).toBe(true);
    expect(gone.message).toMatch(
      /^capture cap-1: artifact \S+cap-1\.tar: layer [0-9a-f]{64} of \S+ is missing from the capture store/,
    );

    rmSync(join(store, 'cap-1.tar'));
    await expect(host().verifyCapture(capture)).rejects.toThrow(
      new CaptureDamagedError(
        `capture cap-1: artifact ${join(store, 'cap-1.tar')} not found in the capture store: the capture is damaged and cannot be restored`,
        'cap-1',
      ),
    );
  });

  it('finds damaged a capture whose volume archive changed', async () => {
    writeFileSync(
      join(store, 'cap-1-data.tar'),
      createTar([{ type: 'file', path: 'data/db', content: 'rowz' }]),
    );
    const error = await host()
      .verifyCapture(capture)
      .catch(e => e);
    expect(isCaptureDamaged(error)).toBe(true);
    expect(error.message).toContain(
      `capture cap-1: checksum mismatch for volume /data (${join(store, 'cap-1-data.tar')})`,
    );
  });

  it('says nothing of the capture where the store itself is not there or cannot be read', async () => {
    const elsewhere = new DockerHypervisorHost('dr-host', {} as Docker, {
      storeDirectory: join(dir, 'unmounted'),
    });
    const missing = await elsewhere.verifyCapture(capture).catch(e => e);
    expect(isCaptureDamaged(missing)).toBe(false);
    expect(missing.name).toBe('NotFoundError');
    if (process.getuid?.() !== 0) {
      // Root reads whatever the modes say.
      chmodSync(store, 0o000);
      const unreadable = await host()
        .verifyCapture(capture)
        .catch(e => e);
      expect(isCaptureDamaged(unreadable)).toBe(false);
    }
  });

  it('says nothing of the capture where the store is an empty mount point (its disk not mounted)', async () => {
    // The directory is there, as a mount point is, and empty: every file "missing" from it.
    const mountPoint = join(dir, 'mnt');
    mkdirSync(mountPoint);
    const unmounted = new DockerHypervisorHost('dr-host', {} as Docker, {
      storeDirectory: mountPoint,
    });
    const error = await unmounted.verifyCapture(capture).catch(e => e);
    expect(isCaptureDamaged(error)).toBe(false);
    expect(error).toMatchObject({ name: 'NotFoundError' });
    expect(error.message).toBe(
      `capture cap-1: artifact ${join(mountPoint, 'cap-1.tar')} not found: the capture store ${mountPoint} could not be read (not mounted, or no layers directory in it?), so nothing is known of the capture`,
    );
  });

  it('says nothing of the capture where a layer could not be looked at (ENOTDIR), or its layers directory is gone', async () => {
    const layers = join(store, LAYERS_DIRECTORY);
    // A file where the layers directory stands: stat of a layer says ENOTDIR, not that it is gone.
    rmSync(layers, { recursive: true });
    writeFileSync(layers, '');
    const notDir = await host()
      .verifyCapture(capture)
      .catch(e => e);
    expect(isCaptureDamaged(notDir)).toBe(false);
    expect(notDir.message).toMatch(
      /^capture cap-1: artifact \S+cap-1\.tar: layer [0-9a-f]{64} of \S+ could not be read in the capture store: ENOTDIR: /,
    );

    // Layers kept on a disk of their own, not mounted: the link leads nowhere, each layer ENOENT.
    rmSync(layers);
    symlinkSync(join(dir, 'layers-disk'), layers);
    const unmounted = await host()
      .verifyCapture(capture)
      .catch(e => e);
    expect(isCaptureDamaged(unmounted)).toBe(false);
    expect(unmounted.message).toMatch(
      /is missing from the capture store .*: the capture store \S+ could not be read/,
    );

    // Its disk back, with the layers on it: the capture was never damaged.
    mkdirSync(join(dir, 'layers-disk'));
    await writeThinArchive(Readable.from([saved]), store, 'cap-1.tar', []);
    await expect(host().verifyCapture(capture)).resolves.toBeUndefined();
  });

  it('still finds damaged a capture whose layer alone is gone from an intact store', async () => {
    const layers = join(store, LAYERS_DIRECTORY);
    const top = readdirSync(layers).find(
      name => statSync(join(layers, name)).size === 100_000,
    )!;
    rmSync(join(layers, top));
    const error = await host()
      .verifyCapture(capture)
      .catch(e => e);
    expect(error).toBeInstanceOf(CaptureDamagedError);
    expect(error.message).toBe(
      `capture cap-1: artifact ${join(store, 'cap-1.tar')}: layer ${top.replace(/\.layer$/, '')} of top/layer.tar is missing from the capture store (${join(layers, top)}): ` +
        'the capture is damaged and cannot be restored',
    );
  });

  it('stops reading once its signal aborts', async () => {
    const stop = new AbortController();
    stop.abort(new Error('the run was interrupted'));
    await expect(
      host().verifyCapture(capture, { signal: stop.signal }),
    ).rejects.toThrow('the run was interrupted');
  });
});
