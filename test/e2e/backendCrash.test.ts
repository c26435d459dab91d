/*
 * The backend process killed (SIGKILL: an OOM kill, a node drained) on the real engines, and a
 * new backend started on the same database (SQLite) and capture store: killed while a capture
 * has production paused and a test recovery boots its second wave (one kill), while a test
 * recovery tears its lab down, and while a failover boots. What the new backend must do: unpause
 * production soon after it starts and keep no half capture, and fail the capture's request as
 * interrupted once its heartbeat is a minute old (never capturing for ever); fail an orphaned run
 * as interrupted, remove a test lab (everything labelled with its run id), keep the result of a run
 * that had verified every machine, and keep a failover's machines; and the next capture or run
 * succeed.
 * The times it takes are printed at the end: the first kill is left to the product's own timing
 * (a run is orphaned once its heartbeat is a minute old); the later ones start the new backend as
 * if two minutes after the kill (startedLater), so as not to wait that minute each time.
 */
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import {
  INTERRUPTED_PREFIX,
  MACHINE_LABEL,
  RUN_ID_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import { CAPTURE_REPOSITORY } from '@backstage-recovery/plugin-recovery-backend-module-docker';
import knex from 'knex';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  buildDemoImage,
  DEMO_IMAGE,
  dockerFromHost,
  startDemoSite,
  stopDemoSite,
} from '../../demo/site';
import { LAB_IMAGE_REPOSITORY } from '../../plugins/recovery-backend-module-docker/src/labNames';
import {
  capture,
  captureRequestEnd,
  demoRecoveryConfig,
  ENGINES,
  REPO_ROOT,
  requestCapture,
  RunningBackend,
  startBackend,
  waitForRun,
  expectEnginesReachable,
} from './backend';
import { seconds, until as waitUntil } from './until';

const primary = dockerFromHost(ENGINES.primary);
const recoveryHost = dockerFromHost(ENGINES.recovery);
const WEB = 'component:default/web';
const WEB_MACHINES = ['infra-01', 'data-01', 'web-01'].map(
  m => `resource:default/${m}`,
);
/** A machine with a volume of some size: archived while the capture has it paused, so the pause lasts. */
const BULK = 'crash-bulk-01';
const BULK_REF = `resource:default/${BULK}`;
const BULK_MIB = 200;

const timings: Record<string, number> = {};
/** `until`, asked every 100 ms unless said: what a kill leaves is timed to a tenth of a second. */
const until = <T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 100,
) => waitUntil(what, check, timeoutMs, everyMs);

