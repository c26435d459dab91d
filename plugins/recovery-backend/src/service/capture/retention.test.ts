import { TestDatabases } from '@backstage/backend-test-utils';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../../database/CaptureStore';
import { migrate } from '../../database/migrations';
import { recordingAuditor } from '../../testing/auditor';
import { captureOf } from '../../testing/entities';
import { FakeCaptureSource } from '../../testing/FakeCaptureSource';
import { recordingLogger } from '../../testing/logger';
import { ProviderRegistry } from '../ProviderRegistry';
import { CaptureRetention } from './retention';

/*
 * Retention deletes recovery points on its own: each pass that removed captures (or what
 * unrecorded ones left), or failed to, is on the audit trail as the plugin's own, none for a pass
 * that found nothing to remove.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const DATA_01 = 'resource:default/data-01';
const locator: MachineLocator = {
  machineRef: DATA_01,
  engine: 'primary',
  container: 'data-01',
};
const at = (day: number) => new Date(Date.UTC(2026, 11, day)).toISOString();

/** A source whose engine holds what the ids in `leftovers` left, unrecorded; `fails` fails it. */
class LeavingSource extends FakeCaptureSource {
  leftovers: string[] = [];
  fails?: Error;
  discardFails?: Error;
  async discard(capture: { captureId: string }) {
    if (this.discardFails) throw this.discardFails;
    await super.discard(capture);
  }
  async removeUnrecorded() {
    if (this.fails) throw this.fails;
    return this.leftovers.splice(0);
  }
}

