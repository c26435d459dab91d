import type { LoggerService } from '@backstage/backend-plugin-api';
import {
  ConflictError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import type {
  RecoveryRun,
  RunMachine,
} from '@backstage-recovery/plugin-recovery-common';
import {
  isJobMachine,
  RUN_ID_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HypervisorHost,
  LabResources,
} from '@backstage-recovery/plugin-recovery-node';
import {
  productionSubnets,
  subnetsOverlap,
} from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore } from '../database/CaptureStore';
import type { RunStore } from '../database/RunStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import type { ProviderRegistry } from '../service/ProviderRegistry';
import { KeptFailoverError, messageOf } from './errors';
import { now, type RunRecorder } from './RunRecorder';
import { isTerminalRunStatus, waitsFor } from './runState';
import type { StartRunRequest } from './RunService';
import { describeResources, LabTeardown } from './teardown';
import { notDegraded } from './supervision';
import { isRunVisible } from './visibleRuns';

/**
 * A failover's tenure on its hypervisor host. Production is gone, so what a failover booted is
 * never torn down automatically: it is kept, failed or not (keep), refuses the runs that cannot
 * run beside it (refuseBesideKept), and goes once an engineer releases it (release).
 */
export class Failovers {
  /** Releases under way here, by run id: a second of the same run waits for the first. */
  private readonly releasing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly runStore: RunStore,
    private readonly captureStore: CaptureStore,
    private readonly providers: ProviderRegistry,
    /** The caller's view of the catalog: whether a refusal may name the failover holding the host. */
    private readonly graphs: Pick<CatalogGraphLoader, 'visibleTo'>,
    private readonly logger: LoggerService,
    private readonly teardown: LabTeardown,
  ) {}

  /**
   * What a failover leaves on the host once it probes no more (it succeeded, failed or was
   * interrupted), said in its timeline or failure: its machines may already serve production, so
   * nothing removes them automatically. Its probe helpers go first: one holds an address on each
   * of production's subnets, and serves nothing. `machines` are the run's: those that were ready
   * are said left running, but its jobs (ANNOTATION_JOB) that completed, which run no more; those
   * restored but not ready are named apart, so the containers counted are those named (each
   * container by its name where the host keeps others).
   */
  async keep(
    host: HypervisorHost,
    run: Pick<RecoveryRun, 'id' | 'plan'>,
    machines: RunMachine[] = [],
  ): Promise<string> {
    const runId = run.id;
    await this.teardown.removeProbes(host, runId);
    const kept = await this.teardown.held(host, runId);
    const ready = machines.filter(m => m.phase === 'ready');
    const [completed, running] = [true, false].map(job =>
      ready
        .filter(m => isJobMachine(run.plan, m.machineRef) === job)
        .map(m => m.machineRef),
    );
    const notReady = machines
      .filter(m => m.restoredAt && m.phase !== 'ready')
      .map(m => m.machineRef);
    // Refused before it made anything (the host keeps an earlier failover's machines, say): no
    // note of what stays, which would read as if something did.
    if (
      kept &&
      ready.length === 0 &&
      kept.machines.length + kept.networks.length === 0
    )
      return `nothing of it is on ${host.id}`;
    const named = [
      ...(running.length > 0 ? [`left running: ${running.join(', ')}`] : []),
      ...(completed.length > 0 ? [`completed: ${completed.join(', ')}`] : []),
      ...(notReady.length > 0 ? [`not ready: ${notReady.join(', ')}`] : []),
    ];
    // Each container by its name where they are not all the machines named (a helper the host
    // could not remove, one made by hand).
    const what = !kept
      ? 'what it booted'
      : describeResources(
          kept,
          named.length > 0 &&
            kept.machines.length !== ready.length + notReady.length,
        );
    return `kept ${what} on ${host.id}, labelled with run ${runId}${named.length > 0 ? ` (${named.join('; ')})` : ''}: a failover is never torn down automatically`;
  }

  /**
   * Keeps what a failover that succeeded booted: its timeline says what serves production now,
   * and how that ends (the next test recovery there would be refused until then).
   */
  async handOver(
    host: HypervisorHost,
    run: Pick<RecoveryRun, 'id' | 'plan'>,
    recorder: RunRecorder,
  ): Promise<void> {
    const runId = run.id;
    const kept = await this.keep(host, run, recorder.machines());
    await recorder.step(
      `${kept[0].toUpperCase()}${kept.slice(1)}; release it once production runs on its primary machines again (recovery release ${runId}, or POST /runs/${runId}/release)`,
    );
  }
  /**
   * Refuses, before a run exists, one that cannot run beside what an earlier failover keeps on the
   * host (its machines serve production there until an engineer removes them): a test lab cannot
   * emulate production's subnets where production's own machines hold them (Docker refuses them,
   * and the lab's machines would boot on other addresses, failing at the ready timeout), and a
   * second failover would boot again machines the first runs, or boot them apart from it. A run
   * recorded failed would count against the entity, and the nightly check would fail it each night.
   * Returns the ids of the finished failovers it looked at, for the admission to tell whether one
   * finished since (RunStore.admitRun's keptChecked).
   */
  async refuseBesideKept(
    host: HypervisorHost,
    request: Pick<StartRunRequest, 'mode' | 'recoveryPoint' | 'credentials'>,
    entityRef: string,
    machineRefs: string[],
  ): Promise<string[]> {
    const failovers = await this.runStore.finishedFailovers(host.id);
    const checked = failovers.map(f => f.id);
    if (failovers.length === 0) return checked;
    // A host busy with a run this one would not preempt is said busy first (admitRun): worth
    // waiting for, where this refusal is not.
    const active = await this.runStore.activeRuns({ hypervisorHost: host.id });
    if (active.some(a => waitsFor(request.mode, a.mode))) return checked;
    // Those the run would restore: at a recovery point, the captures of then.
    const captures = await this.captureStore.latestCaptures(
      machineRefs,
      request.recoveryPoint,
    );
    const subnets = [
      ...new Set(
        [...captures.values()].flatMap(c =>
          c.runtime.networks.flatMap(productionSubnets),
        ),
      ),
    ];
    for (const failover of failovers) {
      const held = [
        ...new Set(
          failover.machines.flatMap(m =>
            m.networks
              .flatMap(productionSubnets)
              .filter(kept => subnets.some(s => subnetsOverlap(s, kept))),
          ),
        ),
      ].sort();
      // In this run's boot order.
      const again =
        request.mode === 'failover'
          ? machineRefs.filter(m =>
              failover.machines.some(f => f.machineRef === m),
            )
          : [];
      if (held.length === 0 && again.length === 0) continue;
      // Only the host knows whether it is still there: an engineer may have removed it. A host
      // that cannot tell holds up no run: its own lab checks still apply.
      const kept = await this.teardown.held(host, failover.id);
      if (!kept || kept.machines.length + kept.networks.length === 0) continue;
      const { credentials } = request;
      const shown =
        !credentials ||
        (await isRunVisible(failover, refs =>
          this.graphs.visibleTo(refs, credentials),
        ));
      const who = shown
        ? `failover ${failover.id} of ${failover.entityRef} (${failover.status} at ${failover.finishedAt ?? 'an unknown time'})`
        : 'an earlier failover';
      const what = [
        ...(again.length > 0
          ? [`machine${again.length === 1 ? '' : 's'} ${again.join(', ')}`]
          : []),
        ...(held.length > 0
          ? [
              `production's subnet${held.length === 1 ? '' : 's'} ${held.join(', ')}`,
            ]
          : []),
      ].join(' and ');
      const why =
        request.mode === 'test'
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
        shown
          ? { runId: failover.id, entityRef: failover.entityRef }
          : undefined,
      );
    }
    return checked;
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
  async release(runId: string, releasedBy?: string): Promise<RecoveryRun> {
    const run = await this.runStore.getRun(runId);
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
    const release = previous
      .catch(() => {})
      .then(() => this.releaseFrom(host, run, releasedBy));
    this.releasing.set(runId, release);
    try {
      return await release;
    } finally {
      if (this.releasing.get(runId) === release) this.releasing.delete(runId);
    }
  }

  private async releaseFrom(
    host: HypervisorHost,
    run: RecoveryRun,
    releasedBy?: string,
  ): Promise<RecoveryRun> {
    let removed: LabResources;
    try {
      removed = await this.teardown.remove(host, run.id);
    } catch (error) {
      throw new ServiceUnavailableError(
        `Hypervisor host '${host.id}' could not tear down what failover ${run.id} kept there: ${messageOf(error)}. ` +
          'The failover is not released: release it again once the host answers',
      );
    }
    // Released, it runs degraded no more: readiness stops naming what was down.
    if (run.supervision?.degraded)
      await this.runStore.setSupervision(run.id, notDegraded(run.supervision));
    const who = releasedBy ?? 'an unnamed caller';
    const total = removed.machines.length + removed.networks.length;
    const what =
      total === 0
        ? `nothing of it was left on ${host.id}`
        : `removed ${describeResources(removed, true)} it kept on ${host.id}`;
    await this.runStore.appendStep(run.id, {
      at: now(),
      level: 'info',
      message: `Released by ${who}: ${what}`,
    });
    this.logger.child({ runId: run.id }).info(`Failover released: ${what}`, {
      entityRef: run.entityRef,
      releasedBy: who,
    });
    return (await this.runStore.getRun(run.id))!;
  }
}