/** Files (not directories) under `dir`, recursively, relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e =>
    e.isDirectory()
      ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`)
      : [`${prefix}${e.name}`],
  );
}

const bulkState = async () =>
  (await primary.getContainer(BULK).inspect()).State;
const captureTags = async (container: string) =>
  (
    await primary.listImages({
      filters: JSON.stringify({
        reference: [`${CAPTURE_REPOSITORY}/${container}:*`],
      }),
    })
  ).flatMap(i => i.RepoTags ?? []);

/** What the recovery engine holds labelled with the run id, and the images loaded for it. */
async function onRecoveryHost(runId: string) {
  const filters = JSON.stringify({ label: [`${RUN_ID_LABEL}=${runId}`] });
  const [containers, networks, { Volumes: volumes }, images] =
    await Promise.all([
      recoveryHost.listContainers({ all: true, filters }),
      recoveryHost.listNetworks({ filters }),
      recoveryHost.listVolumes({ filters }),
      recoveryHost.listImages({
        filters: JSON.stringify({
          reference: [`${LAB_IMAGE_REPOSITORY}/*:${runId}`],
        }),
      }),
    ]);
  return {
    containers: containers
      .map(c => ({ name: c.Names[0].replace(/^\//, ''), state: c.State }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    networks: networks.map(n => n.Name),
    volumes: (volumes ?? []).map(v => v.Name),
    images: images.flatMap(i => i.RepoTags ?? []),
  };
}
const nothingLeft = { containers: [], networks: [], volumes: [], images: [] };
const isGone = async (runId: string) => {
  const left = await onRecoveryHost(runId);
  return (
    left.containers.length +
      left.networks.length +
      left.volumes.length +
      left.images.length ===
    0
  );
};

describe('the backend killed (SIGKILL) and started again on the same database and capture store', () => {
  let dataDir: string;
  let store: string;
  let catalogFile: string;
  let backend: RunningBackend | undefined;
  const runIds: string[] = [];
  const start = async () => {
    backend = await startBackend({
      dataDir,
      catalogFile,
      config: demoRecoveryConfig(dataDir),
    });
    return backend;
  };
  const api = <T = any>(method: string, path: string, body?: unknown) =>
    backend!.api<T>(method, path, body);
  const getRun = async (id: string) =>
    (await api<RecoveryRun>('GET', `/runs/${id}`)).body;
  /** Kills the backend; when it was killed. */
  const kill = async () => {
    const killed = backend!;
    backend = undefined;
    await killed.kill();
    return Date.now();
  };
  /**
   * Starts a new backend, spawned now, and waits for it to answer; `meanwhile` watches from its
   * spawn, on its own, what the new backend is to do (its spawn time given).
   */
  const restart = async <T>(
    meanwhile: (spawnedAt: number) => Promise<T>,
  ): Promise<T> => {
    const spawnedAt = Date.now();
    const [, seen] = await Promise.all([
      start().then(b => {
        timings['backend start to answering (s)'] = seconds(
          Date.now() - spawnedAt,
        );
        return b;
      }),
      meanwhile(spawnedAt),
    ]);
    return seen;
  };
  /** Starts a run of web, and waits for a machine of its second wave in progress (restored, started or verified). */
  const runToSecondWave = async (mode: 'test' | 'failover') => {
    const started = await api<RecoveryRun>('POST', '/runs', {
      entityRef: WEB,
      mode,
    });
    expect(started.status).toBe(202);
    runIds.push(started.body.id);
    const inWave2 = await until(
      'a machine of the second wave in progress',
      async () => {
        const run = await getRun(started.body.id);
        if (run.status !== 'pending' && run.status !== 'running')
          throw new Error(
            `run ended before its second wave: ${run.error?.message}`,
          );
        return run.machines.find(
          m =>
            m.wave === 1 &&
            ['restoring', 'starting', 'verifying'].includes(m.phase),
        );
      },
      60_000,
      50,
    );
    return { runId: started.body.id, inWave2 };
  };

  /**
   * Ages the run's heartbeat in the database by two minutes: as a backend started that long after
   * the kill (a node drained, the backend rescheduled) finds it. The orphaned run is then claimed
   * at the new backend's first look, rather than a minute on (the second test measures that).
   */
  const startedLater = async (runId: string) => {
    const db = knex({
      client: 'better-sqlite3',
      connection: { filename: join(dataDir, 'sqlite', 'recovery.sqlite') },
      useNullAsDefault: true,
    });
    try {
      expect(
        await db('recovery_runs')
          .where({ id: runId })
          .update({ heartbeat_at: db.raw('heartbeat_at - 120000') }),
      ).toBe(1);
    } finally {
      await db.destroy();
    }
  };

  beforeAll(async () => {
    await expectEnginesReachable({ primary, recovery: recoveryHost });
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-e2e-crash-'));
    store = join(dataDir, 'captures');
    catalogFile = join(dataDir, 'catalog-info.yaml');
    writeFileSync(
      catalogFile,
      `${readFileSync(join(REPO_ROOT, 'catalog-info.yaml'), 'utf8')}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: ${BULK}
  description: A machine with a volume of some size
  annotations:
    recovery.backstage-recovery.io/engine: primary
    recovery.backstage-recovery.io/container: ${BULK}
spec:
  type: machine
  owner: platform-team
`,
    );
    await buildDemoImage(primary);
    await startDemoSite(primary, { recreate: true });
    await primary
      .getContainer(BULK)
      .remove({ force: true, v: true })
      .catch(() => {});
    const bulk = await primary.createContainer({
      name: BULK,
      Image: DEMO_IMAGE,
      Cmd: [
        'sh',
        '-c',
        `head -c ${BULK_MIB * 1048576} /dev/urandom > /data/blob && echo filled; trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done`,
      ],
      Labels: { [MACHINE_LABEL]: BULK },
      StopTimeout: 1,
      Volumes: { '/data': {} },
      HostConfig: { NetworkMode: 'none' },
    });
    await bulk.start();
    await until(
      'the bulk volume filled',
      async () => String(await bulk.logs({ stdout: true })).includes('filled'),
      60_000,
      250,
    );
    await start();
  });

  afterAll(async () => {
    // What a check that stopped a test first left: a failover's machines, a lab.
    for (const runId of runIds) {
      if (!(await isGone(runId).catch(() => true)) && backend)
        await api('POST', `/runs/${runId}/release`).catch(() => {});
    }
    const captureIds: string[] = [];
    for (const machineRef of [...WEB_MACHINES, BULK_REF]) {
      const listed = await backend
        ?.api('GET', `/captures?machineRef=${encodeURIComponent(machineRef)}`)
        .catch(() => undefined);
      captureIds.push(
        ...(listed?.body?.items ?? []).map((c: { id: string }) => c.id),
      );
    }
    await backend?.stop();
    await primary
      .getContainer(BULK)
      .remove({ force: true, v: true })
      .catch(() => {});
    await stopDemoSite(primary).catch(() => {});
    // The captures' tags on the primary engine outlive the store they belong to, removed with dataDir.
    for (const container of [BULK, 'infra-01', 'data-01', 'web-01']) {
      for (const tag of await captureTags(container).catch(() => [])) {
        if (captureIds.some(id => tag.endsWith(`:${id}`)) || container === BULK)
          await primary
            .getImage(tag)
            .remove()
            .catch(() => {});
      }
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    console.log(
      `backend crash timings:\n${Object.entries(timings)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join('\n')}`,
    );
  });

  // The first kill finds the backend doing two things: a test recovery of web booting its second
  // wave, and a capture of the bulk machine holding it paused.
  let killedInWave2: {
    runId: string;
    killedAt: number;
    labAtKill: Awaited<ReturnType<typeof onRecoveryHost>>;
    labGone: Promise<number | Error>;
  };

  it('killed while a capture has production paused: its pause guard unpauses it at once, the new backend keeps no half capture and fails its request as interrupted, and the next capture succeeds', async () => {
    const captured = await capture(backend!, { entityRef: WEB });
    expect({ status: captured.status, error: captured.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    const { runId, inWave2 } = await runToSecondWave('test');
    expect(inWave2.machineRef).toBe('resource:default/data-01');
    // Accepted at once (202): the capture is under way once it has the machine paused.
    const asked = await requestCapture(backend!, { entityRef: BULK_REF });
    await until(
      'the capture pausing the bulk machine',
      async () => (await bulkState()).Paused,
      20_000,
      20,
    );
    const killedAt = await kill();
    // Watched from the kill on, for the next test.
    const labAtKill = await onRecoveryHost(runId);
    const labGone = until(
      'the lab removed',
      () => isGone(runId),
      180_000,
      250,
    ).then(
      () => Date.now(),
      (e: Error) => e,
    );
    killedInWave2 = { runId, killedAt, labAtKill, labGone };
    // Production is not left paused on a backend that is gone: the capture's pause guard (a process
    // of its own) unpauses it once its backend's pipe closes, with no backend running at all.
    await until(
      'the bulk machine unpaused by the pause guard',
      async () => !(await bulkState()).Paused,
      10_000,
      50,
    );
    const unpausedAt = Date.now();
    timings['paused machine: unpaused by its pause guard after the kill (s)'] =
      seconds(unpausedAt - killedAt);
    expect(unpausedAt - killedAt).toBeLessThan(5_000);
    expect((await bulkState()).Running).toBe(true);
    const [note] = filesUnder(store).filter(f => f.startsWith('.paused/'));
    expect(note).toBeDefined();
    const { captureId } = JSON.parse(readFileSync(join(store, note), 'utf8'));

    await restart(async () => undefined);
    expect((await bulkState()).Paused).toBe(false);
    // Its request is not left capturing for ever: no backend beats for it, so once its last
    // heartbeat is a minute old the new backend, asked, fails it as interrupted. Watched from now
    // on, while the next capture is taken.
    const askedEnd = captureRequestEnd(backend!, asked.requestId, 120_000).then(
      request => ({ request, at: Date.now() }),
      (e: Error) => e,
    );
    // No half capture: neither its files (temporary ones too), nor its note, nor its tag, nor a
    // record. Its files go first, then its tag, then its note.
    await until(
      'the capture left removed',
      async () =>
        filesUnder(store).every(
          f => !f.includes(captureId) && !f.startsWith('.paused/'),
        ),
      10_000,
    );
    expect(filesUnder(store).filter(f => f.endsWith('.tmp'))).toEqual([]);
    expect(await captureTags(BULK)).toEqual([]);
    expect(
      (await api('GET', `/captures?machineRef=${BULK_REF}`)).body.items,
    ).toEqual([]);

    const t0 = Date.now();
    const next = await capture(backend!, { entityRef: BULK_REF });
    timings['bulk machine: next capture (s)'] = seconds(Date.now() - t0);
    expect({ status: next.status, error: next.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    const [taken] = next.captures;
    timings['bulk machine: its pause in that capture (s)'] = seconds(
      taken.pausedMs!,
    );
    const volumes = filesUnder(store).filter(f =>
      f.startsWith(`${taken.id}.volume-`),
    );
    expect(volumes).toEqual([`${taken.id}.volume-1.tar`]);
    expect(statSync(join(store, volumes[0])).size).toBeGreaterThan(
      BULK_MIB * 1048576,
    );
    expect(await captureTags(BULK)).toEqual([
      `${CAPTURE_REPOSITORY}/${BULK}:${taken.id}`,
    ]);
    expect((await bulkState()).Paused).toBe(false);

    const ended = await askedEnd;
    if (ended instanceof Error) throw ended;
    timings[
      'capture request killed mid-capture: read failed after the kill (s)'
    ] = seconds(ended.at - killedAt);
    expect(ended.request).toMatchObject({
      status: 'failed',
      statusCode: 503,
      captures: [],
      error: {
        name: 'ServiceUnavailableError',
        message: `capture of ${BULK_REF} failed: capture request ${asked.requestId} was interrupted: the backend taking it stopped (no heartbeat for 60 s) before it finished: capture again`,
      },
    });
    // Failed by the new backend, after the kill.
    expect(Date.parse(ended.request.finishedAt!)).toBeGreaterThan(killedAt);
  });

  it('killed while a test recovery boots its second wave: the new backend fails it as interrupted, removes its lab, and the next run succeeds', async () => {
    const { runId, killedAt, labAtKill, labGone } = killedInWave2;
    // Its lab as the kill left it: infra-01 running (data-01's container, if its restore had made
    // it yet), on the lab's network.
    expect(
      labAtKill.containers.find(c => c.name.includes('infra-01'))?.state,
    ).toBe('running');
    expect(labAtKill.networks).toHaveLength(1);
    const goneAt = await labGone;
    if (goneAt instanceof Error) throw goneAt;
    timings['test run killed in wave 2: lab gone after the kill (s)'] = seconds(
      goneAt - killedAt,
    );
    const run = await until(
      'the run interrupted',
      async () => {
        const r = await getRun(runId);
        return (
          r.status === 'interrupted' &&
          r.error?.message.includes('; removed') &&
          r
        );
      },
      10_000,
    );
    expect(run.error!.message).toMatch(
      new RegExp(
        `^${INTERRUPTED_PREFIX}the backend driving this run stopped; removed \\d+ containers? and 1 network$`,
      ),
    );
    // An interruption blames no machine; each machine ended where it was, the one in progress
    // interrupted with the run.
    expect(run.error!.machineRef).toBeUndefined();
    expect(
      Object.fromEntries(run.machines.map(m => [m.machineRef, m.phase])),
    ).toEqual({
      'resource:default/infra-01': 'ready',
      'resource:default/data-01': 'interrupted',
      'resource:default/web-01': 'skipped',
    });
    expect(run.machines.find(m => m.phase === 'interrupted')!.message).toMatch(
      new RegExp(`^${INTERRUPTED_PREFIX}`),
    );
    expect(await onRecoveryHost(runId)).toEqual(nothingLeft);

    const t0 = Date.now();
    const again = await api<RecoveryRun>('POST', '/runs', { entityRef: WEB });
    expect(again.status).toBe(202);
    runIds.push(again.body.id);
    const next = await waitForRun(backend!, again.body.id);
    timings['test run after it: request to end (s)'] = seconds(Date.now() - t0);
    expect({ status: next.status, error: next.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(await onRecoveryHost(again.body.id)).toEqual(nothingLeft);
  });

  it('killed while a test recovery that verified every machine tears its lab down: the new backend removes the rest of the lab, and the run keeps its success', async () => {
    const started = await api<RecoveryRun>('POST', '/runs', { entityRef: WEB });
    expect(started.status).toBe(202);
    const runId = started.body.id;
    runIds.push(runId);
    // Killed as the teardown kills the first of the lab's machines.
    const events = (await recoveryHost.getEvents({
      filters: JSON.stringify({
        type: ['container'],
        event: ['kill'],
        label: [`${RUN_ID_LABEL}=${runId}`],
      }),
    })) as unknown as Readable;
    let teardownBegan = false;
    events.once('data', () => {
      teardownBegan = true;
    });
    await until(
      'the teardown',
      async () => {
        if (teardownBegan) return true;
        const run = await getRun(runId);
        if (run.status !== 'pending' && run.status !== 'running')
          throw new Error(
            `run ended before its teardown was seen: ${run.status} ${run.error?.message}`,
          );
        return false;
      },
      60_000,
      5,
    );
    const killedAt = await kill();
    events.destroy();
    // Killed mid-teardown: its network goes only once its machines are gone.
    const atKill = await onRecoveryHost(runId);
    expect(atKill.networks).toHaveLength(1);
    await startedLater(runId);

    const goneAt = await restart(async spawnedAt => {
      await until('the lab removed', () => isGone(runId), 60_000, 250);
      timings[
        'test run killed in its teardown: lab gone after the new backend was spawned, as if 2 min after the kill (s)'
      ] = seconds(Date.now() - spawnedAt);
      return Date.now();
    });
    expect(goneAt).toBeGreaterThan(killedAt);
    // Claimed, then torn down, then said so in its timeline.
    const run = await until(
      'the run finished by the new backend',
      async () => {
        const r = await getRun(runId);
        const claimed =
          /^(The backend driving this run stopped during its teardown|Interrupted: )/;
        return (
          r.status !== 'running' &&
          claimed.test(r.steps.at(-1)?.message ?? '') &&
          r
        );
      },
      10_000,
    );
    // Every machine was verified before the kill: the run succeeded, with its RTO, not interrupted.
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(run.rtoSeconds).toBeGreaterThan(0);
    expect(run.machines.every(m => m.phase === 'ready')).toBe(true);
    expect(run.steps.at(-1)).toMatchObject({
      level: 'warning',
      message: expect.stringMatching(
        /^The backend driving this run stopped during its teardown, after the run had succeeded: that result stands; removed the rest of its lab: \d+ containers? and 1 network$/,
      ),
    });
    expect(await onRecoveryHost(runId)).toEqual(nothingLeft);
    // It counts: readiness shows it as web's last run.
    expect(
      (await api('GET', '/readiness/component/default/web')).body.lastRun,
    ).toMatchObject({ id: runId, status: 'succeeded' });
  });

  it('killed while a failover boots: the new backend fails it as interrupted and keeps its machines, which a release then removes', async () => {
    const { runId } = await runToSecondWave('failover');
    await kill();
    const kept = await onRecoveryHost(runId);
    await startedLater(runId);
    let spawned = 0;
    const failedAt = await restart(async spawnedAt => {
      spawned = spawnedAt;
      const run = await until(
        'the failover interrupted',
        async () => {
          const r = backend && (await getRun(runId));
          return (
            r?.status === 'interrupted' &&
            r.error?.message.includes('; kept') &&
            r
          );
        },
        180_000,
        250,
      );
      return { at: Date.now(), run };
    });
    timings[
      'failover killed in wave 2: interrupted, its machines kept, after the new backend was spawned, as if 2 min after the kill (s)'
    ] = seconds(failedAt.at - spawned);
    const { run } = failedAt;
    expect(run.error!.message).toMatch(
      new RegExp(
        `^${INTERRUPTED_PREFIX}the backend driving this run stopped; kept `,
      ),
    );
    expect(run.error!.message).toContain(
      'a failover is never torn down automatically',
    );
    // Kept as they were, infra-01 still running; only the lab's probe is gone (it served the run's
    // checks, and held an address on production's subnet).
    const after = await onRecoveryHost(runId);
    const names = after.containers.map(c => c.name);
    expect(kept.containers.map(c => c.name)).toContainEqual(
      expect.stringMatching(/-probe$/),
    );
    expect(names).toEqual(
      expect.arrayContaining(
        kept.containers.map(c => c.name).filter(n => !n.endsWith('-probe')),
      ),
    );
    expect(names.filter(n => n.endsWith('-probe'))).toEqual([]);
    expect(after.containers.find(c => c.name.includes('infra-01'))?.state).toBe(
      'running',
    );
    expect(after.networks).toEqual(kept.networks);
    expect(
      Object.fromEntries(run.machines.map(m => [m.machineRef, m.phase])),
    ).toEqual({
      'resource:default/infra-01': 'ready',
      'resource:default/data-01': 'interrupted',
      'resource:default/web-01': 'skipped',
    });

    const released = await api<RecoveryRun>('POST', `/runs/${runId}/release`);
    expect(released.status).toBe(200);
    expect(await onRecoveryHost(runId)).toEqual(nothingLeft);
  });
});
