import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { DockerCaptureSource } from './DockerCaptureSource';
import { labelledAs } from './machineLabel';
import { memoryInUseOf } from './machineMemory';
import { createTar } from './lib/tar';
import {
  engineError,
  fakePrimaryEngine,
  type FakeContainer,
} from './testing/fakePrimaryEngine';

/**
 * What reaches the disk, in order, while a test records it: `fsync <path>` (a file written with
 * `flush`, a handle synced) and `rename <from> <to>`; the fake engine adds its pauses and the
 * capture's record.
 */
const disk = vi.hoisted(() => ({ log: undefined as string[] | undefined }));
vi.mock('node:fs/promises', async importOriginal => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const writeFile = (async (path: string, data: any, options?: any) => {
    await fs.writeFile(path, data, options);
    if (options?.flush) disk.log?.push(`fsync ${path}`);
  }) as typeof fs.writeFile;
  const rename = (async (from: string, to: string) => {
    disk.log?.push(`rename ${from} ${to}`);
    return fs.rename(from, to);
  }) as typeof fs.rename;
  const open = (async (path: string, ...rest: any[]) => {
    const handle = await (fs.open as any)(path, ...rest);
    const sync = handle.sync.bind(handle);
    handle.sync = () => {
      disk.log?.push(`fsync ${path}`);
      return sync();
    };
    return handle;
  }) as typeof fs.open;
  return {
    ...fs,
    writeFile,
    rename,
    open,
    default: { ...fs, writeFile, rename, open },
  };
});
vi.mock('node:fs', async importOriginal => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const createWriteStream = ((path: string, options?: any) =>
    fs.createWriteStream(path, {
      ...options,
      fs: {
        open: fs.open,
        write: fs.write,
        writev: fs.writev,
        close: fs.close,
        fsync: (fd: number, cb: (e: Error | null) => void) => {
          disk.log?.push(`fsync ${path}`);
          fs.fsync(fd, cb);
        },
      },
    })) as typeof fs.createWriteStream;
  return { ...fs, createWriteStream, default: { ...fs, createWriteStream } };
});

describe('memoryInUseOf', () => {
  const MiB = 1024 ** 2;

  it('counts what docker stats counts on cgroup v2: the usage without the inactive file cache', () => {
    expect(
      memoryInUseOf({
        usage: 50 * MiB,
        stats: { inactive_file: 8 * MiB, active_file: 2 * MiB },
      }),
    ).toBe(42 * MiB);
  });

  it("on cgroup v1, leaves out the hierarchy's inactive file cache (total_), not only the cgroup's own", () => {
    // A machine with cgroups of its own (systemd inside): most of its cache is in them.
    expect(
      memoryInUseOf({
        usage: 50 * MiB,
        stats: { inactive_file: 1 * MiB, total_inactive_file: 30 * MiB },
      }),
    ).toBe(20 * MiB);
  });

  it('says the usage, not nothing, where the cache figure is not below it', () => {
    expect(
      memoryInUseOf({ usage: 10 * MiB, stats: { inactive_file: 12 * MiB } }),
    ).toBe(10 * MiB);
    expect(
      memoryInUseOf({
        usage: 10 * MiB,
        stats: { total_inactive_file: 10 * MiB, inactive_file: 4 * MiB },
      }),
    ).toBe(6 * MiB);
  });

  it('is undefined where the engine keeps no figures', () => {
    expect(memoryInUseOf(undefined)).toBeUndefined();
    expect(memoryInUseOf({})).toBeUndefined();
    expect(memoryInUseOf({ usage: 0, stats: {} })).toBeUndefined();
    expect(memoryInUseOf({ usage: 7 * MiB })).toBe(7 * MiB);
  });
});

/** The fake primary engine, its pauses and unpauses logged with what reaches the disk. */
const fakeEngine = (
  containers: Record<string, FakeContainer>,
  modem?: Pick<Docker['modem'], 'dial'>,
) => fakePrimaryEngine(containers, { modem, log: () => disk.log });

