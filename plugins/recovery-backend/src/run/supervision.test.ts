import type {
  AuditorService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import {
  formatUtcTime,
  withoutNetworkSince,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineHandle } from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { recordingAuditor } from '../testing/auditor';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import {
  FailoverSupervision,
  inWaveOrder,
  supervisionStep,
} from './supervision';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { chainGraph, chainNeeds, DATA, INFRA, WEB } from '../testing/chainSite';
import { runServiceOver } from '../testing/runService';

/*
 * A failover that succeeded serves production. The recovery engine restarted (or its host
 * rebooted) leaves its machines exited, and no restart policy brings them back: supervision starts
 * them again in the plan's wave order, each gated by its probes, and says so on the timeline.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/** A host whose engine lists a run's machines last made first, as an engine may: not in boot order. */
class ListingHost extends FakeHost {
  async reattach(runId: string) {
    const kept = await super.reattach(runId);
    return kept && { ...kept, machines: [...kept.machines].reverse() };
  }
}
/** A host that tells when each machine stopped, as an engine's FinishedAt does. */
class StopTimeHost extends ListingHost {
  readonly stopTimes = new Map<string, string>();
  exit(machineId: string, exitCode: number) {
    super.exit(machineId, exitCode);
    this.stopTimes.set(machineId, new Date().toISOString());
  }
  async inspectMachine(machine: MachineHandle) {
    const state = await super.inspectMachine(machine);
    return state.running
      ? state
      : { ...state, stoppedAt: this.stopTimes.get(machine.id) };
  }
}
/**
 * A host where web-01 runs in data-01's network namespace (`--network container:`), as an engine
 * does: data-01 stopping leaves web-01 running without network, and only a restart of web-01
 * after data-01 started joins it to data-01's namespace again.
 */
class SharingHost extends ListingHost {
  readonly restarted: string[] = [];
  private readonly cutOff = new Set<string>();
  /** When each machine last started, as an engine's StartedAt (a counter: only the order counts). */
  private readonly startedAt = new Map<string, number>();
  private starts = 0;
  /** data-01 restarted by hand (`docker restart`): up again at once, web-01 left in its old namespace. */
  restartByHand(runId: string) {
    const data = `${runId}/${DATA}`;
    this.startedAt.set(data, ++this.starts);
    const web = data.replace(DATA, WEB);
    this.stopAnswering(web);
    this.cutOff.add(web);
  }
  exit(machineId: string, exitCode: number) {
    super.exit(machineId, exitCode);
    if (machineId.endsWith(`/${DATA}`)) {
      const web = machineId.replace(DATA, WEB);
      this.stopAnswering(web);
      this.cutOff.add(web);
    }
  }
  async inspectMachine(machine: MachineHandle) {
    const state = await super.inspectMachine(machine);
    const started = this.startedAt.get(machine.id);
    const withStart =
      state.running && started !== undefined
        ? { ...state, startedAt: new Date(started * 1000).toISOString() }
        : state;
    return machine.machineRef === WEB
      ? { ...withStart, sharesNetworkOf: machine.id.replace(WEB, DATA) }
      : withStart;
  }
  async startMachine(machine: MachineHandle) {
    // A running machine's start changes nothing, as the engine's (304).
    if (this.cutOff.has(machine.id)) return;
    await super.startMachine(machine);
    this.startedAt.set(machine.id, ++this.starts);
  }
  async restartMachine(machine: MachineHandle) {
    this.restarted.push(machine.machineRef);
    this.cutOff.delete(machine.id);
    await this.startMachine(machine);
  }
}
/** A SharingHost whose engine refuses to restart a machine: it stays where it was. */
class RestartRefusingHost extends SharingHost {
  async restartMachine(machine: MachineHandle) {
    this.restarted.push(machine.machineRef);
    throw new Error('engine refused the restart');
  }
}
/** A logger that keeps what was warned, with the fields of its children. */
function recordingLogger(
  warned: Array<{ fields: object; message: string }>,
  fields: object = {},
): LoggerService {
  return {
    error() {},
    info() {},
    debug() {},
    warn: (message: string) => {
      warned.push({ fields, message });
    },
    child: (more: object) => recordingLogger(warned, { ...fields, ...more }),
  } as LoggerService;
}
const options = {
  machineReadyTimeoutMs: 500,
  probeIntervalMs: 10,
  stepTimeoutMs: 60_000,
  minReadyMs: 0,
};

describe('inWaveOrder', () => {
  const handle = (machineRef: string) => ({
    runId: 'r',
    machineRef,
    id: machineRef,
    hostnames: [],
  });
  it("groups the stopped machines by the plan's waves, in boot order, those it does not know last", () => {
    const plan = { waves: [[INFRA], [DATA, 'resource:default/b'], [WEB]] };
    const waves = inWaveOrder({ plan } as never, [
      handle(WEB),
      handle('resource:default/gone'),
      handle('resource:default/b'),
      handle(INFRA),
    ]);
    expect(waves.map(w => w.map(m => m.machineRef))).toEqual([
      [INFRA],
      ['resource:default/b'],
      [WEB],
      ['resource:default/gone'],
    ]);
  });
});

describe('supervisionStep', () => {
  it("says a one-machine failover's machine found stopped, not that its host restarted: no host tells that", () => {
    expect(
      supervisionStep(1, 'recovery', 1, {
        kind: 'restarted',
        machineRefs: [DATA],
        seconds: 2.5,
      }),
    ).toBe(
      `Supervision: ${DATA} found stopped on recovery; 1 machine started again in wave order in 2.5 s (${DATA}; restart 1 of this failover)`,
    );
  });
});

describe.each(databases.eachSupportedId())(
  'supervision of a kept failover, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    afterEach(() => {
      vi.useRealTimers();
    });

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
      for (const n of ['infra-01', 'data-01', 'web-01'])
        await captureStore.insertCapture(storedCapture(n));
    });

    /** A failover of web that succeeded on `host`, and the supervision of that host. */
    async function failedOver(
      host: FakeHost,
      logger: LoggerService = mockServices.logger.mock(),
      auditor: AuditorService = mockServices.auditor.mock(),
    ) {
      const runs = runServiceOver(runStore, captureStore, host, chainGraph, {
        ...options,
        staleAfterMs: 60_000,
      });
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe('succeeded');
      host.started.length = 0;
      const supervision = new FailoverSupervision(
        runStore,
        providersOf(host),
        logger,
        auditor,
        options,
      );
      return { runId: run.id, supervision };
    }

    const providersOf = (host: FakeHost) => {
      const providers = new ProviderRegistry();
      providers.addHypervisorHost(host);
      return providers;
    };
    const running = async (host: FakeHost, runId: string) =>
      Promise.all(
        (await host.reattach(runId))!.machines.map(async m => [
          m.machineRef,
          (await host.inspectMachine(m)).running,
        ]),
      );
    const supervisionSteps = async (runId: string) =>
      (await runStore.getRun(runId))!.steps.filter(s =>
        s.message.startsWith('Supervision: '),
      );

    it('starts every machine an engine restart stopped again in wave order, each ready before the next wave, and says so', async () => {
      const host = new ListingHost(chainNeeds);
      const { runId, supervision } = await failedOver(host);
      host.restartEngine(runId);

      await supervision.sweep();

      // All at once, data-01 and web-01 would start before what they need and never answer.
      expect(host.started).toEqual([INFRA, DATA, WEB]);
      expect(await running(host, runId)).toEqual(
        expect.arrayContaining([
          [INFRA, true],
          [DATA, true],
          [WEB, true],
        ]),
      );
      const steps = await supervisionSteps(runId);
      expect(steps).toHaveLength(1);
      expect(steps[0].level).toBe('warning');
      expect(steps[0].message).toMatch(
        new RegExp(
          `^Supervision: every machine \\(3\\) found stopped on fake; 3 machines started again in wave order in [0-9.]+ s \\(${INFRA}, ${DATA}, ${WEB}; restart 1 of this failover\\)$`,
        ),
      );
      // The run stays what it was: a succeeded failover, restarted once, not degraded.
      const run = (await runStore.getRun(runId))!;
      expect(run.status).toBe('succeeded');
      expect(run.supervision).toEqual({
        restarts: 1,
        lastRestartAt: steps[0].at,
      });

      // Nothing stopped since: nothing started, nothing said.
      await supervision.sweep();
      expect(host.started).toEqual([INFRA, DATA, WEB]);
      expect(await supervisionSteps(runId)).toHaveLength(1);

      // Restarted again: counted.
      host.restartEngine(runId);
      await supervision.sweep();
      expect((await supervisionSteps(runId))[1].message).toContain(
        'restart 2 of this failover',
      );
      expect((await runStore.getRun(runId))!.supervision?.restarts).toBe(2);
    });

    it('starts only the machines that stopped', async () => {
      const host = new ListingHost(chainNeeds);
      const { runId, supervision } = await failedOver(host);
      host.exit(`${runId}/${WEB}`, 137);

      await supervision.sweep();

      expect(host.started).toEqual([WEB]);
      const [step] = await supervisionSteps(runId);
      expect(step.message).toMatch(
        /^Supervision: 1 machine of 3 found stopped on fake; 1 machine started again in wave order in [0-9.]+ s \(resource:default\/web-01; restart 1 of this failover\)$/,
      );
    });

    it("restarts, after a machine it brought back, the running machine in that one's network namespace, and says why", async () => {
      const host = new SharingHost(chainNeeds);
      const { runId, supervision } = await failedOver(host);
      host.exit(`${runId}/${DATA}`, 137);

      await supervision.sweep();

      // data-01 started, then web-01 restarted (not started: it was running) to join its namespace again.
      expect(host.started).toEqual([DATA, WEB]);
      expect(host.restarted).toEqual([WEB]);
      const [step] = await supervisionSteps(runId);
      expect(step.message).toMatch(
        new RegExp(
          `^Supervision: 1 machine of 3 found stopped on fake; 2 machines started again in wave order in [0-9.]+ s \\(${DATA}, ${WEB}; ` +
            `${WEB} restarted after ${DATA}, whose network namespace it shares: it kept running without network once ${DATA} stopped; restart 1 of this failover\\)$`,
        ),
      );
      // web-01 answers again: the next pass finds every machine ready, and restarts nothing.
      const run = (await runStore.getRun(runId))!;
      expect(run.supervision?.degraded).toBeUndefined();
      await supervision.sweep();
      expect(host.restarted).toEqual([WEB]);
      expect(await supervisionSteps(runId)).toHaveLength(1);
    });

    it('restarts the running machine in the namespace of one restarted by hand, which left it without network, and says why', async () => {
      const host = new SharingHost(chainNeeds);
      const { runId, supervision } = await failedOver(host);
      host.restartByHand(runId);

      await supervision.sweep();

      // Nothing found stopped: web-01 restarted alone, after data-01's start.
      expect(host.started).toEqual([WEB]);
      expect(host.restarted).toEqual([WEB]);
      const [step] = await supervisionSteps(runId);
      expect(step.message).toMatch(
        new RegExp(
          `^Supervision: none found stopped on fake, but ${DATA} restarted there outside supervision \\(by hand, say\\); 1 machine started again in wave order in [0-9.]+ s \\(${WEB}; ` +
            `${WEB} restarted after ${DATA}, whose network namespace it shares: it kept running without network once ${DATA} was restarted outside supervision; restart 1 of this failover\\)$`,
        ),
      );
      // web-01 started after data-01 now: the next pass restarts nothing.
      await supervision.sweep();
      expect(host.restarted).toEqual([WEB]);
      expect(await supervisionSteps(runId)).toHaveLength(1);
    });

    it('brings a degraded failover back once the machine it could not restart is restarted by hand, restarting its sharer left without network', async () => {
      const crashes: string[] = [];
      const host = new SharingHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(host);
      crashes.push(DATA);
      host.exit(`${runId}/${DATA}`, 137);
      await supervision.sweep();
      expect(
        (await runStore.getRun(runId))!.supervision?.degraded?.withoutNetwork,
      ).toHaveLength(1);

      // An engineer fixes data-01 and starts it (`docker start`): web-01 still runs in its old namespace.
      crashes.length = 0;
      const { machines } = (await host.reattach(runId))!;
      await host.startMachine(machines.find(m => m.machineRef === DATA)!);
      await supervision.sweep();

      expect(host.restarted).toEqual([WEB]);
      expect(
        (await runStore.getRun(runId))!.supervision?.degraded,
      ).toBeUndefined();
    });

    it('says a sharer left behind by a machine it could not bring back runs without network, not that it was left stopped', async () => {
      const crashes: string[] = [];
      const host = new SharingHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(host);
      crashes.push(DATA);
      host.exit(`${runId}/${DATA}`, 137);

      await supervision.sweep();

      expect(host.restarted).toEqual([]);
      const degraded = (await runStore.getRun(runId))!.supervision?.degraded;
      expect(degraded).toMatchObject({ machineRef: DATA });
      // Readiness and the card say notStarted "left stopped": web-01 runs.
      expect(degraded?.notStarted).toBeUndefined();
      // Kept for readiness and the card: down as data-01 is, since data-01 was (noticed down here).
      expect(degraded?.withoutNetwork).toEqual([
        { machineRef: WEB, of: DATA, since: degraded?.since },
      ]);
      const [step] = await supervisionSteps(runId);
      expect(step.message).toContain(
        `could not be brought back: stopped with exit code 3; left running without network: ${WEB} (shares ${DATA}'s network namespace) (restart 1`,
      );
      expect(step.message).not.toContain('not started');
    });

    it('tries a sharer whose restart failed, left in the old namespace of a machine restarted by hand, again only at its next try, not every sweep', async () => {
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      const host = new RestartRefusingHost(chainNeeds);
      const { runId, supervision } = await failedOver(host);
      host.restartByHand(runId);

      await supervision.sweep();

      expect(host.restarted).toEqual([WEB]);
      const run = (await runStore.getRun(runId))!;
      expect(run.supervision?.degraded).toMatchObject({ machineRef: WEB });
      const { nextAt } = run.supervision!.retry!;

      // Nothing stopped, web-01 still in data-01's old namespace: its try is not due yet.
      await supervision.sweep();
      expect(host.restarted).toEqual([WEB]);
      expect(await supervision.supervise(host, runId)).toEqual({
        kind: 'waiting',
        nextAt,
      });

      // Due: tried again, and its wait doubles.
      vi.setSystemTime(Date.parse(nextAt));
      await supervision.sweep();
      expect(host.restarted).toEqual([WEB, WEB]);
      expect((await runStore.getRun(runId))!.supervision?.retry).toMatchObject({
        delaySeconds: 60,
        tries: 2,
      });
    });

    it('says a sharer left behind by a machine restarted by hand, pending as an earlier wave fails, runs without network as that machine was restarted, not stopped', async () => {
      const crashes: string[] = [];
      const host = new SharingHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(host);
      host.restartByHand(runId);
      crashes.push(INFRA);
      host.exit(`${runId}/${INFRA}`, 137);

      await supervision.sweep();

      expect(host.restarted).toEqual([]);
      const degraded = (await runStore.getRun(runId))!.supervision!.degraded!;
      expect(degraded).toMatchObject({ machineRef: INFRA });
      expect(degraded.withoutNetwork).toEqual([
        {
          machineRef: WEB,
          of: DATA,
          ownerRestarted: true,
          since: expect.any(String),
        },
      ]);
      // What readiness, the card and the CLI say: data-01 runs.
      expect(withoutNetworkSince(degraded.withoutNetwork![0], degraded)).toBe(
        `${WEB} running without network since ${degraded.withoutNetwork![0].since}, its namespace's owner ${DATA} was restarted outside supervision`,
      );
    });

    it('says a machine that cannot be brought back down since its host says it stopped, not since its restart failed', async () => {
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      const crashes: string[] = [];
      const host = new StopTimeHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(host);
      crashes.push(WEB);
      host.exit(`${runId}/${WEB}`, 137);
      const stoppedAt = host.stopTimes.get(`${runId}/${WEB}`)!;
      // Looked at 40 s later (a sweep, say).
      vi.setSystemTime(Date.parse(stoppedAt) + 40_000);

      await supervision.sweep();

      const run = (await runStore.getRun(runId))!;
      expect(run.supervision?.degraded).toMatchObject({
        machineRef: WEB,
        since: stoppedAt,
        sinceIs: 'stopped',
      });
      const [step] = await supervisionSteps(runId);
      expect(step.message).toContain(
        `${WEB} stopped on fake at ${formatUtcTime(stoppedAt)} and could not be brought back`,
      );
    });

    it('runs degraded where a machine cannot be brought back: names it and why, leaves what waits for it stopped, says it once, and each later try while its wait grows, then hourly', async () => {
      // Date alone, and moving: the machines' readiness checks keep their real timers.
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      const crashes: string[] = [];
      const warned: Array<{ fields: object; message: string }> = [];
      const host = new ListingHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(
        host,
        recordingLogger(warned),
      );
      crashes.push(DATA);
      host.restartEngine(runId);

      await supervision.sweep();

      expect(host.started).toEqual([INFRA, DATA]);
      const steps = await supervisionSteps(runId);
      expect(steps).toHaveLength(1);

      // Degraded on the run, its status unchanged; down since this pass found it stopped (the
      // host does not tell when it stopped), its next try 30 s after that pass began.
      const degraded = (await runStore.getRun(runId))!;
      expect(degraded.status).toBe('succeeded');
      expect(degraded.supervision).toEqual({
        restarts: 1,
        lastRestartAt: steps[0].at,
        degraded: {
          since: expect.any(String),
          sinceIs: 'noticed',
          machineRef: DATA,
          message: 'stopped with exit code 3',
          notStarted: [WEB],
        },
        retry: { nextAt: expect.any(String), delaySeconds: 30, tries: 1 },
      });
      const { since } = degraded.supervision!.degraded!;
      const firstNextAt = degraded.supervision!.retry!.nextAt;
      expect(Date.parse(since)).toBeLessThanOrEqual(Date.parse(steps[0].at));
      expect(Date.parse(firstNextAt) - Date.parse(since)).toBe(30_000);
      // The step says that very time, not a wait counted from the step.
      expect(steps[0]).toMatchObject({
        level: 'error',
        machineRef: DATA,
        message: `Supervision: failover running degraded: ${DATA} stopped on fake (noticed down at ${formatUtcTime(since)}) and could not be brought back: stopped with exit code 3; started again: ${INFRA}; not started, as they wait for it: ${WEB} (restart 1 of this failover; next try at ${formatUtcTime(firstNextAt)}, each failed try doubling the wait up to 10 min)`,
      });
      const tried = (at: string) => Date.parse(at) - 30_000;
      const firstTry = tried(firstNextAt);

      // Not tried again before its wait is out.
      await supervision.sweep();
      expect(host.started).toEqual([INFRA, DATA]);

      // Tried again at each wait's end, each wait twice the last, up to 10 min; the same outcome
      // is not counted again, but each try is logged, and said while its wait grows, then hourly.
      const waits: number[] = [];
      warned.length = 0;
      for (let k = 0; k < 11; k++) {
        vi.setSystemTime(
          Date.parse(
            (await runStore.getRun(runId))!.supervision!.retry!.nextAt,
          ),
        );
        await supervision.sweep();
        const { retry, ...rest } = (await runStore.getRun(runId))!.supervision!;
        expect(rest).toEqual({
          restarts: 1,
          lastRestartAt: steps[0].at,
          degraded: degraded.supervision!.degraded,
        });
        waits.push(retry!.delaySeconds);
        expect(retry!.tries).toBe(k + 2);
        // A wait counts from when its try began.
        expect(Date.parse(retry!.nextAt)).toBeGreaterThan(firstTry + 30_000);
        expect(warned.at(-1)).toEqual({
          fields: { runId, machineRef: DATA },
          message: `Supervision: try ${k + 2} to bring back ${DATA} on fake failed the same way: stopped with exit code 3; still degraded, next try at ${formatUtcTime(retry!.nextAt)}`,
        });
      }
      expect(warned).toHaveLength(11);
      expect(waits).toEqual([
        60, 120, 240, 480, 600, 600, 600, 600, 600, 600, 600,
      ]);
      expect(host.started).toEqual([INFRA, DATA, ...waits.map(() => DATA)]);
      // Tries 2 to 6 (the wait grows to its cap), then the 12th: an hour of 10 min waits later.
      const later = (await supervisionSteps(runId)).slice(1);
      expect(
        later.map(s => /^Supervision: try (\d+) /.exec(s.message)?.[1]),
      ).toEqual(['2', '3', '4', '5', '6', '12']);
      expect(
        later.every(s => s.level === 'error' && s.machineRef === DATA),
      ).toBe(true);
      expect(later.at(-1)!.message).toMatch(
        /\(said about once an hour while it fails the same way\)$/,
      );

      // The wait is kept on the run: a backend restarted meanwhile (a new supervision) waits too.
      const restarted = new FailoverSupervision(
        runStore,
        providersOf(host),
        mockServices.logger.mock(),
        mockServices.auditor.mock(),
        options,
      );
      await restarted.sweep();
      expect(host.started).toHaveLength(2 + waits.length);

      // Comes back once it no longer crashes, at its next try.
      crashes.length = 0;
      vi.setSystemTime(
        Date.parse((await runStore.getRun(runId))!.supervision!.retry!.nextAt),
      );
      await supervision.sweep();
      expect(host.started.slice(2 + waits.length)).toEqual([DATA, WEB]);
      expect((await supervisionSteps(runId)).at(-1)!.message).toMatch(
        /^Supervision: 2 machines of 3 found stopped on fake; 2 machines started again in wave order in [0-9.]+ s \(resource:default\/data-01, resource:default\/web-01; restart 2 of this failover\)$/,
      );
      const back = (await runStore.getRun(runId))!.supervision;
      expect(back?.restarts).toBe(2);
      expect(back?.degraded).toBeUndefined();
      expect(back?.retry).toBeUndefined();
      vi.useRealTimers();
    });

    it('is no longer degraded once every machine runs again, started by hand', async () => {
      const crashes: string[] = [];
      const host = new ListingHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(host);
      crashes.push(WEB);
      host.restartEngine(runId);
      await supervision.sweep();
      expect((await runStore.getRun(runId))!.supervision?.degraded).toEqual(
        expect.objectContaining({ machineRef: WEB }),
      );

      crashes.length = 0;
      await host.startMachine((await host.reattach(runId))!.machines[0]);
      await supervision.sweep();

      const run = (await runStore.getRun(runId))!;
      expect(run.supervision).toEqual({
        restarts: 1,
        lastRestartAt: expect.any(String),
      });
      expect(run.steps.at(-1)).toMatchObject({
        level: 'info',
        message:
          'Supervision: failover no longer degraded: every machine of it runs on fake',
      });
    });

    it('leaves a released failover alone', async () => {
      const host = new ListingHost(chainNeeds);
      const { runId, supervision } = await failedOver(host);
      await host.teardown(runId);

      await supervision.sweep();

      expect(host.started).toEqual([]);
      expect(await supervisionSteps(runId)).toEqual([]);
    });

    it('forgets a degradation once the failover is gone from its host: nothing of it is down any more', async () => {
      const crashes: string[] = [];
      const host = new ListingHost(chainNeeds, crashes);
      const { runId, supervision } = await failedOver(host);
      crashes.push(WEB);
      host.restartEngine(runId);
      await supervision.sweep();
      expect((await runStore.getRun(runId))!.supervision?.degraded).toEqual(
        expect.objectContaining({ machineRef: WEB }),
      );

      await host.teardown(runId);
      await supervision.sweep();

      expect((await runStore.getRun(runId))!.supervision).toEqual({
        restarts: 1,
        lastRestartAt: expect.any(String),
      });
    });

    it("records each start of a failover's machines as the plugin's own, of high severity, none where all run", async () => {
      const host = new ListingHost(chainNeeds);
      const auditor = recordingAuditor();
      const { runId, supervision } = await failedOver(host, undefined, auditor);
      host.restartEngine(runId);

      await supervision.sweep();
      await supervision.sweep();

      expect(auditor.events).toEqual([
        {
          eventId: 'failover-supervision-restart',
          severityLevel: 'high',
          request: undefined,
          meta: {
            runId,
            entityRef: 'component:default/web',
            hypervisorHost: 'fake',
            machineRefs: [INFRA, DATA, WEB],
          },
          ends: [
            {
              status: 'succeeded',
              meta: {
                outcome: 'restarted',
                restarted: [INFRA, DATA, WEB],
                restarts: 1,
                seconds: expect.any(Number),
              },
            },
          ],
        },
      ]);
    });

    it('records a start that left the failover degraded as failed, with why, nothing while its next try waits, and that try', async () => {
      // Date alone, and moving: the machines' readiness checks keep their real timers.
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      const crashes: string[] = [];
      const host = new ListingHost(chainNeeds, crashes);
      const auditor = recordingAuditor();
      const { runId, supervision } = await failedOver(host, undefined, auditor);
      crashes.push(DATA);
      host.restartEngine(runId);

      await supervision.sweep();
      await supervision.sweep();

      expect(auditor.events).toEqual([
        {
          eventId: 'failover-supervision-restart',
          severityLevel: 'high',
          request: undefined,
          meta: {
            runId,
            entityRef: 'component:default/web',
            hypervisorHost: 'fake',
            machineRefs: [INFRA, DATA, WEB],
          },
          ends: [
            {
              status: 'failed',
              meta: {
                outcome: 'degraded',
                restarted: [INFRA],
                restarts: 1,
                failed: {
                  machineRef: DATA,
                  message: 'stopped with exit code 3',
                },
                notStarted: [WEB],
                tries: 1,
              },
              error: `${DATA} could not be brought back: stopped with exit code 3`,
            },
          ],
        },
      ]);

      // Its next try, failing the same way: no new restart of the failover, its second try.
      vi.setSystemTime(
        Date.parse((await runStore.getRun(runId))!.supervision!.retry!.nextAt),
      );
      await supervision.sweep();
      expect(auditor.events.slice(1)).toEqual([
        expect.objectContaining({
          meta: expect.objectContaining({ machineRefs: [DATA, WEB] }),
          ends: [
            {
              status: 'failed',
              meta: {
                outcome: 'degraded',
                restarted: [],
                restarts: 1,
                failed: {
                  machineRef: DATA,
                  message: 'stopped with exit code 3',
                },
                notStarted: [WEB],
                tries: 2,
              },
              error: `${DATA} could not be brought back: stopped with exit code 3`,
            },
          ],
        }),
      ]);
    });

    it('records a start that broke off as failed, with its error and the machines it had started', async () => {
      const host = new ListingHost(chainNeeds);
      const auditor = recordingAuditor();
      const { runId, supervision } = await failedOver(host, undefined, auditor);
      host.restartEngine(runId);
      const lost = new Error('its claim expired');

      // The claim, renewed before the second wave, was lost.
      await expect(
        supervision.supervise(host, runId, async () => {
          throw lost;
        }),
      ).rejects.toBe(lost);

      expect(host.started).toEqual([INFRA]);
      expect(auditor.events).toEqual([
        {
          eventId: 'failover-supervision-restart',
          severityLevel: 'high',
          request: undefined,
          meta: {
            runId,
            entityRef: 'component:default/web',
            hypervisorHost: 'fake',
            machineRefs: [INFRA, DATA, WEB],
          },
          ends: [
            {
              status: 'failed',
              // What it had started before it broke off.
              meta: { outcome: 'broken-off', restarted: [INFRA] },
              error: lost.message,
            },
          ],
        },
      ]);
    });
  },
);
