import { TestDatabases } from '@backstage/backend-test-utils';
import {
  CAPTURES_DAMAGED_ERROR_NAME,
  INTERRUPTED_PREFIX,
} from '@backstage-recovery/plugin-recovery-common';
import {
  CaptureDamagedError,
  type LabHandle,
  type RecoveryGraph,
  type RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { FakeHost } from '../testing/FakeHost';
import { storedCapture } from '../testing/entities';
import { runServiceOver } from '../testing/runService';
import type { RunService } from './RunService';

const WEB = 'component:default/web';
const DB = 'component:default/database';
const DATA_01 = 'resource:default/data-01';
const WEB_01 = 'resource:default/web-01';
const GIB = 1024 ** 3;

const graph: RecoveryGraph = {
  rootRef: WEB,
  roots: [WEB],
  services: new Map([
    [
      DB,
      {
        ref: DB,
        machines: [DATA_01],
        dependsOn: [],
        probes: [{ kind: 'tcp', port: 5432 }],
      },
    ],
    [
      WEB,
      {
        ref: WEB,
        machines: [WEB_01],
        dependsOn: [DB],
        probes: [{ kind: 'tcp', port: 80 }],
      },
    ],
  ]),
  machines: new Map([
    [
      DATA_01,
      {
        ref: DATA_01,
        locator: {
          machineRef: DATA_01,
          engine: 'primary',
          container: 'data-01',
        },
      },
    ],
    [
      WEB_01,
      {
        ref: WEB_01,
        locator: { machineRef: WEB_01, engine: 'primary', container: 'web-01' },
      },
    ],
  ]),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 3600 },
};

const damage = (captureId: string) =>
  new CaptureDamagedError(
    `capture ${captureId}: checksum mismatch for /captures/${captureId}.tar (layer file /captures/layers/b3dc.layer no longer holds its content; every capture referring to it is damaged too): expected sha256:1, got sha256:2; the capture is damaged and cannot be restored`,
    captureId,
  );

/**
 * A host that verifies captures (each verified in order, the damaged ones failing), creates labs
 * and restores as FakeHost does, and keeps what it did.
 */
class VerifyingHost extends FakeHost {
  readonly verified: string[] = [];
  readonly labs: string[] = [];
  readonly restored: string[] = [];
  /** Capture ids whose verification finds them damaged. */
  damaged = new Set<string>();
  /** What verifying any capture fails with, where it cannot tell (a store it cannot read). */
  unreadable?: Error;
  /** Capture ids whose files cannot be read (EACCES). */
  readonly unreadableIds = new Set<string>();
  /** Capture ids found damaged at their restore (changed since they were verified). */
  damagedAtRestore = new Set<string>();
  /**
   * A capture id whose verification reads on until the run is stopped, then fails as a read cut
   * off may look: damaged.
   */
  stoppedAt?: string;
  /** Called as a capture's verification begins (what happens meanwhile: a pruning). */
  whileVerifying?: (captureId: string) => Promise<void>;
  /** Resolves once the verification of `stoppedAt` has begun. */
  readonly reachedStop: Promise<void>;
  private reached!: () => void;