describe('DockerCaptureSource on a failing engine', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-source-test-'));
  });
  afterEach(() => {
    vi.useRealTimers();
    rmSync(store, { recursive: true, force: true });
  });

  const notes = () => readdirSync(join(store, '.paused')).sort();
  const noteOf = (id: string) => `primary.${id}`;

  it('resumes every interrupted capture it can, when one cannot be, and names that one', async () => {
    const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
    const containers: Record<string, FakeContainer> = {
      [a]: {
        paused: true,
        fails: {
          inspect: [engineError(500, 'container a: the engine failed')],
        },
      },
      [b]: { paused: true },
    };
    const { docker } = fakeEngine(containers);
    mkdirSync(join(store, '.paused'));
    for (const [id, name] of [
      [a, 'a'],
      [b, 'b'],
    ]) {
      const note = {
        machineRef: `resource:default/${name}`,
        captureId: `cap-${name}`,
        imageRef: `recovery-capture/${name}:cap-${name}`,
        filePrefix: `cap-${name}`,
        phase: 'paused',
        pausedAt: '2020-01-01T00:00:00.000Z',
      };
      writeFileSync(join(store, '.paused', noteOf(id)), JSON.stringify(note));
      writeFileSync(
        join(store, `cap-${name}.volume-1.tar`),
        'left by the capture',
      );
    }
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    await expect(source.resumeInterruptedCaptures()).rejects.toThrow(
      'could not resume 1 interrupted capture(s), whose machines may still be paused (their notes stay, for the next start or capture of the machine): capture cap-a of resource:default/a: container a: the engine failed',
    );
    // The note after it was dealt with all the same.
    expect(containers[b].paused).toBe(false);
    expect(notes()).toEqual([noteOf(a)]);
    expect(readdirSync(store).filter(f => f.endsWith('.tar'))).toEqual([
      'cap-a.volume-1.tar',
    ]);
  });

  it.each([
    ['unpaused', { Running: true, Paused: false }],
    ['stopped', { Running: false, Paused: false, ExitCode: 137 }],
  ])(
    'keeps nothing of a machine %s by someone else while the capture had it paused, and says so: its copies are no one instant',
    async (how, state) => {
      const id = 'c'.repeat(64);
      // The engine refuses the capture's unpause: someone else got there first. Until then the
      // machine runs, paused as the capture paused it; after, as `state` says.
      const refusals = [engineError(409, `Container ${id} is not paused`)];
      const container: FakeContainer = {
        paused: false,
        fails: { unpause: refusals },
        get state() {
          return refusals.length
            ? { Running: true, Paused: container.paused }
            : state;
        },
      };
      const containers: Record<string, FakeContainer> = { [id]: container };
      const { docker, removedTags } = fakeEngine(containers);
      const source = new DockerCaptureSource('primary', docker, {
        storeDirectory: store,
      });
      const capture = source.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: id,
        },
        { captureId: 'cap-1' },
      );
      await expect(capture).rejects.toThrow(
        `capture of resource:default/web-01: container "${id}" was ${how} by someone else while the capture had it paused: its image and volumes would not be one instant of it, nothing kept`,
      );
      expect(removedTags).toEqual([`recovery-capture/${id}:cap-1`]);
      expect(notes()).toEqual([]);
    },
  );

  it('says a machine whose unpause failed stays paused, keeps its note, and tries again 2 s on, then at doubling intervals, till done', async () => {
    vi.useFakeTimers({
      toFake: [
        'setTimeout',
        'clearTimeout',
        'setInterval',
        'clearInterval',
        'Date',
      ],
    });
    const id = 'c'.repeat(64);
    const containers: Record<string, FakeContainer> = {
      // At the capture's end, and at its first try after.
      [id]: {
        paused: false,
        fails: {
          unpause: [1, 2].map(() =>
            engineError(500, 'cannot unpause: the cgroup is busy'),
          ),
        },
      },
    };
    const { docker, removedTags } = fakeEngine(containers);
    // Not once the note is stale (the pause limit plus its grace): production would stay paused that long.
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      maxPauseMs: 60_000,
    });
    const capture = source.capture(
      {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      },
      { captureId: 'cap-1' },
    );
    // The engine's failure (502: it answered), not the backend's.
    await expect(capture).rejects.toMatchObject({
      name: 'EngineFailedError',
      statusCode: 502,
      engine: 'primary',
    });
    await expect(capture).rejects.toThrow(
      /^capture of resource:default\/web-01 could not unpause it \(Docker engine 'primary' answered HTTP 500: cannot unpause: the cgroup is busy\): production stays paused \(paused at least \d+ ms so far\); the backend tries again in 2 s, then at least every 30 s \(by hand: docker unpause c{64}, on engine primary\), nothing kept$/,
    );
    expect(containers[id].paused).toBe(true);
    expect(removedTags).toEqual([`recovery-capture/${id}:cap-1`]);
    expect(notes()).toEqual([noteOf(id)]);

    await vi.advanceTimersByTimeAsync(2_000);
    await vi.waitFor(() => expect(containers[id].fails!.unpause).toEqual([]));
    expect(containers[id].paused).toBe(true);
    expect(notes()).toEqual([noteOf(id)]);
    // And 4 s on (then 8, 16, 30 at most), for as long as it fails.
    await vi.advanceTimersByTimeAsync(3_900);
    expect(containers[id].paused).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    await vi.waitFor(() =>
      expect(existsSync(join(store, '.paused', noteOf(id)))).toBe(false),
    );
    expect(containers[id].paused).toBe(false);
  });

  it('names the machine by its id in the unpause to do by hand: renamed under the capture (docker rename), its name finds nothing', async () => {
    vi.useFakeTimers({
      toFake: [
        'setTimeout',
        'clearTimeout',
        'setInterval',
        'clearInterval',
        'Date',
      ],
    });
    const id = 'd'.repeat(64);
    const containers: Record<string, FakeContainer> = {
      [id]: {
        paused: false,
        fails: {
          unpause: [engineError(500, 'cannot unpause: the cgroup is busy')],
        },
      },
    };
    const { docker } = fakeEngine(containers);
    // The catalog's name finds the container until the commit, when it is renamed.
    let renamed = false;
    const renaming = {
      ...docker,
      getContainer: (ref: string) => {
        const container = docker.getContainer(
          ref === 'web-01' && !renamed ? id : ref,
        );
        const commit = container.commit;
        container.commit = async () => {
          renamed = true;
          return commit();
        };
        return container;
      },
    } as unknown as Docker;
    const source = new DockerCaptureSource('primary', renaming, {
      storeDirectory: store,
      maxPauseMs: 60_000,
    });
    await expect(
      source.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: 'web-01',
        },
        { captureId: 'cap-1' },
      ),
    ).rejects.toThrow(
      `(by hand: docker unpause ${id} (the container the catalog names web-01), on engine primary), nothing kept`,
    );
    expect(renamed).toBe(true);
    expect(containers[id].paused).toBe(true);
    // Its retry, by the id too, unpauses it.
    await vi.advanceTimersByTimeAsync(2_000);
    await vi.waitFor(() => expect(containers[id].paused).toBe(false));
    await vi.waitFor(() => expect(notes()).toEqual([]));
  });

  it('takes a pause limit past what a timer holds (30 days, meant as none) as the longest a timer holds', async () => {
    const id = 'e'.repeat(64);
    const containers: Record<string, FakeContainer> = {
      [id]: { paused: false, commitMs: 50 },
    };
    const { docker } = fakeEngine(containers);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      maxPauseMs: 30 * 24 * 60 * 60_000,
    });
    const captured = await source.capture(
      {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      },
      { captureId: 'cap-1' },
    );
    expect(captured).toMatchObject({
      imageId: 'sha256:committed',
      artifact: 'cap-1.tar',
      checksum: expect.stringMatching(/^sha256:/),
    });
    expect(containers[id].paused).toBe(false);
    expect(notes()).toEqual([]);
  });

  it('puts its note, files and renames on the disk before what relies on them: the pause, the next step, the record', async () => {
    const id = 'f'.repeat(64);
    const containers: Record<string, FakeContainer> = {
      [id]: { paused: false, volumes: ['/data'] },
    };
    const { docker } = fakeEngine(containers);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    disk.log = [];
    await source.capture(
      {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      },
      { captureId: 'cap-1', record: async () => void disk.log!.push('record') },
    );
    const log = disk.log.map(line =>
      line
        .replaceAll(store, 'store')
        .replaceAll(id, 'ID')
        .replace(/\.[0-9a-f]{8}\.tmp/g, '.TMP'),
    );
    const rewrite = [
      'fsync store/.paused/primary.ID.tmp',
      'rename store/.paused/primary.ID.tmp store/.paused/primary.ID',
      'fsync store/.paused',
    ];
    expect(log).toEqual([
      // The note, by which a machine left paused is unpaused, before the pause.
      'fsync store/.paused/primary.ID',
      'fsync store/.paused',
      'pause',
      // The volume's archive is kept once production runs again: its flush is no part of the pause.
      'unpause',
      'fsync store/.cap-1.volume-1.tar.TMP',
      'rename store/.cap-1.volume-1.tar.TMP store/cap-1.volume-1.tar',
      'fsync store',
      // Unpaused: the note says so (saving).
      ...rewrite,
      'fsync store/.cap-1.tar.TMP',
      'fsync store/layers',
      'rename store/.cap-1.tar.TMP store/cap-1.tar',
      'fsync store',
      // Its files kept: the note says so (recording) before the record, which a note of the saving
      // phase, back after a power loss, would undo.
      ...rewrite,
      'record',
    ]);
    expect(notes()).toEqual([]);
  });

  it("stops a docker save the engine has not answered yet, at the capture's signal and as the backend shuts down", async () => {
    // An engine that exports the whole image before it answers (as older ones do): here, never.
    const saves: string[] = [];
    const dropped: string[] = [];
    const engine = createServer((req, res) => {
      saves.push(req.url!);
      res.on('close', () => dropped.push(req.url!));
    });
    await new Promise<void>(resolve => engine.listen(0, '127.0.0.1', resolve));
    try {
      const { modem } = new Docker({
        host: '127.0.0.1',
        port: (engine.address() as AddressInfo).port,
        protocol: 'http',
      });
      const id = 'a'.repeat(64);
      const { docker, removedTags } = fakeEngine(
        { [id]: { paused: false } },
        modem,
      );
      const source = new DockerCaptureSource('primary', docker, {
        storeDirectory: store,
      });
      const machine = {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      };

      const timeout = new AbortController();
      const first = source.capture(machine, {
        captureId: 'cap-1',
        signal: timeout.signal,
      });
      await vi.waitFor(() =>
        expect(saves).toEqual([`/images/recovery-capture/${id}:cap-1/get`]),
      );
      timeout.abort(new Error('the capture took too long'));
      await expect(first).rejects.toThrow('the capture took too long');
      await vi.waitFor(() => expect(dropped).toEqual(saves));

      const second = source.capture(machine, { captureId: 'cap-2' });
      await vi.waitFor(() => expect(saves).toHaveLength(2));
      const stopping = performance.now();
      await source.stopCaptures();
      // At once, not after the 10 s the shutdown waits at most: only waiting that out takes 5 s.
      expect(performance.now() - stopping).toBeLessThan(5_000);
      await expect(second).rejects.toThrow(
        'capture of resource:default/web-01 stopped as the backend shuts down: unpaused, nothing kept',
      );
      await vi.waitFor(() => expect(dropped).toEqual(saves));
      expect(removedTags).toEqual([
        `recovery-capture/${id}:cap-1`,
        `recovery-capture/${id}:cap-2`,
      ]);
      expect(notes()).toEqual([]);
      expect(readdirSync(store).filter(f => f.includes('tar'))).toEqual([]);
    } finally {
      engine.closeAllConnections();
      engine.close();
    }
  }, 15_000);

  it('removes at once the layers a capture wrote when it fails (its record, here), keeping those a recorded capture refers to', async () => {
    const id = 'b'.repeat(64);
    const base = Buffer.alloc(100_000, 7);
    const top = Buffer.alloc(80_000, 1);
    // docker save of each capture's commit: the image's base layer, and the commit's own on the second.
    const layered: Pick<Docker['modem'], 'dial'> = {
      dial: (options, callback) => {
        const ref = /^\/images\/(.+)\/get$/.exec(options.path)![1];
        const layers = ref.endsWith(':cap-1') ? [base] : [base, top];
        const entries = layers.map((content, i) => ({
          type: 'file' as const,
          path: `l${i}/layer.tar`,
          content,
        }));
        callback!(
          null,
          Readable.from([
            createTar([
              ...entries,
              {
                type: 'file',
                path: 'manifest.json',
                content: `[{"RepoTags":["${ref}"]}]`,
              },
            ]),
          ]) as any,
        );
      },
    };
    const { docker, removedTags } = fakeEngine(
      { [id]: { paused: false } },
      layered,
    );
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    const machine = {
      machineRef: 'resource:default/web-01',
      engine: 'primary',
      container: id,
    };
    await source.capture(machine, {
      captureId: 'cap-1',
      record: async () => {},
    });
    const layers = () => readdirSync(join(store, 'layers')).sort();
    expect(layers()).toHaveLength(1);
    const kept = layers();

    await expect(
      source.capture(machine, {
        captureId: 'cap-2',
        record: async () => {
          throw new Error('the database is gone');
        },
      }),
    ).rejects.toThrow('the database is gone');
    // Its archive, tag and the layer only it wrote are gone; the base, which cap-1 refers to, stays.
    expect(layers()).toEqual(kept);
    expect(readdirSync(store).filter(f => f.endsWith('.tar'))).toEqual([
      'cap-1.tar',
    ]);
    expect(removedTags).toEqual([`recovery-capture/${id}:cap-2`]);
    expect(notes()).toEqual([]);
  });

  it('unpauses a machine whose pause took though its answer was lost, and keeps nothing', async () => {
    const id = 'd'.repeat(64);
    const lost = Object.assign(new Error('socket hang up'), {
      code: 'ECONNRESET',
    });
    const containers: Record<string, FakeContainer> = {
      [id]: { paused: false, pauseFails: lost },
    };
    const { docker } = fakeEngine(containers);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    await expect(
      source.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: id,
        },
        { captureId: 'cap-1' },
      ),
    ).rejects.toThrow("Docker engine 'primary' is unreachable (ECONNRESET)");
    expect(containers[id].paused).toBe(false);
    expect(notes()).toEqual([]);

    // Refused, as someone else paused it meanwhile: left as they want it.
    containers[id] = {
      paused: false,
      pauseFails: engineError(409, `Container ${id} is already paused`),
    };
    await expect(
      source.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: id,
        },
        { captureId: 'cap-2' },
      ),
    ).rejects.toThrow('is already paused');
    expect(containers[id].paused).toBe(true);
    expect(notes()).toEqual([]);
  });
});

