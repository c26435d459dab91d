import type { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type {
  RecoveryRun,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HypervisorHost,
  LabResources,
} from '@backstage-recovery/plugin-recovery-node';
import { counted } from '@backstage-recovery/plugin-recovery-node';
import type { RunStore } from '../database/RunStore';
import type { ProviderRegistry } from '../service/ProviderRegistry';
import { NEVER_ABORTED, withDeadline } from './deadline';
import { hostUnreachable, isHostUnreachable, messageOf } from './errors';
import { now, RunRecorder } from './RunRecorder';
import { reachedStatus } from './runState';

/**
 * What a lab holds, as timelines and logs say it (`named`: each with its name). Containers, not
 * machines: a lab also holds helpers such as the probe container.
 */
export const describeResources = (resources: LabResources, named = false) => {
  const list = (names: string[]) =>
    named && names.length > 0 ? ` (${names.join(', ')})` : '';
  return `${counted(resources.machines.length, 'container')}${list(resources.machines)} and ${counted(resources.networks.length, 'network')}${list(resources.networks)}`;
};

/**
 * The teardown of runs' labs: everything the host holds labelled with a run's id, removed within
 * the step deadline. A lab whose teardown fails is recorded as left on its host, and removed
 * before the next run there or by the cleanup task (removeLeftLabs).
 */
export class LabTeardown {
  constructor(
    private readonly store: RunStore,
    private readonly providers: ProviderRegistry,
    private readonly logger: LoggerService,
    private readonly stepTimeoutMs: number,
    /** Whether this backend drives the run: its driver tears its lab down itself. */
    private readonly isDriven: (runId: string) => boolean,
  ) {}

  /** What the host holds labelled with the run id, within the step deadline; undefined where it cannot tell. */
  held(host: HypervisorHost, runId: string): Promise<LabResources | undefined> {
    return withDeadline(
      () => host.listLabResources(runId),
      this.stepTimeoutMs,
      'listing the lab',
      NEVER_ABORTED,
      async () => {},
    ).catch(() => undefined);
  }

  /** Removes everything labelled with the run id, within the step deadline. */
  remove(host: HypervisorHost, runId: string): Promise<LabResources> {
    // Nothing to remove late: a teardown that finally finishes has removed it all itself.
    return withDeadline(
      () => host.teardown(runId),
      this.stepTimeoutMs,
      'teardown',
      NEVER_ABORTED,
      async () => {},
    );
  }

  /**
   * Removes the helpers the host made to probe the run's machines (HypervisorHost.removeProbes), within the
   * step deadline. One that fails is logged: the run's release removes them with the rest.
   */
  async removeProbes(host: HypervisorHost, runId: string): Promise<void> {
    if (!host.removeProbes) return;
    await withDeadline(
      () => host.removeProbes!(runId),
      this.stepTimeoutMs,
      'removing the probe helpers',
      NEVER_ABORTED,
      async () => {},
    ).catch(error =>
      this.logger
        .child({ runId, hypervisorHost: host.id })
        .warn(
          "Could not remove the run's probe helpers from its host (its release removes them)",
          toError(error),
        ),
    );
  }

  /** Removes what a step created after its deadline, once the run has already failed. */
  async removeLate(host: HypervisorHost, runId: string): Promise<void> {
    const logger = this.logger.child({ runId });
    try {
      const removed = await this.remove(host, runId);
      const total = removed.machines.length + removed.networks.length;
      if (total > 0) {
        logger.warn(
          `Removed ${describeResources(removed)} created after a step's deadline`,
        );
      }
    } catch (error) {
      logger.error(
        'Could not remove what a step created after its deadline',
        toError(error),
      );
      // Left on the host as a lab whose teardown failed: the next run there, or the cleanup
      // task, removes it; nothing else would.
      await this.store
        .setLabLeft(runId, true)
        .catch(stored =>
          logger.error(
            "Could not record the run's lab as left on its host",
            toError(stored),
          ),
        );
    }
  }

  /**
   * Tears down a finished test run's lab, and says in its timeline what went. One whose teardown
   * fails is recorded as left. `hostDown`: the run failed as its host cannot be reached, which a
   * teardown that cannot reach it either need not say again.
   */
  async ofFinishedRun(
    recorder: RunRecorder,
    host: HypervisorHost,
    hostDown: boolean,
  ): Promise<void> {
    try {
      const removed = await this.remove(host, recorder.runId);
      await recorder.step(
        `Lab torn down: removed ${describeResources(removed)}`,
      );
    } catch (error) {
      // Recorded as left either way: the host may hold part of the lab, which the next run there
      // or the cleanup task removes. Where it cannot be reached, whether it does is unknown.
      await this.store.setLabLeft(recorder.runId, true);
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

  /**
   * Removes the lab of a run whose driver stopped during its teardown, the run claimed finished
   * with the result it had reached: says so in its timeline, with what was left to remove.
   */
  async afterDriverStopped(
    run: RecoveryRun,
    status: RunStatus,
    at: Date,
  ): Promise<void> {
    let note: string;
    try {
      const host = this.providers.hypervisorHost(run.hypervisorHost);
      note = `removed the rest of its lab: ${describeResources(await this.remove(host, run.id))}`;
      await this.store.setLabLeft(run.id, false);
    } catch (error) {
      // Left recorded with the claim: the next run there, or this task, removes it.
      note = isHostUnreachable(error)
        ? `its teardown is not checked: hypervisor host ${run.hypervisorHost} cannot be reached (${messageOf(error)}); whatever of its lab reached it is removed once it answers, before the next run there or by the cleanup task`
        : `its lab stays on ${run.hypervisorHost} until it is removed before the next run there or by the cleanup task (teardown failed: ${messageOf(error)})`;
    }
    const message = `The backend driving this run stopped during its teardown, after the run had ${reachedStatus(status)}: that result stands; ${note}`;
    await this.store.appendStep(run.id, {
      at: at.toISOString(),
      level: 'warning',
      message,
    });
    this.logger.child({ runId: run.id }).warn(message);
  }

  /**
   * Removes the labs earlier runs left on the host before a run builds its own there (they would
   * clash with its networks), each said in its timeline; fails the run where one stays.
   */
  async clearLeftLabs(
    recorder: RunRecorder,
    host: HypervisorHost,
  ): Promise<void> {
    const [stuck] = await this.removeLeftLabs(host, left =>
      recorder.step(
        `Removing the lab run ${left} left on ${host.id}, before building this run's`,
      ),
    );
    if (stuck?.unreachable) throw hostUnreachable(host, stuck.error);
    if (stuck) {
      throw new Error(
        `the lab of run ${stuck.runId} is still on ${host.id} and could not be removed (${stuck.error}): remove what is labelled with that run, or mend the host, and try again`,
      );
    }
  }

  /**
   * Tears down the labs that runs left on their host when their own teardown failed (on `only`,
   * or on every host); returns the runs whose lab is still there, with why, and whether that is
   * that the host cannot be reached. `removing` hears of each before its teardown, which may take
   * a step deadline.
   */
  async removeLeftLabs(
    only?: HypervisorHost,
    removing?: (runId: string) => Promise<void>,
  ): Promise<Array<{ runId: string; error: string; unreachable: boolean }>> {
    const stuck: Array<{ runId: string; error: string; unreachable: boolean }> =
      [];
    for (const left of await this.store.runsWithLabLeft(only?.id)) {
      if (this.isDriven(left.id)) continue;
      await removing?.(left.id);
      try {
        const host = only ?? this.providers.hypervisorHost(left.hypervisorHost);
        const removed = await this.remove(host, left.id);
        // Another removal at the same time (the cleanup task, a run admitted there) said it.
        if (!(await this.store.setLabLeft(left.id, false))) continue;
        await this.store.appendStep(left.id, {
          at: now(),
          level: 'info',
          message: `Lab torn down later: removed ${describeResources(removed)}`,
        });
      } catch (error) {
        stuck.push({
          runId: left.id,
          error: messageOf(error),
          unreachable: isHostUnreachable(error),
        });
      }
    }
    return stuck;
  }
}
