import type Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import type {
  MachineLocator,
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import type { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import type { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { RunService } from '../../recovery-backend/src/run/RunService';
import type { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import type { PlanService } from '../../recovery-backend/src/service/PlanService';
import { captureMachines } from '../../recovery-backend-module-scheduler/src/tasks';
import { UNPAUSE_RETRY_MAX_MS } from './captureNotes';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { machineContainerName } from './labNames';
import { createTestNetwork } from './testing/testNetwork';
import { buildCaptureService } from './testing/captureService';
import { LAYERS_DIRECTORY } from './lib/layerStore';
import { removeCaptureImages } from './testing/removeCaptureImages';
import { buildRunSite } from './testing/runSite';
import { until } from './testing/until';

/**
 * Faults a DR engineer injects on the real engines: the capture store full or read-only mid-capture,
 * a capture file corrupted after capture, the recovery engine stopped mid-run, the primary engine
 * gone during a scheduled capture, its link cut or its dockerd crashed while a capture has
 * production paused, a container removed under a capture, machines that exit during boot or fall
 * sick after they were ready.
 */

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const RECOVERY =
  process.env.RECOVERY_HOST_DOCKER_HOST ??
  'unix:///run/recovery-docker/recovery.sock';
const ENGINES = join(__dirname, '../../../scripts/docker-engines.sh');

const primary = dockerFromHost(PRIMARY);
const recovery = dockerFromHost(RECOVERY);
const suffix = Date.now().toString(36);
const NETWORK = `faults-prod-${suffix}`;
const SUBNET = '172.29.77.0/24';
const GATEWAY = '172.29.77.1';
const store = mkdtempSync(join(tmpdir(), 'recovery-faults-'));
const mounts: string[] = [];
const containers: string[] = [];
const runIds: string[] = [];
const timings: Record<string, number> = {};

/** Keeps a container running until it is stopped. */
const IDLE = 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done';
/** Serves HTTP on 8080 (busybox httpd) after `delay` seconds. */
const httpd = (delay = 0) =>
  `sleep ${delay}; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w`;

function engine(command: 'start' | 'stop', name: 'primary' | 'recovery') {
  execFileSync('bash', [ENGINES, command, name], { stdio: 'pipe' });
}

/** A tmpfs of `size` (e.g. `1m`) as a capture store. */
function tmpfsStore(size: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-tmpfs-store-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Files (not directories) under `dir`, recursively, relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e =>
    e.isDirectory()
      ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`)
      : [`${prefix}${e.name}`],
  );
}

/** A machine on the production network, running `script`; its container name. */
async function machine(
  name: string,
  script: string,
  extra: Partial<Docker.ContainerCreateOptions> = {},
  ipv4?: string,
) {
  const container = `${name}-${suffix}`;
  containers.push(container);
  const c = await primary.createContainer({
    name: container,
    Hostname: name,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', script],
    StopTimeout: 1,
    ...extra,
    HostConfig: { NetworkMode: NETWORK, ...extra.HostConfig },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: {
          ...(ipv4 && { IPAMConfig: { IPv4Address: ipv4 } }),
          Aliases: [name],
        },
      },
    },
  });
  await c.start();
  return container;
}

async function tagsOf(captureId: string) {
  const images = await primary.listImages({
    filters: { reference: [`recovery-capture/*:${captureId}`] },
  });
  return images.flatMap(i => i.RepoTags ?? []);
}

/**
 * The primary engine with every commit held for `ms` (as a large image's would be), `during` run
 * meanwhile, at the first commit only.
 */
function heldCommits(
  ms: number,
  during: () => Promise<void> | void = () => {},
  base: Docker = primary,
): Docker {
  const held = Object.create(base) as Docker;
  let first = true;
  held.getContainer = (id: string) => {
    const container = base.getContainer(id);
    const commit = container.commit.bind(container);
    container.commit = (async (opts: any) => {
      const fault = first ? during() : undefined;
      first = false;
      await Promise.all([new Promise(r => setTimeout(r, ms)), fault]);
      return commit(opts);
    }) as any;
    return container;
  };
  return held;
}

/**
 * The primary engine reached through a link that can be cut (a network between backend and
 * engine failing): `cut` drops every connection and refuses new ones, `mend` lets them through again.
 */
async function linkToPrimary() {
  if (!PRIMARY.startsWith('unix://'))
    throw new Error(`the link is made to a unix socket engine, not ${PRIMARY}`);
  const dir = mkdtempSync(join(tmpdir(), 'recovery-link-'));
  const path = join(dir, 'primary.sock');
  const open = new Set<Socket>();
  let server: Server | undefined;
  const mend = () =>
    new Promise<void>(resolve => {
      server = createServer(client => {
        const upstream = connect(PRIMARY.slice('unix://'.length));
        for (const [a, b] of [
          [client, upstream],
          [upstream, client],
        ]) {
          open.add(a);
          a.on('error', () => b.destroy());
          a.on('close', () => b.destroy());
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(path, resolve);
    });
  const cut = () => {
    server?.close();
    for (const socket of open) socket.destroy();
    open.clear();
  };
  await mend();
  links.push(() => {
    cut();
    rmSync(dir, { recursive: true, force: true });
  });
  return { docker: dockerFromHost(`unix://${path}`), cut, mend };
}
const links: Array<() => void> = [];

/** Kills the engine's dockerd (SIGKILL: a crash, no shutdown of its containers), once it is gone for good. */
function crash(name: 'primary' | 'recovery') {
  const pid = readFileSync(`/run/recovery-docker/${name}.pid`, 'utf8').trim();
  execFileSync('kill', ['-9', pid]);
  // Reaped, not a zombie the start script would take for a dockerd still running.
  for (
    const end = Date.now() + 10_000;
    existsSync(`/proc/${pid}`) && Date.now() < end;
  )
    execFileSync('sleep', ['0.1']);
}

const locator = (
  name: string,
  container: string,
  engineId = 'primary',
): MachineLocator => ({
  machineRef: `resource:default/${name}`,
  engine: engineId,
  container,
});

beforeAll(async () => {
  await primary.ping();
  await recovery.ping();
  await buildDemoImage(primary);
  await createTestNetwork(
    primary,
    {
      Name: NETWORK,
      Driver: 'bridge',
      IPAM: {
        Driver: 'default',
        Config: [{ Subnet: SUBNET, Gateway: GATEWAY }],
      },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    },
    suffix,
  );
});

afterAll(async () => {
  for (const unlink of links) unlink();
  // Both engines are left running, whatever a test stopped.
  engine('start', 'primary');
  engine('start', 'recovery');
  const host = new DockerHypervisorHost('recovery', recovery, {
    storeDirectory: store,
  });
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of containers)
    await primary
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
  await primary
    .getVolume(`faults-vol-${suffix}`)
    .remove()
    .catch(() => {});
  // Capture tags of this file's machines, on both engines (the recovery engine is a primary site in one test).
  await removeCaptureImages([primary, recovery], suffix);
  await primary
    .getNetwork(NETWORK)
    .remove()
    .catch(() => {});
  for (const dir of mounts) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      // already unmounted
    }
    rmSync(dir, { recursive: true, force: true });
  }
  rmSync(store, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log('fault timings', JSON.stringify(timings));
});

describe('capture faults (real engines)', () => {
  it('fills the capture store while the machine is paused (a volume archived): unpaused, nothing kept, the error names machine and store', async () => {
    // 3 MiB in its volume, 1 MiB of store: the volume's archive, written while paused, runs out of room.
    const container = await machine(
      'full-vol',
      `head -c 3145728 /dev/urandom > /data/blob && echo filled; ${IDLE}`,
      {
        HostConfig: { Binds: [`faults-vol-${suffix}:/data`] },
      },
    );
    await until(
      'the machine filled',
      async () =>
        String(
          await primary.getContainer(container).logs({ stdout: true }),
        ).includes('filled'),
      15_000,
    );
    const dir = tmpfsStore('1m');
    const source = new DockerCaptureSource('primary', primary, {
      storeDirectory: dir,
    });
    const captureId = `cap-full-vol-${suffix}`;
    const t0 = Date.now();
    const error = await failureOf(
      source.capture(locator('full-vol', container), { captureId }),
    );
    timings.disk_full_while_paused_ms = Date.now() - t0;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain('resource:default/full-vol');
    expect(error.message).toContain(dir);
    expect(error.message).toMatch(/ENOSPC|no space/);
    expect(error.message).toContain('unpaused, nothing kept');
    expect(
      (await primary.getContainer(container).inspect()).State,
    ).toMatchObject({ Running: true, Paused: false });
    expect(filesUnder(dir)).toEqual([]);
    expect(await tagsOf(captureId)).toEqual([]);
    // The store has room again: the machine is captured, no note of the failed capture in the way.
    execFileSync('mount', ['-o', 'remount,size=16m', dir]);
    const c = await source.capture(locator('full-vol', container), {
      captureId: `${captureId}-again`,
    });
    expect(c.runtime.volumes).toHaveLength(1);
    await source.discard({
      captureId: `${captureId}-again`,
      artifact: c.artifact,
      volumes: c.runtime.volumes,
    });
  });

  it('fills the capture store while saving the image: nothing kept, the error names machine and store', async () => {
    const container = await machine('full-save', IDLE);
    // Room for the note, not for the image's busybox layer.
    const dir = tmpfsStore('256k');
    const source = new DockerCaptureSource('primary', primary, {
      storeDirectory: dir,
    });
    const captureId = `cap-full-save-${suffix}`;
    const t0 = Date.now();
    const error = await failureOf(
      source.capture(locator('full-save', container), { captureId }),
    );
    timings.disk_full_while_saving_ms = Date.now() - t0;
    expect(error.message).toContain('resource:default/full-save');
    expect(error.message).toContain(dir);
    expect(error.message).toMatch(/ENOSPC|no space/);
    expect(
      (await primary.getContainer(container).inspect()).State,
    ).toMatchObject({ Running: true, Paused: false });
    expect(filesUnder(dir)).toEqual([]);
    expect(await tagsOf(captureId)).toEqual([]);
  });

  it('finds the capture store read-only: never pauses, the error names machine and store', async () => {
    const container = await machine('ro-store', IDLE);
    const dir = tmpfsStore('4m');
    execFileSync('mount', ['-o', 'remount,ro', dir]);
    const source = new DockerCaptureSource('primary', primary, {
      storeDirectory: dir,
    });
    const captureId = `cap-ro-${suffix}`;
    const error = await failureOf(
      source.capture(locator('ro-store', container), { captureId }),
    );
    expect(error.message).toContain('resource:default/ro-store');
    expect(error.message).toContain(
      `could not write to the capture store ${dir} while writing its note`,
    );
    expect((await primary.getContainer(container).inspect()).State.Paused).toBe(
      false,
    );
    expect(await tagsOf(captureId)).toEqual([]);
  });

  it('finds the capture store full before its note is written: never pauses, and leaves no empty note to refuse the next capture', async () => {
    const container = await machine('full-note', IDLE);
    const dir = tmpfsStore('64k');
    mkdirSync(join(dir, '.paused'));
    // Filled to the last byte: the note's file can be made, not written.
    const filler = join(dir, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(128 * 1024));
    } catch {
      // ENOSPC: as full as it gets
    }
    const source = new DockerCaptureSource('primary', primary, {
      storeDirectory: dir,
    });
    const captureId = `cap-full-note-${suffix}`;
    const error = await failureOf(
      source.capture(locator('full-note', container), { captureId }),
    );
    expect(error.message).toContain(
      `capture of resource:default/full-note could not write to the capture store ${dir} while writing its note`,
    );
    expect((await primary.getContainer(container).inspect()).State.Paused).toBe(
      false,
    );
    expect(filesUnder(dir)).toEqual(['filler']);
    // Room again: captured at once, not refused for a note it cannot read.
    rmSync(filler);
    execFileSync('mount', ['-o', 'remount,size=16m', dir]);
    const c = await source.capture(locator('full-note', container), {
      captureId: `${captureId}-again`,
    });
    expect(c.checksum).toMatch(/^sha256:/);
  });

  it('finds the capture store turned read-only mid-capture: unpaused, the error says so, and its note goes once the store is writable', async () => {
    const container = await machine('ro-mid', IDLE);
    const dir = tmpfsStore('16m');
    // The disk remounted read-only (as ext4 does on an I/O error) while the commit runs.
    const source = new DockerCaptureSource(
      'primary',
      heldCommits(1000, async () => {
        execFileSync('mount', ['-o', 'remount,ro', dir]);
      }),
      { storeDirectory: dir },
    );
    const captureId = `cap-ro-mid-${suffix}`;
    const error = await failureOf(
      source.capture(locator('ro-mid', container), { captureId }),
    );
    expect(error.message).toContain('resource:default/ro-mid');
    expect(error.message).toContain(dir);
    expect(error.message).toMatch(/EROFS|read-only/);
    expect(error.message).not.toMatch(/unlink/);
    expect(
      (await primary.getContainer(container).inspect()).State,
    ).toMatchObject({ Running: true, Paused: false });
    expect(await tagsOf(captureId)).toEqual([]);
    // Writable again, the next capture of the machine is not refused for the note the failed one could not remove.
    execFileSync('mount', ['-o', 'remount,rw', dir]);
    const again = await source.capture(locator('ro-mid', container), {
      captureId: `${captureId}-again`,
    });
    expect(again.checksum).toMatch(/^sha256:/);
  });

  it('names a container removed from production between plan and capture, and keeps nothing', async () => {
    const container = await machine('gone', IDLE);
    await primary.getContainer(container).remove({ force: true });
    const source = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
    });
    const captureId = `cap-gone-${suffix}`;
    await expect(
      source.capture(locator('gone', container), { captureId }),
    ).rejects.toThrow(
      `machine resource:default/gone: no container "${container}" on engine primary`,
    );
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    expect(filesUnder(store).filter(f => f.startsWith('.paused/'))).toEqual([]);
  });

  it('says a container removed while the capture had it paused is gone, not that production stays paused; keeps nothing', async () => {
    const container = await machine('removed-mid', IDLE);
    const source = new DockerCaptureSource(
      'primary',
      heldCommits(1000, async () => {
        await primary.getContainer(container).remove({ force: true });
      }),
      { storeDirectory: store },
    );
    const captureId = `cap-removed-mid-${suffix}`;
    const t0 = Date.now();
    const error = await failureOf(
      source.capture(locator('removed-mid', container), { captureId }),
    );
    timings.removed_mid_capture_ms = Date.now() - t0;
    expect(error.message).toContain('resource:default/removed-mid');
    expect(error.message).toMatch(/removed|no such container/i);
    expect(error.message).not.toContain('production stays paused');
    expect(readdirSync(store).filter(f => f.includes(captureId))).toEqual([]);
    expect(filesUnder(store).filter(f => f.startsWith('.paused/'))).toEqual([]);
    expect(await tagsOf(captureId)).toEqual([]);
  });

  it('unpauses production within seconds of the primary engine answering again, after the link to it broke mid-pause; the error says how to by hand', async () => {
    const container = await machine('cut-link', IDLE);
    const { Id } = await primary.getContainer(container).inspect();
    const link = await linkToPrimary();
    // The link breaks while the commit runs: neither the commit nor the unpause reaches the engine.
    const source = new DockerCaptureSource(
      'primary',
      heldCommits(500, link.cut, link.docker),
      { storeDirectory: store },
    );
    const captureId = `cap-cut-link-${suffix}`;
    const error = await failureOf(
      source.capture(locator('cut-link', container), { captureId }),
    );
    expect((await primary.getContainer(container).inspect()).State.Paused).toBe(
      true,
    );
    await new Promise(r => setTimeout(r, 1000));
    await link.mend();
    const back = Date.now();
    // Not at the pause limit plus its grace (5.5 min by default), as its note would be stale then.
    await until(
      'production running again',
      async () =>
        !(await primary.getContainer(container).inspect()).State.Paused,
      60_000,
    );
    timings.unpaused_after_link_back_ms = Date.now() - back;
    expect(
      (await primary.getContainer(container).inspect()).State,
    ).toMatchObject({ Running: true, Paused: false });
    // At its next try (2 s after the failure, then 4, 8…), at most the longest wait between two.
    expect(timings.unpaused_after_link_back_ms).toBeLessThan(
      UNPAUSE_RETRY_MAX_MS,
    );
    await until(
      'no pause note left',
      () =>
        filesUnder(store).filter(f => f.startsWith('.paused/')).length === 0,
      5_000,
    );
    expect(
      filesUnder(store).filter(
        f => f.startsWith('.paused/') || f.includes(captureId),
      ),
    ).toEqual([]);
    expect(await tagsOf(captureId)).toEqual([]);
    expect(error.message).toMatch(
      /^capture of resource:default\/cut-link failed while committing the image \(.*\) and could not unpause it \(Docker engine 'primary' is unreachable at .*\): production stays paused \(paused at least .+ so far\); /,
    );
    expect(error.message).toContain(
      ` so far); the backend tries again in 2 s, then at least every 30 s (by hand: docker unpause ${Id} (the container the catalog names ${container}), on engine primary), nothing kept`,
    );
  });

  it('says, once the primary engine is back from a crash mid-pause, that its restart stopped the machine, not that the backend unpaused it', async () => {
    const container = await machine('crashed', IDLE);
    const { Id: id } = await primary.getContainer(container).inspect();
    const warnings = mockServices.logger.mock();
    const source = new DockerCaptureSource(
      'primary',
      heldCommits(500, () => crash('primary')),
      { storeDirectory: store, logger: warnings },
    );
    const captureId = `cap-crashed-${suffix}`;
    let error: Error;
    let noteText = '';
    try {
      error = await failureOf(
        source.capture(locator('crashed', container), { captureId }),
      );
      noteText = readFileSync(join(store, '.paused', `primary.${id}`), 'utf8');
    } finally {
      const t0 = Date.now();
      engine('start', 'primary');
      timings.primary_engine_restart_after_crash_ms = Date.now() - t0;
    }
    // dockerd, back without live-restore, stops the containers it finds alive: the machine runs no more.
    const resumed = () =>
      (warnings.warn as unknown as ReturnType<typeof vi.fn>).mock.calls
        .map((call: unknown[]) => String(call[0]))
        .find(m =>
          m.startsWith(
            `recovery: capture ${captureId} of resource:default/crashed was interrupted`,
          ),
        );
    await until(
      'the interrupted capture resumed',
      () => resumed() !== undefined,
      15_000,
    );
    const { State } = await primary.getContainer(container).inspect();
    // Its exit code is the engine's stop of a paused machine: 0 where TERM got through in time, else 137.
    expect(State).toMatchObject({ Running: false, Paused: false });
    expect(resumed()).toBe(
      `recovery: capture ${captureId} of resource:default/crashed was interrupted with the machine paused (since ${JSON.parse(noteText).pausedAt}): ` +
        `found it not paused but exited (exit code ${State.ExitCode}, at ${State.FinishedAt}): stopped by its engine's restart or by someone, not by the capture, and removed what that capture left`,
    );
    expect(
      filesUnder(store).filter(
        f => f.startsWith('.paused/') || f.includes(captureId),
      ),
    ).toEqual([]);
    expect(await tagsOf(captureId)).toEqual([]);
    expect(error.message).toContain(
      "could not unpause it (Docker engine 'primary' is unreachable",
    );
    expect(error.message).toMatch(
      /production stays paused \(paused at least .+ so far\); the backend tries again in 2 s/,
    );
  });

  it("removes the tag the engine makes for a commit the capture's deadline left, as soon as the engine is done with it", async () => {
    // 300 MiB in the container's own layer: the engine's commit takes seconds.
    const container = await machine(
      'late-commit',
      `head -c 314572800 /dev/urandom > /blob && echo filled; ${IDLE}`,
    );
    await until(
      'the machine filled',
      async () =>
        String(
          await primary.getContainer(container).logs({ stdout: true }),
        ).includes('filled'),
      60_000,
    );
    const deadline = new AbortController();
    // The capture's deadline comes 300 ms into the engine's commit.
    const docker = Object.create(primary) as Docker;
    docker.getContainer = (id: string) => {
      const c = primary.getContainer(id);
      const commit = c.commit.bind(c);
      c.commit = ((opts: any) => {
        setTimeout(
          () =>
            deadline.abort(
              new Error(
                'capture of resource:default/late-commit did not finish within 0.3 s of its commit',
              ),
            ),
          300,
        );
        return commit(opts);
      }) as any;
      return c;
    };
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    const captureId = `cap-late-commit-${suffix}`;
    const since = Math.floor(Date.now() / 1000) - 1;
    const error = await failureOf(
      source.capture(locator('late-commit', container), {
        captureId,
        signal: deadline.signal,
      }),
    );
    expect(error.message).toBe(
      'capture of resource:default/late-commit did not finish within 0.3 s of its commit while committing the image: unpaused, nothing kept',
    );
    // dockerd goes on with a commit whose caller left, and tags the image (its commit event comes
    // after the tag); the capture removes the tag once the engine answers: the engine's own times.
    const id = (await primary.getContainer(container).inspect()).Id;
    const [commit] = await engineEvents(
      since,
      { type: ['container'], event: ['commit'], container: [id] },
      60_000,
    );
    expect(commit).toBeDefined();
    const [untag] = await engineEvents(
      since,
      {
        type: ['image'],
        event: ['untag'],
        image: [commit.Actor.Attributes.imageID],
      },
      30_000,
    );
    // Untagged at all: nothing but the capture's following of its commit removes it here (no
    // look for unrecorded captures runs), however long the loaded engine took.
    expect(untag).toBeDefined();
    timings.tag_after_late_commit_removed_ms = Math.round(
      (untag.timeNano - commit.timeNano) / 1e6,
    );
    expect(await tagsOf(captureId)).toEqual([]);
    expect(
      (await primary.getContainer(container).inspect()).State,
    ).toMatchObject({ Running: true, Paused: false });
    expect(
      filesUnder(store).filter(
        f => f.includes(captureId) || f.startsWith('.paused/'),
      ),
    ).toEqual([]);
  }, 90_000);
});

interface EngineEvent {
  timeNano: number;
  Actor: { Attributes: Record<string, string> };
}

/** The primary engine's events since `since` (s) that `filters` select, once there is one; none after `ms`. */
async function engineEvents(
  since: number,
  filters: Record<string, string[]>,
  ms: number,
): Promise<EngineEvent[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const stream = (await primary.getEvents({
      since,
      until: Math.ceil(Date.now() / 1000),
      filters,
    } as any)) as unknown as AsyncIterable<Buffer>;
    let text = '';
    for await (const chunk of stream) text += chunk.toString('utf8');
    const events = text
      .split('\n')
      .filter(Boolean)
      .map(line => JSON.parse(line) as EngineEvent);
    if (events.length > 0 || Date.now() > deadline) return events;
    await new Promise(r => setTimeout(r, 100));
  }
}

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

/** A site: each machine with one service (probed on 8080 where `probed`), each service depending on those named. */
interface SiteMachine {
  name: string;
  container: string;
  engine?: string;
  dependsOn?: string[];
  probed?: boolean;
}
const sites = new Map<string, SiteMachine[]>();
const serviceRef = (name: string) => `component:default/${name}-svc`;

/** The graph of a site's root service (its last machine's): that service and what it needs. */
function graphOf(rootName: string): RecoveryGraph {
  const machines = sites.get(rootName)!;
  const services = new Map<string, ServiceNode>(
    machines.map(m => [
      serviceRef(m.name),
      {
        ref: serviceRef(m.name),
        machines: [`resource:default/${m.name}`],
        dependsOn: (m.dependsOn ?? []).map(serviceRef),
        probes: m.probed === false ? [] : [{ kind: 'tcp', port: 8080 }],
      },
    ]),
  );
  return {
    rootRef: serviceRef(rootName),
    roots: [serviceRef(rootName)],
    services,
    machines: new Map(
      machines.map(m => [
        `resource:default/${m.name}`,
        {
          ref: `resource:default/${m.name}`,
          locator: locator(m.name, m.container, m.engine),
        },
      ]),
    ),
    problems: [],
    missing: [],
    objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
  };
}

/** Registers a site whose root is its last machine's service; returns that service's ref. */
function site(machines: SiteMachine[]): string {
  const root = machines[machines.length - 1].name;
  sites.set(root, machines);
  return serviceRef(root);
}

let captureStore: CaptureStore;

let runStore: RunStore;

let plans: PlanService;
let captureService: CaptureService;
let runs: RunService;
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});
const logger = mockServices.logger.mock();

