import type { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import {
  formatSeconds,
  type RecoveryRun,
  type RunSupervision,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HypervisorHost,
  LabHandle,
  MachineHandle,
} from '@backstage-recovery/plugin-recovery-node';
import type { RunStore } from '../database/RunStore';
import type { ProviderRegistry } from '../service/ProviderRegistry';
import { LabBoot, type LabBootOptions } from './boot';
import { NEVER_ABORTED } from './deadline';
import { messageOf } from './errors';
import { now, RunRecorder } from './RunRecorder';

/** What one look at a kept failover did. */
export type SupervisionOutcome =
  | { kind: 'running' }
  | { kind: 'released' }
  /** Degraded, and its machine's next try not due yet (RunSupervision.retry). */
  | { kind: 'waiting'; nextAt: string }
  | { kind: 'restarted'; machineRefs: string[]; seconds: number }
  | {
      kind: 'degraded';
      /** Started again and ready. */
      machineRefs: string[];
      /** The first machine, in boot order, that could not be brought back, and why. */
      failed: { machineRef: string; message: string };
      /** Left stopped: they wait for a machine that is not ready. */
      notStarted: string[];
    };

/**
 * How long a degraded failover waits before its machine is tried again: the sweep's interval
 * (`recovery-failover-supervision` runs every 30 s) at first, doubled at each try that fails the
 * same way, up to `maxSeconds`; a machine that keeps failing is not restarted every sweep.
 */
export interface SupervisionBackoff {
  firstSeconds: number;
  maxSeconds: number;
}
const DEFAULT_BACKOFF: SupervisionBackoff = {
  firstSeconds: 30,
  maxSeconds: 10 * 60,
};
/** A try due within this is due: sweeps start about an interval apart, not to the millisecond. */
const DUE_SLACK_MS = 1_000;

/** What starting stopped machines again came to. */
type Restart = Extract<SupervisionOutcome, { kind: 'restarted' | 'degraded' }>;

/**
 * Keeps a succeeded failover's machines running: production runs there now. An engine restart
 * (a dockerd restarted, the recovery host rebooted) leaves them stopped, and no restart policy
 * starts them (the host applies none: it would start them all at once). Each sweep finds the
 * machines of each kept failover on its host again, and starts those stopped in the plan's wave
 * order, each gated by the run's own readiness checks (LabBoot) before the next wave starts; the
 * failover's timeline says what was started again and how long it took, or which machine could not
 * be brought back (the failover then runs degraded).
 */
export class FailoverSupervision {
  constructor(
    private readonly runStore: RunStore,
    private readonly providers: Pick<
      ProviderRegistry,
      'hypervisorHostIds' | 'hypervisorHost'
    >,
    private readonly logger: LoggerService,
    private readonly options: LabBootOptions,
    private readonly backoff: SupervisionBackoff = DEFAULT_BACKOFF,
  ) {}

  /** Looks at every succeeded failover each host keeps; one host or failover failing holds up no other. */
  async sweep(): Promise<void> {
    for (const hostId of this.providers.hypervisorHostIds()) {
      const host = this.providers.hypervisorHost(hostId);
      // A host that cannot find its machines again leaves its failovers unsupervised.
      if (!host.reattach) continue;
      const failovers = await this.runStore.finishedFailovers(hostId);
      for (const failover of failovers) {
        if (failover.status !== 'succeeded') continue;
        await this.supervise(host, failover.id).catch(error =>
          this.logger
            .child({ runId: failover.id, hypervisorHost: hostId })
            .warn('Could not supervise the failover', toError(error)),
        );
      }
    }
  }

  /** Starts again, in wave order, the machines of failover `runId` that its host stopped. */
  async supervise(
    host: HypervisorHost,
    runId: string,
  ): Promise<SupervisionOutcome> {
    const kept = await host.reattach!(runId);
    const run = await this.runStore.getRun(runId);
    if (!run) return { kind: 'released' };
    if (!kept) {
      // Its machines gone from the host (released, or removed there): none is down any more.
      if (run.supervision?.degraded)
        await this.runStore.setSupervision(runId, notDegraded(run.supervision));
      return { kind: 'released' };
    }
    const stopped: MachineHandle[] = [];
    for (const machine of kept.machines) {
      if (!(await host.inspectMachine(machine)).running) stopped.push(machine);
    }
    if (stopped.length === 0) {
      // Every machine runs again (one started by hand, say): no longer degraded.
      if (run.supervision?.degraded) {
        await this.runStore.setSupervision(runId, notDegraded(run.supervision));
        await this.runStore.appendStep(runId, {
          at: now(),
          level: 'info',
          message: `${SUPERVISION_STEP}failover no longer degraded: every machine of it runs on ${host.id}`,
        });
      }
      return { kind: 'running' };
    }
    const retry = run.supervision?.degraded && run.supervision.retry;
    if (retry && Date.now() + DUE_SLACK_MS < Date.parse(retry.nextAt))
      return { kind: 'waiting', nextAt: retry.nextAt };
    const triedAt = Date.now();
    const outcome = await this.restart(host, run, kept.lab, stopped);
    // Its probe helper serves nothing once its machines are verified again.
    await host.removeProbes?.(runId).catch(() => []);
    await this.record(run, host, kept.machines.length, outcome, triedAt);
    return outcome;
  }

  /** Starts `stopped` wave by wave; stops at the first wave with a machine that is not ready. */
  private async restart(
    host: HypervisorHost,
    run: RecoveryRun,
    lab: LabHandle,
    stopped: MachineHandle[],
  ): Promise<Restart> {
    const boot = new LabBoot(
      {
        recorder: new RunRecorder(this.runStore, run),
        host,
        lab,
        planned: new Map(run.plan.machines.map(m => [m.machineRef, m])),
        captures: new Map(),
        signal: NEVER_ABORTED,
        // What a late start made is the failover's own machine: it stays.
        removeLate: async () => {},
        stillDriven: async () => true,
      },
      this.options,
      this.logger.child({ runId: run.id }),
    );
    const started = Date.now();
    const restarted: string[] = [];
    const waves = inWaveOrder(run, stopped);
    for (const [index, wave] of waves.entries()) {
      const results = await Promise.allSettled(
        wave.map(machine => boot.restart(machine)),
      );
      const failedAt = results.findIndex(r => r.status === 'rejected');
      restarted.push(
        ...wave
          .filter((_, i) => results[i].status === 'fulfilled')
          .map(m => m.machineRef),
      );
      if (failedAt >= 0) {
        return {
          kind: 'degraded',
          machineRefs: restarted,
          failed: {
            machineRef: wave[failedAt].machineRef,
            message: messageOf(
              (results[failedAt] as PromiseRejectedResult).reason,
            ),
          },
          notStarted: waves
            .slice(index + 1)
            .flat()
            .map(m => m.machineRef),
        };
      }
    }
    return {
      kind: 'restarted',
      machineRefs: restarted,
      seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
    };
  }

  /**
   * Records the outcome on the failover (RunSupervision) and its timeline. A machine failing the
   * same way at each try is one degradation: said once, not counted again; only its next try waits
   * twice as long (RunSupervision.retry, kept on the run so a backend restart keeps the wait).
   */
  private async record(
    run: RecoveryRun,
    host: HypervisorHost,
    keptCount: number,
    outcome: Restart,
    triedAt: number,
  ): Promise<void> {
    const before = run.supervision;
    const at = now();
    const retryIn = (delaySeconds: number) => ({
      delaySeconds,
      nextAt: new Date(triedAt + delaySeconds * 1000).toISOString(),
    });
    if (outcome.kind === 'degraded') {
      const { machineRef, message } = outcome.failed;
      if (
        before?.degraded?.machineRef === machineRef &&
        before.degraded.message === message &&
        outcome.machineRefs.length === 0
      ) {
        const waited = before.retry?.delaySeconds ?? 0;
        await this.runStore.setSupervision(run.id, {
          ...before,
          retry: retryIn(
            Math.min(
              Math.max(2 * waited, this.backoff.firstSeconds),
              this.backoff.maxSeconds,
            ),
          ),
        });
        return;
      }
    }
    const supervision: RunSupervision = {
      restarts: (before?.restarts ?? 0) + 1,
      lastRestartAt: at,
      ...(outcome.kind === 'degraded' && {
        degraded: {
          since:
            before?.degraded?.machineRef === outcome.failed.machineRef
              ? before.degraded.since
              : at,
          ...outcome.failed,
          ...(outcome.notStarted.length > 0 && {
            notStarted: outcome.notStarted,
          }),
        },
        retry: retryIn(this.backoff.firstSeconds),
      }),
    };
    const message = supervisionStep(
      supervision.restarts,
      host.id,
      keptCount,
      outcome,
      this.backoff,
    );
    await this.runStore.setSupervision(run.id, supervision);
    await this.runStore.appendStep(run.id, {
      at,
      level: outcome.kind === 'degraded' ? 'error' : 'warning',
      ...(outcome.kind === 'degraded'
        ? { machineRef: outcome.failed.machineRef }
        : {}),
      message,
    });
    this.logger.child({ runId: run.id }).warn(message);
  }
}

/** `supervision` no longer degraded: its restarts kept, its degradation and retry gone. */
export function notDegraded(supervision: RunSupervision): RunSupervision {
  const { degraded: _, retry: __, ...rest } = supervision;
  return rest;
}

/** What every timeline step of supervision starts with. */
export const SUPERVISION_STEP = 'Supervision: ';

/** The stopped machines grouped by the plan's waves, in boot order; those it does not know last. */
export function inWaveOrder(
  run: Pick<RecoveryRun, 'plan'>,
  stopped: MachineHandle[],
): MachineHandle[][] {
  const waves: MachineHandle[][] = run.plan.waves
    .map(wave => stopped.filter(m => wave.includes(m.machineRef)))
    .filter(wave => wave.length > 0);
  const planned = new Set(run.plan.waves.flat());
  const unplanned = stopped.filter(m => !planned.has(m.machineRef));
  return unplanned.length > 0 ? [...waves, unplanned] : waves;
}

/** The timeline step of one outcome, the `restart`-th of the failover. */
export function supervisionStep(
  restart: number,
  hostId: string,
  keptCount: number,
  outcome: Restart,
  backoff: SupervisionBackoff = DEFAULT_BACKOFF,
): string {
  const count = (n: number) => `${n} machine${n === 1 ? '' : 's'}`;
  const nth = `restart ${restart} of this failover`;
  if (outcome.kind === 'restarted') {
    const found =
      outcome.machineRefs.length === keptCount
        ? `recovery host ${hostId} restarted: every machine was stopped`
        : `${count(outcome.machineRefs.length)} of ${keptCount} found stopped on ${hostId}`;
    return `${SUPERVISION_STEP}${found}; ${count(outcome.machineRefs.length)} started again in wave order in ${outcome.seconds} s (${outcome.machineRefs.join(', ')}; ${nth})`;
  }
  const again =
    outcome.machineRefs.length > 0
      ? `; started again: ${outcome.machineRefs.join(', ')}`
      : '';
  const left =
    outcome.notStarted.length > 0
      ? `; not started, as they wait for it: ${outcome.notStarted.join(', ')}`
      : '';
  return `${SUPERVISION_STEP}failover running degraded: ${outcome.failed.machineRef} stopped on ${hostId} and could not be brought back: ${outcome.failed.message}${again}${left} (${nth}; next try in ${formatSeconds(backoff.firstSeconds)}, each failed try doubling the wait up to ${formatSeconds(backoff.maxSeconds)})`;
}
