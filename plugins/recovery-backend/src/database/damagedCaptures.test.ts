import { TestDatabases } from '@backstage/backend-test-utils';
import {
  CAPTURES_DAMAGED_ERROR_NAME,
  capturesDamaged,
} from '@backstage-recovery/plugin-recovery-common';
import type { Knex } from 'knex';
import {
  CapturesDamagedError,
  RecoveryPointTooEarlyError,
} from '../run/errors';
import { captureOf, testRunOf } from '../testing/entities';
import { CaptureStore } from './CaptureStore';
import { migrate } from './migrations';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const A = 'resource:default/da-01';
const B = 'resource:default/db-01';
const C = 'resource:default/dc-01';

const newRun = (id: string, machineRefs: string[], recoveryPoint?: string) =>
  testRunOf('component:default/damaged', id, machineRefs, recoveryPoint);

const REASON =
  'capture a3: checksum mismatch for /captures/a3.tar (layer file /captures/layers/b3dc.layer no longer holds its content)';
const AT = '2026-11-06T00:00:00.000Z';

describe.each(databases.eachSupportedId())(
  'captures found damaged on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let knex: Knex;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      // A: three captures, the latest found damaged; B: one capture, damaged; C: none.
      await captureStore.insertCapture(
        captureOf('a1', A, '2026-11-01T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('a2', A, '2026-11-02T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('a3', A, '2026-11-04T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('b1', B, '2026-11-03T00:00:00.000Z'),
      );
      const marked = [
        await captureStore.markCaptureDamaged('a3', { at: AT, reason: REASON }),
        await captureStore.markCaptureDamaged('b1', {
          at: AT,
          reason:
            'capture b1: artifact /captures/b1.tar is missing from the capture store',
        }),
      ];
      // eslint-disable-next-line jest/no-standalone-expect -- the tests below hold only if both were marked
      expect(marked).toEqual([true, true]);
    });

    it('keeps a capture found damaged with when and why, listed with the mark; the first finding stands', async () => {
      // Found so again later, in other words: the first mark is kept.
      expect(
        await captureStore.markCaptureDamaged('a3', {
          at: '2026-11-07T00:00:00.000Z',
          reason: 'again',
        }),
      ).toBe(true);
      const listed = await captureStore.listCaptures(A);
      expect(listed.map(c => [c.id, c.damaged])).toEqual([
        ['a3', { at: AT, reason: REASON }],
        ['a2', undefined],
        ['a1', undefined],
      ]);
      expect(listed[1]).not.toHaveProperty('damaged');
      // One pruned meanwhile: nothing to mark.
      expect(
        await captureStore.markCaptureDamaged('gone', { at: AT, reason: 'x' }),
      ).toBe(false);
    });

    it("gives a machine's latest capture, damaged or not, and its newest intact one when asked", async () => {
      expect((await captureStore.latestCaptures([A, B])).get(A)?.id).toBe('a3');
      const intact = await captureStore.latestCaptures([A, B], undefined, {
        intact: true,
      });
      expect(intact.get(A)?.id).toBe('a2');
      expect(intact.has(B)).toBe(false);
      expect(
        (
          await captureStore.latestCaptures([A], '2026-11-05T00:00:00.000Z', {
            intact: true,
          })
        ).get(A)?.id,
      ).toBe('a2');
    });

    it('admits a run with the newest intact capture, passing over a damaged one, with or without a recovery point', async () => {
      const latest = await runStore.admitRun(
        newRun('d-latest', [A]),
        new Date(AT),
      );
      expect('captures' in latest && latest.captures.get(A)?.id).toBe('a2');
      expect(
        (await runStore.getRun('d-latest'))!.machines.map(m => [
          m.captureId,
          m.capturedAt,
        ]),
      ).toEqual([['a2', '2026-11-02T00:00:00.000Z']]);
      const atPoint = await runStore.admitRun(
        newRun('d-point', [A], '2026-11-05T00:00:00.000Z'),
        new Date(AT),
      );
      expect('captures' in atPoint && atPoint.captures.get(A)?.id).toBe('a2');
    });

    it('refuses up front a run of a machine whose kept captures are all damaged, naming each, and admits nothing', async () => {
      const refused = runStore.admitRun(
        newRun('d-refused', [A, B, C]),
        new Date(AT),
      );
      await expect(refused).rejects.toBeInstanceOf(CapturesDamagedError);
      const error = await refused.catch(e => e);
      expect(error).toMatchObject({
        name: CAPTURES_DAMAGED_ERROR_NAME,
        statusCode: 409,
        damaged: [
          {
            machineRef: B,
            captureId: 'b1',
            createdAt: '2026-11-03T00:00:00.000Z',
            reason:
              'capture b1: artifact /captures/b1.tar is missing from the capture store',
          },
        ],
        neverCaptured: [C],
      });
      expect(error.message).toBe(
        `No intact capture of ${B} to restore: ${B}: capture b1 of 2026-11-03T00:00:00.000Z is damaged (capture b1: artifact /captures/b1.tar is missing from the capture store); ` +
          `${C} never captured. Capture ${B}, ${C} anew (POST /captures)`,
      );
      // As a client reads the answer's body.
      expect(
        capturesDamaged({
          statusCode: 409,
          body: {
            error: JSON.parse(
              JSON.stringify({
                ...error,
                name: error.name,
                message: error.message,
              }),
            ),
          },
        }),
      ).toEqual({ damaged: error.damaged, neverCaptured: [C] });
      expect(await runStore.getRun('d-refused')).toBeUndefined();
      // At a point where only a damaged capture was, before an intact one: too early, its oldest
      // intact capture named, and the earliest point it allows offered.
      const E = 'resource:default/de-01';
      await captureStore.insertCapture(
        captureOf('e1', E, '2026-11-01T00:00:00.000Z'),
      );
      await captureStore.markCaptureDamaged('e1', {
        at: AT,
        reason: 'cut short',
      });
      await captureStore.insertCapture(
        captureOf('e2', E, '2026-11-03T00:00:00.000Z'),
      );
      const early = runStore.admitRun(
        newRun('d-early', [E], '2026-11-02T00:00:00.000Z'),
        new Date(AT),
      );
      await expect(early).rejects.toBeInstanceOf(RecoveryPointTooEarlyError);
      await expect(early).rejects.toMatchObject({
        machines: [
          { machineRef: E, oldestCaptureAt: '2026-11-03T00:00:00.000Z' },
        ],
        earliestRecoveryPoint: '2026-11-03T00:00:00.000Z',
      });
      // Later than it, the intact one serves.
      const later = await runStore.admitRun(
        newRun('d-later', [E], '2026-11-03T12:00:00.000Z'),
        new Date(AT),
      );
      expect('captures' in later && later.captures.get(E)?.id).toBe('e2');
      // Its intact capture found damaged too: none is left, at any point.
      await captureStore.markCaptureDamaged('e2', {
        at: AT,
        reason: 'checksum mismatch',
      });
      await expect(
        runStore.admitRun(
          newRun('d-none', [E], '2026-11-03T12:00:00.000Z'),
          new Date(AT),
        ),
      ).rejects.toMatchObject({
        name: CAPTURES_DAMAGED_ERROR_NAME,
        damaged: [
          { machineRef: E, captureId: 'e2', reason: 'checksum mismatch' },
          { machineRef: E, captureId: 'e1', reason: 'cut short' },
        ],
      });
    });

    it('offers as the earliest recovery point one an intact capture allows, not a damaged one', async () => {
      const F = 'resource:default/df-01';
      await captureStore.insertCapture(
        captureOf('f1', F, '2026-10-01T00:00:00.000Z'),
      );
      await captureStore.markCaptureDamaged('f1', {
        at: AT,
        reason: 'cut short',
      });
      await captureStore.insertCapture(
        captureOf('f2', F, '2026-10-20T00:00:00.000Z'),
      );
      // Before A's oldest intact capture (a1, Nov 1), and F's damaged one is no older point.
      const refused = runStore.admitRun(
        newRun('d-too-early', [A, F], '2026-10-10T00:00:00.000Z'),
        new Date(AT),
      );
      await expect(refused).rejects.toBeInstanceOf(RecoveryPointTooEarlyError);
      await expect(refused).rejects.toMatchObject({
        machines: [
          { machineRef: A, oldestCaptureAt: '2026-11-01T00:00:00.000Z' },
          { machineRef: F, oldestCaptureAt: '2026-10-20T00:00:00.000Z' },
        ],
        earliestRecoveryPoint: '2026-11-01T00:00:00.000Z',
      });
    });
  },
);