describe.each(databases.eachSupportedId())(
  'capture retention on %p',
  databaseId => {
    let store: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      store = new CaptureStore(knex);
      for (const [id, day] of [
        ['cap-1', 1],
        ['cap-2', 2],
        ['cap-3', 3],
      ] as const)
        await store.insertCapture({
          ...captureOf(id, DATA_01, at(day)),
          sizeBytes: day * 1000,
        });
    });

    const retentionOf = (keepLast: number, ...sources: FakeCaptureSource[]) => {
      const providers = new ProviderRegistry();
      for (const source of sources) providers.addCaptureSource(source);
      const auditor = recordingAuditor();
      const retention = new CaptureRetention(
        store,
        providers,
        recordingLogger(),
        keepLast,
        auditor,
      );
      return { retention, auditor };
    };

    it('records what pruning after a capture removed: the captures deleted and what unrecorded ones left', async () => {
      const source = new LeavingSource();
      source.leftovers = ['never-recorded'];
      const { retention, auditor } = retentionOf(1, source);

      await retention.tidyUp(source, locator);

      expect(source.discarded).toEqual(['cap-2', 'cap-1']);
      expect(auditor.events).toEqual([
        {
          eventId: 'capture-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            pass: 'after-capture',
            machineRef: DATA_01,
            engine: 'primary',
            keepLast: 1,
            captures: [
              { captureId: 'cap-2', createdAt: at(2), sizeBytes: 2000 },
              { captureId: 'cap-1', createdAt: at(1), sizeBytes: 1000 },
            ],
            unrecordedCaptureIds: ['never-recorded'],
          },
          ends: [{ status: 'succeeded', meta: undefined }],
        },
      ]);
    });

    it('records nothing where a pass found nothing to remove', async () => {
      const source = new LeavingSource();
      const { retention, auditor } = retentionOf(3, source);
      await retention.tidyUp(source, locator);
      await retention.tidyUp(new FakeCaptureSource(), locator);
      await retention.removeUnrecorded();
      expect(source.discarded).toEqual([]);
      expect(auditor.events).toEqual([]);
    });

    it('records a pass whose discard failed as failed, the captures deleted all the same and whose files were left', async () => {
      const source = new LeavingSource();
      source.discardFails = new Error('engine said no');
      const { retention, auditor } = retentionOf(2, source);

      await retention.tidyUp(source, locator);

      expect(auditor.events).toEqual([
        {
          eventId: 'capture-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            pass: 'after-capture',
            machineRef: DATA_01,
            engine: 'primary',
            keepLast: 2,
            captures: [
              { captureId: 'cap-1', createdAt: at(1), sizeBytes: 1000 },
            ],
            artifactsLeft: ['cap-1'],
            unrecordedCaptureIds: [],
          },
          ends: [
            { status: 'failed', meta: undefined, error: 'engine said no' },
          ],
        },
      ]);
    });

    it('leaves out of artifactsLeft the files the same pass swept as unrecorded, and succeeds', async () => {
      const source = new LeavingSource();
      source.discardFails = new Error('engine said no');
      // The sweep just after removes what the failed discard left.
      source.leftovers = ['cap-1'];
      const { retention, auditor } = retentionOf(2, source);

      await retention.tidyUp(source, locator);

      expect(auditor.events).toEqual([
        {
          eventId: 'capture-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            pass: 'after-capture',
            machineRef: DATA_01,
            engine: 'primary',
            keepLast: 2,
            captures: [
              { captureId: 'cap-1', createdAt: at(1), sizeBytes: 1000 },
            ],
            unrecordedCaptureIds: ['cap-1'],
          },
          ends: [{ status: 'succeeded', meta: undefined }],
        },
      ]);
    });

    it('records no pass nor sweep where an engine failed and nothing was removed: the warning only', async () => {
      const source = new LeavingSource();
      source.fails = new Error('engine primary gone');
      const logger = recordingLogger();
      const providers = new ProviderRegistry();
      providers.addCaptureSource(source);
      const auditor = recordingAuditor();
      const retention = new CaptureRetention(
        store,
        providers,
        logger,
        3,
        auditor,
      );

      await retention.tidyUp(source, locator);
      await retention.removeUnrecorded();

      expect(auditor.events).toEqual([]);
      expect(logger.lines.map(l => [l.level, l.message, l.error])).toEqual([
        [
          'warn',
          'Could not remove what unrecorded captures of the machine left',
          source.fails,
        ],
        [
          'warn',
          'Could not remove what unrecorded captures on the engine left',
          source.fails,
        ],
      ]);
    });

    it("records the sweep of unrecorded captures per engine, failed with the first engine's error", async () => {
      const primary = new LeavingSource('primary');
      const secondary = new LeavingSource('secondary');
      const quiet = new LeavingSource('quiet');
      const { retention, auditor } = retentionOf(3, primary, secondary, quiet);
      primary.leftovers = ['left-1', 'left-2'];
      secondary.fails = new Error('engine secondary gone');

      await retention.removeUnrecorded();
      // Found again nothing to remove, and the engine back: nothing more on record.
      secondary.fails = undefined;
      await retention.removeUnrecorded();

      expect(auditor.events).toEqual([
        {
          eventId: 'capture-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            pass: 'unrecorded-sweep',
            engines: [
              {
                engine: 'primary',
                unrecordedCaptureIds: ['left-1', 'left-2'],
              },
            ],
            failedEngines: ['secondary'],
          },
          ends: [
            {
              status: 'failed',
              meta: undefined,
              error: 'engine secondary gone',
            },
          ],
        },
      ]);

      quiet.leftovers = ['left-3'];
      await retention.removeUnrecorded();
      expect(auditor.events.slice(1)).toEqual([
        {
          eventId: 'capture-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            pass: 'unrecorded-sweep',
            engines: [{ engine: 'quiet', unrecordedCaptureIds: ['left-3'] }],
          },
          ends: [{ status: 'succeeded', meta: undefined }],
        },
      ]);
    });

    it('goes on where the auditor fails, and logs it', async () => {
      const source = new LeavingSource();
      const logger = recordingLogger();
      const providers = new ProviderRegistry();
      providers.addCaptureSource(source);
      const refused = new Error('audit log unavailable');
      const retention = new CaptureRetention(store, providers, logger, 2, {
        createEvent: async () => {
          throw refused;
        },
      });

      await retention.tidyUp(source, locator);

      expect(source.discarded).toEqual(['cap-1']);
      expect(logger.lines).toEqual([
        {
          level: 'warn',
          message: 'Could not record the audit event capture-retention',
          fields: {},
          error: refused,
        },
      ]);
    });
  },
);
