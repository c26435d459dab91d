import type { LoggerService } from '@backstage/backend-plugin-api';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { failedMachine } from '@backstage-recovery/plugin-recovery-common';
import type { MachineHandle } from '@backstage-recovery/plugin-recovery-node';
import { engineError } from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { chainGraph, chainNeeds, DATA, INFRA, WEB } from '../testing/chainSite';
import { runServiceOver } from '../testing/runService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import type { RunServiceOptions } from './RunService';
import { FailoverSupervision } from './supervision';

/*
 * A recovery engine restarted gracefully mid-run (`systemctl restart docker`: SIGTERM to dockerd)
 * answers the step under way with an error (`HTTP 500: failed to update store for object type
 * *libnetwork.endpoint`) and then stops answering: the host's failure, as when it is killed, not
 * the machine's whose step it was. A machine the engine fails while the host answers on is blamed.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const STORE_ERROR =
  "starting resource:default/data-01 failed: Docker engine 'fake' answered HTTP 500: failed to update store for object type *libnetwork.endpoint: bolt database not open";
const UNREACHABLE =
  "listing the lab failed: Docker engine 'fake' is unreachable at /run/fake.sock (ECONNREFUSED): is it running, and may the backend use it?";

/** A host whose engine fails data-01's start with STORE_ERROR, then answers as `after` says. */
class RestartingHost extends FakeHost {
  /** How the engine answers its n-th look at the lab after the failure (1-based). */
  constructor(private readonly answersLook: (n: number) => boolean) {
    super(chainNeeds);
  }
  private failedAt?: number;
  looks = 0;

  async startMachine(machine: MachineHandle) {
    if (machine.machineRef === DATA) {
      this.failedAt = Date.now();
      throw engineError(STORE_ERROR, 'fake', 'answered');
    }
    return super.startMachine(machine);
  }

  async listLabResources(runId?: string) {
    if (this.failedAt !== undefined) {
      this.looks++;
      if (!this.answersLook(this.looks))
        throw engineError(UNREACHABLE, 'fake', 'unreachable');
    }
    return super.listLabResources(runId);
  }
}