describe('DockerCaptureSource on a machine that is not serving', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-source-test-'));
  });
  afterEach(() => {
    rmSync(store, { recursive: true, force: true });
  });

  const machine = (container: string) => ({
    machineRef: 'resource:default/web-01',
    engine: 'primary',
    container,
  });

  /** As Docker says a crash-looping container (`--restart always`) between two of its runs. */
  const RESTARTING = {
    Status: 'restarting',
    Running: true,
    Paused: false,
    Restarting: true,
    ExitCode: 5,
    StartedAt: '2026-12-06T00:00:00Z',
    FinishedAt: '2026-12-06T00:00:03Z',
  };

  /**
   * The fake engine, its container crash-looping (restarting) from the start, or from its pause on
   * (it began restarting after the capture looked at it). Docker refuses the pause of a container
   * that is restarting (409). `asked` logs its pauses, and the phase its note says at the commit.
   */
  const crashLooping = (
    id: string,
    restartingFrom: 'the look' | 'the pause',
    storeDir: string,
  ) => {
    const containers: Record<string, FakeContainer> = {
      [id]: { paused: false, volumes: ['/data'] },
    };
    const { docker } = fakeEngine(containers);
    const asked: string[] = [];
    let restarting = restartingFrom === 'the look';
    const getContainer = docker.getContainer.bind(docker);
    docker.getContainer = (name: string) => {
      const c = getContainer(name);
      return {
        ...c,
        inspect: async (...args: any[]) => {
          const info = await (c.inspect as any)(...args);
          return restarting ? { ...info, State: RESTARTING } : info;
        },
        pause: async () => {
          asked.push('pause');
          restarting = true;
          throw engineError(
            409,
            `(HTTP code 409) unexpected - Container ${name} is restarting, wait until the container is running `,
          );
        },
        commit: async (...args: any[]) => {
          const note = JSON.parse(
            readFileSync(join(storeDir, '.paused', `primary.${id}`), 'utf8'),
          );
          asked.push(`commit (note: ${note.phase})`);
          return (c.commit as any)(...args);
        },
      } as unknown as Docker.Container;
    };
    return { docker, containers, asked };
  };

  it('captures a crash-looping (restarting) machine as it is, without a pause, and says it was restarting', async () => {
    const id = 'a'.repeat(64);
    const { docker, containers, asked } = crashLooping(id, 'the look', store);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    const captured = await source.capture(machine(id), {
      captureId: 'cap-1',
    });
    // Docker says it runs, but there is no process to freeze: committed as it is, never paused.
    expect(asked).toEqual(['commit (note: saving)']);
    expect(captured.machineState).toEqual({
      status: 'restarting',
      exitCode: 5,
      since: '2026-12-06T00:00:03Z',
    });
    expect(captured.pausedMs).toBe(0);
    expect(captured.pauseWarning).toBeUndefined();
    expect(containers[id].unpauses).toBeUndefined();
    expect(
      readdirSync(store)
        .filter(f => f.endsWith('.tar'))
        .sort(),
    ).toEqual(['cap-1.tar', 'cap-1.volume-1.tar']);
    expect(readdirSync(join(store, '.paused'))).toEqual([]);
  });

  it('captures without a pause a machine that began restarting after the look, whose pause the engine refused', async () => {
    const id = 'b'.repeat(64);
    const { docker, containers, asked } = crashLooping(id, 'the pause', store);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    const captured = await source.capture(machine(id), {
      captureId: 'cap-1',
    });
    // Its note no longer says it paused the machine: a backend stopped now must not unpause it.
    expect(asked).toEqual(['pause', 'commit (note: saving)']);
    // As the engine said it once it refused the pause, not as it ran at the look.
    expect(captured.machineState).toEqual({
      status: 'restarting',
      exitCode: 5,
      since: '2026-12-06T00:00:03Z',
    });
    expect(captured.pausedMs).toBe(0);
    expect(captured.pauseWarning).toBeUndefined();
    expect(containers[id].unpauses).toBeUndefined();
    expect(
      readdirSync(store)
        .filter(f => f.endsWith('.tar'))
        .sort(),
    ).toEqual(['cap-1.tar', 'cap-1.volume-1.tar']);
    expect(readdirSync(join(store, '.paused'))).toEqual([]);
  });
});

