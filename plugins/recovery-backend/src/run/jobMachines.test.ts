import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  ANNOTATION_JOB,
  type CapturedMachineState,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  MachineHandle,
  RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { chainGraph, DATA, INFRA, WEB } from '../testing/chainSite';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';
import { FailoverSupervision } from './supervision';

/*
 * A machine that runs to completion (an init, a migration: `--restart=no`, `exit 0`) is a job when
 * its Resource says so (ANNOTATION_JOB): a run counts it ready once it exits with code 0 and starts
 * its dependents after; the final check and a kept failover's supervision leave it stopped. One
 * that must keep running and exits with code 0 fails as before, with a hint where its capture
 * shows it had exited so in production.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/**
 * A host whose machines of `exits` exit on their own with that code `afterMs` after their start
 * (undefined: never; 0: at once, before anything looked at them), as a job's process does;
 * `events` says when each started and exited.
 */
class JobHost extends FakeHost {
  readonly events: string[] = [];
  constructor(
    private readonly exits: Record<string, number | undefined>,
    private readonly afterMs = 30,
  ) {
    // Nothing waits for a job to be up: it is done, not serving.
    super({ [WEB]: [DATA] });
  }
  async startMachine(machine: MachineHandle) {
    await super.startMachine(machine);
    this.events.push(`start ${machine.machineRef}`);
    if (!(machine.machineRef in this.exits)) return;
    const code = this.exits[machine.machineRef];
    if (code === undefined) return;
    const exit = () => {
      this.exit(machine.id, code);
      this.events.push(`exit ${machine.machineRef}`);
    };
    if (this.afterMs === 0) exit();
    else setTimeout(exit, this.afterMs);
  }
}

/** The chain site with infra-01 a job. */
const jobGraph: RecoveryGraph = {
  ...chainGraph,
  machines: new Map(
    [...chainGraph.machines].map(([ref, m]) => [
      ref,
      ref === INFRA ? { ...m, job: true } : m,
    ]),
  ),
};

const exitedZero: CapturedMachineState = {
  status: 'exited',
  exitCode: 0,
  since: '2026-12-06T00:59:00Z',
};

