import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import {
  SMALL_TRANSFER_BYTES,
  type CaptureSource,
  type HypervisorHost,
  type RecoveryGraph,
  type TransferProgress,
} from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { CatalogGraphLoader } from '../../recovery-backend/src/plan/catalogGraph';
import { RunService } from '../../recovery-backend/src/run/RunService';
import type { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { PlanService } from '../../recovery-backend/src/service/PlanService';
import { ProviderRegistry } from '../../recovery-backend/src/service/ProviderRegistry';
import { recordingLogger } from '../../recovery-backend/src/testing/logger';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { buildCaptureService } from './testing/captureService';
import { removeCaptureImages } from './testing/removeCaptureImages';

/*
 * A machine with a volume of 64 MiB, captured and restored on the real engines: its capture says
 * how far the volume's archive is while production is paused, its test recovery how far the
 * reading back and putting in place of that archive are, each line paced and each transfer ended
 * with its total (the volume's stored size) and the time it took; the small image says nothing.
 * Lines come at most every 40 ms here, not every 2 s, so that a transfer of well under a second on
 * a local disk still shows lines under way.
 */

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const RECOVERY =
  process.env.RECOVERY_HOST_DOCKER_HOST ??
  'unix:///run/recovery-docker/recovery.sock';
const primary = dockerFromHost(PRIMARY);
const recovery = dockerFromHost(RECOVERY);
const suffix = Date.now().toString(36);
const container = `progress-${suffix}`;
const volumeName = `progress-data-${suffix}`;
const store = mkdtempSync(join(tmpdir(), 'recovery-progress-'));
const MIB = 1024 * 1024;
const VOLUME_BYTES = 64 * MIB;
const INTERVAL_MS = 40;
const MACHINE = `resource:default/progress-${suffix}`;
const SERVICE = `component:default/progress-svc-${suffix}`;
const locator = { machineRef: MACHINE, engine: 'primary', container };
const runIds: string[] = [];
const timings: Record<string, number> = {};

/** A line as heard, and when (performance.now), as the transfers' own clock reads it. */
type Heard = TransferProgress & { at: number };

const captureLines: Heard[] = [];
const hostLines: Heard[] = [];
const heard =
  (into: Heard[], pass?: (p: TransferProgress) => void) =>
  (p: TransferProgress) => {
    into.push({ ...p, at: performance.now() });
    pass?.(p);
  };

// The real source and host, their lines heard on the way to the backend's own listeners.
const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
  progressIntervalMs: INTERVAL_MS,
});
const watchedSource: CaptureSource = Object.assign(Object.create(source), {
  capture: (
    machine: Parameters<CaptureSource['capture']>[0],
    options: Parameters<CaptureSource['capture']>[1],
  ) =>
    source.capture(machine, {
      ...options,
      progress: heard(captureLines, options.progress),
    }),
});
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
  progressIntervalMs: INTERVAL_MS,
});
const watchedHost: HypervisorHost = Object.assign(Object.create(host), {
  verifyCapture: (
    capture: Parameters<HypervisorHost['restoreMachine']>[1],
    options: { signal?: AbortSignal; progress?: (p: TransferProgress) => void },
  ) =>
    host.verifyCapture(capture, {
      ...options,
      progress: heard(hostLines, options.progress),
    }),
  restoreMachine: (
    lab: Parameters<HypervisorHost['restoreMachine']>[0],
    capture: Parameters<HypervisorHost['restoreMachine']>[1],
    options: { progress?: (p: TransferProgress) => void } = {},
  ) =>
    host.restoreMachine(lab, capture, {
      progress: heard(hostLines, options.progress),
    }),
});

const graph = (): RecoveryGraph => ({
  rootRef: SERVICE,
  roots: [SERVICE],
  services: new Map([
    [
      SERVICE,
      {
        ref: SERVICE,
        machines: [MACHINE],
        dependsOn: [],
        probes: [],
      },
    ],
  ]),
  machines: new Map([[MACHINE, { ref: MACHINE, locator }]]),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 3600 },
});

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const logger = recordingLogger();
let captureStore: CaptureStore;
let runStore: RunStore;
let captures: CaptureService;
let runs: RunService;

/**
 * Checks one transfer's lines, in the order heard: its bytes grow, each line under way says 5 % of
 * its total more than the one before, and the last is final, with `total` bytes.
 */
