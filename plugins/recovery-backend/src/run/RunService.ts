import {
  BackstageCredentials,
  LoggerService,
} from '@backstage/backend-plugin-api';
import {
  ConflictError,
  InputError,
  NotFoundError,
  ServiceUnavailableError,
  toError,
} from '@backstage/errors';
import type {
  BootPlan,
  EntityProblem,
  RecoveryRun,
  RunMode,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import {
  ANNOTATION_JOB,
  INTERRUPTED_PREFIX,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HypervisorHost,
  LabHandle,
  LabNetwork,
  RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaptureStore, StoredCapture } from '../database/CaptureStore';
import {
  type CancelRequest,
  NewRun,
  RunOptions,
  preemptingFailover,
  type RunOutcome,
  RunStore,
} from '../database/RunStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { namingAny } from '../plan/mentions';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import type { RecoveryMetrics } from '../service/RecoveryMetrics';
import { LabBoot } from './boot';
import { namingCapturesKeptElsewhere } from './capturesKeptElsewhere';
import { LateDebris, withDeadline } from './deadline';
import {
  EntityMachinesMissingError,
  hostUnreachable,
  HypervisorHostBusyError,
  isHostUnreachable,
  MachineFailed,
  messageOf,
  MissingDependenciesError,
  noPlanError,
  RunCancelled,
  RunSuperseded,
  runFailure,
} from './errors';
import { Failovers } from './failover';
import {
  checkHostPorts,
  checkRoom,
  markDamaged,
  reachHost,
  verifyCaptures,
  warnCaptureSpread,
} from './preflight';
import { now, RunRecorder } from './RunRecorder';
import {
  isTerminalRunStatus,
  measuredRtoSeconds,
  reachedStatus,
} from './runState';
import { describeResources, LabTeardown } from './teardown';
import { isRunVisible, listVisibleRuns, type VisibleTo } from './visibleRuns';

export interface RunServiceOptions {
  /** recovery.hypervisorHost */
  hypervisorHost?: string;
  machineReadyTimeoutMs: number;
  probeIntervalMs: number;
  heartbeatIntervalMs: number;
  /** An active run whose heartbeat is older than this was orphaned by a stopped backend. */
  staleAfterMs: number;
  /** recovery.runs.allowTestHooks: accept options that exist only to test the product. */
  allowTestHooks: boolean;
  /**
   * recovery.runs.stepTimeout: deadline of creating the lab, restoring one machine, reading its
   * console tail, each call of the final check and tearing a lab down (starting and verifying
   * one share one machineReadyTimeoutMs): a hung engine must fail the run, not hold the host forever.
   */
  stepTimeoutMs: number;
  /**
   * recovery.runs.minReadyTime: how long the last machine to get ready stays up before the final
   * check looks at every machine again. Without it a machine of the last wave that exits seconds
   * after its probes passed would leave the run succeeded.
   */
  minReadyMs: number;
  /**
   * How long apart a machine's failure on an engine error asks the host twice whether it still
   * answers (ENGINE_GRACE_MS unless given): one that does not is the host's failure, not the machine's.
   */
  engineGraceMs?: number;
}

export interface StartRunRequest {
  entityRef: string;
  mode: RunMode;
  trigger: RecoveryRun['trigger'];
  createdBy?: string;
  options?: RunOptions;
  /**
   * Start although the catalog declares dependencies it does not hold (the graph's `missing`):
   * the run then tests a plan without them, and its timeline says so.
   */
  acceptMissingDependencies?: boolean;
  /**
   * Start although the catalog declares a dependency cycle: the plan drops one edge per cycle
   * (PlanService.plan's acceptCycles), and the timeline names each.
   */
  acceptCycles?: boolean;
  /**
   * The time to recover to (ISO, checked by the caller): each machine restores its newest capture
   * taken at or before it, not its latest (RunStore.admitRun).
   */
  recoveryPoint?: string;
  /**
   * Who asks: a refusal names the run holding the host only if they may see it. Without them
   * (the backend itself) it does.
   */
  credentials?: BackstageCredentials;
  /**
   * Checks the caller's grants on the plan the run will boot, made here (a failover needs them on
   * every machine and service of it): a plan the router made apart could change before this one.
   */
  authorizePlan?: (plan: BootPlan) => Promise<void>;
}

/**
 * Why a replica fails a run whose driver looks gone: its claim's error, until the replica adds
 * to it what it tore down or kept (see cleanUpInterruptedRuns).
 */
const DRIVER_STOPPED = 'the backend driving this run stopped';
const ORPHANED = `${INTERRUPTED_PREFIX}${DRIVER_STOPPED}`;
/**
 * The claim's error of such a run someone asked to cancel: cancelled by them, as its driver would
 * have said had it lived to see the request, and that it was not there to.
 */
const orphanedCancelled = (request: CancelRequest) =>
  `${new RunCancelled(request.by, request.at).message}; ${DRIVER_STOPPED}`;

/**
 * How long after a heartbeat turns stale the cleanup looks at it: a heartbeat exactly staleAfterMs
 * old is not stale yet (claimStaleRun), and the database's clock and timers round to the millisecond.
 */
const PAST_STALE_MS = 50;

/**
 * How many times admission checks what finished failovers keep on the host (admitBesideKept): a
 * check again means yet another failover finished meanwhile, rare with one failover at a time.
 */
const KEPT_CHECKS = 3;

/** An admitted run as its execution drives it: what each of its steps reads, and tells the next. */
interface DrivenRun {
  run: RecoveryRun;
  host: HypervisorHost;
  recorder: RunRecorder;
  /** The run's logger (a child with its runId). */
  logger: LoggerService;
  /** Aborted once the run is no longer driven here: interrupted, or claimed by another replica. */
  signal: AbortSignal;
  /** Removes what a step creates after its deadline (see withDeadline, LateDebris). */
  removeLate: () => Promise<unknown>;
  /**
   * Whether the run has asked the host for anything that may leave part of its lab there (its
   * room, its lab): until then a failure has nothing of it to tear down, or to record as left.
   */
  labStarted: boolean;
}

/** Set as each call that may make part of the lab is made: one the run stops before is not. */
const building = (driven: DrivenRun) => {
  driven.labStarted = true;
};

/**
 * Executes boot plans on the hypervisor host: admission, the host's pre-flight, the emulated
 * network, boot wave by wave with readiness gates (LabBoot), timings and evidence, teardown of
 * test labs (LabTeardown), what a failover keeps (Failovers). Every step is persisted as it
 * happens; runs a stopped backend left active are cleaned up here too.
 */
export class RunService {
  /** The runs this backend drives: aborting one interrupts it. */
  private readonly driving = new Map<string, AbortController>();
  /** Each driven run's execution, settled once it has finished. */
  private readonly done = new Map<string, Promise<void>>();
  /** Set by shutdown: no run is admitted after it, and one admitted as it began is interrupted. */
  private stopping = false;
  /** Requests being admitted, which shutdown waits for: their run is driven once admitted. */
  private readonly admitting = new Set<Promise<unknown>>();
  /** This backend's next look for orphaned runs between the cleanup task's (see sweepInterruptedRuns). */
  private nextLook?: NodeJS.Timeout;
  /** The sweep for orphaned runs under way here: one asked for meanwhile joins it. */
  private sweeping?: Promise<string[]>;
  /** Each run's lab on its host: what it holds, its teardown. */
  private readonly teardown: LabTeardown;
  /** What finished failovers keep on their host, and their release. */
  private readonly failovers: Failovers;

  constructor(
    private readonly runStore: RunStore,
    private readonly captureStore: CaptureStore,
    private readonly providers: ProviderRegistry,
    private readonly plans: PlanService,
    /** The caller's view of the catalog: whether a refusal may name the run holding the host. */
    private readonly graphs: Pick<CatalogGraphLoader, 'visibleTo'>,
    private readonly logger: LoggerService,
    private readonly options: RunServiceOptions,
    private readonly metrics?: RecoveryMetrics,
  ) {
    // A run this backend drives tears its own lab down.
    this.teardown = new LabTeardown(
      runStore,
      providers,
      logger,
      options.stepTimeoutMs,
      runId => this.driving.has(runId),
    );
    this.failovers = new Failovers(
      runStore,
      captureStore,
      providers,
      graphs,
      logger,
      this.teardown,
    );
  }

  /** Admits a run and starts it in the background; returns it as first persisted. */
  async start(request: StartRunRequest): Promise<RecoveryRun> {
    // A 503: clients ask again, and reach the next backend.
    if (this.stopping)
      throw new ServiceUnavailableError(
        'The backend is shutting down: start the run again once it is back',
      );
    const admitting = this.admit(request);
    this.admitting.add(admitting);
    try {
      return await admitting;
    } finally {
      this.admitting.delete(admitting);
    }
  }

  private async admit(request: StartRunRequest): Promise<RecoveryRun> {
    const runOptions = request.options ?? {};
    if (Object.keys(runOptions).length > 0 && !this.options.allowTestHooks) {
      throw new InputError(
        `Run options ${Object.keys(runOptions).join(', ')} are test hooks; enable recovery.runs.allowTestHooks to use them`,
      );
    }
    // Kept with the run as the plugin sees it: each reader gets its warnings filtered (runSeenBy).
    const planned = await this.plans.plan(request.entityRef, undefined, {
      acceptCycles: request.acceptCycles,
    });
    const { graph, plan, names, droppedForCycles } = planned;
    if (!plan) throw noPlanError(planned);
    // Refused first: told what is missing, a caller without the grant would only be refused again
    // when accepting it.
    await request.authorizePlan?.(plan);
    // A missing dependency may be left out of the plan (below); not a missing machine the entity
    // runs on: a run without it boots none of the entity's own machines, so proves nothing of it.
    // Said first, so that no client offers to accept what would be refused all the same.
    const unhoused = entityWithoutItsMachines(graph);
    if (unhoused.length > 0) throw new EntityMachinesMissingError(unhoused);
    // A dependency left out of the plan is not restored, so the run would not test the recovery
    // production needs: only when asked. Other problems (an annotation, an objective) leave the
    // plan whole; the run goes ahead and its timeline lists them (see execute).
    if (graph.missing.length > 0 && !request.acceptMissingDependencies) {
      throw new MissingDependenciesError(
        graph.rootRef,
        graph.missing.map(p => p.message),
      );
    }
    if (plan.machines.length === 0) {
      throw new InputError(
        `${graph.rootRef} needs no machines: nothing to recover. Add dependsOn relations to machine Resources`,
      );
    }
    // With the names its warnings mention: the analysis may be pruned (recovery.analysis.keepLast)
    // before the run is last read, and without them no reader's warnings can be filtered.
    if (plan.analysis && names)
      plan.analysis.names = namesMentioned(plan.analysis.warnings ?? [], names);
    const host = this.providers.hypervisorHost(this.options.hypervisorHost);
    const waves = runOptions.reverseBootOrder
      ? [...plan.waves].reverse()
      : plan.waves;
    const runId = randomUUID();
    // Checked and inserted atomically: concurrent requests and replicas share the host.
    // Admitted with the captures it restores, chosen in the same transaction.
    const admission = await this.admitBesideKept(host, request, {
      id: runId,
      entityRef: graph.rootRef,
      mode: request.mode,
      trigger: request.trigger,
      createdBy: request.createdBy,
      hypervisorHost: host.id,
      plan,
      options: runOptions,
      recoveryPoint: request.recoveryPoint,
      machines: waves.flatMap((wave, index) =>
        wave.map(machineRef => ({ machineRef, wave: index })),
      ),
    }).catch(async error => {
      // A machine renamed in the catalog: its captures are named, never restored in its stead.
      throw await namingCapturesKeptElsewhere(
        error,
        graph.machines,
        this.captureStore,
      );
    });
    if ('busyWith' in admission) {
      const { busyWith } = admission;
      // Named only to whoever may see it: GET /runs hides it from the others, as if absent.
      const { credentials } = request;
      const shown =
        !credentials ||
        (await isRunVisible(busyWith, refs =>
          this.graphs.visibleTo(refs, credentials),
        ));
      throw new HypervisorHostBusyError(
        host.id,
        shown
          ? { runId: busyWith.id, entityRef: busyWith.entityRef }
          : undefined,
      );
    }
    // A test run this failover preempted and this backend drives: stopped now (it finds it lost
    // its run and tears its lab down); the failover waits for that before building its own.
    const preempted = admission.preempted.map(p => p.id);
    for (const id of preempted) this.driving.get(id)?.abort();
    // Read before the run is driven, which may already have moved it on.
    const admitted = (await this.runStore.getRun(runId))!;
    const controller = new AbortController();
    // Admitted while the backend began to shut down: interrupted at once, and waited for.
    if (this.stopping) controller.abort();
    this.driving.set(runId, controller);
    const execution = this.execute(
      runId,
      host,
      waves,
      admission.captures,
      // Each edge dropped for a cycle, as the catalog's: it declared the cycle.
      [
        ...graph.problems,
        ...(droppedForCycles ?? []).map(e => ({
          entityRef: e.from,
          message: `${e.message} (started accepting cycles)`,
        })),
      ],
      graph.objectives.rpoSeconds,
      preempted,
      controller.signal,
    )
      .catch(error =>
        this.logger.child({ runId }).error('Run crashed', toError(error)),
      )
      .finally(() => {
        this.driving.delete(runId);
        this.done.delete(runId);
      });
    this.done.set(runId, execution);
    return admitted;
  }

  /**
   * Refuses the run beside what finished failovers keep on the host (refuseBesideKept), then admits
   * it (RunStore.admitRun). A failover that finished between the two was still active at the check
   * and holds the host no more at the admission: checked again, up to KEPT_CHECKS times, rather
   * than admitted unchecked beside it (a test lab would then fail late on the subnets it keeps).
   */
  private async admitBesideKept(
    host: HypervisorHost,
    request: StartRunRequest,
    run: NewRun,
  ) {
    for (let look = 1; ; look++) {
      const keptChecked = await this.failovers.refuseBesideKept(
        host,
        request,
        run.entityRef,
        run.machines.map(m => m.machineRef),
      );
      const admission = await this.runStore.admitRun(run, new Date(), {
        keptChecked,
      });
      if (!('finishedMeanwhile' in admission)) return admission;
      if (look === KEPT_CHECKS)
        throw new ConflictError(
          `Failovers kept finishing on hypervisor host '${host.id}' while ${run.entityRef} was admitted (${KEPT_CHECKS} times in a row): start the run again`,
        );
    }
  }

  /**
   * Drives an admitted run on its host to its end: the timeline's opening, the host's pre-flight,
   * the lab, the waves, the final check, then finish; or abandon, where another replica claimed it.
   */
  private async execute(
    runId: string,
    host: HypervisorHost,
    waves: string[][],
    captures: Map<string, StoredCapture>,
    /** What the catalog got wrong about the recovered entities, listed in the timeline. */
    problems: EntityProblem[],
    /** The recovered entity's RPO: a capture older than it at admission is warned of. */
    rpoSeconds: number,
    /** Test runs this failover preempted: their labs go before this one is built. */
    preempted: string[],
    signal: AbortSignal,
  ): Promise<void> {
    const run = (await this.runStore.getRun(runId))!;
    const heartbeat = this.beat(runId);
    // A step that settles after its deadline leaves debris, removed like the lab, except from
    // a failover: removing it removes everything labelled with the run, and what a failover
    // booted may already serve production.
    const debris = new LateDebris(() =>
      run.mode === 'failover'
        ? Promise.resolve()
        : this.teardown.removeLate(host, runId),
    );
    const driven: DrivenRun = {
      run,
      host,
      recorder: new RunRecorder(this.runStore, run),
      logger: this.logger.child({ runId }),
      signal: AbortSignal.any([signal, heartbeat.superseded]),
      removeLate: debris.removeLate,
      labStarted: false,
    };
    try {
      await this.open(driven, waves, captures, problems, rpoSeconds, preempted);
      await this.preflight(driven, waves, captures, rpoSeconds);
      const { lab, startedAt } = await this.buildLab(driven, captures);
      const boot = this.labBoot(driven, lab, captures);
      await boot.waves(waves);
      // RTO ends when the last machine got ready; the final check comes after it.
      const rtoSeconds = measuredRtoSeconds(
        driven.recorder.machines(),
        startedAt,
      );
      await this.verify(driven, boot, waves, rtoSeconds);
      await this.succeed(driven, waves, rtoSeconds);
    } catch (error) {
      await this.fail(driven, error, heartbeat.superseded, signal);
    } finally {
      heartbeat.stop();
      await debris.settle();
    }
  }

  /**
   * Beats the run's heartbeat while this backend drives it: a beat that finds the run no longer
   * active (another replica failed it, as it looked orphaned) aborts `superseded`; one that finds
   * it cancelled through another replica (RunStore.requestCancel) interrupts it, as cancel does here.
   */
  private beat(runId: string): { superseded: AbortSignal; stop: () => void } {
    const superseded = new AbortController();
    const heartbeat = setInterval(
      () =>
        this.runStore
          .heartbeat(runId)
          .then(async active => {
            if (!active) return superseded.abort();
            const cancel = await this.runStore.cancelRequest(runId);
            if (cancel) this.interrupt(runId, cancel);
            return undefined;
          })
          .catch(() => {}),
      this.options.heartbeatIntervalMs,
    );
    return {
      superseded: superseded.signal,
      stop: () => clearInterval(heartbeat),
    };
  }

  /**
   * Opens the run: running, its timeline's opening (host, waves, captures, the catalog's
   * problems), then the test runs this failover preempted, each gone before its lab is built.
   */
  private async open(
    { recorder, host }: DrivenRun,
    waves: string[][],
    captures: Map<string, StoredCapture>,
    problems: EntityProblem[],
    rpoSeconds: number,
    preempted: string[],
  ): Promise<void> {
    await recorder.status('running', { startedAt: now() });
    await recorder.opening(host.id, waves, captures, problems, rpoSeconds);
    for (const id of preempted) {
      await recorder.step(
        `Preempted test recovery ${id}, which held ${host.id}: its lab is removed before this failover's is built`,
      );
      // Its driver, if this backend's, tears it down itself: not alongside it.
      await this.done.get(id);
    }
  }

  /**
   * The host's pre-flight: it answers, no earlier run's lab is left in the way, every capture is
   * intact (a damaged one replaced in `captures` by the machine's newest intact one), a failover's
   * host ports are free there, and it has room for them all.
   */
  private async preflight(
    driven: DrivenRun,
    waves: string[][],
    captures: Map<string, StoredCapture>,
    rpoSeconds: number,
  ): Promise<void> {
    const { run, host, recorder, signal, removeLate, logger } = driven;
    const { stepTimeoutMs } = this.options;
    // A host whose engine cannot be reached fails the run here, before anything of its lab
    // could be made there: said as the cause, not as an earlier run's lab in the way.
    await reachHost(host, run.id, stepTimeoutMs);
    // A lab an earlier run could not tear down would clash with this one's networks.
    await this.teardown.clearLeftLabs(recorder, host);
    // Every capture read against its checksums first, not at its machine's wave after the earlier
    // waves have booted: a damaged one is passed over for the machine's newest intact capture,
    // restored from here on; a machine with none left fails the run now.
    const intact = await verifyCaptures(
      recorder,
      host,
      waves.map(wave => wave.map(m => captures.get(m)!)),
      this.captureStore,
      run,
      rpoSeconds,
      stepTimeoutMs,
      signal,
      logger,
    );
    for (const [machineRef, capture] of intact)
      captures.set(machineRef, capture);
    await warnCaptureSpread(recorder, [...captures.values()]);
    // Production's host ports, published by a failover only: each must be free on the host.
    if (run.mode === 'failover')
      await checkHostPorts(
        recorder,
        host,
        waves.flat().map(m => captures.get(m)!),
        stepTimeoutMs,
        signal,
      );
    await checkRoom(
      recorder,
      host,
      waves.map(wave => wave.map(m => captures.get(m)!)),
      stepTimeoutMs,
      signal,
      removeLate,
      () => building(driven),
    );
  }

  /**
   * Creates the lab: the production networks emulated on the host, `internal` for a test run so
   * nothing leaks to production. `startedAt`: when the RTO starts.
   */
  private async buildLab(
    driven: DrivenRun,
    captures: Map<string, StoredCapture>,
  ): Promise<{ lab: LabHandle; startedAt: string }> {
    const { run, host, recorder, signal } = driven;
    const networks = labNetworks([...captures.values()]);
    const startedAt = new Date().toISOString();
    const lab = await withDeadline(
      () => {
        building(driven);
        return host.createLab(run.id, networks, {
          internal: run.mode === 'test',
        });
      },
      this.options.stepTimeoutMs,
      'Creating the lab',
      signal,
      driven.removeLate,
    ).catch(error => {
      throw isHostUnreachable(error) && !signal.aborted
        ? hostUnreachable(host, error)
        : error;
    });
    await recorder.step(
      `Created ${run.mode === 'test' ? 'isolated ' : ''}network ${lab.networks.join(', ')}`,
    );
    return { lab, startedAt };
  }

  /** What boots the run's machines in its lab, wave by wave (LabBoot). */
  private labBoot(
    { run, host, recorder, logger, signal, removeLate }: DrivenRun,
    lab: LabHandle,
    captures: Map<string, StoredCapture>,
  ): LabBoot {
    return new LabBoot(
      {
        recorder,
        host,
        lab,
        planned: new Map(run.plan.machines.map(m => [m.machineRef, m])),
        captures,
        signal,
        removeLate,
        stillDriven: () => this.stillDriven(run.id),
        // Found damaged at its restore (changed since it was verified): marked as at verification.
        captureDamaged: (capture, reason) =>
          markDamaged(
            this.captureStore,
            recorder,
            capture,
            reason,
            run.recoveryPoint,
          ),
      },
      this.options,
      logger,
    );
  }

  /**
   * Verifies the booted lab as a whole: once every machine has been ready for minReadyMs, the
   * final check finds each still running and answering.
   */
  private async verify(
    { recorder }: DrivenRun,
    boot: LabBoot,
    waves: string[][],
    rtoSeconds: number | undefined,
  ): Promise<void> {
    await boot.holdReady();
    await boot.finalCheck();
    const verified = waves.flat().length;
    // Jobs completed and stay stopped: the final check looks only at the others.
    const jobs = recorder
      .machines()
      .filter(m => boot.isJob(m.machineRef)).length;
    const all = verified === 1 ? '1 machine' : `All ${verified} machines`;
    await recorder.step(
      jobs === 0
        ? `${all} verified in ${rtoSeconds} s; the final check found ${verified === 1 ? 'it' : 'them all'} still running and answering`
        : jobs === verified
          ? `${all} verified in ${rtoSeconds} s: ${jobs === 1 ? 'a job' : 'jobs'} (${ANNOTATION_JOB}) that completed, which the final check does not look at`
          : `${all} verified in ${rtoSeconds} s, ${jobs} of them ${jobs === 1 ? 'a job' : 'jobs'} (${ANNOTATION_JOB}) that completed; the final check found the others still running and answering`,
    );
  }

  /**
   * Ends a run that recovered every machine: its critical path, what a failover now serves
   * production with, then finish (a test lab torn down).
   */
  private async succeed(
    { run, host, recorder, labStarted }: DrivenRun,
    waves: string[][],
    rtoSeconds: number | undefined,
  ): Promise<void> {
    await recorder.criticalPath(waves);
    if (run.mode === 'failover')
      await this.failovers.handOver(host, run, recorder);
    await this.finish(
      recorder,
      host,
      run,
      'succeeded',
      { rtoSeconds },
      undefined,
      { labStarted },
    );
  }

  /**
   * Ends the run with what stopped it: the backend shutting down (`interrupted`, no failed
   * recovery), else `failed` by a machine (named, with its probe) or anything else; a failover's
   * failure says what it leaves running. Where another replica claimed the run meanwhile, its end
   * stands: this driver abandons it.
   */
  private async fail(
    { run, host, recorder, logger, labStarted }: DrivenRun,
    error: unknown,
    /** Aborted once a heartbeat found the run claimed by another replica. */
    superseded: AbortSignal,
    /** Aborted as the backend shuts down. */
    interrupt: AbortSignal,
  ): Promise<void> {
    // Claimed by another replica (the run looked orphaned): its failure stands, and whatever
    // failed here may be that replica tearing the lab down, no failure of this run's.
    if (
      error instanceof RunSuperseded ||
      superseded.aborted ||
      !(await this.stillDriven(run.id))
    ) {
      await this.abandon(recorder, host, run, interrupt);
      return;
    }
    const interrupted = interrupt.aborted;
    const { failure, reason, hostDown } = runFailure(
      error,
      interrupted && { reason: interrupt.reason },
    );
    const cancelled =
      interrupt.reason instanceof RunCancelled ? interrupt.reason : undefined;
    // A machine's failure was logged where it failed; anything else (the lab, a bug) here.
    if (!interrupted && failure.machineRef === undefined) {
      logger.warn('Run failed', failure);
    }
    // Production is gone: what a failover booted stays, failed or interrupted, and the
    // failure says what is left running. One that made nothing there says so.
    const kept =
      run.mode === 'failover'
        ? labStarted
          ? await this.failovers.keep(host, run, recorder.machines())
          : `nothing of it is on ${host.id}`
        : undefined;
    const message = kept ? `${reason}; ${kept}` : reason;
    // A machine's failure is in the timeline already, at the machine (LabBoot): not said again. A
    // failover's is, with what it keeps, in the run's error's words, which views fold into its
    // outcome (timelineSteps).
    if (interrupted || !(failure instanceof MachineFailed) || kept)
      await recorder.step(message, undefined, 'error');
    try {
      await this.finish(
        recorder,
        host,
        run,
        interrupted ? 'interrupted' : 'failed',
        // An interruption is no machine's failure: the error names none.
        {
          error: interrupted
            ? { message, ...(cancelled && { cancelledBy: cancelled.by }) }
            : {
                machineRef: failure.machineRef,
                probe: failure.probe,
                message,
                ...(hostDown && { hostUnreachable: true }),
              },
        },
        interrupted ? reason : `the run failed: ${reason}`,
        { labStarted, hostDown },
      );
    } catch (finishError) {
      if (!(finishError instanceof RunSuperseded)) throw finishError;
      await this.abandon(recorder, host, run, interrupt);
    }
  }

  /**
   * Ends the run with `status`: a test lab is torn down first, its result kept ahead of that; a
   * failover keeps what it booted (said before, in its timeline). Machines left unfinished are settled.
   */
  private async finish(
    recorder: RunRecorder,
    host: HypervisorHost,
    run: RecoveryRun,
    status: RunOutcome['status'],
    result: Pick<RecoveryRun, 'rtoSeconds' | 'error'>,
    /** Why a machine still in progress when the run failed (or was interrupted) stopped. */
    unfinishedReason = 'the run failed',
    /**
     * `labStarted`: the run asked the host for something that may have made part of its lab (else
     * there is nothing to tear down). `hostDown`: the run failed as its host cannot be reached,
     * which a teardown that cannot reach it either need not say again.
     */
    {
      labStarted = true,
      hostDown = false,
    }: { labStarted?: boolean; hostDown?: boolean } = {},
  ): Promise<void> {
    // A test lab goes; a failover keeps what it booted, failed or interrupted (its failure says so).
    if (run.mode === 'test' && labStarted) {
      // The run is finished only once its lab is gone (a run admitted next must not find it there),
      // but its result stands from now: a backend stopped during the teardown leaves it to whichever
      // claims the run, which finishes it so rather than as interrupted (cleanUpInterruptedRuns).
      await this.runStore
        .setRunOutcome(run.id, {
          status,
          ...result,
          unfinishedReason,
        })
        .catch(error =>
          this.logger
            .child({ runId: run.id })
            .warn(
              "Could not keep the run's result ahead of its teardown",
              toError(error),
            ),
        );
      await this.teardown.ofFinishedRun(recorder, host, hostDown);
    }
    // No machine of a finished run may stay waiting or in progress. Settled last, with the run,
    // so a backend that stops during the teardown leaves the run to be cleaned up as a whole.
    if (status !== 'succeeded')
      await recorder.settleUnfinished(status, unfinishedReason);
    await recorder.status(status, { finishedAt: now(), ...result });
    this.metrics?.runFinished(run, status, result.rtoSeconds);
    this.logger
      .child({ runId: run.id })
      .info(
        `Run ${status}${result.rtoSeconds !== undefined ? ` (RTO ${result.rtoSeconds} s)` : ''}`,
        {
          entityRef: run.entityRef,
          ...(result.error && { error: result.error.message }),
        },
      );
  }

  /**
   * Stops driving a run another replica has already failed: that failure stands, and what
   * this driver created after that replica tore the lab down goes too. A failover keeps it,
   * as that replica did.
   */
  private async abandon(
    recorder: RunRecorder,
    host: HypervisorHost,
    run: RecoveryRun,
    /** The backend shuts down: wait no longer for that replica. */
    signal: AbortSignal,
  ): Promise<void> {
    let note: string | undefined;
    if (run.mode === 'failover') {
      note = await this.failovers.keep(host, run);
    } else {
      // After that replica's teardown, not alongside it: it learns it lost the run as soon as
      // that replica claims it, and tearing down then would take the lab from under that
      // replica, whose failure would then say it removed nothing.
      await this.claimTornDown(run.id, signal);
      try {
        note = `removed ${describeResources(await this.teardown.remove(host, run.id))}`;
      } catch (error) {
        // What this driver created after that replica's teardown stays: recorded as left, as a
        // failed teardown of its own would be, so the next run there or the cleanup task removes it.
        note = `teardown failed: ${messageOf(error)}`;
        await this.runStore.setLabLeft(run.id, true).catch(() => {});
      }
    }
    const message = `Stopped driving: ${await this.finishedBy(run.id)}${note ? `; ${note}` : ''}`;
    await recorder.step(message, undefined, 'error').catch(() => {});
    this.logger.child({ runId: run.id }).warn(message);
  }

  /**
   * Who finished a run in its driver's stead, as its record says: a failover that preempted it
   * (RunStore.admitRun), else another replica.
   */
  private async finishedBy(runId: string): Promise<string> {
    const run = await this.runStore.getRun(runId).catch(() => undefined);
    const failover = run && preemptingFailover(run);
    // Ended by that failover's admission, which no driver's finish counts.
    if (failover && isTerminalRunStatus(run.status))
      this.metrics?.runFinished(run, run.status, run.rtoSeconds);
    return failover
      ? `interrupted by failover run ${failover}, which preempted it`
      : 'the run was already finished elsewhere';
  }

  /**
   * Waits while a replica that claimed the run as orphaned still tears its lab down: its claim's
   * error says only why until it adds what it removed. At most that replica's teardown deadline:
   * had it stopped meanwhile, this driver's teardown removes the lab after all.
   */
  private async claimTornDown(
    runId: string,
    signal: AbortSignal,
  ): Promise<void> {
    const until =
      Date.now() +
      this.options.stepTimeoutMs +
      this.options.heartbeatIntervalMs;
    while (!signal.aborted && Date.now() < until) {
      const run = await this.runStore.getRun(runId).catch(() => undefined);
      // The claim's error ends so (orphaned, or cancelled) until that replica adds what it removed.
      if (!run?.error?.message.endsWith(DRIVER_STOPPED)) return;
      await sleep(this.options.heartbeatIntervalMs, undefined, {
        signal,
      }).catch(() => {});
    }
  }

  /** Whether this replica still drives the run (beating it): false once another replica claimed it. */
  private stillDriven(runId: string): Promise<boolean> {
    // Unknown is still ours: the run's own updates tell when it is not.
    return this.runStore.heartbeat(runId).catch(() => true);
  }

  /**
   * Ends a finished failover's tenure on its host once production no longer needs what it kept
   * there (failback done): removes everything labelled with its run id, and adds to its timeline
   * who released it and what went. A test recovery's lab goes when it finishes, and an active
   * failover may still be booting production: both are refused. Releasing again removes nothing
   * and says so. A run active on the host meanwhile does not hold it up: the teardown removes only
   * what carries this run's id, never that run's lab. A host that cannot be reached is a 503 and
   * records nothing.
   */
  releaseFailover(runId: string, releasedBy?: string): Promise<RecoveryRun> {
    return this.failovers.release(runId, releasedBy);
  }

  /**
   * Cancels a pending or running test recovery for `cancelledBy`: it stops booting at once where
   * this backend drives it, else at its driver's next heartbeat (the request is recorded with the
   * run), tears its lab down as always and ends `interrupted`, its error and last step naming who
   * cancelled it and when. Answers the run as recorded once the request is: still active.
   * Not a failover (its machines stand in for production: it is released once finished), nor a
   * finished run, nor one that has reached its result and is tearing its lab down (the result
   * stands): 409s.
   */
  async cancel(runId: string, cancelledBy: string): Promise<RecoveryRun> {
    const run = await this.runStore.getRun(runId);
    if (!run) throw new NotFoundError(`Run ${runId} not found`);
    if (run.mode === 'failover') {
      throw new ConflictError(
        `Run ${runId} is a failover: its machines stand in for production, so it cannot be cancelled. ` +
          `Once it has finished and production is back, release it (POST /runs/${runId}/release)`,
      );
    }
    const request = await this.runStore.requestCancel(runId, {
      by: cancelledBy,
      at: now(),
    });
    if (!request) {
      // Its result reached, only its teardown left (which a cancel would not change): said so, not
      // taken as a cancel the run then ends without.
      const outcome = await this.runStore.reachedOutcome(runId);
      if (outcome)
        throw new ConflictError(
          `Run ${runId} has already ${reachedStatus(outcome.status)} and its lab is being torn down: there is nothing to cancel`,
        );
      const { status } = (await this.runStore.getRun(runId)) ?? run;
      throw new ConflictError(
        `Run ${runId} has already finished (${status}): there is nothing to cancel`,
      );
    }
    this.interrupt(runId, request);
    return (await this.runStore.getRun(runId))!;
  }

  /** Interrupts a run this backend drives, as cancelled by `request` (none elsewhere). */
  private interrupt(runId: string, request: CancelRequest): void {
    const controller = this.driving.get(runId);
    if (controller && !controller.signal.aborted)
      controller.abort(new RunCancelled(request.by, request.at));
  }

  /** A run as recorded, or undefined where there is none of that id. */
  getRun(runId: string): Promise<RecoveryRun | undefined> {
    return this.runStore.getRun(runId);
  }

  /**
   * The newest `limit` runs matching `query` (after `after`: the next page), newest first; with
   * `visible`, only those whose entity it shows, a page of `limit` of them however many it hides
   * (listVisibleRuns).
   */
  listRuns(
    query: {
      entityRef?: string;
      status?: RunStatus[];
      after?: Pick<RecoveryRun, 'createdAt' | 'id'>;
    },
    limit: number,
    visible?: VisibleTo,
  ): Promise<RecoveryRun[]> {
    return visible
      ? listVisibleRuns(this.runStore, query, limit, visible)
      : this.runStore.listRuns({ ...query, limit });
  }

  /** Resolves when the run this instance drives has finished (tests, shutdown). */
  async waitFor(runId: string): Promise<void> {
    await this.done.get(runId);
  }

  /**
   * Stops driving every run: each is ended `interrupted`, a test lab torn down, what a
   * failover booted kept.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.nextLook);
    for (const controller of this.driving.values()) controller.abort();
    // Also those whose admission was under way: they are driven, interrupted, meanwhile.
    await Promise.allSettled(this.admitting);
    while (this.done.size > 0) await Promise.all(this.done.values());
    // A sweep under way finishes what it claimed before the database closes (it looks no more).
    await this.sweeping?.catch(() => {});
  }

  /**
   * The cleanup task's sweep: cleanUpInterruptedRuns, then, while runs driven elsewhere are active,
   * one more look on this backend exactly when the oldest heartbeat it saw turns stale (by the
   * database's clock), and so on from each look. A run whose backend was killed is claimed as soon
   * as staleAfterMs allows, not up to a task period later; a live one no sooner than before. One
   * look at a time: each sweep replaces it, and shutdown cancels it.
   */
  sweepInterruptedRuns(): Promise<string[]> {
    this.sweeping ??= this.sweep().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweep(): Promise<string[]> {
    const cleaned = await this.cleanUpInterruptedRuns();
    if (this.stopping) return cleaned;
    // Read after the sweep, which may have spent a teardown's time: a run that turned stale
    // meanwhile (it claimed every other, but those this backend drives) is looked at at once.
    const dueInMs = (await this.runStore.heartbeatAges())
      .filter(({ id }) => !this.driving.has(id))
      .map(({ ageMs }) => this.options.staleAfterMs - ageMs);
    if (dueInMs.length > 0 && !this.stopping)
      this.lookAgain(Math.max(0, Math.min(...dueInMs)) + PAST_STALE_MS);
    return cleaned;
  }

  private lookAgain(inMs: number): void {
    clearTimeout(this.nextLook);
    this.nextLook = setTimeout(() => {
      this.nextLook = undefined;
      this.sweepInterruptedRuns().catch(error =>
        this.logger.warn(
          "Looking again for runs orphaned by a stopped backend failed, left to the cleanup task's next run",
          toError(error),
        ),
      );
    }, inMs);
    // Shutdown clears it; a process that ends without one is not held up for it.
    this.nextLook.unref();
  }

  /**
   * Runs left active by a backend that stopped (restart, crash, another replica gone):
   * they are ended `interrupted`, a test lab torn down, what a failover booted kept. One someone
   * asked to cancel ends cancelled by them (`error.cancelledBy`), not as orphaned.
   */
  async cleanUpInterruptedRuns(): Promise<string[]> {
    // Staleness by the database's clock: this replica's may run ahead of the driver's.
    const stale = await this.runStore.activeRuns({
      staleForMs: this.options.staleAfterMs,
    });
    const cleaned: string[] = [];
    for (const run of stale) {
      if (this.driving.has(run.id)) continue;
      const at = new Date();
      // Claimed before anything is torn down, and only while its heartbeat is still stale: one
      // replica wins, and a driver alive after all finds it lost the run before its machines
      // vanish (it stops instead of failing them). Its machines are settled with the claim, and
      // a test lab, about to be torn down, is recorded as left with it: failing the run frees the
      // host, and a run admitted there next must find the lab to remove, even if this backend
      // stops before its teardown.
      const labLeft = run.mode !== 'failover';
      const claim = await this.runStore.claimStaleRun(
        run.id,
        this.options.staleAfterMs,
        ORPHANED,
        at,
        { labLeft, cancelled: orphanedCancelled },
      );
      if (!claim) continue;
      this.metrics?.runFinished(
        run,
        claim.outcome?.status ?? 'interrupted',
        claim.outcome?.rtoSeconds,
      );
      // Where its driver stopped during the teardown, after the run reached its result (see
      // finish): the claim finished it with that result, which this teardown does not change.
      if (claim.outcome) {
        await this.teardown.afterDriverStopped(run, claim.outcome.status, at);
        cleaned.push(run.id);
        continue;
      }
      let teardownNote = '';
      try {
        const host = this.providers.hypervisorHost(run.hypervisorHost);
        if (run.mode === 'failover') {
          teardownNote = `; ${await this.failovers.keep(host, run, run.machines)}`;
        } else {
          // Left (since the claim) until removed: a backend that stops during this teardown
          // leaves it to the cleanup task.
          teardownNote = `; removed ${describeResources(await this.teardown.remove(host, run.id))}`;
          await this.runStore.setLabLeft(run.id, false);
        }
      } catch (error) {
        // Still recorded as left (the claim did): whatever of it reached the host goes later.
        teardownNote = isHostUnreachable(error)
          ? `; teardown not checked: hypervisor host ${run.hypervisorHost} cannot be reached (${messageOf(error)})`
          : `; teardown failed: ${messageOf(error)}`;
      }
      // Someone asked to cancel it: its end names them, as a cancel its driver saw would.
      const { cancel } = claim;
      const message = `${cancel ? orphanedCancelled(cancel) : ORPHANED}${teardownNote}`;
      await this.runStore.setFailedRunError(run.id, {
        message,
        ...(cancel && { cancelledBy: cancel.by }),
      });
      await this.runStore.appendStep(run.id, {
        at: at.toISOString(),
        level: 'error',
        message,
      });
      this.logger.child({ runId: run.id }).warn(message);
      cleaned.push(run.id);
    }
    for (const { runId, error } of await this.teardown.removeLeftLabs()) {
      this.logger
        .child({ runId })
        .warn("The run's lab is still on its host", { error });
    }
    return cleaned;
  }
}

/**
 * The (log name, entity ref) pairs of an analysis's `names` that the warnings mention: what
 * filtering them for a reader needs (names with no entity ref hide nothing).
 */
function namesMentioned(
  warnings: string[],
  names: Map<string, string | undefined>,
): Array<[string, string]> {
  return [...names].filter(
    (pair): pair is [string, string] =>
      pair[1] !== undefined && warnings.some(namingAny([pair[0]])),
  );
}

/**
 * Of the entity and its parts (the graph's roots), the services that run on no machine the catalog
 * holds while they declare dependencies it does not hold: each with those, one of which may well be
 * the machine it ran on (a machine removed from the catalog, which the entity still names).
 */
function entityWithoutItsMachines(
  graph: RecoveryGraph,
): Array<{ entityRef: string; missing: string[] }> {
  return graph.roots.flatMap(ref => {
    const service = graph.services.get(ref);
    if (!service || graph.machines.has(ref) || service.machines.length > 0)
      return [];
    const missing = graph.missing
      .filter(p => p.entityRef === ref)
      .map(p => p.message);
    return missing.length > 0 ? [{ entityRef: ref, missing }] : [];
  });
}

/** The production networks the lab must emulate: each machine's entry of each, so the host knows every address. */
function labNetworks(captures: StoredCapture[]): LabNetwork[] {
  // Every machine's entry, not one per network: the host keeps the lab's own containers (the
  // probe) off every production address it is told of. With the engine captured from: only
  // there is a network of the same name production's own.
  return captures
    .flatMap(capture =>
      capture.runtime.networks.map(network => ({
        ...network,
        aliases: [],
        engine: capture.engine,
      })),
    )
    .sort(
      (a, b) =>
        a.name.localeCompare(b.name) ||
        (a.ipv4Address ?? '').localeCompare(b.ipv4Address ?? ''),
    );
}