  constructor() {
    super({ [WEB_01]: [DATA_01] });
    this.reachedStop = new Promise(resolve => {
      this.reached = resolve;
    });
  }
  async verifyCapture(
    capture: RestorableCapture,
    { signal }: { signal?: AbortSignal } = {},
  ) {
    this.verified.push(capture.captureId);
    await this.whileVerifying?.(capture.captureId);
    if (this.unreadable) throw this.unreadable;
    if (this.unreadableIds.has(capture.captureId))
      throw Object.assign(
        new Error(
          `EACCES: permission denied, open '/captures/${capture.captureId}.tar'`,
        ),
        { code: 'EACCES' },
      );
    if (capture.captureId === this.stoppedAt) {
      this.reached();
      await new Promise(resolve =>
        signal!.addEventListener('abort', resolve, { once: true }),
      );
      throw damage(capture.captureId);
    }
    if (this.damaged.has(capture.captureId)) throw damage(capture.captureId);
  }
  async createLab(...args: Parameters<FakeHost['createLab']>) {
    this.labs.push(args[0]);
    return super.createLab(...args);
  }
  async restoreMachine(lab: LabHandle, capture: RestorableCapture) {
    this.restored.push(capture.captureId);
    if (this.damagedAtRestore.has(capture.captureId))
      throw damage(capture.captureId);
    return super.restoreMachine(lab, capture);
  }
}

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  "a run's verification of its captures on %s",
  databaseId => {
    let knex: Knex;
    let store: CaptureStore;
    let runStore: RunStore;
    let host: VerifyingHost;
    let runs: RunService;
    const now = Date.now();
    const at = (minutesAgo: number) =>
      new Date(now - minutesAgo * 60_000).toISOString();

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      store = new CaptureStore(knex);
      runStore = new RunStore(knex);
      await store.insertCapture({
        ...storedCapture('data-01'),
        id: 'data',
        sizeBytes: 0.5 * GIB,
        createdAt: at(30),
      });
      await store.insertCapture({
        ...storedCapture('web-01'),
        id: 'web-old',
        sizeBytes: 0.25 * GIB,
        createdAt: at(90),
      });
      await store.insertCapture({
        ...storedCapture('web-01'),
        id: 'web-new',
        // Its image's 0.5 GiB and its volume's 0.2 GiB: counted once.
        sizeBytes: Math.round(0.7 * GIB),
        runtime: {
          ...storedCapture('web-01').runtime,
          volumes: [
            {
              destination: '/data',
              artifact: 'v.tar',
              checksum: 'sha256:3',
              sizeBytes: 0.2 * GIB,
            },
          ],
        },
        createdAt: at(20),
      });
      host = new VerifyingHost();
      runs = runServiceOver(runStore, store, host, graph);
    });

    const run = async (recoveryPoint?: string) => {
      const started = await runs.start({
        entityRef: WEB,
        mode: 'test',
        trigger: 'user',
        ...(recoveryPoint && { recoveryPoint }),
      });
      await runs.waitFor(started.id);
      return (await runStore.getRun(started.id))!;
    };

    it('reads every capture before the lab is built, and says it in the timeline', async () => {
      const done = await run();
      expect(done.status).toBe('succeeded');
      expect(host.verified).toEqual(['data', 'web-new']);
      const messages = done.steps.map(s => s.message);
      const verifying = messages.indexOf(
        'Verifying captures (2 machines, 1.2 GiB): every byte read against its checksums, before the lab is built',
      );
      expect(verifying).toBeGreaterThan(0);
      expect(messages[verifying + 1]).toMatch(
        /^Verified captures \(2 machines, 1\.2 GiB\) in \d+(\.\d)? s$/,
      );
      // Before the lab's network.
      expect(
        messages.findIndex(m => m.startsWith('Created isolated network')),
      ).toBeGreaterThan(verifying + 1);
    });

    it("passes over a damaged capture for the machine's older intact one in the same run, marks it, and says what the run restores instead", async () => {
      host.damaged.add('web-new');
      const done = await run();
      expect(done.status).toBe('succeeded');
      // The damaged one, then the one before it, verified before the lab; the older one restored.
      expect(host.verified).toEqual(['data', 'web-new', 'web-old']);
      expect(host.restored).toEqual(['data', 'web-old']);
      // Recorded as what the run restores: readiness and the run's page say that capture.
      expect(
        done.machines.map(m => [m.machineRef, m.captureId, m.capturedAt]),
      ).toEqual([
        [DATA_01, 'data', at(30)],
        [WEB_01, 'web-old', at(90)],
      ]);
      const messages = done.steps.map(s => s.message);
      const verifying = messages.findIndex(m =>
        m.startsWith('Verifying captures (2 machines'),
      );
      expect(messages[verifying + 1]).toMatch(
        /^Verified captures \(2 machines, 1\.2 GiB\) in \d+(\.\d)? s; 1 machine restores an older capture in place of a damaged one$/,
      );
      expect(done.steps[verifying + 2]).toEqual(
        expect.objectContaining({
          machineRef: WEB_01,
          level: 'warning',
          message: `Capture web-new of ${at(20)} (${damage('web-new').message}) is damaged, and marked so: no run restores it again. Restores its capture web-old of ${at(90)} instead, the newest intact (verified now), 90 min old when the run was admitted: ${WEB_01} is recovered as it was then, not as its latest capture holds it`,
        }),
      );
      // Before the lab's network.
      expect(
        messages.findIndex(m => m.startsWith('Created isolated network')),
      ).toBeGreaterThan(verifying + 2);
      // Marked, with why, as GET /captures lists it; the older capture is not.
      const [newest, older] = await store.listCaptures(WEB_01);
      expect(newest).toMatchObject({
        id: 'web-new',
        damaged: { reason: damage('web-new').message },
      });
      expect(Date.parse(newest.damaged!.at)).toBeGreaterThanOrEqual(now);
      expect(older.damaged).toBeUndefined();

      // The next run is admitted with the older intact one straight away.
      host.verified.length = 0;
      const again = await run();
      expect(again.status).toBe('succeeded');
      expect(again.machines.map(m => m.captureId)).toEqual(['data', 'web-old']);
      expect(host.verified).toEqual(['data', 'web-old']);
    });

    it('verifies older captures newest first until one is intact, marking each damaged one, and says the age against the RPO', async () => {
      await store.insertCapture({
        ...storedCapture('web-01'),
        id: 'web-mid',
        createdAt: at(50),
      });
      host.damaged = new Set(['web-new', 'web-mid']);
      // One day's RPO: the old capture, 2 days old, is over it.
      await store.insertCapture({
        ...storedCapture('web-01'),
        id: 'web-ancient',
        createdAt: at(2 * 24 * 60),
      });
      host.damaged.add('web-old');
      const done = await run();
      expect(done.status).toBe('succeeded');
      expect(host.verified).toEqual([
        'data',
        'web-new',
        'web-mid',
        'web-old',
        'web-ancient',
      ]);
      expect(done.machines.map(m => m.captureId)).toEqual([
        'data',
        'web-ancient',
      ]);
      expect(
        done.steps.find(s => s.message.startsWith('Captures web-new')),
      ).toEqual(
        expect.objectContaining({
          machineRef: WEB_01,
          level: 'warning',
          message: `Captures web-new of ${at(20)} (${damage('web-new').message}); web-mid of ${at(50)} (${damage('web-mid').message}); web-old of ${at(90)} (${damage('web-old').message}) are damaged, and marked so: no run restores them again. Restores its capture web-ancient of ${at(2 * 24 * 60)} instead, the newest intact (verified now), 2 d old when the run was admitted, over the RPO of 24 h: ${WEB_01} is recovered as it was then, not as its latest capture holds it`,
        }),
      );
      expect(
        (await store.listCaptures(WEB_01)).map(c => [
          c.id,
          c.damaged !== undefined,
        ]),
      ).toEqual([
        ['web-new', true],
        ['web-mid', true],
        ['web-old', true],
        ['web-ancient', false],
      ]);
    });

    it("keeps to the run's recovery point: only captures taken at or before it are verified in place of a damaged one", async () => {
      await store.insertCapture({
        ...storedCapture('web-01'),
        id: 'web-mid',
        createdAt: at(50),
      });
      await store.insertCapture({
        ...storedCapture('data-01'),
        id: 'data-old',
        createdAt: at(100),
      });
      host.damaged = new Set(['web-mid']);
      // At 40 minutes ago: web-mid (50) is the newest at or before it; web-new (20) is after it.
      const done = await run(at(40));
      expect(done.status).toBe('succeeded');
      expect(host.verified).toEqual(['data-old', 'web-mid', 'web-old']);
      expect(done.machines.map(m => m.captureId)).toEqual([
        'data-old',
        'web-old',
      ]);
      expect(done.steps.map(s => s.message)).toContainEqual(
        expect.stringContaining(
          `Restores its capture web-old of ${at(90)} instead, the newest intact at or before the recovery point (verified now), 50 min old at the recovery point: `,
        ),
      );
      // Its older captures all damaged too: the run fails, naming the recovery point's remedy.
      host.verified.length = 0;
      host.damaged = new Set(['web-old']);
      const failed = await run(at(40));
      expect(failed.status).toBe('failed');
      expect(host.verified).toEqual(['data-old', 'web-old']);
      expect(failed.error!.message).toBe(
        `${WEB_01} failed: ${damage('web-old').message}; no machine was booted: none of its kept captures at or before the recovery point is intact: capture ${WEB_01} anew, or choose a later recovery point`,
      );
      // The newest, after the point, was not looked at: not marked.
      expect(
        (await store.listCaptures(WEB_01)).map(c => [
          c.id,
          c.damaged !== undefined,
        ]),
      ).toEqual([
        ['web-new', false],
        ['web-mid', true],
        ['web-old', true],
      ]);
    });

    it('names every damaged capture of the run, marks each, fails a run whose machine has none intact left, and refuses the next up front', async () => {
      host.damaged = new Set(['data', 'web-new']);
      const failed = await run();
      expect(failed.status).toBe('failed');
      // web-01 found its older capture intact; data-01 has none.
      expect(host.verified).toEqual(['data', 'web-new', 'web-old']);
      expect(host.labs).toEqual([]);
      expect(host.restored).toEqual([]);
      expect(host.started).toEqual([]);
      expect(failed.error?.machineRef).toBe(DATA_01);
      expect(failed.error!.message).toMatch(
        new RegExp(
          `^${DATA_01} failed: capture data: .*; no machine was booted: none of its kept captures is intact: capture ${DATA_01} anew; also damaged, and marked so: capture web-new of ${WEB_01}$`,
        ),
      );
      expect(failed.machines.map(m => [m.machineRef, m.phase])).toEqual([
        [DATA_01, 'failed'],
        [WEB_01, 'skipped'],
      ]);
      expect(failed.steps).toContainEqual(
        expect.objectContaining({
          machineRef: DATA_01,
          level: 'error',
          message: `Capture data of ${at(30)} is damaged, and marked so: no run restores it again; none of its kept captures is intact: capture ${DATA_01} anew`,
        }),
      );
      expect((await store.listCaptures(WEB_01))[0].damaged).toBeDefined();
      // data-01's only capture is damaged: refused before any run exists, naming it.
      const before = (await runStore.listRuns({ limit: 100 })).length;
      await expect(
        runs.start({ entityRef: WEB, mode: 'test', trigger: 'user' }),
      ).rejects.toMatchObject({
        name: CAPTURES_DAMAGED_ERROR_NAME,
        statusCode: 409,
        damaged: [
          {
            machineRef: DATA_01,
            captureId: 'data',
            reason: damage('data').message,
          },
        ],
      });
      expect(await runStore.listRuns({ limit: 100 })).toHaveLength(before);
    });

    // Pruning deletes a capture's record, then its files: a store mounted from elsewhere loses them
    // under the read, which then looks like damage.
    const prune = (captureId: string) =>
      knex('recovery_captures').where({ id: captureId }).delete();

    it('passes over, without naming it damaged, an older capture pruned while it was read in place of a damaged one', async () => {
      host.damaged = new Set(['web-new']);
      host.whileVerifying = async captureId => {
        if (captureId !== 'web-old') return;
        await prune('web-old');
        host.damaged.add('web-old');
      };
      const failed = await run();
      expect(failed.status).toBe('failed');
      expect(host.verified).toEqual(['data', 'web-new', 'web-old']);
      // Only the capture the run was admitted with is named, and marked.
      expect(failed.error!.message).toBe(
        `${WEB_01} failed: ${damage('web-new').message}; no machine was booted: none of its kept captures is intact: capture ${WEB_01} anew`,
      );
      const messages = failed.steps.map(s => s.message);
      expect(messages).not.toContainEqual(expect.stringContaining('web-old'));
      expect(
        (await store.listCaptures(WEB_01)).map(c => [
          c.id,
          c.damaged !== undefined,
        ]),
      ).toEqual([['web-new', true]]);
    });

    it('leaves a damaged capture pruned before it could be marked out of what the timeline says is marked', async () => {
      host.damaged = new Set(['web-new']);
      // Once the run restores web-old instead, web-new is no run's capture: a capture taken
      // meanwhile prunes it before the run marks it.
      const restoreInstead = store.restoreInstead.bind(store);
      store.restoreInstead = async (...args) => {
        const recorded = await restoreInstead(...args);
        await prune('web-new');
        return recorded;
      };
      const done = await run();
      expect(done.status).toBe('succeeded');
      expect(done.machines.map(m => m.captureId)).toEqual(['data', 'web-old']);
      const messages = done.steps.map(s => s.message);
      expect(messages).toContainEqual(
        `Capture web-new of ${at(20)}, found damaged, is no longer kept (pruned meanwhile): nothing to mark`,
      );
      expect(messages).not.toContainEqual(expect.stringMatching(/marked so/));
      expect(messages).toContainEqual(
        `Restores its capture web-old of ${at(90)} instead, the newest intact (verified now), 90 min old when the run was admitted: ${WEB_01} is recovered as it was then, not as its latest capture holds it`,
      );
    });

    it('marks nothing, and restores nothing older, where a capture verified in place of a damaged one cannot be read', async () => {
      host.damaged.add('web-new');
      host.unreadableIds.add('web-old');
      const failed = await run();
      expect(failed.status).toBe('failed');
      expect(failed.error).toEqual({
        message: `the capture of ${WEB_01} (web-old) could not be verified: EACCES: permission denied, open '/captures/web-old.tar'`,
      });
      expect(host.labs).toEqual([]);
      expect((await store.listCaptures(WEB_01)).map(c => c.damaged)).toEqual([
        undefined,
        undefined,
      ]);
      expect(failed.machines.map(m => m.captureId)).toEqual([
        'data',
        'web-new',
      ]);
    });

    it('fails the run without marking anything where a capture could not be read for another reason', async () => {
      host.unreadable = Object.assign(
        new Error("EACCES: permission denied, open '/captures/web-new.tar'"),
        { code: 'EACCES' },
      );
      const failed = await run();
      expect(failed.status).toBe('failed');
      expect(failed.error).toEqual({
        message: `the capture of ${DATA_01} (data) could not be verified: EACCES: permission denied, open '/captures/web-new.tar'`,
      });
      expect(host.labs).toEqual([]);
      expect((await store.listCaptures(WEB_01)).map(c => c.damaged)).toEqual([
        undefined,
        undefined,
      ]);
      expect((await store.listCaptures(DATA_01)).map(c => c.damaged)).toEqual([
        undefined,
      ]);
    });

    it('marks nothing where the run is stopped mid-verification: neither the capture being read nor one found damaged before', async () => {
      host.damaged.add('data');
      host.stoppedAt = 'web-new';
      const started = await runs.start({
        entityRef: WEB,
        mode: 'test',
        trigger: 'user',
      });
      await host.reachedStop;
      // The backend shutting down stops the run it drives.
      await runs.shutdown();
      const stopped = (await runStore.getRun(started.id))!;
      expect(stopped.status).toBe('interrupted');
      expect(stopped.error).toEqual({
        message: `${INTERRUPTED_PREFIX}the backend is shutting down`,
      });
      expect(host.verified).toEqual(['data', 'web-new']);
      expect(host.labs).toEqual([]);
      expect((await store.listCaptures(WEB_01)).map(c => c.damaged)).toEqual([
        undefined,
        undefined,
      ]);
      expect((await store.listCaptures(DATA_01)).map(c => c.damaged)).toEqual([
        undefined,
      ]);
      expect(stopped.steps.map(s => s.message)).not.toContainEqual(
        expect.stringMatching(/is damaged, and marked so/),
      );
    });

    it('marks nothing where the run is stopped while it verifies an older capture in place of a damaged one', async () => {
      host.damaged.add('web-new');
      host.stoppedAt = 'web-old';
      const started = await runs.start({
        entityRef: WEB,
        mode: 'test',
        trigger: 'user',
      });
      await host.reachedStop;
      await runs.shutdown();
      const stopped = (await runStore.getRun(started.id))!;
      expect(stopped.error).toEqual({
        message: `${INTERRUPTED_PREFIX}the backend is shutting down`,
      });
      expect(host.verified).toEqual(['data', 'web-new', 'web-old']);
      expect(host.labs).toEqual([]);
      expect((await store.listCaptures(WEB_01)).map(c => c.damaged)).toEqual([
        undefined,
        undefined,
      ]);
      expect(stopped.machines.map(m => m.captureId)).toEqual([
        'data',
        'web-new',
      ]);
      expect(stopped.steps.map(s => s.message)).not.toContainEqual(
        expect.stringMatching(/is damaged, and marked so/),
      );
    });

    it('marks a capture its restore finds damaged (changed since it was verified)', async () => {
      host.damagedAtRestore.add('web-new');
      const failed = await run();
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatchObject({ machineRef: WEB_01 });
      expect(host.started).toEqual([DATA_01]);
      expect((await store.listCaptures(WEB_01))[0]).toMatchObject({
        id: 'web-new',
        damaged: { reason: damage('web-new').message },
      });
      expect(failed.steps.map(s => s.message)).toContainEqual(
        expect.stringMatching(
          /^Capture web-new of .* is damaged, and marked so: no run restores it again; /,
        ),
      );
    });
  },
);
