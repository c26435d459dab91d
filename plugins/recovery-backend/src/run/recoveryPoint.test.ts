import { TestDatabases } from '@backstage/backend-test-utils';
import type {
  LabHandle,
  RecoveryGraph,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { FakeHost } from '../testing/FakeHost';
import { storedCapture } from '../testing/entities';
import { runServiceOver } from '../testing/runService';

const WEB = 'component:default/web';
const WEB_01 = 'resource:default/web-01';
const DAY = 86_400_000;

const graph: RecoveryGraph = {
  rootRef: WEB,
  roots: [WEB],
  services: new Map([
    [
      WEB,
      {
        ref: WEB,
        machines: [WEB_01],
        dependsOn: [],
        probes: [{ kind: 'tcp', port: 1 }],
      },
    ],
  ]),
  machines: new Map([
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

/** A host that keeps which capture it restored, in order. */
class RecordingHost extends FakeHost {
  readonly restored: string[] = [];
  async restoreMachine(lab: LabHandle, capture: RestorableCapture) {
    this.restored.push(capture.captureId);
    return super.restoreMachine(lab, capture);
  }
}

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'a run to a recovery point on %s',
  databaseId => {
    it('restores the capture of then, says the point in its timeline and weighs that capture against the RPO at the point', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      const runStore = new RunStore(knex);
      const now = Date.now();
      // Three days old (before the bad change), and a minute old.
      await captureStore.insertCapture({
        ...storedCapture('web-01'),
        id: 'cap-old',
        createdAt: new Date(now - 3 * DAY).toISOString(),
      });
      await captureStore.insertCapture({
        ...storedCapture('web-01'),
        id: 'cap-new',
        createdAt: new Date(now - 60_000).toISOString(),
      });
      const host = new RecordingHost({});
      const runs = runServiceOver(runStore, captureStore, host, graph);
      const runTo = async (recoveryPoint: string) => {
        const started = await runs.start({
          entityRef: WEB,
          mode: 'test',
          trigger: 'user',
          recoveryPoint,
        });
        expect(started.recoveryPoint).toBe(recoveryPoint);
        await runs.waitFor(started.id);
        return (await runStore.getRun(started.id))!;
      };
      const rpoWarnings = (steps: Array<{ message: string }>) =>
        steps
          .map(s => s.message)
          .filter(m => m.startsWith('Restores its capture of'));

      // Half a day after the capture: within the RPO at the point, though three days before the run.
      const close = new Date(now - 2.5 * DAY).toISOString();
      const first = await runTo(close);
      expect(first.status).toBe('succeeded');
      expect(host.restored).toEqual(['cap-old']);
      expect(first.machines.map(m => [m.captureId, m.capturedAt])).toEqual([
        ['cap-old', new Date(now - 3 * DAY).toISOString()],
      ]);
      expect(first.steps[0].message).toBe(
        `Test recovery of ${WEB} on fake: 1 wave, 1 machine, to the recovery point ${close}`,
      );
      expect(first.steps.map(s => s.message)).toContainEqual(
        `1 machine verified in ${first.rtoSeconds} s; the final check found it still running and answering`,
      );
      expect(rpoWarnings(first.steps)).toEqual([]);

      // A day and a half after it: over the RPO at the point, and said so.
      const later = new Date(now - 1.5 * DAY).toISOString();
      const second = await runTo(later);
      expect(host.restored).toEqual(['cap-old', 'cap-old']);
      expect(rpoWarnings(second.steps)).toEqual([
        `Restores its capture of ${new Date(now - 3 * DAY).toISOString()}, 36 h old at the recovery point, over the RPO of 24 h: a recovery from it would lose what changed since`,
      ]);
    });
  },
);