describe('DockerCaptureSource store modes', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-source-test-'));
  });
  afterEach(() => {
    rmSync(store, { recursive: true, force: true });
  });

  /** Every file and directory under `dir`, with its mode, `dir` itself first. */
  const modesUnder = (dir: string): string[] => [
    `${dir} ${(statSync(dir).mode & 0o777).toString(8)}`,
    ...readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
      const path = join(dir, entry.name);
      return entry.isDirectory()
        ? modesUnder(path)
        : [`${path} ${(statSync(path).mode & 0o777).toString(8)}`];
    }),
  ];

  it("keeps every file of a capture for the backend's user alone (0600, directories 0700): its note, its volumes, its image", async () => {
    const id = 'c'.repeat(64);
    const inStore = join(store, 'new');
    const { docker } = fakeEngine({
      [id]: { paused: false, volumes: ['/data'] },
    });
    // Its note as first written (seen at the commit), as rewritten (at the record), and its archives.
    const seen: string[] = [];
    const getContainer = docker.getContainer.bind(docker);
    docker.getContainer = (name: string) => {
      const c = getContainer(name);
      return {
        ...c,
        commit: async (...args: any[]) => {
          seen.push(...modesUnder(inStore));
          return (c.commit as any)(...args);
        },
      } as unknown as Docker.Container;
    };
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: inStore,
    });
    const before = process.umask(0o022);
    try {
      await source.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: id,
        },
        {
          captureId: 'cap-1',
          record: async () => void seen.push(...modesUnder(inStore)),
        },
      );
    } finally {
      process.umask(before);
    }
    seen.push(...modesUnder(inStore));
    const named = (mode: string) =>
      [...new Set(seen)]
        .filter(line => line.endsWith(` ${mode}`))
        .map(line => line.slice(0, -mode.length - 1).replace(inStore, 'store'))
        .sort();
    expect(named('600')).toEqual([
      `store/.paused/primary.${id}`,
      'store/cap-1.tar',
      'store/cap-1.volume-1.tar',
    ]);
    expect(named('700')).toEqual(['store', 'store/.paused', 'store/layers']);
    // Nothing else: no file or directory readable by others.
    expect(new Set(seen).size).toBe(6);
  });
});

