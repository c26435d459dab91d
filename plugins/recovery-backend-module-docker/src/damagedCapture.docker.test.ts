import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabases } from '@backstage/backend-test-utils';
import {
  CAPTURES_DAMAGED_ERROR_NAME,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import type { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import type { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { RunService } from '../../recovery-backend/src/run/RunService';
import type { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { createTestNetwork } from './testing/testNetwork';
import { buildRunSite } from './testing/runSite';
import { webOverDataGraph } from './testing/webOverDataGraph';
import { LAYERS_DIRECTORY } from './lib/layerStore';
import { removeCaptureImages } from './testing/removeCaptureImages';

/*
 * A capture damaged in the capture store (a layer file's bytes overwritten), on the real engines:
 * the run that would restore it finds it so before it builds its lab, marks it, and goes on from
 * the machine's older intact capture; once no capture of a machine is intact, the run fails before
 * any machine boots, and the next is refused naming them. A layer shared by captures, damaged,
 * then written anew by the machine's next capture, mends them: their marks are lifted.
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
const NETWORK = `damaged-prod-${suffix}`;
const SUBNET = '172.29.91.0/24';
const store = mkdtempSync(join(tmpdir(), 'recovery-damaged-'));
const containers: string[] = [];
const runIds: string[] = [];
const timings: Record<string, number> = {};

const DATA = 'resource:default/dmg-data';
const WEB = 'resource:default/dmg-web';
const WEB_SVC = 'component:default/dmg-web-svc';
const DATA_SVC = 'component:default/dmg-data-svc';

/** Serves HTTP on 8080 (busybox httpd). */
const HTTPD =
  'mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w';

async function machine(name: string, ipv4: string): Promise<string> {
  const container = `${name}-${suffix}`;
  containers.push(container);
  const c = await primary.createContainer({
    name: container,
    Hostname: name,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', HTTPD],
    StopTimeout: 1,
    HostConfig: { NetworkMode: NETWORK },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: { IPAMConfig: { IPv4Address: ipv4 }, Aliases: [name] },
      },
    },
  });
  await c.start();
  return container;
}

/** Writes `kib` KiB of random bytes to `path` in the container: its next commit's own layer holds them. */
async function write(container: string, path: string, kib: number) {
  const exec = await primary.getContainer(container).exec({
    Cmd: ['sh', '-c', `head -c ${kib * 1024} /dev/urandom > ${path}`],
  });
  const stream = await exec.start({});
  await new Promise(resolve => stream.on('end', resolve).resume());
}

const layerFiles = () =>
  new Set(
    readdirSync(join(store, LAYERS_DIRECTORY)).filter(f =>
      f.endsWith('.layer'),
    ),
  );

/** Overwrites bytes in the middle of a layer file of the store, its size kept (a disk error, a hand's edit). */
function damage(layer: string) {
  const path = join(store, LAYERS_DIRECTORY, layer);
  const bytes = readFileSync(path);
  for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0xff;
  writeFileSync(path, bytes);
  return path;
}

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
let captureStore: CaptureStore;
let runStore: RunStore;
let captures: CaptureService;
let runs: RunService;
let dataContainer: string;
let webContainer: string;
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

const graph = (): RecoveryGraph =>
  webOverDataGraph(
    { serviceRef: DATA_SVC, machineRef: DATA, container: dataContainer },
    { serviceRef: WEB_SVC, machineRef: WEB, container: webContainer },
  );

async function testRun(
  recoveryPoint?: string,
): Promise<RecoveryRun & { tookMs: number }> {
  const t0 = Date.now();
  const started = await runs.start({
    entityRef: WEB_SVC,
    mode: 'test',
    trigger: 'user',
    ...(recoveryPoint && { recoveryPoint }),
  });
  runIds.push(started.id);
  await runs.waitFor(started.id);
  return {
    ...(await runStore.getRun(started.id))!,
    tookMs: Date.now() - t0,
  };
}

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
        Config: [{ Subnet: SUBNET, Gateway: '172.29.91.1' }],
      },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    },
    suffix,
  );
  dataContainer = await machine('dmg-data', '172.29.91.10');
  webContainer = await machine('dmg-web', '172.29.91.20');
  ({ captureStore, runStore, captures, runs } = await buildRunSite({
    database: await databases.init('SQLITE_3'),
    primary,
    storeDirectory: store,
    host,
    graph,
  }));
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of containers)
    await primary
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  await primary
    .getNetwork(NETWORK)
    .remove()
    .catch(() => {});
  rmSync(store, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log('damaged capture timings', JSON.stringify(timings));
});