describe.each(databases.eachSupportedId())(
  'a run of a site with a job machine, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
    });

    const capture = async (machineState?: CapturedMachineState) => {
      for (const n of ['infra-01', 'data-01', 'web-01'])
        await captureStore.insertCapture({
          ...storedCapture(n),
          ...(n === 'infra-01' && machineState && { machineState }),
        });
    };

    async function testRun(
      host: FakeHost,
      graph: RecoveryGraph,
      mode: 'test' | 'failover' = 'test',
    ) {
      const runs = runServiceOver(runStore, captureStore, host, graph, {
        staleAfterMs: 60_000,
      });
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode,
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      return (await runStore.getRun(started.id))!;
    }

    it('counts a job ready once it exits with code 0, and boots its dependents after it completed', async () => {
      await capture(exitedZero);
      const host = new JobHost({ [INFRA]: 0 });
      const run = await testRun(host, jobGraph);

      expect(run.error).toBeUndefined();
      expect(run.status).toBe('succeeded');
      expect(run.plan.machines.find(m => m.machineRef === INFRA)?.job).toBe(
        true,
      );
      // data-01 waits for infra-01's completion, not its start.
      expect(host.events).toEqual([
        `start ${INFRA}`,
        `exit ${INFRA}`,
        `start ${DATA}`,
        `start ${WEB}`,
      ]);
      expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
        [INFRA, 'ready'],
        [DATA, 'ready'],
        [WEB, 'ready'],
      ]);
      const said = run.steps.map(s => s.message);
      expect(said).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^Ready: a job \\(${ANNOTATION_JOB}\\), restored in [0-9.]+ s, completed with exit code 0 [0-9.]+ s after start; its probes \\(tcp:1 of component:default/dns\\) were not checked: a job done serves nothing$`,
          ),
        ),
      );
      // Stopped since, it is not what the final check looks at.
      expect(said).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^All 3 machines verified in [0-9.]+ s, 1 of them a job \\(${ANNOTATION_JOB}\\) that completed; the final check found the others still running and answering$`,
          ),
        ),
      );
      // Nor does a job done warn as a machine ready only in that it runs.
      expect(
        run.steps.filter(s => s.machineRef === INFRA && s.level !== 'info'),
      ).toEqual([]);
    });

    it('fails a job that exits with another code, naming the code, with its console tail; its dependents are skipped', async () => {
      await capture();
      const host = new JobHost({ [INFRA]: 3 });
      const run = await testRun(host, jobGraph);

      expect(run.status).toBe('failed');
      expect(run.error?.message).toBe(
        `${INFRA} failed: a job (${ANNOTATION_JOB}) that exited with code 3, not 0`,
      );
      expect(run.machines.find(m => m.machineRef === INFRA)).toMatchObject({
        phase: 'failed',
        logTail: `console of ${INFRA}`,
      });
      expect(host.events).toEqual([`start ${INFRA}`, `exit ${INFRA}`]);
      expect(
        run.machines.filter(m => m.machineRef !== INFRA).map(m => m.phase),
      ).toEqual(['skipped', 'skipped']);
    });

    it('fails a job that does not complete within its ready timeout', async () => {
      await capture();
      const run = await testRun(new JobHost({ [INFRA]: undefined }), jobGraph);

      expect(run.status).toBe('failed');
      expect(run.error?.message).toBe(
        `${INFRA} failed: a job (${ANNOTATION_JOB}) that did not complete within 0.3 s of its start: it still runs (recovery.runs.machineReadyTimeout)`,
      );
    });

    it('fails a machine not said to be a job that exits with code 0, suggesting the annotation where its capture shows it exited so in production', async () => {
      await capture(exitedZero);
      const run = await testRun(new JobHost({ [INFRA]: 0 }, 0), chainGraph);
      // Said from the start, with the capture it restores.
      expect(run.steps).toContainEqual(
        expect.objectContaining({
          machineRef: INFRA,
          level: 'warning',
          message: expect.stringMatching(
            new RegExp(
              `was exited \\(code 0, since 2026-12-06T00:59:00Z\\): the capture holds a machine that was not serving, so this run passing proves that capture boots, not that production was well; if ${INFRA} is a job that runs to completion`,
            ),
          ),
        }),
      );
      expect(run.status).toBe('failed');
      expect(run.error?.message).toBe(
        `${INFRA} failed: stopped with exit code 0, as its capture of ${(await captureStore.getCapture('cap-infra-01'))!.createdAt} shows it had in production (restart policy no): if ${INFRA} is a job that runs to completion (an init, a migration), annotate its Resource with ${ANNOTATION_JOB}: 'true' and a run counts it ready once it exits with code 0`,
      );
    });

    it('suggests nothing where the capture shows the machine running, or a restart policy that would have started it again', async () => {
      await capture({ status: 'running' });
      const running = await testRun(new JobHost({ [INFRA]: 0 }, 0), chainGraph);
      expect(running.error?.message).toBe(
        `${INFRA} failed: stopped with exit code 0`,
      );

      const always = await captureStore.getCapture('cap-infra-01');
      await captureStore.insertCapture({
        ...always!,
        id: 'cap-always',
        createdAt: new Date(Date.now() + 1000).toISOString(),
        machineState: exitedZero,
        runtime: { ...always!.runtime, restartPolicy: { name: 'always' } },
      });
      const restarted = await testRun(
        new JobHost({ [INFRA]: 0 }, 0),
        chainGraph,
      );
      expect(restarted.error?.message).toBe(
        `${INFRA} failed: stopped with exit code 0`,
      );
    });

    it("leaves a kept failover's completed job stopped: supervision starts only what must keep running", async () => {
      await capture(exitedZero);
      const host = new JobHost({ [INFRA]: 0 });
      const run = await testRun(host, jobGraph, 'failover');
      expect(run.status).toBe('succeeded');
      // Its hand-over says the job apart: it completed, and runs no more.
      expect(run.steps.map(s => s.message)).toContain(
        `Kept 3 containers and 1 network on fake, labelled with run ${run.id} (left running: ${DATA}, ${WEB}; completed: ${INFRA}): a failover is never torn down automatically; release it once production runs on its primary machines again (recovery release ${run.id}, or POST /runs/${run.id}/release)`,
      );
      const options = {
        machineReadyTimeoutMs: 500,
        probeIntervalMs: 10,
        stepTimeoutMs: 60_000,
        minReadyMs: 0,
      };
      const providers = new ProviderRegistry();
      providers.addHypervisorHost(host);
      const supervision = new FailoverSupervision(
        runStore,
        providers,
        mockServices.logger.mock(),
        mockServices.auditor.mock(),
        options,
      );

      // Nothing stopped but the job: nothing to start.
      host.events.length = 0;
      expect(await supervision.supervise(host, run.id)).toEqual({
        kind: 'running',
      });
      expect(host.events).toEqual([]);
      // Nor is the failover degraded by it, which readiness would name.
      expect((await runStore.getRun(run.id))!.supervision).toBeUndefined();

      // The engine restarted: the others are started again, the job is not run again.
      host.restartEngine(run.id);
      const outcome = await supervision.supervise(host, run.id);
      expect(outcome).toMatchObject({
        kind: 'restarted',
        machineRefs: [DATA, WEB],
      });
      expect(host.events).toEqual([`start ${DATA}`, `start ${WEB}`]);
      expect((await runStore.getRun(run.id))!.steps.at(-1)?.message).toMatch(
        new RegExp(
          `^Supervision: every machine \\(2\\) found stopped on fake; 2 machines started again in wave order`,
        ),
      );
    });
  },
);

