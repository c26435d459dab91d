import { BackstageCredentials, LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError, InputError, NotFoundError, ServiceUnavailableError } from '@backstage/errors';
import type {
  BootPlan,
  BootPlanMachine,
  EntityProblem,
  RecoveryRun,
  RunMachine,
  RunMode,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import {
  ANNOTATION_PROBES,
  describeProbe,
  formatBytes,
  formatSeconds,
  formatSecondsAgainst,
  INTERRUPTED_PREFIX,
  RUN_ID_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedNetwork,
  HypervisorHost,
  LabHandle,
  LabResources,
  MachineHandle,
  MachineState,
  ProbeResult,
  HostRoom,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import { counted, criticalPath, subnetsOverlap } from '@backstage-recovery/plugin-recovery-node';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  RecoveryStore,
  RunOptions,
  StoredCapture,
} from '../database/RecoveryStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { namingAny } from '../plan/mentions';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { withDeadline } from './deadline';
import {
  HostUnreachable,
  HypervisorHostBusyError,
  KeptFailoverError,
  MachineFailure,
  MissingDependenciesError,
  RunSuperseded,
} from './errors';
import { now, RunRecorder } from './RunRecorder';
import {
  isTerminalRunStatus,
  measuredRtoSeconds,
  waitsFor,
} from './runState';
import { isRunVisible } from './visibleRuns';

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
   * The time to recover to (ISO, checked by the caller): each machine restores its newest capture
   * taken at or before it, not its latest (RecoveryStore.admitRun).
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

// A teardown must still run while the backend shuts down, under its own deadline only.
const NEVER_ABORTED = new AbortController().signal;

/**
 * Why a replica fails a run whose driver looks gone: its claim's error, until the replica adds
 * to it what it tore down or kept (see cleanUpInterruptedRuns).
 */
const ORPHANED = `${INTERRUPTED_PREFIX}the backend driving this run stopped`;

/**
 * How long after a heartbeat turns stale the cleanup looks at it: a heartbeat exactly staleAfterMs
 * old is not stale yet (claimStaleRun), and the database's clock and timers round to the millisecond.
 */
const PAST_STALE_MS = 50;

/**
 * Executes boot plans on the hypervisor host: admission, the emulated network, restore and
 * boot wave by wave with readiness gates, timings and evidence, teardown of test labs.
 * Every step is persisted as it happens.
 */
export class RunService {
  private readonly driving = new Map<string, AbortController>();
  private readonly done = new Map<string, Promise<void>>();
  /** Set by shutdown: no run is admitted after it, and one admitted as it began is interrupted. */
  private stopping = false;
  /** Requests being admitted, which shutdown waits for: their run is driven once admitted. */
  private readonly admitting = new Set<Promise<unknown>>();
  /** Releases of failovers under way here, by run id: a second of the same run waits for the first. */
  private readonly releasing = new Map<string, Promise<unknown>>();
  /** This backend's next look for orphaned runs between the cleanup task's (see sweepInterruptedRuns). */
  private nextLook?: NodeJS.Timeout;
  /** The sweep for orphaned runs under way here: one asked for meanwhile joins it. */
  private sweeping?: Promise<string[]>;

  constructor(
    private readonly store: RecoveryStore,
    private readonly providers: ProviderRegistry,
    private readonly plans: PlanService,
    /** The caller's view of the catalog: whether a refusal may name the run holding the host. */
    private readonly graphs: Pick<CatalogGraphLoader, 'visibleTo'>,
    private readonly logger: LoggerService,
    private readonly options: RunServiceOptions,
  ) {}

  /** Admits a run and starts it in the background; returns it as first persisted. */
  async start(request: StartRunRequest): Promise<RecoveryRun> {
    // A 503: clients ask again, and reach the next backend.
    if (this.stopping) throw new ServiceUnavailableError('The backend is shutting down: start the run again once it is back');
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
    const { graph, plan, planError, names } = await this.plans.plan(request.entityRef);
    if (!plan) throw new InputError(planError);
    // Refused first: told what is missing, a caller without the grant would only be refused again
    // when accepting it.
    await request.authorizePlan?.(plan);
    // A dependency left out of the plan is not restored, so the run would not test the recovery
    // production needs: only when asked. Other problems (an annotation, an objective) leave the
    // plan whole; the run goes ahead and its timeline lists them (see execute).
    if (graph.missing.length > 0 && !request.acceptMissingDependencies) {
      throw new MissingDependenciesError(graph.rootRef, graph.missing.map(p => p.message));
    }
    if (plan.machines.length === 0) {
      throw new InputError(
        `${graph.rootRef} needs no machines: nothing to recover. Add dependsOn relations to machine Resources`,
      );
    }
    // With the names its warnings mention: the analysis may be pruned (recovery.analysis.keepLast)
    // before the run is last read, and without them no reader's warnings can be filtered.
    if (plan.analysis && names) plan.analysis.names = namesMentioned(plan.analysis.warnings ?? [], names);
    const host = this.providers.hypervisorHost(this.options.hypervisorHost);
    const waves = runOptions.reverseBootOrder
      ? [...plan.waves].reverse()
      : plan.waves;
    await this.refuseBesideKeptFailover(host, request, graph.rootRef, waves.flat());
    const runId = randomUUID();
    // Checked and inserted atomically: concurrent requests and replicas share the host.
    // Admitted with the captures it restores, chosen in the same transaction.
    const admission = await this.store.admitRun(
      {
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
      },
      new Date(),
    );
    if ('busyWith' in admission) {
      const { busyWith } = admission;
      // Named only to whoever may see it: GET /runs hides it from the others, as if absent.
      const { credentials } = request;
      const shown = !credentials || (await isRunVisible(busyWith, refs => this.graphs.visibleTo(refs, credentials)));
      throw new HypervisorHostBusyError(host.id, shown ? { runId: busyWith.id, entityRef: busyWith.entityRef } : undefined);
    }
    // A test run this failover preempted and this backend drives: stopped now (it finds it lost
    // its run and tears its lab down); the failover waits for that before building its own.
    const preempted = admission.preempted.map(p => p.id);
    for (const id of preempted) this.driving.get(id)?.abort();
    // Read before the run is driven, which may already have moved it on.
    const admitted = (await this.store.getRun(runId))!;
    const controller = new AbortController();
    // Admitted while the backend began to shut down: interrupted at once, and waited for.
    if (this.stopping) controller.abort();
    this.driving.set(runId, controller);
    const execution = this.execute(runId, host, waves, admission.captures, graph.problems, graph.objectives.rpoSeconds, preempted, controller.signal)
      .catch(error =>
        this.logger.error(`Run ${runId} crashed: ${error?.stack ?? error}`),
      )
      .finally(() => {
        this.driving.delete(runId);
        this.done.delete(runId);
      });
    this.done.set(runId, execution);
    return admitted;
  }

  /**
   * Refuses, before a run exists, one that cannot run beside what an earlier failover keeps on the
   * host (its machines serve production there until an engineer removes them): a test lab cannot
   * emulate production's subnets where production's own machines hold them (Docker refuses them,
   * and the lab's machines would boot on other addresses, failing at the ready timeout), and a
   * second failover would boot again machines the first runs, or boot them apart from it. A run
   * recorded failed would count against the entity, and the nightly check would fail it each night.
   */
  private async refuseBesideKeptFailover(
    host: HypervisorHost,
    request: StartRunRequest,
    entityRef: string,
    machineRefs: string[],
  ): Promise<void> {
    const failovers = await this.store.finishedFailovers(host.id);
    if (failovers.length === 0) return;
    // A host busy with a run this one would not preempt is said busy first (admitRun): worth
    // waiting for, where this refusal is not.
    const active = await this.store.activeRuns({ hypervisorHost: host.id });
    if (active.some(a => waitsFor(request.mode, a.mode))) return;
    // Those the run would restore: at a recovery point, the captures of then.
    const captures = await this.store.latestCaptures(machineRefs, request.recoveryPoint);
    const subnets = [...new Set([...captures.values()].flatMap(c => c.runtime.networks.flatMap(n => (n.subnet ? [n.subnet] : []))))];
    for (const failover of failovers) {
      const held = [
        ...new Set(failover.machines.flatMap(m => m.networks.flatMap(n => (n.subnet && subnets.some(s => subnetsOverlap(s, n.subnet!)) ? [n.subnet] : [])))),
      ].sort();
      // In this run's boot order.
      const again = request.mode === 'failover' ? machineRefs.filter(m => failover.machines.some(f => f.machineRef === m)) : [];
      if (held.length === 0 && again.length === 0) continue;
      // Only the host knows whether it is still there: an engineer may have removed it. A host
      // that cannot tell holds up no run: its own lab checks still apply.
      const kept = await this.labResources(host, failover.id);
      if (!kept || kept.machines.length + kept.networks.length === 0) continue;
      const { credentials } = request;
      const shown = !credentials || (await isRunVisible(failover, refs => this.graphs.visibleTo(refs, credentials)));
      const who = shown ? `failover ${failover.id} of ${failover.entityRef} (${failover.status} at ${failover.finishedAt ?? 'an unknown time'})` : 'an earlier failover';
      const what = [
        ...(again.length > 0 ? [`machine${again.length === 1 ? '' : 's'} ${again.join(', ')}`] : []),
        ...(held.length > 0 ? [`production's subnet${held.length === 1 ? '' : 's'} ${held.join(', ')}`] : []),
      ].join(' and ');
      const why = request.mode === 'test'
        ? "this test recovery's isolated lab cannot have those subnets beside them, so it would not emulate production"
        : 'a second failover would boot them again, or apart from them on other addresses';
      const remove = shown
        ? `release failover ${failover.id} (recovery release ${failover.id}, or POST /runs/${failover.id}/release), ` +
          `or else remove what it kept there by hand (everything labelled ${RUN_ID_LABEL}=${failover.id}),`
        : 'have that failover released (or what it kept there removed)';
      throw new KeptFailoverError(
        entityRef,
        request.mode,
        who,
        host.id,
        describeResources(kept),
        what,
        `${why}. Once production no longer needs them, ${remove} and start the run again; or recover onto another hypervisor host`,
        shown ? { runId: failover.id, entityRef: failover.entityRef } : undefined,
      );
    }
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
  async releaseFailover(runId: string, releasedBy?: string): Promise<RecoveryRun> {
    const run = await this.store.getRun(runId);
    if (!run) throw new NotFoundError(`Run ${runId} not found`);
    if (run.mode !== 'failover') {
      throw new ConflictError(
        `Run ${runId} is a test recovery, not a failover: only a failover's machines are kept on the host, and a test recovery's lab is torn down when it finishes`,
      );
    }
    if (!isTerminalRunStatus(run.status)) {
      throw new ConflictError(
        `Failover ${runId} is still ${run.status}: release it once it has finished (its machines may be booting production now)`,
      );
    }
    // Unregistered since (the backend's configuration changed): a 503 naming it.
    const host = this.providers.hypervisorHost(run.hypervisorHost);
    // One release of a run at a time on this backend: a second (a double click) waits, then finds
    // nothing left. Teardown is idempotent, so releases on two replicas at once do no harm either.
    const previous = this.releasing.get(runId) ?? Promise.resolve();
    const release = previous.catch(() => {}).then(() => this.release(host, run, releasedBy));
    this.releasing.set(runId, release);
    try {
      return await release;
    } finally {
      if (this.releasing.get(runId) === release) this.releasing.delete(runId);
    }
  }

  private async release(host: HypervisorHost, run: RecoveryRun, releasedBy?: string): Promise<RecoveryRun> {
    let removed: LabResources;
    try {
      removed = await this.teardown(host, run.id);
    } catch (error) {
      throw new ServiceUnavailableError(
        `Hypervisor host '${host.id}' could not tear down what failover ${run.id} kept there: ${messageOf(error)}. ` +
          'The failover is not released: release it again once the host answers',
      );
    }
    const who = releasedBy ?? 'an unnamed caller';
    const total = removed.machines.length + removed.networks.length;
    const what = total === 0
      ? `nothing of it was left on ${host.id}`
      : `removed ${describeResources(removed, true)} it kept on ${host.id}`;
    await this.store.appendStep(run.id, { at: now(), level: 'info', message: `Released by ${who}: ${what}` });
    this.logger.info(`Failover ${run.id} of ${run.entityRef} released by ${who}: ${what}`);
    return (await this.store.getRun(run.id))!;
  }

  /** Resolves when the run this instance drives has finished (tests, shutdown). */
  async waitFor(runId: string): Promise<void> {
    await this.done.get(runId);
  }

  /**
   * Stops driving every run: each is failed as interrupted, a test lab torn down, what a
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
    const dueInMs = (await this.store.heartbeatAges())
      .filter(({ id }) => !this.driving.has(id))
      .map(({ ageMs }) => this.options.staleAfterMs - ageMs);
    if (dueInMs.length > 0 && !this.stopping) this.lookAgain(Math.max(0, Math.min(...dueInMs)) + PAST_STALE_MS);
    return cleaned;
  }

  private lookAgain(inMs: number): void {
    clearTimeout(this.nextLook);
    this.nextLook = setTimeout(() => {
      this.nextLook = undefined;
      this.sweepInterruptedRuns().catch(error =>
        this.logger.warn(`Looking again for runs orphaned by a stopped backend failed: ${messageOf(error)}; the cleanup task looks at its next run`),
      );
    }, inMs);
    // Shutdown clears it; a process that ends without one is not held up for it.
    this.nextLook.unref();
  }

  /**
   * Runs left active by a backend that stopped (restart, crash, another replica gone):
   * they are failed as interrupted, a test lab torn down, what a failover booted kept.
   */
  async cleanUpInterruptedRuns(): Promise<string[]> {
    // Staleness by the database's clock: this replica's may run ahead of the driver's.
    const stale = await this.store.activeRuns({ staleForMs: this.options.staleAfterMs });
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
      const claim = await this.store.claimStaleRun(run.id, this.options.staleAfterMs, ORPHANED, at, { labLeft });
      if (!claim) continue;
      // Where its driver stopped during the teardown, after the run reached its result (see
      // finish): the claim finished it with that result, which this teardown does not change.
      if (claim.outcome) {
        await this.finishTeardownOf(run, claim.outcome.status, at);
        cleaned.push(run.id);
        continue;
      }
      let teardownNote = '';
      try {
        const host = this.providers.hypervisorHost(run.hypervisorHost);
        if (run.mode === 'failover') {
          teardownNote = `; ${await this.keep(host, run.id, run.machines)}`;
        } else {
          // Left (since the claim) until removed: a backend that stops during this teardown
          // leaves it to the cleanup task.
          teardownNote = `; removed ${describeResources(await this.teardown(host, run.id))}`;
          await this.store.setLabLeft(run.id, false);
        }
      } catch (error) {
        // Still recorded as left (the claim did): whatever of it reached the host goes later.
        teardownNote = isHostUnreachable(error)
          ? `; teardown not checked: hypervisor host ${run.hypervisorHost} cannot be reached (${messageOf(error)})`
          : `; teardown failed: ${messageOf(error)}`;
      }
      const message = `${ORPHANED}${teardownNote}`;
      await this.store.setFailedRunError(run.id, { message });
      await this.store.appendStep(run.id, {
        at: at.toISOString(),
        level: 'error',
        message,
      });
      this.logger.warn(`Run ${run.id}: ${message}`);
      cleaned.push(run.id);
    }
    for (const { runId, error } of await this.removeLeftLabs()) {
      this.logger.warn(`Run ${runId}: its lab is still on its host: ${error}`);
    }
    return cleaned;
  }

  /**
   * Removes the lab of a run whose driver stopped during its teardown, the run claimed finished
   * with the result it had reached: says so in its timeline, with what was left to remove.
   */
  private async finishTeardownOf(run: RecoveryRun, status: RunStatus, at: Date): Promise<void> {
    let note: string;
    try {
      const host = this.providers.hypervisorHost(run.hypervisorHost);
      note = `removed the rest of its lab: ${describeResources(await this.teardown(host, run.id))}`;
      await this.store.setLabLeft(run.id, false);
    } catch (error) {
      // Left recorded with the claim: the next run there, or this task, removes it.
      note = isHostUnreachable(error)
        ? `its teardown is not checked: hypervisor host ${run.hypervisorHost} cannot be reached (${messageOf(error)}); whatever of its lab reached it is removed once it answers, before the next run there or by the cleanup task`
        : `its lab stays on ${run.hypervisorHost} until it is removed before the next run there or by the cleanup task (teardown failed: ${messageOf(error)})`;
    }
    const message = `The backend driving this run stopped during its teardown, after the run had ${status}: that result stands; ${note}`;
    await this.store.appendStep(run.id, { at: at.toISOString(), level: 'warning', message });
    this.logger.warn(`Run ${run.id}: ${message}`);
  }

  /**
   * Tears down the labs that runs left on their host when their own teardown failed (on `only`,
   * or on every host); returns the runs whose lab is still there, with why, and whether that is
   * that the host cannot be reached. `removing` hears of each before its teardown, which may take
   * a step deadline.
   */
  private async removeLeftLabs(
    only?: HypervisorHost,
    removing?: (runId: string) => Promise<void>,
  ): Promise<Array<{ runId: string; error: string; unreachable: boolean }>> {
    const stuck: Array<{ runId: string; error: string; unreachable: boolean }> = [];
    for (const left of await this.store.runsWithLabLeft(only?.id)) {
      if (this.driving.has(left.id)) continue;
      await removing?.(left.id);
      try {
        const host = only ?? this.providers.hypervisorHost(left.hypervisorHost);
        const removed = await this.teardown(host, left.id);
        // Another removal at the same time (the cleanup task, a run admitted there) said it.
        if (!(await this.store.setLabLeft(left.id, false))) continue;
        await this.store.appendStep(left.id, { at: now(), level: 'info', message: `Lab torn down later: removed ${describeResources(removed)}` });
      } catch (error) {
        stuck.push({ runId: left.id, error: messageOf(error), unreachable: isHostUnreachable(error) });
      }
    }
    return stuck;
  }

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
    const run = (await this.store.getRun(runId))!;
    const recorder = new RunRecorder(this.store, run);
    // The heartbeat finds out when another replica has failed the run (it looked orphaned).
    const superseded = new AbortController();
    const driving = AbortSignal.any([signal, superseded.signal]);
    const heartbeat = setInterval(
      () =>
        this.store
          .heartbeat(runId)
          .then(active => active || superseded.abort())
          .catch(() => {}),
      this.options.heartbeatIntervalMs,
    );
    // A step that settles after its deadline leaves debris, removed like the lab, except from
    // a failover: removing it removes everything labelled with the run, and what a failover
    // booted may already serve production. While the run is still driven (the step's wave
    // siblings still verifying), the removal waits.
    let driven = true;
    let debrisLeft = false;
    const removeDebris = () => (run.mode === 'failover' ? Promise.resolve() : this.removeLate(host, runId));
    const removeLate = () => {
      if (driven) debrisLeft = true;
      return driven ? Promise.resolve() : removeDebris();
    };
    let lab: LabHandle | undefined;
    // Whether the run has asked the host for anything that may leave part of its lab there (its
    // room, its lab): until then a failure has nothing of it to tear down, or to record as left.
    let labStarted = false;
    try {
      await recorder.status('running', { startedAt: now() });
      await recorder.step(
        `${run.mode === 'test' ? 'Test recovery' : 'Failover'} of ${run.entityRef} on ${host.id}: ${waves.length} waves, ${waves.flat().length} machines${run.recoveryPoint ? `, to the recovery point ${run.recoveryPoint}` : ''}`,
      );
      // Readiness shows them while they last; the run's page shows what this run was admitted with.
      const machineRefs = new Set(waves.flat());
      for (const problem of problems) {
        await recorder.step(
          `Catalog problem: ${problem.message}`,
          machineRefs.has(problem.entityRef) ? problem.entityRef : undefined,
          'warning',
        );
      }
      // An old capture boots all the same: the run says what a recovery from it would lose,
      // or its success would vouch for captures that miss weeks of production's changes.
      for (const machineRef of waves.flat()) {
        const capture = captures.get(machineRef)!;
        // At a recovery point, what it would lose of what production had then.
        const age = Math.max(0, Math.round((Date.parse(run.recoveryPoint ?? run.createdAt) - Date.parse(capture.createdAt)) / 1000));
        if (age > rpoSeconds) {
          await recorder.step(
            `Restores its capture of ${capture.createdAt}, ${formatSecondsAgainst(age, rpoSeconds)} old ${run.recoveryPoint ? 'at the recovery point' : 'when the run was admitted'}, over the RPO of ${formatSeconds(rpoSeconds)}: a recovery from it would lose what changed since`,
            machineRef,
            'warning',
          );
        }
      }
      for (const id of preempted) {
        await recorder.step(`Preempted test recovery ${id}, which held ${host.id}: its lab is removed before this failover's is built`);
        // Its driver, if this backend's, tears it down itself: not alongside it.
        await this.done.get(id);
      }
      // A host whose engine cannot be reached fails the run here, before anything of its lab
      // could be made there: said as the cause, not as an earlier run's lab in the way.
      await this.reachHost(host, runId);
      // A lab an earlier run could not tear down would clash with this one's networks.
      const [stuck] = await this.removeLeftLabs(host, left =>
        recorder.step(`Removing the lab run ${left} left on ${host.id}, before building this run's`),
      );
      if (stuck?.unreachable) throw new HostUnreachable(`hypervisor host ${host.id} cannot be reached: ${stuck.error}`);
      if (stuck) {
        throw new Error(
          `the lab of run ${stuck.runId} is still on ${host.id} and could not be removed (${stuck.error}): remove what is labelled with that run, or mend the host, and try again`,
        );
      }
      // Set as each call that may make part of the lab is made: one the run stops before is not.
      const building = () => {
        labStarted = true;
      };
      await this.checkRoom(recorder, host, runId, waves.map(wave => wave.map(m => captures.get(m)!)), driving, removeLate, building);
      const networks = labNetworks([...captures.values()]);
      const labStartedAt = new Date().toISOString();
      lab = await withDeadline(
        () => (building(), host.createLab(runId, networks, { internal: run.mode === 'test' })),
        this.options.stepTimeoutMs,
        'Creating the lab',
        driving,
        removeLate,
      ).catch(error => {
        throw isHostUnreachable(error) && !driving.aborted
          ? new HostUnreachable(`hypervisor host ${host.id} cannot be reached: ${messageOf(error)}`)
          : error;
      });
      await recorder.step(
        `Created ${run.mode === 'test' ? 'isolated ' : ''}network ${lab.networks.join(', ')}`,
      );

      const planned = new Map(run.plan.machines.map(m => [m.machineRef, m]));
      const booted = new Map<string, MachineHandle>();
      for (const [index, wave] of waves.entries()) {
        driving.throwIfAborted();
        await recorder.step(`Wave ${index + 1}: booting ${wave.join(', ')}`);
        const results = await Promise.allSettled(
          wave.map(async machineRef => {
            const handle = await this.bootMachine(recorder, host, lab!, planned.get(machineRef)!, captures.get(machineRef)!, driving, removeLate);
            booted.set(machineRef, handle);
          }),
        );
        const failed = results.find(r => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }

      // RTO ends when the last machine got ready; the final check comes after it.
      const rtoSeconds = measuredRtoSeconds(recorder.machines(), labStartedAt);
      await this.holdReady(recorder, driving);
      await this.finalCheck(recorder, host, lab, booted, planned, driving, removeLate);
      await recorder.step(
        `All ${waves.flat().length} machines verified in ${rtoSeconds} s; the final check found them all still running and answering`,
      );
      const critical = criticalPathStep(recorder.machines(), run.plan.machines, waves);
      if (critical) await recorder.step(critical);
      if (run.mode === 'failover') {
        // What serves production now, and how it ends: the next test recovery would be refused.
        const kept = await this.keep(host, runId, recorder.machines());
        await recorder.step(
          `${kept[0].toUpperCase()}${kept.slice(1)}; release it once production runs on its primary machines again (recovery release ${runId}, or POST /runs/${runId}/release)`,
        );
      }
      await this.finish(recorder, host, run, 'succeeded', { rtoSeconds }, undefined, { labStarted });
    } catch (error) {
      // Claimed by another replica (the run looked orphaned): its failure stands, and whatever
      // failed here may be that replica tearing the lab down, no failure of this run's.
      if (error instanceof RunSuperseded || superseded.signal.aborted || !(await this.stillDriven(runId))) {
        await this.abandon(recorder, host, run, signal);
        return;
      }
      // A host may reject with anything (a string, nothing): the run still fails with what it said.
      const failure = (error instanceof Error ? error : new Error(messageOf(error))) as Error & { machineRef?: string; probe?: string };
      const interrupted = signal.aborted;
      // A machine's failure was logged where it failed; anything else (the lab, a bug) here.
      if (!interrupted && failure.machineRef === undefined) {
        this.logger.warn(`Run ${runId} failed: ${failure?.stack ?? messageOf(failure)}`);
      }
      const reason = interrupted
        ? `${INTERRUPTED_PREFIX}the backend is shutting down`
        : failure.message;
      // The host's engine is out of reach: the teardown, which cannot reach it either, need not
      // say why again.
      const hostDown = !interrupted && failure instanceof HostUnreachable;
      let message = reason;
      // Production is gone: what a failover booted stays, failed or interrupted, and the
      // failure says what is left running. One that made nothing there says so.
      if (run.mode === 'failover') {
        message += `; ${labStarted ? await this.keep(host, runId, recorder.machines()) : `nothing of it is on ${host.id}`}`;
      }
      await recorder.step(message, undefined, 'error');
      try {
        await this.finish(
          recorder,
          host,
          run,
          'failed',
          // An interruption is no machine's failure: the error names none.
          {
            error: interrupted
              ? { message }
              : { machineRef: failure.machineRef, probe: failure.probe, message },
          },
          interrupted ? reason : `the run failed: ${reason}`,
          { labStarted, hostDown },
        );
      } catch (finishError) {
        if (!(finishError instanceof RunSuperseded)) throw finishError;
        await this.abandon(recorder, host, run, signal);
      }
    } finally {
      clearInterval(heartbeat);
      driven = false;
      if (debrisLeft) await removeDebris();
    }
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
      note = await this.keep(host, run.id);
    } else {
      // After that replica's teardown, not alongside it: it learns it lost the run as soon as
      // that replica claims it, and tearing down then would take the lab from under that
      // replica, whose failure would then say it removed nothing.
      await this.claimTornDown(run.id, signal);
      try {
        note = `removed ${describeResources(await this.teardown(host, run.id))}`;
      } catch (error) {
        // What this driver created after that replica's teardown stays: recorded as left, as a
        // failed teardown of its own would be, so the next run there or the cleanup task removes it.
        note = `teardown failed: ${messageOf(error)}`;
        await this.store.setLabLeft(run.id, true).catch(() => {});
      }
    }
    const message = `Stopped driving: the run was already finished elsewhere${note ? `; ${note}` : ''}`;
    await recorder.step(message, undefined, 'error').catch(() => {});
    this.logger.warn(`Run ${run.id}: ${message}`);
  }

  /** What the host holds labelled with the run id, within the step deadline; undefined where it cannot tell. */
  private labResources(host: HypervisorHost, runId: string): Promise<LabResources | undefined> {
    return withDeadline(() => host.listLabResources(runId), this.options.stepTimeoutMs, 'listing the lab', NEVER_ABORTED, async () => {}).catch(
      () => undefined,
    );
  }

  /** Removes everything labelled with the run id, within the step deadline. */
  private teardown(host: HypervisorHost, runId: string): Promise<LabResources> {
    // Nothing to remove late: a teardown that finally finishes has removed it all itself.
    return withDeadline(() => host.teardown(runId), this.options.stepTimeoutMs, 'teardown', NEVER_ABORTED, async () => {});
  }

  /**
   * What a failover leaves on the host once it probes no more (it succeeded, failed or was
   * interrupted), said in its timeline or failure: its machines may already serve production, so
   * nothing removes them automatically. Its probe helpers go first: one holds an address on each
   * of production's subnets, and serves nothing. `machines` are the run's: those that were ready
   * are said left running, those restored but not ready named apart, so the containers counted
   * are those named (each container by its name where the host keeps others).
   */
  private async keep(host: HypervisorHost, runId: string, machines: RunMachine[] = []): Promise<string> {
    await this.removeProbes(host, runId);
    const kept = await this.labResources(host, runId);
    const running = readyMachines(machines);
    const notReady = machines.filter(m => m.restoredAt && m.phase !== 'ready').map(m => m.machineRef);
    // Refused before it made anything (the host keeps an earlier failover's machines, say): no
    // note of what stays, which would read as if something did.
    if (kept && running.length === 0 && kept.machines.length + kept.networks.length === 0) return `nothing of it is on ${host.id}`;
    const named = [
      ...(running.length > 0 ? [`left running: ${running.join(', ')}`] : []),
      ...(notReady.length > 0 ? [`not ready: ${notReady.join(', ')}`] : []),
    ];
    // Each container by its name where they are not all the machines named (a helper the host
    // could not remove, one made by hand).
    const what = !kept ? 'what it booted' : describeResources(kept, named.length > 0 && kept.machines.length !== running.length + notReady.length);
    return `kept ${what} on ${host.id}, labelled with run ${runId}${named.length > 0 ? ` (${named.join('; ')})` : ''}: a failover is never torn down automatically`;
  }

  /**
   * Removes the helpers the host made to probe the run's machines (HypervisorHost.removeProbes), within the
   * step deadline. One that fails is logged: the run's release removes them with the rest.
   */
  private async removeProbes(host: HypervisorHost, runId: string): Promise<void> {
    if (!host.removeProbes) return;
    await withDeadline(() => host.removeProbes!(runId), this.options.stepTimeoutMs, 'removing the probe helpers', NEVER_ABORTED, async () => {}).catch(error =>
      this.logger.warn(`Run ${runId}: could not remove its probe helpers from ${host.id}: ${messageOf(error)}; its release removes them`),
    );
  }

  /**
   * Asks the host what it holds of the run, before the run asks it for anything that may make
   * part of its lab there: a host whose engine cannot be reached, or does not answer within the
   * step deadline, fails the run as that, with nothing of its lab to remove. An error the host
   * answers with holds up nothing: the run's own steps say whether it can build the lab. Not cut
   * short by the run's interruption, as the removal of labs left after it is not: an interrupted
   * run still clears those away; it stops at its next step.
   */
  private async reachHost(host: HypervisorHost, runId: string): Promise<void> {
    const timedOut = new MachineFailure(
      `hypervisor host ${host.id} did not answer within ${this.options.stepTimeoutMs / 1000} s when asked what it holds of this run: is its engine hung?`,
    );
    try {
      await withDeadline(() => host.listLabResources(runId), this.options.stepTimeoutMs, () => timedOut, NEVER_ABORTED, async () => {});
    } catch (error) {
      if (error === timedOut) throw new HostUnreachable(timedOut.message);
      if (isHostUnreachable(error)) throw new HostUnreachable(`hypervisor host ${host.id} cannot be reached: ${messageOf(error)}`);
    }
  }

  /**
   * Waits while a replica that claimed the run as orphaned still tears its lab down: its claim's
   * error says only why until it adds what it removed. At most that replica's teardown deadline:
   * had it stopped meanwhile, this driver's teardown removes the lab after all.
   */
  private async claimTornDown(runId: string, signal: AbortSignal): Promise<void> {
    const until = Date.now() + this.options.stepTimeoutMs + this.options.heartbeatIntervalMs;
    while (!signal.aborted && Date.now() < until) {
      const run = await this.store.getRun(runId).catch(() => undefined);
      if (run?.error?.message !== ORPHANED) return;
      await sleep(this.options.heartbeatIntervalMs, undefined, { signal }).catch(() => {});
    }
  }

  /** Whether this replica still drives the run (beating it): false once another replica claimed it. */
  private stillDriven(runId: string): Promise<boolean> {
    // Unknown is still ours: the run's own updates tell when it is not.
    return this.store.heartbeat(runId).catch(() => true);
  }

  /** Removes what a step created after its deadline, once the run has already failed. */
  private async removeLate(host: HypervisorHost, runId: string): Promise<void> {
    try {
      const removed = await this.teardown(host, runId);
      const total = removed.machines.length + removed.networks.length;
      if (total > 0) {
        this.logger.warn(`Run ${runId}: removed ${describeResources(removed)} created after a step's deadline`);
      }
    } catch (error) {
      this.logger.error(`Run ${runId}: could not remove what a step created after its deadline: ${error}`);
      // Left on the host as a lab whose teardown failed: the next run there, or the cleanup
      // task, removes it; nothing else would.
      await this.store
        .setLabLeft(runId, true)
        .catch(stored => this.logger.error(`Run ${runId}: could not record its lab as left on its host: ${stored}`));
    }
  }

  private async finish(
    recorder: RunRecorder,
    host: HypervisorHost,
    run: RecoveryRun,
    status: RunStatus,
    result: Pick<RecoveryRun, 'rtoSeconds' | 'error'>,
    /** Why a machine still in progress when the run failed stopped. */
    unfinishedReason = 'the run failed',
    /**
     * `labStarted`: the run asked the host for something that may have made part of its lab (else
     * there is nothing to tear down). `hostDown`: the run failed as its host cannot be reached,
     * which a teardown that cannot reach it either need not say again.
     */
    { labStarted = true, hostDown = false }: { labStarted?: boolean; hostDown?: boolean } = {},
  ): Promise<void> {
    // A test lab goes; a failover keeps what it booted, failed or interrupted (its failure says so).
    if (run.mode === 'test' && labStarted) {
      // The run is finished only once its lab is gone (a run admitted next must not find it there),
      // but its result stands from now: a backend stopped during the teardown leaves it to whichever
      // claims the run, which finishes it so rather than as interrupted (cleanUpInterruptedRuns).
      await this.store
        .setRunOutcome(run.id, { status: status === 'succeeded' ? 'succeeded' : 'failed', ...result, unfinishedReason })
        .catch(error => this.logger.warn(`Run ${run.id}: could not keep its result ahead of its teardown: ${messageOf(error)}`));
      try {
        const removed = await this.teardown(host, run.id);
        await recorder.step(
          `Lab torn down: removed ${describeResources(removed)}`,
        );
      } catch (error) {
        // Recorded as left either way: the host may hold part of the lab, which the next run there
        // or the cleanup task removes. Where it cannot be reached, whether it does is unknown.
        await this.store.setLabLeft(run.id, true);
        if (isHostUnreachable(error)) {
          await recorder.step(
            `Teardown not checked: hypervisor host ${host.id} cannot be reached${hostDown ? '' : ` (${messageOf(error)})`}; ` +
              'whatever of the lab reached it is removed once it answers, before the next run there or by the cleanup task',
            undefined,
            'warning',
          );
        } else {
          await recorder.step(
            `Teardown failed: ${messageOf(error)}; the lab stays on ${host.id} until it is removed before the next run there or by the cleanup task`,
            undefined,
            'error',
          );
        }
      }
    }
    // No machine of a finished run may stay waiting or in progress. Settled last, with the run,
    // so a backend that stops during the teardown leaves the run to be cleaned up as a whole.
    if (status === 'failed') await recorder.settleUnfinished(unfinishedReason);
    await recorder.status(status, { finishedAt: now(), ...result });
    this.logger.info(
      `Run ${run.id} of ${run.entityRef} ${status}${result.rtoSeconds !== undefined ? ` (RTO ${result.rtoSeconds} s)` : ''}${result.error ? `: ${result.error.message}` : ''}`,
    );
  }

  /**
   * Fails the run before it builds anything where the host has less room than restoring its
   * captures takes; says how much it takes, and how much there is. A host that cannot tell, or a
   * look that fails, holds up no run: the timeline says so.
   */
  private async checkRoom(
    recorder: RunRecorder,
    host: HypervisorHost,
    runId: string,
    /** The captures by wave, in boot order. */
    waves: StoredCapture[][],
    signal: AbortSignal,
    removeLate: () => Promise<unknown>,
    /** Hears that the room is asked: the host may leave something of the run's there (a helper). */
    building: () => void,
  ): Promise<void> {
    if (!host.room) return;
    const captures = waves.flat();
    let room: HostRoom;
    try {
      room = await withDeadline(
        () => (building(), host.room!(runId, waves.map(wave => wave.map(restorable)))),
        this.options.stepTimeoutMs,
        'Reading the room on the host',
        signal,
        removeLate,
      );
    } catch (error) {
      signal.throwIfAborted();
      // Its engine went out of reach since the run found it: nothing else of the run would reach it.
      if (isHostUnreachable(error)) throw new HostUnreachable(`hypervisor host ${host.id} cannot be reached: ${messageOf(error)}`);
      await recorder.step(`Room on ${host.id} unknown, the run goes on without that check: ${messageOf(error)}`, undefined, 'warning');
      return;
    }
    const needed = `restoring the ${captures.length} capture${captures.length === 1 ? '' : 's'} takes ${formatBytes(room.neededBytes)}`;
    if (room.freeBytes !== undefined && room.neededBytes > room.freeBytes) {
      throw new Error(
        `${host.id} has ${formatBytes(room.freeBytes)} free in ${room.where}, but ${needed}: free space there (images and volumes no run uses), or recover onto a larger host`,
      );
    }
    // Every wave stays up until the run ends: the machines hold at once what they held in production.
    let memory = '';
    if (room.neededMemoryBytes !== undefined) {
      const whose = room.memoryKnownFor === captures.length ? 'the machines' : `${room.memoryKnownFor} of the ${captures.length} machines (those whose captures say)`;
      const held = `${whose} held ${formatBytes(room.neededMemoryBytes)} of memory when captured`;
      const available = room.availableMemoryBytes;
      if (available !== undefined && room.neededMemoryBytes > available) {
        throw new Error(`${host.id} has ${formatBytes(available)} of memory available, but ${held}: stop what else runs there, or recover onto a larger host`);
      }
      memory = `; ${held}${available === undefined ? '' : `, ${formatBytes(available)} available`}`;
    }
    const disk = room.freeBytes === undefined
      ? `; free space unknown (${room.unknown ?? 'the host does not say'})`
      : `, ${formatBytes(room.freeBytes)} free in ${room.where}`;
    await recorder.step(`Room on ${host.id}: ${needed}${disk}${memory}`, undefined, room.freeBytes === undefined ? 'warning' : 'info');
  }

  private async bootMachine(
    recorder: RunRecorder,
    host: HypervisorHost,
    lab: LabHandle,
    planned: BootPlanMachine,
    capture: StoredCapture,
    signal: AbortSignal,
    removeLate: () => Promise<unknown>,
  ): Promise<MachineHandle> {
    const machineRef = planned.machineRef;
    let handle: MachineHandle | undefined;
    try {
      signal.throwIfAborted();
      await recorder.machine(machineRef, 'restoring', { restoreStartedAt: now() });
      const restored = await withDeadline(
        () => host.restoreMachine(lab, restorable(capture)),
        this.options.stepTimeoutMs,
        'restore',
        signal,
        removeLate,
      );
      handle = restored.machine;
      await recorder.machine(machineRef, 'starting', { restoredAt: now() });
      await recorder.adapted(machineRef, capture.adaptations, restored);
      // One budget from start to passing its probes: what the start takes, verifying has not.
      const deadline = Date.now() + this.options.machineReadyTimeoutMs;
      await withDeadline(
        () => host.startMachine(restored.machine),
        this.options.machineReadyTimeoutMs,
        'start',
        signal,
        removeLate,
      );
      signal.throwIfAborted();
      await recorder.machine(machineRef, 'verifying', { startedAt: now() });
      const healthChecked = await this.verify(host, lab, handle, planned, deadline, signal, removeLate);
      await recorder.machine(machineRef, 'ready', { readyAt: now(), finishedAt: now() });
      const m = recorder.machines().find(x => x.machineRef === machineRef)!;
      await recorder.step(
        `Ready: restored in ${seconds(m.restoreStartedAt, m.restoredAt)} s, verified ${seconds(m.startedAt, m.readyAt)} s after start`,
        machineRef,
      );
      if (!healthChecked && planned.probes.length === 0) {
        await recorder.step(
          `Ready only in that it runs: it has no health check and neither it nor its services have probes, so nothing showed them answering (annotate them, or the machine, with ${ANNOTATION_PROBES})`,
          machineRef,
          'warning',
        );
      }
      return handle;
    } catch (error) {
      throw await this.machineFailed(recorder, host, machineRef, handle, error, signal);
    }
  }

  /**
   * Records why a machine failed, with its console tail, and returns the run's failure naming it.
   * `afterReady`: the final check found it fell over after it was ready.
   */
  private async machineFailed(
    recorder: RunRecorder,
    host: HypervisorHost,
    machineRef: string,
    handle: MachineHandle | undefined,
    error: unknown,
    signal: AbortSignal,
    afterReady = false,
  ): Promise<Error> {
    // Interrupted, not failed: the run settles the machine when it finishes.
    if (signal.aborted) return error as Error;
    // Claimed by another replica, which tears the lab down only after its claim: a machine
    // that vanished with it is no failure to record. Checked after the failure was seen, so
    // one seen while the run was still ours is real.
    if (!(await this.stillDriven(recorder.runId))) return new RunSuperseded(`Run ${recorder.runId} was claimed elsewhere`);
    // The host stopped answering (its engine went away): the run failed at the host, not at this
    // machine, which readiness and owners' notices would otherwise blame.
    if (isHostUnreachable(error)) {
      await recorder.machine(machineRef, 'failed', { finishedAt: now(), message: messageOf(error) }, afterReady);
      // Said once, as the run's failure.
      return new HostUnreachable(`hypervisor host ${host.id} stopped answering while ${machineRef} was ${afterReady ? 'checked' : 'booting'}: ${messageOf(error)}`);
    }
    // The run records the message; where it came from (a provider, or a bug) only the stack says.
    if (!(error instanceof MachineFailure)) {
      this.logger.warn(`Run ${recorder.runId}: ${machineRef} failed: ${(error as Error)?.stack ?? messageOf(error)}`);
    }
    const failure = error instanceof MachineFailure ? error : new MachineFailure(messageOf(error));
    // A lab without production's addresses explains many failures (a dependency's address
    // the machine was configured with no longer answers): say so with the failure.
    const lost = recorder.lostAddresses(machineRef);
    const reason = lost.length > 0
      ? `${failure.message} (the lab could not use production's addresses: ${lost.join('; ')})`
      : failure.message;
    const message = `${machineRef} failed: ${reason}`;
    await recorder.machine(
      machineRef,
      'failed',
      { finishedAt: now(), message: reason, probe: failure.probe },
      afterReady,
    );
    await recorder.step(message, machineRef, 'error');
    // Read after the failure is recorded: an engine that hung the machine may hang its console
    // too, and the machine is failed when it failed, not a step deadline later.
    const logTail = handle
      ? await withDeadline(() => host.logTail(handle, 30), this.options.stepTimeoutMs, 'console tail', signal, async () => {})
          .catch(() => undefined)
      : undefined;
    // Evidence only: a write of it that fails must not take the machine's reason from the run.
    if (logTail !== undefined) {
      await recorder
        .logTail(machineRef, logTail)
        .catch(stored => this.logger.warn(`Run ${recorder.runId}: could not keep the console tail of ${machineRef}: ${messageOf(stored)}`));
    }
    return Object.assign(new Error(message), { machineRef, probe: failure.probe });
  }

  /**
   * Waits, before the final check, until the last machine to get ready has been ready for
   * minReadyMs: a machine that passes its probes and exits moments later is not recovered.
   */
  private async holdReady(recorder: RunRecorder, signal: AbortSignal): Promise<void> {
    const lastReady = Math.max(...recorder.machines().map(m => Date.parse(m.readyAt!)));
    const waitMs = lastReady + this.options.minReadyMs - Date.now();
    if (!(waitMs > 0)) return;
    await recorder.step(
      `Final check in ${Number((waitMs / 1000).toFixed(1))} s, once every machine has been ready for ${this.options.minReadyMs / 1000} s (recovery.runs.minReadyTime)`,
    );
    await sleep(waitMs, undefined, { signal });
  }

  /**
   * Checks every machine again before the run may succeed: each was verified once, when it got
   * ready, and one of an early wave may have stopped since (its dependents may even have passed
   * their probes against it while it still answered). One look each, no retries: the machine
   * still runs, its health check does not report unhealthy and every probe passes. Each call
   * gets the step deadline. The first machine in boot order that fell over fails the run; every
   * one that did is recorded failed, with its console tail.
   */
  private async finalCheck(
    recorder: RunRecorder,
    host: HypervisorHost,
    lab: LabHandle,
    booted: Map<string, MachineHandle>,
    planned: Map<string, BootPlanMachine>,
    signal: AbortSignal,
    removeLate: () => Promise<unknown>,
  ): Promise<void> {
    const results = await Promise.allSettled(
      recorder.machines().map(async ({ machineRef }) => {
        const handle = booted.get(machineRef)!;
        try {
          await this.recheck(host, lab, handle, planned.get(machineRef)!, signal, removeLate);
        } catch (error) {
          throw await this.machineFailed(recorder, host, machineRef, handle, error, signal, true);
        }
      }),
    );
    const failed = results.find(r => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** One look at a ready machine for the final check; throws what no longer holds. */
  private async recheck(
    host: HypervisorHost,
    lab: LabHandle,
    machine: MachineHandle,
    planned: BootPlanMachine,
    signal: AbortSignal,
    removeLate: () => Promise<unknown>,
  ): Promise<void> {
    const step = this.options.stepTimeoutMs;
    const timeoutText = `${step / 1000} s`;
    // Nothing to remove after a late inspect; a probe may make the lab's probe container again.
    const state = await withDeadline(
      () => host.inspectMachine(machine),
      step,
      () => new MachineFailure(`inspect did not finish within ${timeoutText} after it was ready`),
      signal,
      async () => {},
    );
    if (!state.running) {
      throw new MachineFailure(`stopped with exit code ${state.exitCode ?? 'unknown'} after it was ready`);
    }
    if (state.health === 'unhealthy') {
      throw new MachineFailure('its health check reports unhealthy after it was ready');
    }
    for (const probe of planned.probes) {
      const name = describeProbe(probe);
      const result = await withDeadline(
        () => host.probe(lab, machine, probe),
        step,
        () => new MachineFailure(`probe ${name} did not finish within ${timeoutText} after it was ready`, name),
        signal,
        removeLate,
      );
      if (!result.ok) throw new MachineFailure(`probe ${name} stopped passing after it was ready: ${result.message}`, name);
    }
  }

  /**
   * Gates readiness: the machine runs, its health check passes, then every probe answers.
   * Each call to the engine gets what is left until `deadline` (its ready timeout, counted from
   * its start), so a hung one fails the machine at the deadline; a late answer still says why it
   * had not passed before. Returns whether the machine has a health check.
   */
  private async verify(
    host: HypervisorHost,
    lab: LabHandle,
    machine: MachineHandle,
    planned: BootPlanMachine,
    deadline: number,
    signal: AbortSignal,
    removeLate: () => Promise<unknown>,
  ): Promise<boolean> {
    const timeoutText = `${this.options.machineReadyTimeoutMs / 1000} s`;
    const bounded = <T>(call: () => Promise<T>, timedOut: () => MachineFailure) =>
      withDeadline(call, Math.max(0, deadline - Date.now()), timedOut, signal, removeLate);
    let last: MachineState | undefined;
    // `timedOut`: what failed when the deadline falls during the inspect (a probe still failing).
    const assertAlive = async (timedOut?: () => MachineFailure) => {
      const state = await bounded(
        () => host.inspectMachine(machine),
        timedOut ??
          (() =>
            new MachineFailure(
              last?.health === 'starting'
                ? `health check still starting after ${timeoutText}`
                : `inspect did not finish within ${timeoutText}`,
            )),
      );
      last = state;
      if (!state.running) {
        throw new MachineFailure(`stopped with exit code ${state.exitCode ?? 'unknown'}`);
      }
      if (state.health === 'unhealthy') {
        throw new MachineFailure('its health check reports unhealthy');
      }
      return state;
    };
    const wait = () => sleep(this.options.probeIntervalMs, undefined, { signal });

    while ((await assertAlive()).health === 'starting') {
      if (Date.now() > deadline) {
        throw new MachineFailure(`health check still starting after ${timeoutText}`);
      }
      await wait();
    }
    const healthChecked = last?.health !== undefined;
    for (const probe of planned.probes) {
      const name = describeProbe(probe);
      let answer: ProbeResult | undefined;
      for (;;) {
        const result: ProbeResult = await bounded(
          () => host.probe(lab, machine, probe),
          () =>
            new MachineFailure(
              answer
                ? `probe ${name} did not pass within ${timeoutText}: ${answer.message}`
                : `probe ${name} did not finish within ${timeoutText}`,
              name,
            ),
        );
        answer = result;
        if (result.ok) break;
        // At the deadline the probe is the cause, not the inspect that had no time left.
        const probeFailed = () =>
          new MachineFailure(`probe ${name} did not pass within ${timeoutText}: ${result.message}`, name);
        if (Date.now() > deadline) throw probeFailed();
        await assertAlive(probeFailed);
        await wait();
      }
    }
    return healthChecked;
  }
}

/** The machines that got ready (and did not fall over since), in boot order. */
const readyMachines = (machines: RunMachine[]) =>
  machines.filter(m => m.phase === 'ready').map(m => m.machineRef);

/**
 * The (log name, entity ref) pairs of an analysis's `names` that the warnings mention: what
 * filtering them for a reader needs (names with no entity ref hide nothing).
 */
function namesMentioned(warnings: string[], names: Map<string, string | undefined>): Array<[string, string]> {
  return [...names].filter(
    (pair): pair is [string, string] => pair[1] !== undefined && warnings.some(namingAny([pair[0]])),
  );
}

/** A stored capture as the host restores it. */
const restorable = (capture: StoredCapture): RestorableCapture => ({
  captureId: capture.id,
  machineRef: capture.machineRef,
  imageId: capture.imageId,
  checksum: capture.checksum,
  artifact: capture.artifact,
  runtime: capture.runtime,
});

/** The production networks the lab must emulate: each machine's entry of each, so the host knows every address. */
function labNetworks(captures: StoredCapture[]): CapturedNetwork[] {
  // Every machine's entry, not one per network: the host keeps the lab's own containers (the
  // probe) off every production address it is told of.
  return captures
    .flatMap(capture => capture.runtime.networks.map(network => ({ ...network, aliases: [] })))
    .sort((a, b) => a.name.localeCompare(b.name) || (a.ipv4Address ?? '').localeCompare(b.ipv4Address ?? ''));
}

/**
 * Where a recovery's time went: the chain of machine waits that took longest, each machine from its
 * restore to ready, beside the waves booted one after another (each waits for its slowest machine).
 * Shortening a machine off that chain does not shorten the recovery.
 */
function criticalPathStep(
  machines: Array<Pick<RunMachine, 'machineRef' | 'restoreStartedAt' | 'readyAt'>>,
  planned: Array<{ machineRef: string; waitsFor: string[] }>,
  waves: string[][],
): string | undefined {
  const durations: Record<string, number> = {};
  for (const m of machines) {
    if (!m.restoreStartedAt || !m.readyAt) return undefined;
    durations[m.machineRef] = Math.max(0, Date.parse(m.readyAt) - Date.parse(m.restoreStartedAt)) / 1000;
  }
  const edges = planned.map(m => ({ machine: m.machineRef, waitsFor: m.waitsFor.filter(w => w in durations) }));
  const chain = criticalPath({ waves, edges }, durations);
  const byWaves = criticalPath({ waves }, durations);
  const s = (x: number) => `${Number(x.toFixed(2))} s`;
  return (
    `Critical path: ${chain.path.map(m => `${m} (${s(durations[m])})`).join(' → ')}: ${s(chain.duration)}, each machine from its restore to ready, ` +
    `the least its boot order allows; wave after wave (each waiting for its slowest machine) the machines took ${s(byWaves.duration)}`
  );
}

// Containers, not machines: a lab also holds helpers such as the probe container.
const describeResources = (resources: LabResources, named = false) => {
  const list = (names: string[]) => (named && names.length > 0 ? ` (${names.join(', ')})` : '');
  return `${counted(resources.machines.length, 'container')}${list(resources.machines)} and ${counted(resources.networks.length, 'network')}${list(resources.networks)}`;
};
const messageOf = (error: unknown) => String((error as Error)?.message ?? error);
/**
 * Whether the host's engine could not be reached, or did not answer in time: a provider's
 * EngineError of that kind (503) is named so, as @backstage/errors' ServiceUnavailableError is.
 */
const isHostUnreachable = (error: unknown) => (error as Error | undefined)?.name === 'ServiceUnavailableError';
const seconds = (from?: string, to?: string) =>
  from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : '?';