describe('DockerCaptureSource on an engine that requires machine labels', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-source-test-'));
  });
  afterEach(() => {
    rmSync(store, { recursive: true, force: true });
  });

  const LABEL = 'recovery.backstage-recovery.io/machine';
  const capture = (
    source: DockerCaptureSource,
    container: string,
    machineRef = 'resource:default/web-01',
  ) =>
    source.capture(
      { machineRef, engine: 'primary', container },
      { captureId: 'cap-1' },
    );

  it('refuses, before pausing it, a container the catalog points at that is not labelled as that machine', async () => {
    // A catalog author's machine entity naming another team's database container.
    const containers: Record<string, FakeContainer> = {
      payments: { paused: false, labels: { [LABEL]: 'payments-db' } },
      unlabelled: { paused: false },
    };
    const { docker, removedTags } = fakeEngine(containers);
    disk.log = [];
    try {
      const source = new DockerCaptureSource('primary', docker, {
        storeDirectory: store,
        requireMachineLabel: true,
      });
      const refused = capture(source, 'payments', 'resource:team-x/web-01');
      await expect(refused).rejects.toThrow(
        'machine resource:team-x/web-01: container "payments" on engine primary is labelled recovery.backstage-recovery.io/machine=payments-db, ' +
          'and this engine captures only containers labelled as their machine (recovery.docker.engines[primary].requireMachineLabel): ' +
          "label the container recovery.backstage-recovery.io/machine=resource:team-x/web-01, or correct the machine's recovery.backstage-recovery.io/container annotation",
      );
      await expect(refused).rejects.toMatchObject({ name: 'NotAllowedError' });
      await expect(capture(source, 'unlabelled')).rejects.toThrow(
        'container "unlabelled" on engine primary is not labelled recovery.backstage-recovery.io/machine,',
      );
      expect(disk.log).not.toContain('pause');
    } finally {
      disk.log = undefined;
    }
    expect(removedTags).toEqual([]);
    expect(readdirSync(store)).toEqual([]);
  });

  it('captures a container labelled as its machine, and any container where the engine does not ask', async () => {
    const containers: Record<string, FakeContainer> = {
      web: { paused: false, labels: { [LABEL]: 'web-01' } },
      other: { paused: false },
    };
    const { docker } = fakeEngine(containers);
    const labelled = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      requireMachineLabel: true,
    });
    await expect(capture(labelled, 'web')).resolves.toMatchObject({
      artifact: 'cap-1.tar',
    });
    const open = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    await expect(
      open.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: 'other',
        },
        { captureId: 'cap-2' },
      ),
    ).resolves.toMatchObject({
      artifact: 'cap-2.tar',
    });
  });
});