describe.each(databases.eachSupportedId())(
  'a machine step failed by the recovery engine, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
      for (const n of ['infra-01', 'data-01', 'web-01'])
        await captureStore.insertCapture(storedCapture(n));
    });

    async function testRun(
      host: FakeHost,
      timings: Partial<RunServiceOptions> = {},
    ) {
      const runs = runServiceOver(runStore, captureStore, host, chainGraph, {
        machineReadyTimeoutMs: 2_000,
        staleAfterMs: 60_000,
        engineGraceMs: 200,
        ...timings,
      });
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      return (await runStore.getRun(started.id))!;
    }

    it.each([
      ['stops answering at once', (_n: number) => false],
      // Its API still up for a moment as it shuts down; gone by the second look.
      ['stops answering a moment later', (n: number) => n === 1],
    ])(
      'fails the run at the host, blaming no machine, where the engine %s after its error',
      async (_how, answersLook) => {
        const host = new RestartingHost(answersLook);
        const run = await testRun(host);
        expect(run.status).toBe('failed');
        expect(run.error).toEqual({
          message: `hypervisor host fake stopped answering while ${DATA} was booting: ${STORE_ERROR}; asked again, it did not answer: ${UNREACHABLE}`,
          // The host's condition: the run covers no plan (failedAtHost).
          hostUnreachable: true,
        });
        // Readiness and owners' notices blame no machine for it.
        expect(failedMachine(run)).toBeUndefined();
        expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
          [INFRA, 'ready'],
          [DATA, 'failed'],
          [WEB, 'skipped'],
        ]);
        expect(run.steps.map(s => s.message)).not.toContainEqual(
          expect.stringMatching(/^resource:default\/data-01 failed/),
        );
      },
    );

    it('blames the machine where the host answers on, now and a moment later', async () => {
      const host = new RestartingHost(() => true);
      const run = await testRun(host);
      expect(run.status).toBe('failed');
      expect(run.error).toEqual({
        machineRef: DATA,
        message: `${DATA} failed: ${STORE_ERROR}`,
      });
      expect(failedMachine(run)).toBe(DATA);
      // Asked twice before the machine is blamed (the teardown asks no more of it).
      expect(host.looks).toBeGreaterThanOrEqual(2);
    });

    /*
     * A recovery engine that hangs (dockerd under SIGSTOP) never answers the step under way: its
     * deadline passes with no error of the engine's. The host is asked then, as after an error.
     */
    const PROBE_HUNG = `probe tcp:1 of component:default/database did not finish within 2 s`;

    it('fails the run at the host, blaming no machine, where a step never settles and the host does not answer either', async () => {
      const host = new HungHost(false);
      const run = await testRun(host, { stepTimeoutMs: 500 });
      expect(run.status).toBe('failed');
      expect(run.error).toEqual({
        message: `hypervisor host fake stopped answering while ${DATA} was booting: ${PROBE_HUNG}; asked again, it did not answer: asking hypervisor host fake what it holds of the run did not finish within 5 s`,
        hostUnreachable: true,
      });
      expect(failedMachine(run)).toBeUndefined();
      expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
        [INFRA, 'ready'],
        [DATA, 'failed'],
        [WEB, 'skipped'],
      ]);
      // Said once, as the run's failure: not as the machine's, and again after its console tail.
      expect(run.steps.map(s => s.message)).not.toContainEqual(
        expect.stringMatching(/^resource:default\/data-01 failed/),
      );
      expect(
        run.steps.filter(s => s.message === run.error!.message),
      ).toHaveLength(1);
    }, 20_000);

    it('blames the machine as before where a step never settles and the host answers', async () => {
      const host = new HungHost(true);
      const run = await testRun(host);
      expect(run.status).toBe('failed');
      expect(run.error).toEqual({
        machineRef: DATA,
        probe: 'tcp:1',
        message: `${DATA} failed: ${PROBE_HUNG}`,
      });
      expect(failedMachine(run)).toBe(DATA);
      // Asked once, after the step's deadline: no grace waited for, no second ask.
      expect(host.looksAfterHang).toHaveLength(1);
    });

    it("blames the machine without asking the host where its unanswered step had less time than an engine error's grace", async () => {
      // The probe had 2 s (the machine's budget), the grace is 5 s: as a probe in flight when the
      // budget ran out, it says nothing of the engine.
      const host = new HungHost(true);
      const run = await testRun(host, { engineGraceMs: 5_000 });
      expect(run.error).toEqual({
        machineRef: DATA,
        probe: 'tcp:1',
        message: `${DATA} failed: ${PROBE_HUNG}`,
      });
      expect(host.looksAfterHang).toHaveLength(0);
    });
  },
);

/**
 * A host whose engine never answers data-01's probes once it `hang`s (from the start, unless told
 * otherwise); asked what it holds of the run after that, it answers (`answers`) or does not either.
 */
class HungHost extends FakeHost {
  constructor(
    private readonly answers: boolean,
    public hang = true,
  ) {
    super(chainNeeds);
  }
  hungAt?: number;
  looksAfterHang: number[] = [];

  async probe(...args: Parameters<FakeHost['probe']>) {
    if (!this.hang || args[1].machineRef !== DATA) return super.probe(...args);
    this.hungAt ??= Date.now();
    return new Promise<never>(() => {});
  }

  async listLabResources(runId?: string) {
    if (this.hungAt !== undefined) {
      this.looksAfterHang.push(Date.now());
      if (!this.answers) return new Promise<never>(() => {});
    }
    return super.listLabResources(runId);
  }
}

const NO_ANSWER =
  'asked again, it did not answer: asking hypervisor host fake what it holds of the run did not finish within 5 s';