describe('the job annotation in a plan from the catalog', () => {
  const job = (value?: string): Entity => {
    const entity = machineEntity('init2-01');
    if (value !== undefined)
      entity.metadata.annotations![ANNOTATION_JOB] = value;
    return entity;
  };
  const planOf = async (
    machine: Entity,
    service: Entity = componentEntity('app2', ['resource:default/init2-01']),
  ) => {
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities: [service, machine] }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    return new PlanService(graphs).plan('component:default/app2');
  };

  it.each([
    ['true', true],
    ['True', true],
    ['false', undefined],
    [undefined, undefined],
  ])('%s: job %s', async (value, expected) => {
    const planned = await planOf(job(value));
    expect(planned.plan!.machines[0].job).toBe(expected);
    expect(planned.graph.problems).toEqual([]);
  });

  it('names a value neither true nor false, and boots the machine as one that must keep running', async () => {
    const planned = await planOf(job('yes'));
    expect(planned.plan!.machines[0].job).toBeUndefined();
    expect(planned.graph.problems).toEqual([
      {
        entityRef: 'resource:default/init2-01',
        annotation: ANNOTATION_JOB,
        message: `Machine resource:default/init2-01: ${ANNOTATION_JOB} "yes" is neither 'true' nor 'false', so it is booted as a machine that must keep running; set it to 'true' if it runs to completion (an init, a migration)`,
      },
    ]);
  });

  it('says the annotation belongs on the machine where a service carries it', async () => {
    const app2 = componentEntity('app2', ['resource:default/init2-01']);
    app2.metadata.annotations = { [ANNOTATION_JOB]: 'true' };
    const planned = await planOf(job(), app2);
    expect(planned.plan!.machines[0].job).toBeUndefined();
    expect(planned.graph.problems).toEqual([
      expect.objectContaining({
        entityRef: 'component:default/app2',
        annotation: ANNOTATION_JOB,
        message: expect.stringContaining(
          `is read only on a machine Resource (spec.type: machine), so it is ignored here`,
        ),
      }),
    ]);
  });
});