describe('labelledAs', () => {
  const labels = (value: string) => ({
    'recovery.backstage-recovery.io/machine': value,
  });

  it("takes the machine's entity ref, or its name alone in the default namespace", () => {
    expect(
      labelledAs(labels('resource:default/web-01'), 'resource:default/web-01'),
    ).toBe(true);
    expect(
      labelledAs(labels('Resource:Default/Web-01'), 'resource:default/web-01'),
    ).toBe(true);
    expect(labelledAs(labels('web-01'), 'resource:default/web-01')).toBe(true);
    expect(
      labelledAs(labels('resource:ops/web-01'), 'resource:ops/web-01'),
    ).toBe(true);
    // The kind and name without the namespace: the same machine, as the catalog reads the ref.
    expect(
      labelledAs(labels('resource:web-01'), 'resource:default/web-01'),
    ).toBe(true);
  });

  it('refuses another machine, a name alone outside the default namespace, and no label', () => {
    expect(labelledAs(labels('web-02'), 'resource:default/web-01')).toBe(false);
    // Another namespace's machine of the same name must not take this container.
    expect(labelledAs(labels('web-01'), 'resource:ops/web-01')).toBe(false);
    expect(
      labelledAs(labels('resource:default/web-01'), 'resource:ops/web-01'),
    ).toBe(false);
    expect(
      labelledAs(labels('component:web-01'), 'resource:default/web-01'),
    ).toBe(false);
    expect(labelledAs(labels(''), 'resource:default/web-01')).toBe(false);
    expect(labelledAs({}, 'resource:default/web-01')).toBe(false);
    expect(labelledAs(undefined, 'resource:default/web-01')).toBe(false);
  });
});