describe.each(databases.eachSupportedId())(
  'a recovery engine that hangs after the boot, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
      for (const n of ['infra-01', 'data-01', 'web-01'])
        await captureStore.insertCapture(storedCapture(n));
    });

    const timings = {
      machineReadyTimeoutMs: 500,
      probeIntervalMs: 10,
      stepTimeoutMs: 500,
      minReadyMs: 0,
      engineGraceMs: 200,
    };

    // The final check's failures go through the boot's (LabBoot.failed), which held the rule before
    // it was factored out: these pin that it still does.
    it.each([
      [
        'fails the run at the host, blaming no machine, where the host does not answer either',
        false,
      ],
      ['blames the machine where the host answers', true],
    ])(
      'in the final check: %s',
      async (_how, answers) => {
        const host = new HungHost(answers, false);
        // data-01 was ready; the engine hangs as web-01, the last, starts.
        const start = host.startMachine.bind(host);
        host.startMachine = async machine => {
          if (machine.machineRef === WEB) host.hang = true;
          return start(machine);
        };
        const runs = runServiceOver(runStore, captureStore, host, chainGraph, {
          ...timings,
          staleAfterMs: 60_000,
        });
        const started = await runs.start({
          entityRef: 'component:default/web',
          mode: 'test',
          trigger: 'user',
        });
        await runs.waitFor(started.id);
        await runs.shutdown();
        const run = (await runStore.getRun(started.id))!;
        const hung = `probe tcp:1 of component:default/database did not finish within 0.5 s after it was ready`;
        expect(run.status).toBe('failed');
        expect(run.error).toEqual(
          answers
            ? {
                machineRef: DATA,
                probe: 'tcp:1',
                message: `${DATA} failed: ${hung}`,
              }
            : {
                message: `hypervisor host fake stopped answering while ${DATA} was checked: ${hung}; ${NO_ANSWER}`,
                hostUnreachable: true,
              },
        );
        expect(failedMachine(run)).toBe(answers ? DATA : undefined);
      },
      20_000,
    );

    /** A failover of web that succeeded on `host`, its machines stopped since, and its supervision. */
    async function stoppedFailover(host: FakeHost, logger: LoggerService) {
      const runs = runServiceOver(runStore, captureStore, host, chainGraph, {
        ...timings,
        staleAfterMs: 60_000,
      });
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      expect((await runStore.getRun(started.id))!.status).toBe('succeeded');
      host.restartEngine(started.id);
      const providers = new ProviderRegistry();
      providers.addHypervisorHost(host);
      const supervision = new FailoverSupervision(
        runStore,
        providers,
        logger,
        mockServices.auditor.mock(),
        timings,
      );
      return { runId: started.id, supervision };
    }

    it("fails a failover's restart at the host, recording no machine degraded, where the engine hangs and the host does not answer either", async () => {
      const host = new HungHost(false, false);
      const warned: string[] = [];
      const logger = {
        ...mockServices.logger.mock(),
        child: () => logger,
        warn: (message: string, error?: Error) => {
          warned.push(`${message}: ${error?.message}`);
        },
      } as unknown as LoggerService;
      const { runId, supervision } = await stoppedFailover(host, logger);
      host.hang = true;

      await supervision.sweep();

      // Said as the host's failure; the next pass tries again, with no backoff.
      expect(warned).toContainEqual(
        `Could not supervise the failover: hypervisor host fake stopped answering while ${DATA} was started again: probe tcp:1 of component:default/database did not finish within 0.5 s; ${NO_ANSWER}`,
      );
      const run = (await runStore.getRun(runId))!;
      expect(run.supervision).toBeUndefined();
      expect(
        run.steps.filter(s => s.message.startsWith('Supervision: ')),
      ).toEqual([]);
    }, 20_000);

    it("records the failover degraded on the machine where the engine hangs its restart's probe and the host answers", async () => {
      const host = new HungHost(true, false);
      const { runId, supervision } = await stoppedFailover(
        host,
        mockServices.logger.mock(),
      );
      host.hang = true;

      await supervision.sweep();

      expect(
        (await runStore.getRun(runId))!.supervision?.degraded,
      ).toMatchObject({
        machineRef: DATA,
        message:
          'probe tcp:1 of component:default/database did not finish within 0.5 s',
        notStarted: [WEB],
      });
      expect(host.looksAfterHang).toHaveLength(1);
    });
  },
);