function expectOneTransfer(lines: Heard[], total: number) {
  expect(lines.length).toBeGreaterThan(0);
  const final = lines.at(-1)!;
  expect(final).toMatchObject({ final: true, doneBytes: total });
  const running = lines.slice(0, -1);
  expect(running.every(l => !l.final)).toBe(true);
  // Steps of 5 % of the total, or, with the total unknown (a capture's archive), of what was
  // said before: fewer than 20 lines under way, or as many as 5 % growth allows from the first
  // line said (SMALL_TRANSFER_BYTES on) to the total, whatever the disk's speed.
  const known = running.every(l => l.totalBytes !== undefined);
  expect(running.length).toBeLessThan(
    known
      ? 20
      : Math.ceil(Math.log(total / SMALL_TRANSFER_BYTES) / Math.log(1.05)) + 2,
  );
  let before = 0;
  for (const line of running) {
    expect(line.doneBytes).toBeGreaterThan(before);
    // With the total unknown, the last bytes may be said under way before the transfer ends.
    if (known) expect(line.doneBytes).toBeLessThan(total);
    else expect(line.doneBytes).toBeLessThanOrEqual(total);
    if (line.totalBytes !== undefined) {
      expect(line.totalBytes).toBe(total);
      expect(line.doneBytes - before).toBeGreaterThanOrEqual(0.05 * total);
    } else {
      expect(line.doneBytes - before).toBeGreaterThanOrEqual(0.05 * before);
    }
    before = line.doneBytes;
  }
}

/**
 * A machine's lines under way come at most every INTERVAL_MS, however many transfers it has. Within
 * a transfer that is read on the lines' own clock (`elapsedMs`, from the transfer's start): exact,
 * where the time a line is heard also holds how long it took to reach the listener (a loaded
 * machine preempts the process between the two). Across transfers only the time heard tells: a
 * line comes INTERVAL_MS after its transfer began at the earliest, and well after the line before
 * (half of INTERVAL_MS for the delays in hearing; an unpaced line comes within a chunk, a ms).
 */
function expectPaced(lines: Heard[]) {
  for (const [i, line] of lines.entries()) {
    if (line.final) continue;
    const before = lines[i - 1];
    if (before && !before.final && before.what === line.what) {
      expect(line.elapsedMs - before.elapsedMs).toBeGreaterThanOrEqual(
        INTERVAL_MS - 1e-6,
      );
      continue;
    }
    expect(line.elapsedMs).toBeGreaterThanOrEqual(INTERVAL_MS - 1e-6);
    if (before)
      expect(line.at - before.at).toBeGreaterThanOrEqual(INTERVAL_MS / 2);
  }
}

beforeAll(async () => {
  await primary.ping();
  await recovery.ping();
  await buildDemoImage(primary);
  await primary.createVolume({ Name: volumeName });
  const c = await primary.createContainer({
    name: container,
    Image: DEMO_IMAGE,
    Cmd: [
      'sh',
      '-c',
      // Restored, it finds its data there and writes none.
      `[ -f /data/blob ] || { head -c ${VOLUME_BYTES} /dev/urandom > /data/.blob && mv /data/.blob /data/blob; }; trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done`,
    ],
    StopTimeout: 1,
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [{ Type: 'volume', Source: volumeName, Target: '/data' }],
    },
  });
  await c.start();
  const end = Date.now() + 60_000;
  while (
    !(await c
      .infoArchive({ path: '/data/blob' })
      .then(() => true)
      .catch(() => false))
  ) {
    if (Date.now() > end) throw new Error('the volume was not written');
    await new Promise(r => setTimeout(r, 200));
  }
  const knex = await databases.init('SQLITE_3');
  await migrate(knex);
  captureStore = new CaptureStore(knex);
  runStore = new RunStore(knex);
  const providers = new ProviderRegistry();
  providers.addCaptureSource(watchedSource);
  providers.addHypervisorHost(watchedHost);
  const graphs = {
    getEntity: async () => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: `progress-svc-${suffix}` },
    }),
    load: async () => graph(),
    visibleTo: async (refs: string[]) => refs,
  };
  const plans = new PlanService(graphs as unknown as CatalogGraphLoader);
  captures = buildCaptureService({
    store: captureStore,
    providers,
    plans,
    logger,
    keepLast: 3,
  });
  runs = new RunService(
    runStore,
    captureStore,
    providers,
    plans,
    graphs as unknown as CatalogGraphLoader,
    mockServices.logger.mock(),
    {
      hypervisorHost: 'recovery',
      machineReadyTimeoutMs: 20_000,
      probeIntervalMs: 200,
      heartbeatIntervalMs: 1_000,
      staleAfterMs: 60_000,
      stepTimeoutMs: 60_000,
      minReadyMs: 500,
      allowTestHooks: false,
    },
  );
}, 180_000);

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  await primary
    .getContainer(container)
    .remove({ force: true, v: true })
    .catch(() => {});
  await primary
    .getVolume(volumeName)
    .remove()
    .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  rmSync(store, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log('transfer progress timings', JSON.stringify(timings));
});