describe('a damaged capture (real engines)', () => {
  it('is passed over in the same run for the older intact capture, which boots; a machine with none intact left fails the run, and is then refused naming them', async () => {
    // data first (the image's layers, which web shares), then web's first capture, and a second
    // after a change: each commit of web adds a layer of its own.
    await captures.captureMachine({
      machineRef: DATA,
      engine: 'primary',
      container: dataContainer,
    });
    const imageLayers = layerFiles();
    await write(webContainer, '/w/first.bin', 200);
    const older = await captures.captureMachine({
      machineRef: WEB,
      engine: 'primary',
      container: webContainer,
    });
    const beforeSecond = layerFiles();
    const olderOwn = [...beforeSecond].filter(l => !imageLayers.has(l));
    expect(olderOwn).toHaveLength(1);
    await write(webContainer, '/w/second.bin', 200);
    const newer = await captures.captureMachine({
      machineRef: WEB,
      engine: 'primary',
      container: webContainer,
    });
    const ownLayers = [...layerFiles()].filter(l => !beforeSecond.has(l));
    expect(ownLayers).toHaveLength(1);
    const damagedLayer = damage(ownLayers[0]);

    // Found damaged at the run's verification, before its lab: the older capture verified in its
    // place, restored, and booted, the timeline saying which was passed over, why, and since when.
    const passed = await testRun();
    timings.run_passed_over_to_older_ms = passed.tookMs;
    expect(passed.error?.message).toBeUndefined();
    expect(passed.status).toBe('succeeded');
    expect(passed.machines.find(m => m.machineRef === WEB)).toMatchObject({
      phase: 'ready',
      captureId: older.id,
      capturedAt: older.createdAt,
    });
    const messages = passed.steps.map(s => s.message);
    const said = passed.steps.findIndex(
      s =>
        s.machineRef === WEB &&
        s.level === 'warning' &&
        s.message.startsWith(`Capture ${newer.id} of ${newer.createdAt} (`),
    );
    expect(said).toBeGreaterThan(0);
    expect(messages[said]).toContain(
      `checksum mismatch for ${join(store, `${newer.id}.tar`)}`,
    );
    expect(messages[said]).toContain(
      `layer file ${damagedLayer} no longer holds its content`,
    );
    expect(messages[said]).toContain(
      `is damaged, and marked so: no run restores it again. Restores its capture ${older.id} of ${older.createdAt} instead, the newest intact (verified now), `,
    );
    expect(
      messages.findIndex(m => m.startsWith('Verifying captures (2 machines')),
    ).toBeLessThan(said);
    expect(
      messages.findIndex(m => m.startsWith('Created isolated network')),
    ).toBeGreaterThan(said);
    // Marked, as GET /captures lists it; the older capture is intact.
    const listed = await captureStore.listCaptures(WEB);
    expect(listed.map(c => [c.id, c.damaged !== undefined])).toEqual([
      [newer.id, true],
      [older.id, false],
    ]);
    expect(listed[0].damaged!.reason).toContain(damagedLayer);

    // The older capture's own layer damaged too: found, marked; no intact capture of web is left,
    // so the run fails before it builds its lab or boots any machine.
    damage(olderOwn[0]);
    const failed = await testRun();
    timings.run_failed_at_verification_ms = failed.tookMs;
    expect(failed.status).toBe('failed');
    expect(failed.error?.machineRef).toBe(WEB);
    expect(failed.error!.message).toContain(
      `${WEB} failed: capture ${older.id}: checksum mismatch`,
    );
    expect(failed.error!.message).toContain(
      `none of its kept captures is intact: capture ${WEB} anew`,
    );
    expect(
      failed.machines.map(m => [m.machineRef, m.phase, m.restoreStartedAt]),
    ).toEqual([
      [DATA, 'skipped', undefined],
      [WEB, 'failed', undefined],
    ]);
    expect(await host.listLabResources(failed.id)).toEqual({
      machines: [],
      networks: [],
    });
    expect(
      await recovery.listContainers({
        all: true,
        filters: {
          label: [`recovery.backstage-recovery.io/run-id=${failed.id}`],
        },
      }),
    ).toEqual([]);
    const t0 = Date.now();
    const refused = await runs
      .start({ entityRef: WEB_SVC, mode: 'test', trigger: 'user' })
      .catch(e => e);
    timings.run_refused_up_front_ms = Date.now() - t0;
    expect(refused).toMatchObject({
      name: CAPTURES_DAMAGED_ERROR_NAME,
      statusCode: 409,
      damaged: [
        { machineRef: WEB, captureId: newer.id },
        { machineRef: WEB, captureId: older.id },
      ],
    });
    expect(refused.message).toMatch(
      new RegExp(`^No intact capture of ${WEB} to restore: `),
    );

    // Captured anew: nothing changed in web since the newer capture, so its commit's layer holds
    // what the newer one's held: written anew over the damaged file, it mends the newer capture,
    // whose mark the capture's verification lifts. The older one's own layer is not rewritten.
    await captures.captureMachine({
      machineRef: WEB,
      engine: 'primary',
      container: webContainer,
    });
    // The re-check runs after the capture has answered.
    await captures.idle();
    expect(
      (await captureStore.listCaptures(WEB))
        .slice(1)
        .map(c => [c.id, c.damaged !== undefined]),
    ).toEqual([
      [newer.id, false],
      [older.id, true],
    ]);
    const mended = await testRun();
    expect(mended.error?.message).toBeUndefined();
    expect(mended.status).toBe('succeeded');
  });

  it('lifts the marks of captures the next capture of their machine mends: a shared image layer damaged, then written anew', async () => {
    // The image's bottom layer, which every capture of both machines refers to (docker save names
    // a layer by the sha256 of its content, as the store does).
    const [bottom] = (await primary.getImage(DEMO_IMAGE).inspect()).RootFS
      .Layers!;
    const shared = `${bottom.replace('sha256:', '')}.layer`;
    expect(layerFiles().has(shared)).toBe(true);
    const [dataBefore] = await captureStore.listCaptures(DATA);
    const webMarks = async () =>
      (await captureStore.listCaptures(WEB)).map(c => [
        c.id,
        c.damaged !== undefined,
      ]);
    const before = await webMarks();
    const webBefore = { id: before[0][0] as string };
    // web's latest and the one it mended, intact; its oldest, damaged by hand.
    expect(before.map(([, marked]) => marked)).toEqual([false, false, true]);
    expect(dataBefore.damaged).toBeUndefined();
    const sharedPath = damage(shared);

    // Every capture refers to it: the run finds none of either machine intact, and marks them all.
    const failed = await testRun();
    expect(failed.status).toBe('failed');
    expect(failed.error?.machineRef).toBe(DATA);
    expect(
      (await captureStore.listCaptures(DATA))[0].damaged?.reason,
    ).toContain(sharedPath);
    expect((await webMarks()).map(([, marked]) => marked)).toEqual([
      true,
      true,
      true,
    ]);

    // data captured again: the capture writes the layer anew (its content no longer matched its
    // name), and verifying data's marked capture again finds it intact: its mark lifted.
    const t0 = Date.now();
    const dataAgain = await captures.captureMachine({
      machineRef: DATA,
      engine: 'primary',
      container: dataContainer,
    });
    await captures.idle();
    timings.capture_with_recheck_ms = Date.now() - t0;
    expect(
      (await captureStore.listCaptures(DATA)).map(c => [
        c.id,
        c.damaged !== undefined,
      ]),
    ).toEqual([
      [dataAgain.id, false],
      [dataBefore.id, false],
    ]);
    // Only that machine's are verified again: web's stay marked until web is captured.
    expect((await captureStore.listCaptures(WEB))[0].damaged).toBeDefined();
    const webAgain = await captures.captureMachine({
      machineRef: WEB,
      engine: 'primary',
      container: webContainer,
    });
    await captures.idle();
    // Those the shared layer broke are mended; the one whose own layer was overwritten is not.
    expect(await webMarks()).toEqual([
      [webAgain.id, false],
      [before[0][0], false],
      [before[1][0], false],
      [before[2][0], true],
    ]);

    // The mended captures restore again: a run to a point before the new captures boots them.
    const atPoint = await testRun(
      new Date(Date.parse(dataAgain.createdAt) - 1).toISOString(),
    );
    expect(atPoint.error?.message).toBeUndefined();
    expect(atPoint.status).toBe('succeeded');
    expect(atPoint.machines.map(m => m.captureId)).toEqual([
      dataBefore.id,
      webBefore.id,
    ]);
  });
});
