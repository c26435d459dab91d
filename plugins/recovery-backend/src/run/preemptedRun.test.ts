import { TestDatabases } from '@backstage/backend-test-utils';
import type {
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';

/* A test recovery a failover preempts says, as its driver stops, which failover interrupted it. */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const WEB = 'resource:default/web-01';
const service: ServiceNode = {
  ref: 'component:default/web',
  machines: [WEB],
  dependsOn: [],
  probes: [{ kind: 'tcp', port: 1 }],
};
const graph: RecoveryGraph = {
  rootRef: service.ref,
  roots: [service.ref],
  services: new Map([[service.ref, service]]),
  machines: new Map([
    [
      WEB,
      {
        ref: WEB,
        locator: { machineRef: WEB, engine: 'primary', container: 'web-01' },
      },
    ],
  ]),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};

describe.each(databases.eachSupportedId())(
  'a test recovery preempted by a failover, on %s',
  databaseId => {
    it('ends its timeline naming the failover that interrupted it, not as finished elsewhere', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const runStore = new RunStore(knex);
      const captureStore = new CaptureStore(knex);
      await captureStore.insertCapture(storedCapture('web-01'));
      // The test run's machine never answers its probe: it holds the host until preempted.
      const host = new FakeHost({});
      const probe = host.probe.bind(host);
      let testRunId = '';
      host.probe = (lab, machine, spec) =>
        machine.runId === testRunId
          ? new Promise<never>(() => {})
          : probe(lab, machine, spec);
      const runs = runServiceOver(runStore, captureStore, host, graph, {
        machineReadyTimeoutMs: 60_000,
        staleAfterMs: 60_000,
      });
      const asked = { entityRef: service.ref, trigger: 'user' as const };
      const test = await runs.start({ ...asked, mode: 'test' });
      testRunId = test.id;
      await vi.waitFor(
        async () =>
          expect((await runStore.getRun(test.id))!.machines[0].phase).toBe(
            'verifying',
          ),
        { timeout: 10_000, interval: 20 },
      );
      const failover = await runs.start({ ...asked, mode: 'failover' });
      await runs.waitFor(test.id);
      await runs.waitFor(failover.id);
      await runs.shutdown();

      const interrupted = (await runStore.getRun(test.id))!;
      expect(interrupted.status).toBe('interrupted');
      expect(
        interrupted.steps
          .filter(s => s.message.startsWith('Stopped driving'))
          .map(s => [s.level, s.message]),
      ).toEqual([
        [
          'error',
          `Stopped driving: interrupted by failover run ${failover.id}, which preempted it; removed 1 container and 1 network`,
        ],
      ]);
    });
  },
);