/** A test recovery of `entityRef`, driven to its end; the run as stored, and how long it took. */
async function testRun(
  entityRef: string,
  during?: (runId: string) => Promise<void>,
): Promise<RecoveryRun & { tookMs: number }> {
  const t0 = Date.now();
  const started = await runs.start({
    entityRef,
    mode: 'test',
    trigger: 'user',
  });
  runIds.push(started.id);
  await Promise.all([runs.waitFor(started.id), during?.(started.id)]);
  return {
    ...(await runStore.getRun(started.id))!,
    tookMs: Date.now() - t0,
  };
}

/** Waits until the run's machine is in `phase`. */
async function machineIn(runId: string, machineRef: string, phase: string) {
  await until(
    `${machineRef} ${phase}`,
    async () =>
      (await runStore.getRun(runId))?.machines.find(
        m => m.machineRef === machineRef,
      )?.phase === phase,
    30_000,
  );
}

async function capture(name: string, container: string) {
  return captureService.captureMachine(locator(name, container));
}

/** The lab's containers and networks left on the recovery engine. */
const leftOf = (runId: string) => host.listLabResources(runId);

/**
 * What the Docker host says of the recovery engine once it is stopped, as a pattern: its socket
 * gone or refusing, or the connection kept from an earlier call broken (no address said then).
 */
