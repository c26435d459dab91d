import Docker from 'dockerode';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildDemoImage, DEMO_IMAGE } from '../../../demo/site';
import { QUIESCE_LABEL } from './captureQuiesce';
import { DockerCaptureSource } from './DockerCaptureSource';
import { sh } from './testing/exec';
import { removeCaptureImages } from './testing/removeCaptureImages';
import { until } from './testing/until';

// What a capture holds, on the real primary engine: a machine's quiesce command runs before the
// pause (what it flushes, the capture holds); one that fails or overruns is noted, the capture
// taken all the same; a capture taken with pausing off says so.

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
if (!PRIMARY.startsWith('unix://'))
  throw new Error(
    `these tests reach the primary engine on a unix socket, not ${PRIMARY}`,
  );
const primary = new Docker({ socketPath: PRIMARY.slice('unix://'.length) });
const suffix = Date.now().toString(36);
const store = mkdtempSync(join(tmpdir(), 'capture-consistency-store-'));
const containers: string[] = [];
const volumes: string[] = [];
const FOREVER = [
  'sh',
  '-c',
  'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
];

function sourceWith(options: { pause?: boolean; quiesceTimeoutMs?: number }) {
  return new DockerCaptureSource('primary', primary, {
    storeDirectory: store,
    ...options,
  });
}

/** A running busybox machine, its quiesce command `quiesce` where given. */
async function machine(name: string, quiesce?: string) {
  const container = `${name}-${suffix}`;
  containers.push(container);
  await (
    await primary.createContainer({
      name: container,
      Image: DEMO_IMAGE,
      Cmd: FOREVER,
      HostConfig: { NetworkMode: 'none' },
      ...(quiesce && { Labels: { [QUIESCE_LABEL]: quiesce } }),
    })
  ).start();
  return {
    machineRef: `resource:default/${container}`,
    engine: 'primary',
    container,
  };
}

