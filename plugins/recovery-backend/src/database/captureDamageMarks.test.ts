import { TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import { captureOf, testRunOf } from '../testing/entities';
import { CaptureStore } from './CaptureStore';
import { migrate } from './migrations';
import { RunStore } from './RunStore';

// What a run falls back on where its capture is found damaged, and how a mark is lifted.

const WEB_01 = 'resource:default/web-01';
const WEB = 'component:default/web';
const at = (hour: number) =>
  `2026-12-06T${String(hour).padStart(2, '0')}:00:00.000Z`;
const damage = { at: at(20), reason: 'checksum mismatch' };

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'damage marks of captures on %p',
  databaseId => {
    let knex: Knex;
    let captures: CaptureStore;
    let runs: RunStore;

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      await knex('recovery_run_machines').delete();
      await knex('recovery_runs').delete();
      await knex('recovery_captures').delete();
      captures = new CaptureStore(knex);
      runs = new RunStore(knex);
      for (const [id, hour] of [
        ['c1', 1],
        ['c2', 2],
        ['c3', 3],
        ['c4', 4],
      ] as const)
        await captures.insertCapture(captureOf(id, WEB_01, at(hour)));
    });

    it("lists a machine's intact captures newest first, at or before a point, passing over those marked damaged", async () => {
      await captures.markCaptureDamaged('c3', damage);
      expect((await captures.intactCaptures(WEB_01)).map(c => c.id)).toEqual([
        'c4',
        'c2',
        'c1',
      ]);
      expect(
        (await captures.intactCaptures(WEB_01, at(3))).map(c => c.id),
      ).toEqual(['c2', 'c1']);
      expect(await captures.intactCaptures('resource:default/none')).toEqual(
        [],
      );
    });

    it('lifts a damaged mark: listed intact again and chosen for runs again; false where there is no mark', async () => {
      await captures.markCaptureDamaged('c4', damage);
      expect(
        (
          await captures.latestCaptures([WEB_01], undefined, { intact: true })
        ).get(WEB_01)?.id,
      ).toBe('c3');
      expect(await captures.clearCaptureDamaged('c4')).toBe(true);
      const [newest] = await captures.listCaptures(WEB_01);
      expect(newest.id).toBe('c4');
      expect(newest.damaged).toBeUndefined();
      expect(
        (
          await captures.latestCaptures([WEB_01], undefined, { intact: true })
        ).get(WEB_01)?.id,
      ).toBe('c4');
      expect(await captures.damagedCaptures([WEB_01])).toEqual(new Map());
      // Not marked (any more), or gone: nothing to lift.
      expect(await captures.clearCaptureDamaged('c4')).toBe(false);
      expect(await captures.clearCaptureDamaged('gone')).toBe(false);
      // Marked anew, it keeps the new finding.
      await captures.markCaptureDamaged('c4', {
        at: at(22),
        reason: 'again',
      });
      expect((await captures.listCaptures(WEB_01))[0].damaged).toEqual({
        at: at(22),
        reason: 'again',
      });
    });

    it("records an older capture as what a run's machine restores, and pruning then keeps it; one pruned already is refused", async () => {
      await runs.admitRun(testRunOf(WEB, 'r1', [WEB_01]), new Date());
      expect(
        (await runs.getRun('r1'))!.machines.map(m => [
          m.captureId,
          m.capturedAt,
        ]),
      ).toEqual([['c4', at(4)]]);
      const older = (await captures.intactCaptures(WEB_01))[2];
      expect(older.id).toBe('c2');
      expect(await captures.restoreInstead('r1', WEB_01, older)).toBe(true);
      expect((await runs.getRun('r1'))!.machines).toEqual([
        expect.objectContaining({
          machineRef: WEB_01,
          captureId: 'c2',
          capturedAt: at(2),
          capturedFrom: { engine: 'primary', container: 'web-01' },
        }),
      ]);
      // Keeping the newest 1: c2 stays while the run restores it; c1 and c3 go.
      expect(
        (await captures.pruneCaptures(WEB_01, 1)).map(c => c.id).sort(),
      ).toEqual(['c1', 'c3']);
      expect((await captures.listCaptures(WEB_01)).map(c => c.id)).toEqual([
        'c4',
        'c2',
      ]);
      // A capture pruned meanwhile cannot be restored instead; nor is a run's machine not there.
      expect(
        await captures.restoreInstead(
          'r1',
          WEB_01,
          captureOf('c1', WEB_01, at(1)),
        ),
      ).toBe(false);
      expect(
        await captures.restoreInstead('r1', 'resource:default/other', older),
      ).toBe(false);
      expect((await runs.getRun('r1'))!.machines[0].captureId).toBe('c2');
    });
  },
);