describe('progress of a large volume (real engines)', () => {
  it('is said while it is captured and restored, paced, each transfer ended with its stored size and time', async () => {
    const t0 = performance.now();
    const capture = await captures.captureMachine(locator);
    timings.capture_ms = Math.round(performance.now() - t0);
    const [stored] = await captureStore.listCaptures(MACHINE, 1);
    const [volume] = stored.runtime.volumes!;
    // The archive of 64 MiB of data, with its tar headers.
    expect(volume.sizeBytes).toBeGreaterThan(VOLUME_BYTES);
    expect(volume.sizeBytes).toBeLessThan(VOLUME_BYTES + MIB);

    // Captured: the volume's archive as it is copied while production is paused, its size unknown
    // until it ends; the image, a few MiB, says nothing.
    expect(
      captureLines.every(l => l.what === 'volume /data (machine paused)'),
    ).toBe(true);
    expectOneTransfer(captureLines, volume.sizeBytes);
    expectPaced(captureLines);
    expect(captureLines.at(-1)!.message).toMatch(
      /^Archived volume \/data \(machine paused\): 64\.0 MiB in \d+\.\d s \(\d+\.\d [KMG]iB\/s\)$/,
    );
    expect(stored.sizeBytes - volume.sizeBytes).toBeLessThan(
      SMALL_TRANSFER_BYTES,
    );
    // The capture's lines are the backend's log of it, with the machine and capture.
    expect(logger.lines.filter(l => l.message.startsWith('Archiv'))).toEqual(
      captureLines.map(l => ({
        level: 'info',
        message: l.message,
        fields: { machineRef: MACHINE, captureId: capture.id },
      })),
    );

    const t1 = performance.now();
    const started = await runs.start({
      entityRef: SERVICE,
      mode: 'test',
      trigger: 'user',
    });
    runIds.push(started.id);
    await runs.waitFor(started.id);
    timings.run_ms = Math.round(performance.now() - t1);
    const run = (await runStore.getRun(started.id))!;
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');

    // Verified before the lab (the run's pre-flight), then at its restore verified again and put
    // back: three transfers of the volume's archive, each ended with its stored size.
    const transfers: Heard[][] = [];
    for (const line of hostLines) {
      const open = transfers.at(-1);
      if (!open || open.at(-1)!.final) transfers.push([line]);
      else open.push(line);
    }
    expect(transfers.map(t => t.at(-1)!.message.split(':')[0])).toEqual([
      'Verified volume /data',
      'Verified volume /data',
      'Restored volume /data',
    ]);
    for (const transfer of transfers)
      expectOneTransfer(transfer, volume.sizeBytes);
    expectPaced(hostLines.slice(transfers[0].length));
    for (const line of hostLines) expect(line.what).toBe('volume /data');

    // In the machine's timeline, in the order said: the pre-flight's before the lab, the restore's
    // between its wave and its readiness.
    const steps = run.steps.filter(s => s.machineRef === MACHINE);
    const messages = steps.map(s => s.message);
    const said = hostLines.map(l => messages.indexOf(l.message));
    expect(said.every(i => i >= 0)).toBe(true);
    expect([...said].sort((a, b) => a - b)).toEqual(said);
    const all = run.steps.map(s => s.message);
    const lab = all.findIndex(m => m.startsWith('Created isolated network'));
    const wave = all.indexOf(`Wave 1: booting ${MACHINE}`);
    const ready = all.findIndex(m => m.startsWith('Ready: restored in'));
    const at = (message: string) => all.indexOf(message);
    expect(at(transfers[0].at(-1)!.message)).toBeLessThan(lab);
    expect(at(transfers[1][0].message)).toBeGreaterThan(wave);
    expect(at(transfers[2].at(-1)!.message)).toBeLessThan(ready);
    expect(transfers[2].at(-1)!.message).toMatch(
      /^Restored volume \/data: 64\.0 MiB in \d+\.\d s \(\d+\.\d [KMG]iB\/s\)$/,
    );
    timings.restore_lines = transfers[2].length;
    timings.capture_lines = captureLines.length;
  });
});