const ENGINE_DOWN = `Docker engine 'recovery' is unreachable( at ${RECOVERY.replace(/^unix:\/\//, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})? \\((ENOENT|ECONNREFUSED|EPIPE|ECONNRESET)\\): is it running, and may the backend use it\\?`;

describe('run faults (real engines)', () => {
  beforeAll(async () => {
    ({
      captureStore,
      runStore,
      plans,
      captures: captureService,
      runs,
    } = await buildRunSite({
      database: await databases.init('SQLITE_3'),
      primary,
      storeDirectory: store,
      host,
      // The graph of a site's root service, by the name of its last machine.
      graph: ref => graphOf(ref.split('/')[1].replace(/-svc$/, '')),
      logger,
    }));
  });

  it('fails a run whose machine exits during boot, naming it with its exit code and console; the lab torn down', async () => {
    // In production it reaches its gateway; in the isolated lab it cannot, and gives up.
    const script = `ping -c1 -W1 ${GATEWAY} >/dev/null 2>&1 || { echo "cannot reach ${GATEWAY}" >&2; exit 7; }; ${httpd()}`;
    const container = await machine('exits', script, {}, '172.29.77.21');
    await capture('exits', container);
    const run = await testRun(site([{ name: 'exits', container }]));
    timings.run_machine_exits_ms = run.tookMs;
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ machineRef: 'resource:default/exits' });
    expect(run.error!.message).toMatch(
      /^resource:default\/exits failed: stopped with exit code 7/,
    );
    expect(run.machines[0].logTail).toContain(`cannot reach ${GATEWAY}`);
    expect(await leftOf(run.id)).toEqual({ machines: [], networks: [] });
    // Failed at its exit, not at its ready timeout (20 s), which only a run that waited it out takes.
    expect(run.tookMs).toBeLessThan(20_000);
  });

  it("fails a run whose lab machine someone removes mid-run (docker rm -f) saying so, naming machine and container, not the engine's 404; the lab torn down", async () => {
    // Serves only after 60 s: still verifying when it is removed.
    const container = await machine('removed', httpd(60), {}, '172.29.77.29');
    await capture('removed', container);
    const ref = 'resource:default/removed';
    const run = await testRun(
      site([{ name: 'removed', container }]),
      async runId => {
        await machineIn(runId, ref, 'verifying');
        await recovery
          .getContainer(machineContainerName(runId, ref))
          .remove({ force: true });
      },
    );
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ machineRef: ref });
    expect(run.error!.message).toMatch(
      new RegExp(
        `^${ref} failed: lab machine ${ref} \\(container ${machineContainerName(run.id, ref)}\\) was removed from hypervisor host 'recovery' by something outside the run, mid-run \\(docker rm, or another tool on its engine\\): (inspecting|probing) it found its container gone$`,
      ),
    );
    // Said once, at the machine.
    expect(
      run.steps.filter(s => s.message === run.error!.message),
    ).toHaveLength(1);
    expect(await leftOf(run.id)).toEqual({ machines: [], networks: [] });
    // Failed at its removal, not at its ready timeout (20 s).
    expect(run.tookMs).toBeLessThan(20_000);
  });

  it("fails a run whose machine's health check turns unhealthy after it was ready, at the final check; the lab torn down", async () => {
    const sick = await machine(
      'sick',
      httpd(),
      {
        // Says why when it fails, as real checks do: the machine's console tail carries it.
        Healthcheck: {
          Test: [
            'CMD-SHELL',
            'test ! -e /tmp/sick || { echo "  /tmp/sick is\n there" >&2; exit 1; }',
          ],
          Interval: 200e6,
          Timeout: 1e9,
          Retries: 1,
        },
      },
      '172.29.77.22',
    );
    // Boots after it, slowly: the sick machine falls over meanwhile.
    const late = await machine('late', httpd(3), {}, '172.29.77.23');
    await capture('sick', sick);
    await capture('late', late);
    const entity = site([
      { name: 'sick', container: sick },
      { name: 'late', container: late, dependsOn: ['sick'] },
    ]);
    const run = await testRun(entity, async runId => {
      await machineIn(runId, 'resource:default/sick', 'ready');
      await recovery
        .getContainer(machineContainerName(runId, 'resource:default/sick'))
        .exec({ Cmd: ['touch', '/tmp/sick'] })
        .then(e => e.start({}));
    });
    timings.run_unhealthy_after_ready_ms = run.tookMs;
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({
      machineRef: 'resource:default/sick',
      message:
        'resource:default/sick failed: its health check reports unhealthy after it was ready (what its last check said is kept with its console tail)',
    });
    // With its console, read with recovery.run.logs.read on the machine.
    expect(
      run.machines.find(m => m.machineRef === 'resource:default/sick')?.logTail,
    ).toMatch(/\[last failed health check\] \/tmp\/sick is there$/);
    expect(run.machines.map(m => m.phase)).toEqual(['failed', 'ready']);
    expect(await leftOf(run.id)).toEqual({ machines: [], networks: [] });
  });

  it('refuses a capture archive corrupted after capture, naming machine and file; the run fails with its lab torn down', async () => {
    const container = await machine('corrupt', httpd(), {}, '172.29.77.24');
    const c = await capture('corrupt', container);
    const [stored] = await captureStore.listCaptures(
      'resource:default/corrupt',
      1,
    );
    const file = join(store, stored.artifact);
    // One byte of the image's manifest changed, the archive's size kept.
    const bytes = readFileSync(file);
    const at = bytes.indexOf('"Config"');
    bytes[at + 2] = 'u'.charCodeAt(0);
    writeFileSync(file, bytes);
    const run = await testRun(site([{ name: 'corrupt', container }]));
    timings.run_corrupt_archive_ms = run.tookMs;
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ machineRef: 'resource:default/corrupt' });
    expect(run.error!.message).toContain(
      `resource:default/corrupt failed: capture ${c.id}`,
    );
    expect(run.error!.message).toContain(`checksum mismatch for ${file}`);
    expect(await leftOf(run.id)).toEqual({ machines: [], networks: [] });
    expect(await runStore.runsWithLabLeft('recovery')).toEqual([]);
  });

  it('refuses a capture archive cut short after capture, naming machine and file; the run fails with its lab torn down', async () => {
    const container = await machine('cut', httpd(), {}, '172.29.77.25');
    const c = await capture('cut', container);
    const [stored] = await captureStore.listCaptures('resource:default/cut', 1);
    const file = join(store, stored.artifact);
    truncateSync(file, Math.floor(statSync(file).size / 2) + 100);
    const run = await testRun(site([{ name: 'cut', container }]));
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ machineRef: 'resource:default/cut' });
    expect(run.error!.message).toContain(
      `resource:default/cut failed: capture ${c.id}`,
    );
    expect(run.error!.message).toContain(file);
    expect(await leftOf(run.id)).toEqual({ machines: [], networks: [] });
    // Cut inside the entry that names a layer: said cut short, not read on from what a buffer held.
    const whole = await capture('cut', container);
    const [again] = await captureStore.listCaptures('resource:default/cut', 1);
    const cutFile = join(store, again.artifact);
    truncateSync(cutFile, layerRefAt(readFileSync(cutFile)) + 512 + 20);
    await expect(
      host.loadCapture({
        captureId: whole.id,
        artifact: again.artifact,
        checksum: again.checksum,
        imageId: again.imageId,
      }),
    ).rejects.toThrow(
      `capture ${whole.id}: artifact ${cutFile}: the archive is cut short: it ends inside entry `,
    );
  });

  it('names the layer a corrupted layer file breaks, and the next capture of the machine writes that layer anew, not refer to it', async () => {
    const container = await machine('layer', httpd(), {}, '172.29.77.26');
    await capture('layer', container);
    const layers = join(store, LAYERS_DIRECTORY);
    // The image's busybox layer, the largest: shared by every capture of the demo image.
    const [layer] = readdirSync(layers).sort(
      (a, b) => statSync(join(layers, b)).size - statSync(join(layers, a)).size,
    );
    const path = join(layers, layer);
    const bytes = readFileSync(path);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(path, bytes);
    const entity = site([{ name: 'layer', container }]);
    const broken = await testRun(entity);
    expect(broken.status).toBe('failed');
    expect(broken.error!.message).toContain(path);
    expect(await leftOf(broken.id)).toEqual({ machines: [], networks: [] });
    // Captured again: the store's copy of the layer is found wrong and replaced; the run restores it.
    await capture('layer', container);
    const healed = await testRun(entity);
    expect(healed.error?.message).toBeUndefined();
    expect(healed.status).toBe('succeeded');
  });

  it('fails a run whose recovery engine stops during a wave, naming the host; the lab is recorded as left and removed once the engine is back', async () => {
    const container = await machine('slow', httpd(20), {}, '172.29.77.27');
    await capture('slow', container);
    let stoppedAt = 0;
    let run: Awaited<ReturnType<typeof testRun>>;
    try {
      run = await testRun(site([{ name: 'slow', container }]), async runId => {
        await machineIn(runId, 'resource:default/slow', 'verifying');
        stoppedAt = Date.now();
        engine('stop', 'recovery');
        timings.recovery_engine_stop_ms = Date.now() - stoppedAt;
      });
    } catch (e) {
      engine('start', 'recovery');
      throw e;
    }
    timings.run_fails_after_engine_stop_ms = Date.now() - stoppedAt;
    const t0 = Date.now();
    try {
      expect(run.status).toBe('failed');
      expect(run.error!.message).toContain(
        "Docker engine 'recovery' is unreachable",
      );
      // The host's outage, not the machine's failure: readiness and notices blame no machine.
      expect(run.error!.message).toMatch(
        /^hypervisor host recovery stopped answering while resource:default\/slow was booting: /,
      );
      expect(run.error!.machineRef).toBeUndefined();
      expect(run.error!.hostUnreachable).toBe(true);
      // Whether the lab is still there is unknown while the engine is down: said so, not as a
      // teardown that failed, and without the engine's words, which the run's failure says.
      expect(
        run.steps.filter(s => /teardown/i.test(s.message)).map(s => s.message),
      ).toEqual([
        'Teardown not checked: hypervisor host recovery cannot be reached; whatever of the lab reached it is removed once it answers, before the next run there or by the cleanup task',
      ]);
      expect(await runStore.runsWithLabLeft('recovery')).toEqual([
        { id: run.id, hypervisorHost: 'recovery' },
      ]);
      // A run while it is still down fails saying so, not blaming that lab, and leaves none of its own.
      const next = await testRun(site([{ name: 'slow', container }]));
      expect(next.status).toBe('failed');
      expect(next.error).toEqual({
        message: expect.stringMatching(
          new RegExp(
            `^hypervisor host recovery cannot be reached: listing the lab of run ${next.id} failed: ${ENGINE_DOWN}$`,
          ),
        ),
        hostUnreachable: true,
      });
      expect(await runStore.runsWithLabLeft('recovery')).toEqual([
        { id: run.id, hypervisorHost: 'recovery' },
      ]);
    } finally {
      engine('start', 'recovery');
    }
    timings.recovery_engine_start_ms = Date.now() - t0;
    // What the engine kept of the lab (stopped containers, the network) goes at the next cleanup.
    expect((await leftOf(run.id)).networks).toHaveLength(1);
    await runs.cleanUpInterruptedRuns();
    expect(await leftOf(run.id)).toEqual({ machines: [], networks: [] });
    expect(await runStore.runsWithLabLeft('recovery')).toEqual([]);
    const after = (await runStore.getRun(run.id))!;
    expect(after.steps.map(s => s.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^Lab torn down later: removed \d+ containers? and 1 network$/,
        ),
      ]),
    );
  });

  it('fails a run started while the recovery engine is stopped saying the host cannot be reached, with no lab recorded as left; once it is back, runs go ahead', async () => {
    const container = await machine('down', httpd(), {}, '172.29.77.28');
    await capture('down', container);
    const entity = site([{ name: 'down', container }]);
    engine('stop', 'recovery');
    const failed: Awaited<ReturnType<typeof testRun>>[] = [];
    try {
      for (let i = 0; i < 2; i++) failed.push(await testRun(entity));
    } finally {
      engine('start', 'recovery');
    }
    timings.run_fails_with_engine_down_ms = failed[0].tookMs;
    for (const run of failed) {
      expect(run.status).toBe('failed');
      // The cause, first and once: no machine blamed, no earlier run's lab, nothing torn down.
      expect(run.error).toEqual({
        message: expect.stringMatching(
          new RegExp(
            `^hypervisor host recovery cannot be reached: listing the lab of run ${run.id} failed: ${ENGINE_DOWN}$`,
          ),
        ),
        // The host's condition: the run covers no plan (failedAtHost).
        hostUnreachable: true,
      });
      expect(run.machines.map(m => m.phase)).toEqual(['skipped']);
      expect(
        run.steps.filter(s => s.level !== 'info').map(s => s.message),
      ).toEqual([run.error!.message]);
    }
    expect(await runStore.runsWithLabLeft('recovery')).toEqual([]);
    const after = await testRun(entity);
    expect(after.error).toBeUndefined();
    expect(after.status).toBe('succeeded');
    expect(await leftOf(after.id)).toEqual({ machines: [], networks: [] });
  });

  it('captures the other machines of a scheduled capture while the primary engine is down, and names the engine for the ones on it', async () => {
    const hadImage = await recovery
      .getImage(DEMO_IMAGE)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    await buildDemoImage(recovery);
    const siteB = new DockerCaptureSource('site-b', recovery, {
      storeDirectory: store,
    });
    const scheduled = buildCaptureService({
      store: captureStore,
      sources: [
        // The first machine's commit is held while the primary engine stops under it.
        new DockerCaptureSource(
          'primary',
          heldCommits(500, async () => engine('stop', 'primary')),
          { storeDirectory: store },
        ),
        siteB,
      ],
      plans,
      logger,
    });
    const first = await machine('sched-1', IDLE);
    const third = await machine('sched-3', IDLE);
    const second = `sched-2-${suffix}`;
    await (
      await recovery.createContainer({
        name: second,
        Image: DEMO_IMAGE,
        Cmd: ['sh', '-c', IDLE],
        HostConfig: { NetworkMode: 'none' },
      })
    ).start();
    const machines = [
      { name: 'sched-1', container: first },
      { name: 'sched-2', container: second, engine: 'site-b' },
      { name: 'sched-3', container: third },
    ];
    for (const m of machines) site([m]);
    const api = {
      capture: (machineRef: string) =>
        scheduled.captureEntity(
          serviceRef(machineRef.split('/')[1]),
          machineRef,
        ),
    };
    const t0 = Date.now();
    try {
      const report = await captureMachines(
        api as any,
        machines.map(m => `resource:default/${m.name}`),
        logger,
      );
      timings.scheduled_capture_with_engine_down_ms = Date.now() - t0;
      expect(report.succeeded).toEqual(['resource:default/sched-2']);
      expect(report.failed.map(f => f.entityRef)).toEqual([
        'resource:default/sched-1',
        'resource:default/sched-3',
      ]);
      for (const f of report.failed)
        expect(f.message).toContain("Docker engine 'primary' is unreachable");
    } finally {
      engine('start', 'primary');
      await recovery
        .getContainer(second)
        .remove({ force: true })
        .catch(() => {});
      if (!hadImage)
        await recovery
          .getImage(DEMO_IMAGE)
          .remove()
          .catch(() => {});
    }
    // Back up, the machine whose capture the engine's stop broke is captured again at once, not
    // refused for the note of that capture.
    const again = await scheduled.captureMachine(locator('sched-1', first));
    expect(again.machineRef).toBe('resource:default/sched-1');
  });
});

/** Where the first entry naming a layer in the store begins in a capture's archive (its ustar header). */
function layerRefAt(archive: Buffer): number {
  for (let at = 0; at + 512 <= archive.length;) {
    const name = archive.toString('utf8', at, at + 100).replace(/\0.*$/s, '');
    const size = parseInt(
      archive
        .toString('utf8', at + 124, at + 136)
        .replace(/\0.*$/s, '')
        .trim() || '0',
      8,
    );
    if (name.endsWith('.layer-ref')) return at;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('no layer named in the archive');
}

/** The error `work` fails with; a test failure where it succeeds. */
async function failureOf(work: Promise<unknown>): Promise<Error> {
  const outcome = await work.then(
    value => ({ value }),
    error => ({ error: error as Error }),
  );
  if (!('error' in outcome))
    throw new Error(
      `expected a failure, got ${JSON.stringify(outcome.value).slice(0, 300)}`,
    );
  return outcome.error;
}