/** The file at `path` in the captured image, read from a container of it never started. */
async function fileInImage(imageId: string, path: string): Promise<string> {
  const reader = await primary.createContainer({
    Image: imageId,
    Cmd: ['true'],
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    const tar = (await reader.getArchive({ path })) as unknown as Readable;
    const chunks: Buffer[] = [];
    for await (const chunk of tar) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('latin1');
  } finally {
    await reader.remove({ force: true });
  }
}

beforeAll(async () => {
  await buildDemoImage(primary);
});

afterAll(async () => {
  for (const name of containers)
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
  for (const name of volumes)
    await primary
      .getVolume(name)
      .remove()
      .catch(() => {});
  await removeCaptureImages([primary], suffix);
  rmSync(store, { recursive: true, force: true });
});

describe('what a capture holds', () => {
  it("runs the machine's quiesce command before the pause: what it writes, the capture holds", async () => {
    const locator = await machine(
      'quiesced',
      `echo flushed-${suffix} > /quiesced`,
    );
    const captured = await sourceWith({}).capture(locator, {
      captureId: `quiesced-${suffix}`,
    });
    expect(await fileInImage(captured.imageId, '/quiesced')).toContain(
      `flushed-${suffix}`,
    );
    expect(captured.pausedMs).toBeGreaterThan(0);
    expect(captured.adaptations.join('; ')).not.toMatch(/quiesce|not paused/);
  });

  it('notes a quiesce command that fails, with its exit code and output, and captures the machine all the same', async () => {
    const locator = await machine(
      'quiesce-fails',
      'echo "flush: database locked" >&2; exit 3',
    );
    const captured = await sourceWith({}).capture(locator, {
      captureId: `quiesce-fails-${suffix}`,
    });
    expect(captured.adaptations).toContain(
      `quiesce command (label ${QUIESCE_LABEL}: echo "flush: database locked" >&2; exit 3) exited with code 3 (flush: database locked): the capture holds the machine as a power cut would leave it`,
    );
    expect(captured.pausedMs).toBeGreaterThan(0);
  });

  it('stops waiting for a quiesce command at the timeout, notes it, and captures the machine all the same', async () => {
    const locator = await machine('quiesce-hangs', 'sleep 60');
    const started = Date.now();
    const captured = await sourceWith({ quiesceTimeoutMs: 1000 }).capture(
      locator,
      { captureId: `quiesce-hangs-${suffix}` },
    );
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(captured.adaptations).toContainEqual(
      expect.stringMatching(
        /^quiesce command \(label .*: sleep 60\) did not finish within 1s \(recovery\.docker\.quiesceTimeout\), and may still run in the machine: /,
      ),
    );
  });

  it('marks a capture taken with pausing off: its copies are not one instant of the machine', async () => {
    const locator = await machine('unpaused');
    const captured = await sourceWith({ pause: false }).capture(locator, {
      captureId: `unpaused-${suffix}`,
    });
    expect(captured.pausedMs).toBe(0);
    expect(captured.adaptations).toContainEqual(
      expect.stringMatching(
        /^not paused while copied \(recovery\.docker\.pauseOnCapture is false\): /,
      ),
    );
  });

  it('captures a machine renamed while the capture has it paused (docker rename), and unpauses it', async () => {
    const locator = await machine('renamed');
    const renamed = `${locator.container}-new`;
    containers.push(renamed);
    // The commit waits until the machine, paused by the capture, is renamed.
    const renaming = Object.create(primary) as Docker;
    renaming.getContainer = (id: string) => {
      const container = primary.getContainer(id);
      const commit = container.commit.bind(container);
      container.commit = (async (opts: any) => {
        const old = primary.getContainer(locator.container);
        if ((await old.inspect()).State.Paused)
          await old.rename({ name: renamed });
        return commit(opts);
      }) as any;
      return container;
    };
    const captured = await new DockerCaptureSource('primary', renaming, {
      storeDirectory: store,
    }).capture(locator, { captureId: `renamed-${suffix}` });
    const { Name, State } = await primary.getContainer(renamed).inspect();
    expect({
      name: Name,
      running: State.Running,
      paused: State.Paused,
    }).toEqual({ name: `/${renamed}`, running: true, paused: false });
    expect(captured.pausedMs).toBeGreaterThan(0);
  });

  it('says nothing of production staying paused where its container is removed (docker rm -f) while a volume is copied', async () => {
    const container = `removed-mid-copy-${suffix}`;
    const volume = `removed-mid-copy-${suffix}`;
    containers.push(container);
    volumes.push(volume);
    await primary.createVolume({ Name: volume });
    const c = await primary.createContainer({
      name: container,
      Image: DEMO_IMAGE,
      Cmd: [
        'sh',
        '-c',
        `head -c ${64 * 1024 ** 2} /dev/urandom > /data/blob && touch /data/ready && ${FOREVER[2]}`,
      ],
      HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/data`] },
    });
    await c.start();
    const { Id } = await c.inspect();
    await until(
      'the volume written',
      async () => (await sh(c, 'test -e /data/ready')).exitCode === 0,
      60_000,
    );
    // The removal comes as the volume's copy starts: the engine kills the paused container, then
    // waits for the copy to let go of the volume; the unpause comes in between.
    let removal: Promise<unknown> | undefined;
    const removing = Object.create(primary) as Docker;
    removing.getContainer = (id: string) => {
      const found = primary.getContainer(id);
      const getArchive = found.getArchive.bind(found);
      found.getArchive = (async (opts: any) => {
        const archive = await getArchive(opts);
        removal ??= primary
          .getContainer(Id)
          .remove({ force: true })
          .catch(e => e);
        return archive;
      }) as any;
      return found;
    };
    const captured = await new DockerCaptureSource('primary', removing, {
      storeDirectory: store,
    }).capture(
      {
        machineRef: `resource:default/${container}`,
        engine: 'primary',
        container,
      },
      { captureId: `removed-mid-copy-${suffix}` },
    );
    expect(await removal).not.toBeInstanceOf(Error);
    await expect(c.inspect()).rejects.toMatchObject({ statusCode: 404 });
    // Copied while it was paused, before it went: the capture holds the volume whole.
    expect(captured.runtime.volumes?.[0]?.sizeBytes).toBeGreaterThan(
      64 * 1024 ** 2,
    );
    // No note left behind, so no unpause tried again of a machine that is gone.
    expect(
      readdirSync(join(store, '.paused')).filter(f => f.includes(Id)),
    ).toEqual([]);
  });
});
