import { TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import {
  engineError,
  type RecoveryGraph,
  type ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { captureOf } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';

/*
 * A run that fails says why once in its timeline (GET /runs/:id's steps): the machine that failed,
 * or the host that stopped answering, in one line, not the same line again as the run ends.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const [DB, WEB] = ['resource:default/db-01', 'resource:default/web-01'];
const SHOP = 'component:default/shop';

/** shop on web-01, which waits for db-01: two waves, a tcp probe each. */
const graph: RecoveryGraph = {
  rootRef: SHOP,
  roots: [SHOP],
  services: new Map<string, ServiceNode>([
    [
      SHOP,
      {
        ref: SHOP,
        machines: [WEB],
        dependsOn: ['component:default/db'],
        probes: [{ kind: 'tcp', port: 80 }],
      },
    ],
    [
      'component:default/db',
      {
        ref: 'component:default/db',
        machines: [DB],
        dependsOn: [],
        probes: [{ kind: 'tcp', port: 5432 }],
      },
    ],
  ]),
  machines: new Map(
    [DB, WEB].map(ref => [
      ref,
      { ref, locator: { machineRef: ref, engine: 'primary', container: ref } },
    ]),
  ),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};

describe.each(databases.eachSupportedId())(
  'a failed run, on %p',
  databaseId => {
    async function runOn(
      host: FakeHost,
      mode: RecoveryRun['mode'] = 'test',
    ): Promise<RecoveryRun> {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const runStore = new RunStore(knex);
      const captureStore = new CaptureStore(knex);
      for (const machineRef of [DB, WEB])
        await captureStore.insertCapture(
          captureOf(
            `cap-${machineRef.split('/')[1]}`,
            machineRef,
            new Date().toISOString(),
          ),
        );
      const runs = runServiceOver(runStore, captureStore, host, graph);
      const started = await runs.start({
        entityRef: SHOP,
        mode,
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      return (await runStore.getRun(started.id))!;
    }

    /** The timeline's lines (as GET /runs/:id gives them) that begin with `failure`. */
    const saying = (run: RecoveryRun, failure: string) =>
      run.steps
        .filter(s => s.message.startsWith(failure))
        .map(s => ({
          level: s.level,
          message: s.message,
          ...(s.machineRef && { machineRef: s.machineRef }),
        }));

    it("says a machine's failed probe once, at the machine", async () => {
      // web-01 needs db-01, which never comes up: its probe is refused until the ready timeout.
      const host = new FakeHost({ [WEB]: [DB], [DB]: ['resource:default/x'] });
      const run = await runOn(host);
      expect(run.status).toBe('failed');
      const failure = `${DB} failed: probe tcp:5432 of component:default/db did not pass within 0.3 s: connection to ${DB}:5432 refused`;
      expect(run.error).toEqual({
        machineRef: DB,
        probe: 'tcp:5432',
        message: failure,
      });
      expect(saying(run, `${DB} failed`)).toEqual([
        { level: 'error', machineRef: DB, message: failure },
      ]);
    });

    it.each([
      ['that stopped answering mid-boot', 'inspectMachine'],
      ['unreachable from the start', 'listLabResources'],
    ] as const)('says a host %s once', async (_when, step) => {
      const host = new FakeHost({});
      host[step] = async () => {
        throw engineError(
          "Docker engine 'fake' is unreachable at /run/fake.sock (ECONNREFUSED)",
          'fake',
          'unreachable',
        );
      };
      const run = await runOn(host);
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ hostUnreachable: true });
      expect(saying(run, 'hypervisor host fake')).toEqual([
        { level: 'error', message: run.error!.message },
      ]);
    });

    it("says a failover's failed machine at the machine, then in the run's error's words with what it keeps", async () => {
      const host = new FakeHost({ [WEB]: [DB], [DB]: ['resource:default/x'] });
      const run = await runOn(host, 'failover');
      expect(run.status).toBe('failed');
      const failure = `${DB} failed: probe tcp:5432 of component:default/db did not pass within 0.3 s: connection to ${DB}:5432 refused`;
      const kept = `kept 1 container and 1 network on fake, labelled with run ${run.id} (not ready: ${DB}): a failover is never torn down automatically`;
      expect(run.error).toEqual({
        machineRef: DB,
        probe: 'tcp:5432',
        message: `${failure}; ${kept}`,
      });
      // The run's line is its error's, which the portal and the CLI fold into the run's outcome.
      expect(saying(run, `${DB} failed`)).toEqual([
        { level: 'error', machineRef: DB, message: failure },
        { level: 'error', message: run.error!.message },
      ]);
    });

    it('says each machine the final check found fallen over once, at that machine', async () => {
      // Both come up; then both stop, before the final check, which fails the run on the first.
      const host = new FakeHost({});
      const inspect = host.inspectMachine.bind(host);
      let checks = 0;
      host.inspectMachine = async machine => {
        const state = await inspect(machine);
        // Each machine is inspected at least once while it boots; the final check comes after.
        return ++checks > 2 ? { running: false, exitCode: 3 } : state;
      };
      const run = await runOn(host);
      expect(run.status).toBe('failed');
      expect(run.error?.machineRef).toBe(DB);
      for (const machineRef of [DB, WEB]) {
        expect(saying(run, `${machineRef} failed`)).toEqual([
          {
            level: 'error',
            machineRef,
            message: `${machineRef} failed: stopped with exit code 3 after it was ready`,
          },
        ]);
      }
    });
  },
);
