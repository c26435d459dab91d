import { TestDatabases } from '@backstage/backend-test-utils';
import { formatUtcTime } from '@backstage-recovery/plugin-recovery-common';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { captureOf } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { chainGraph, chainNeeds, DATA, INFRA, WEB } from '../testing/chainSite';
import { runServiceOver } from '../testing/runService';

/*
 * A run restores each machine's newest capture: where one machine's latest capture failed (or it
 * was captured on its own), they are of different moments. The timeline names the capture each
 * machine restores, and warns where they span more than taking them one after another would.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'the captures a run restores, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
    });

    /** Captures each machine at `at` (ms before now), each capture taking `durationMs`; then runs web. */
    async function runAfterCaptures(
      at: Record<string, number>,
      durationMs = 2_000,
    ) {
      const now = Date.now();
      for (const [machineRef, msAgo] of Object.entries(at))
        await captureStore.insertCapture({
          ...captureOf(
            `cap-${machineRef.split('/')[1]}`,
            machineRef,
            new Date(now - msAgo).toISOString(),
          ),
          durationMs,
        });
      const runs = runServiceOver(
        runStore,
        captureStore,
        new FakeHost(chainNeeds),
        chainGraph,
        { machineReadyTimeoutMs: 2_000, staleAfterMs: 60_000 },
      );
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      return (await runStore.getRun(started.id))!;
    }

    it("warns where one machine's capture is older than the others by more than capturing them took, naming the oldest and the newest", async () => {
      // data-01's capture of this round failed: it restores the one of the round before, 57 s older.
      const run = await runAfterCaptures({
        [INFRA]: 4_000,
        [DATA]: 59_000,
        [WEB]: 0,
      });
      expect(run.status).toBe('succeeded');
      const data = run.machines.find(m => m.machineRef === DATA)!;
      const web = run.machines.find(m => m.machineRef === WEB)!;
      expect(
        run.steps
          .filter(s => s.level === 'warning')
          .map(s => [s.machineRef, s.message]),
      ).toEqual([
        [
          undefined,
          `Restores captures taken 59 s apart, from ${DATA}'s of ${data.capturedAt} (the oldest) to ${WEB}'s of ${web.capturedAt} (the newest): ` +
            'more than taking them one after another would (6 s), so the machines come back as they were at different moments, and what they exchanged in between may be on one side only',
        ],
      ]);
      // Each machine's restore names the capture it restores and when it was taken, written as
      // the portal and the CLI write a time.
      for (const m of run.machines)
        expect(run.steps).toContainEqual(
          expect.objectContaining({
            machineRef: m.machineRef,
            level: 'info',
            message: `Restoring capture ${m.captureId} of ${formatUtcTime(m.capturedAt)}`,
          }),
        );
    });

    it('says nothing of captures taken one after another in one go, however long that took', async () => {
      // Three captures of 40 s each, back to back: 80 s from the first to the last.
      const run = await runAfterCaptures(
        { [INFRA]: 80_000, [DATA]: 40_000, [WEB]: 0 },
        40_000,
      );
      expect(run.status).toBe('succeeded');
      expect(run.steps.filter(s => s.level === 'warning')).toEqual([]);
    });
  },
);
