import { TestDatabases } from '@backstage/backend-test-utils';
import type {
  LabHandle,
  RecoveryGraph,
  RestorableCapture,
  TransferProgress,
  TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';
import { progressSteps } from './progressSteps';

const WEB = 'component:default/web';
const WEB_01 = 'resource:default/web-01';

const line = (message: string, final = false): TransferProgress => ({
  message,
  what: 'volume /data',
  doneBytes: 1,
  elapsedMs: 1,
  final,
});

describe('progressSteps', () => {
  it('writes the lines in the order said, one after another, and none once done', async () => {
    const written: string[] = [];
    const failed: unknown[] = [];
    let writing = 0;
    const recorder = {
      step: async (message: string, machineRef?: string) => {
        writing += 1;
        expect(writing).toBe(1);
        // The first write is the slowest: a write not waited for would land after the second.
        await sleep(message === 'first' ? 30 : 1);
        writing -= 1;
        if (message === 'broken') throw new Error('database gone');
        written.push(`${machineRef}: ${message}`);
      },
    };
    const steps = progressSteps(recorder, WEB_01, e => failed.push(e));
    steps.listener(line('first'));
    steps.listener(line('broken'));
    steps.listener(line('second', true));
    await steps.done();
    steps.listener(line('late'));
    await sleep(40);
    expect(written).toEqual([`${WEB_01}: first`, `${WEB_01}: second`]);
    expect(failed).toEqual([new Error('database gone')]);
  });
});

const graph: RecoveryGraph = {
  rootRef: WEB,
  roots: [WEB],
  services: new Map([
    [WEB, { ref: WEB, machines: [WEB_01], dependsOn: [], probes: [] }],
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

/** A host that says how far its verification and restore are, and once more after its restore answered. */
class TransferringHost extends FakeHost {
  sizes: Array<number | undefined> = [];

  async verifyCapture(
    capture: RestorableCapture,
    options: { progress?: TransferProgressListener } = {},
  ) {
    this.sizes.push(capture.sizeBytes);
    options.progress?.(line('Verifying volume /data: 8.0 MiB of 64.0 MiB'));
    options.progress?.(line('Verified volume /data: 64.0 MiB in 2.0 s', true));
  }

  async restoreMachine(
    lab: LabHandle,
    capture: RestorableCapture,
    options: { progress?: TransferProgressListener } = {},
  ) {
    this.sizes.push(capture.sizeBytes);
    options.progress?.(line('Restoring volume /data: 8.0 MiB of 64.0 MiB'));
    options.progress?.(line('Restored volume /data: 64.0 MiB in 3.0 s', true));
    setTimeout(() => options.progress?.(line('Late line')), 0);
    return super.restoreMachine(lab, capture);
  }
}

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  "a run's transfer progress on %s",
  databaseId => {
    it("is in the machine's timeline: its verification's before the lab, its restore's before it is restored", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      const runStore = new RunStore(knex);
      const capture = { ...storedCapture('web-01'), sizeBytes: 70_000_000 };
      await captureStore.insertCapture(capture);
      const host = new TransferringHost({});
      const runs = runServiceOver(runStore, captureStore, host, graph);
      const started = await runs.start({
        entityRef: WEB,
        mode: 'test',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe('succeeded');
      // The capture's size, for the lines' totals.
      expect(host.sizes).toEqual([70_000_000, 70_000_000]);
      const all = run.steps.map(s => s.message);
      const at = (prefix: string) => all.findIndex(m => m.startsWith(prefix));
      const machineLines = run.steps
        .filter(
          s => s.machineRef === WEB_01 && /^(Verif|Restor)/.test(s.message),
        )
        .map(s => s.message);
      expect(machineLines).toEqual([
        'Verifying volume /data: 8.0 MiB of 64.0 MiB',
        'Verified volume /data: 64.0 MiB in 2.0 s',
        expect.stringMatching(
          /^Restoring capture \S+ of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
        ),
        'Restoring volume /data: 8.0 MiB of 64.0 MiB',
        'Restored volume /data: 64.0 MiB in 3.0 s',
      ]);
      expect(at('Verifying volume')).toBeGreaterThan(at('Verifying captures'));
      expect(at('Verified volume')).toBeLessThan(at('Verified captures'));
      expect(at('Restoring volume')).toBeGreaterThan(at('Wave 1: booting'));
      expect(at('Restored volume')).toBeLessThan(at('Ready: restored in'));
      expect(all).not.toContain('Late line');
    });
  },
);
