import type {
  AuditorService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import { randomUUID } from 'node:crypto';
import {
  formatSeconds,
  formatUtcTime,
  isJobMachine,
  type MachineWithoutNetwork,
  type RecoveryRun,
  type RunSupervision,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HypervisorHost,
  LabHandle,
  MachineHandle,
} from '@backstage-recovery/plugin-recovery-node';
import type { RunStore } from '../database/RunStore';
import {
  type AuditMeta,
  auditHousekeeping,
  runCancelledMeta,
} from '../service/audit';
import type { ProviderRegistry } from '../service/ProviderRegistry';
import { LabBoot, type LabBootOptions } from './boot';
import { NEVER_ABORTED } from './deadline';
import { HostUnreachable, messageOf } from './errors';
import { now, RunRecorder } from './RunRecorder';

/** What one look at a kept failover did. */
export type SupervisionOutcome =
  | { kind: 'running' }
  | { kind: 'released' }
  /** Degraded, and its machine's next try not due yet (RunSupervision.retry). */
  | { kind: 'waiting'; nextAt: string }
  | {
      kind: 'restarted';
      machineRefs: string[];
      seconds: number;
      sharers?: NamespaceSharer[];
    }
  | {
      kind: 'degraded';
      /** Started again and ready. */
      machineRefs: string[];
      sharers?: NamespaceSharer[];
      /** The first machine, in boot order, that could not be brought back, and why. */
      failed: { machineRef: string; message: string };
      /** Left stopped: they wait for a machine that is not ready. */
      notStarted: string[];
      /** Left running without network: their restart waits for a machine that is not ready. */
      withoutNetwork?: NamespaceSharer[];
    };

/**
 * Of the machines started again (or left behind), one that was still running, restarted after
 * machine `of`, whose network namespace it shares (`--network container:`): `of` stopping (or its
 * restart outside supervision) took its network with it. As kept when left behind, less its time.
 */
export type NamespaceSharer = Omit<MachineWithoutNetwork, 'since'>;

/** How often the sweep (task `recovery-failover-supervision`) looks at the kept failovers. */
export const SUPERVISION_SWEEP_SECONDS = 30;

/**
 * How long a degraded failover waits before its machine is tried again: the sweep's interval
 * (SUPERVISION_SWEEP_SECONDS) at first, doubled at each try that fails the same way, up to
 * `maxSeconds`; a machine that keeps failing is not restarted every sweep.
 */
export interface SupervisionBackoff {
  firstSeconds: number;
  maxSeconds: number;
}
const DEFAULT_BACKOFF: SupervisionBackoff = {
  firstSeconds: SUPERVISION_SWEEP_SECONDS,
  maxSeconds: 10 * 60,
};
/** A try due within this is due: sweeps start about an interval apart, not to the millisecond. */
const DUE_SLACK_MS = 1_000;
/**
 * A later try that fails the same way is said on the timeline while its wait still grows (a few
 * steps), then about once an hour: the operator sees it is still tried, and a failover degraded
 * for days does not bury its timeline (one step per try at the cap is 144 a day). Every try is logged.
 */
const SAID_AT_CAP_EVERY_MS = 60 * 60 * 1000;
/**
 * The failovers a host told stopped are looked at once no stop came for HEARD_STOPS_QUIET_MS, at
 * most HEARD_STOPS_MOST_MS after the first: the stops of a whole host (an engine's shutdown stops
 * its machines within seconds) make one pass of each failover.
 */
export const HEARD_STOPS_QUIET_MS = 1_000;
export const HEARD_STOPS_MOST_MS = 5_000;
/** What a host told stopped since its first stop not yet looked at. */
interface HeardStops {
  runIds: Set<string>;
  /** Its watch came back after a break: any of its failovers may have stopped. */
  all: boolean;
  firstAt: number;
  timer?: NodeJS.Timeout;
}

/**
 * How long a pass's claim on a failover (RunStore.claimSupervision) holds without being renewed:
 * renewed before each wave, it outlasts a wave's slowest step or readiness twice over; past it, a
 * replica that crashed mid-pass no longer keeps the others from supervising the failover.
 */
export function supervisionLeaseMs(options: LabBootOptions): number {
  return 2 * Math.max(options.stepTimeoutMs, options.machineReadyTimeoutMs);
}

/** What starting stopped machines again came to. */
type SupervisionRestart = Extract<
  SupervisionOutcome,
  { kind: 'restarted' | 'degraded' }
>;

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
  /** Per failover: its pass under way, and the one asked for meanwhile (never more than one waits). */
  private readonly passes = new Map<
    string,
    { running: Promise<void>; next?: Promise<void> }
  >();
  /** Per host: the failovers it told stopped (or all: its watch came back) in the current window. */
  private readonly heard = new Map<string, HeardStops>();
  /** The looks the hosts' stops started, for stopping to wait for. */
  private readonly heardSweeps = new Set<Promise<void>>();

  constructor(
    private readonly runStore: RunStore,
    private readonly providers: Pick<
      ProviderRegistry,
      'hypervisorHostIds' | 'hypervisorHost'
    >,
    private readonly logger: LoggerService,
    /** Records each start of a failover's machines: they replace production. */
    private readonly auditor: AuditorService,
    private readonly options: LabBootOptions,
    private readonly backoff: SupervisionBackoff = DEFAULT_BACKOFF,
  ) {}

  /** Looks at every succeeded failover each host keeps; one host or failover failing holds up no other. */
  async sweep(): Promise<void> {
    for (const hostId of this.providers.hypervisorHostIds()) {
      const host = this.providers.hypervisorHost(hostId);
      // A host that cannot find its machines again leaves its failovers unsupervised.
      if (!host.reattach) continue;
      await this.sweepHost(host);
    }
  }

  /**
   * Listens to the hosts that tell when a kept machine stops: the failover is looked at within
   * about HEARD_STOPS_QUIET_MS, not at the next sweep (production would stay down that much longer);
   * every failover of a host whose watch came back after a break, as its stops meanwhile went
   * unheard. The sweep stays for what a broken watch missed. Returns what stops listening, which
   * resolves once the looks under way are done.
   */
  watch(): () => Promise<void> {
    const stops: Array<() => void> = [];
    for (const hostId of this.providers.hypervisorHostIds()) {
      const host = this.providers.hypervisorHost(hostId);
      if (!host.reattach || !host.watchKeptMachines) continue;
      stops.push(
        host.watchKeptMachines(
          runId => this.hear(host, runId),
          () => this.hear(host),
        ),
      );
    }
    return async () => {
      for (const stop of stops) stop();
      for (const { timer } of this.heard.values()) clearTimeout(timer);
      this.heard.clear();
      await Promise.all([...this.heardSweeps]);
    };
  }

  /** A machine of run `runId` stopped on `host` (without: any may have); looked at once its stops go quiet. */
  private hear(host: HypervisorHost, runId?: string) {
    let heard = this.heard.get(host.id);
    if (!heard) {
      heard = { runIds: new Set(), all: false, firstAt: Date.now() };
      this.heard.set(host.id, heard);
    }
    if (runId === undefined) heard.all = true;
    else heard.runIds.add(runId);
    clearTimeout(heard.timer);
    const told = heard;
    heard.timer = setTimeout(
      () => this.lookAtHeard(host, told),
      Math.min(
        HEARD_STOPS_QUIET_MS,
        told.firstAt + HEARD_STOPS_MOST_MS - Date.now(),
      ),
    );
  }

  private lookAtHeard(host: HypervisorHost, told: HeardStops) {
    this.heard.delete(host.id);
    const look = this.sweepHost(host, told.all ? undefined : told.runIds)
      .catch(error =>
        this.logger
          .child({ hypervisorHost: host.id })
          .warn(
            'Could not supervise the failovers whose machines stopped',
            toError(error),
          ),
      )
      .finally(() => this.heardSweeps.delete(look));
    this.heardSweeps.add(look);
  }

  /**
   * Looks at the succeeded failovers `host` keeps, or those of `only` among them: a run told that is
   * no such failover (a test lab, a failover released meanwhile) is left alone.
   */
  private async sweepHost(
    host: HypervisorHost,
    only?: ReadonlySet<string>,
  ): Promise<void> {
    const failovers = await this.runStore.finishedFailovers(host.id);
    for (const failover of failovers) {
      if (failover.status !== 'succeeded') continue;
      if (only && !only.has(failover.id)) continue;
      await this.pass(host, failover.id);
    }
  }

  /**
   * One pass of supervise over failover `runId`, never two at once (the sweep and a heard stop, say,
   * would start its machines twice): asked while one is under way, it runs once more after it, as
   * that one may have looked before the stop; asked again meanwhile, that next pass is shared.
   */
  private pass(host: HypervisorHost, runId: string): Promise<void> {
    const under = this.passes.get(runId);
    if (under?.next) return under.next;
    const start = (): Promise<void> => {
      const running: Promise<void> = this.claimedPass(host, runId)
        .then(
          () => {},
          error =>
            this.logger
              .child({ runId, hypervisorHost: host.id })
              .warn('Could not supervise the failover', toError(error)),
        )
        .finally(() => {
          const current = this.passes.get(runId);
          if (current?.running === running && !current.next)
            this.passes.delete(runId);
        });
      this.passes.set(runId, { running });
      return running;
    };
    if (!under) return start();
    under.next = under.running.then(start);
    return under.next;
  }

  /**
   * A pass over failover `runId`, claimed in the database first: every replica hears a kept
   * machine stop, and two passes at once would start its machines twice. Skipped where another
   * replica's pass holds it (that one is on it); a claim its replica left as it died mid-pass
   * lapses with its lease, and the first sweep after takes the failover over.
   */
  private async claimedPass(host: HypervisorHost, runId: string) {
    const claim = randomUUID();
    const leaseMs = supervisionLeaseMs(this.options);
    if (!(await this.runStore.claimSupervision(runId, claim, leaseMs))) {
      this.logger
        .child({ runId, hypervisorHost: host.id })
        .debug('The failover is supervised by another replica: skipped');
      return;
    }
    try {
      await this.supervise(host, runId, async () => {
        if (!(await this.runStore.claimSupervision(runId, claim, leaseMs)))
          throw new Error(
            `Failover ${runId} was taken over by another replica's supervision: its claim expired`,
          );
      });
    } finally {
      await this.runStore.releaseSupervision(runId, claim);
    }
  }

  /**
   * Starts again, in wave order, the machines of failover `runId` that its host stopped.
   * `renewClaim`: before each wave, renews the pass's claim (claimedPass); throws where it was lost.
   */
  async supervise(
    host: HypervisorHost,
    runId: string,
    renewClaim: () => Promise<void> = async () => {},
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
    /** When each stopped machine stopped, where its host tells. */
    const stoppedAt = new Map<string, string>();
    /** Running machines in another's network namespace, with that one's id. */
    const inNamespaceOf = new Map<MachineHandle, string>();
    /** When each running machine started (by id), where its host tells. */
    const startedAt = new Map<string, string>();
    // A job (ANNOTATION_JOB) completed at the failover's boot and stays stopped: started again, it
    // would run its work once more (a migration, a seed) over what production wrote since.
    const jobs = new Set(
      kept.machines
        .map(m => m.machineRef)
        .filter(ref => isJobMachine(run.plan, ref)),
    );
    for (const machine of kept.machines) {
      if (jobs.has(machine.machineRef)) continue;
      const state = await host.inspectMachine(machine);
      if (state.running) {
        if (state.startedAt) startedAt.set(machine.id, state.startedAt);
        if (state.sharesNetworkOf)
          inNamespaceOf.set(machine, state.sharesNetworkOf);
        continue;
      }
      stopped.push(machine);
      if (state.stoppedAt) stoppedAt.set(machine.machineRef, state.stoppedAt);
    }
    const leftBehind = host.restartMachine
      ? leftInOldNamespace(kept.machines, inNamespaceOf, startedAt)
      : new Map<MachineHandle, MachineHandle>();
    if (stopped.length === 0 && leftBehind.size === 0) {
      // Every machine runs again (one started by hand, say): no longer degraded.
      if (run.supervision?.degraded) {
        await this.runStore.setSupervision(runId, notDegraded(run.supervision));
        await this.runStore.appendStep(runId, {
          at: now(),
          level: 'info',
          message: `${SUPERVISION_STEP}failover no longer degraded: every machine of it${jobs.size > 0 ? ' that must keep running (not its jobs, done)' : ''} runs on ${host.id}`,
        });
      }
      return { kind: 'running' };
    }
    const sharers = host.restartMachine
      ? sharersOf(stopped, inNamespaceOf, leftBehind)
      : new Map<MachineHandle, MachineHandle>();
    // Its wait is skipped only where the machine it could not bring back is up again (started by
    // hand, say): one still stopped, or a sharer whose restart failed (still running in its
    // owner's old namespace), would be tried every sweep.
    const degraded = run.supervision?.degraded;
    const retry = degraded && run.supervision?.retry;
    const stillDown = [...stopped, ...sharers.keys()].some(
      m => m.machineRef === degraded?.machineRef,
    );
    if (
      stillDown &&
      retry &&
      Date.now() + DUE_SLACK_MS < Date.parse(retry.nextAt)
    )
      return { kind: 'waiting', nextAt: retry.nextAt };
    const triedAt = Date.now();
    /** When a sharer's namespace lost its network: its owner's stop, or restart outside supervision. */
    const networkLostAt = (machine: MachineHandle): string | undefined => {
      const owner = sharers.get(machine);
      if (!owner) return stoppedAt.get(machine.machineRef);
      return leftBehind.has(machine)
        ? startedAt.get(owner.id)
        : networkLostAt(owner);
    };
    // A sharer boots in a later wave than the machine it shares (restoreMachine shares only one
    // booted before it), so its restart follows that one's start.
    const waves = inWaveOrder(run, [...stopped, ...sharers.keys()]);
    /** Started again so far: what a pass that breaks off (its claim lost) had done. */
    const restarted: string[] = [];
    return auditHousekeeping(
      { auditor: this.auditor, logger: this.logger.child({ runId }) },
      'failover-supervision-restart',
      failoverRestartMeta(
        run,
        waves.flat().map(m => m.machineRef),
      ),
      async () => {
        const outcome = await this.restart(
          host,
          run,
          kept.lab,
          waves,
          sharers,
          new Set(leftBehind.keys()),
          renewClaim,
          restarted,
        );
        // Its probe helper serves nothing once its machines are verified again.
        await host.removeProbes?.(runId).catch(() => []);
        const supervised = kept.machines.filter(m => !jobs.has(m.machineRef));
        const supervision = await this.record(
          run,
          host,
          supervised.length,
          outcome,
          {
            triedAt,
            stoppedAt:
              outcome.kind === 'degraded'
                ? stoppedAt.get(outcome.failed.machineRef)
                : undefined,
            networkLostAt: new Map(
              [...sharers.keys()].flatMap(m => {
                const at = networkLostAt(m);
                return at ? [[m.machineRef, at] as const] : [];
              }),
            ),
          },
        );
        return {
          result: outcome,
          meta: failoverRestartedMeta(outcome, supervision),
          ...(outcome.kind === 'degraded' && {
            error: new Error(
              `${outcome.failed.machineRef} could not be brought back: ${outcome.failed.message}`,
            ),
          }),
        };
      },
      () => ({ outcome: 'broken-off', restarted: [...restarted] }),
    );
  }

  /**
   * Starts the stopped machines of `waves` (inWaveOrder) wave by wave, and restarts `sharers`
   * (running, each with the machine whose network namespace it shares) in their waves; stops at
   * the first wave with a machine that is not ready. `ownerRestarted`: the sharers whose
   * namespace's machine runs, but was restarted outside supervision after them
   * (leftInOldNamespace). `restarted` collects each machine as it is started again. Throws the
   * host's failure (HostUnreachable) where the host stopped answering during a wave.
   */
  private async restart(
    host: HypervisorHost,
    run: RecoveryRun,
    lab: LabHandle,
    waves: MachineHandle[][],
    sharers: Map<MachineHandle, MachineHandle>,
    ownerRestarted: ReadonlySet<MachineHandle>,
    renewClaim: () => Promise<void>,
    restarted: string[],
  ): Promise<SupervisionRestart> {
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
    const sharersAmong = (machineRefs: string[]): NamespaceSharer[] =>
      [...sharers]
        .filter(([m]) => machineRefs.includes(m.machineRef))
        .map(([m, of]) => ({
          machineRef: m.machineRef,
          of: of.machineRef,
          ...(ownerRestarted.has(m) && { ownerRestarted: true }),
        }));
    const said = (): { sharers?: NamespaceSharer[] } => {
      const again = sharersAmong(restarted);
      return again.length > 0 ? { sharers: again } : {};
    };
    for (const [index, wave] of waves.entries()) {
      // The first wave's claim was just made; a later one may have outlived its lease.
      if (index > 0) await renewClaim();
      const results = await Promise.allSettled(
        wave.map(machine =>
          boot.restart(machine, { running: sharers.has(machine) }),
        ),
      );
      const failedAt = results.findIndex(r => r.status === 'rejected');
      restarted.push(
        ...wave
          .filter((_, i) => results[i].status === 'fulfilled')
          .map(m => m.machineRef),
      );
      // The host stopped answering (LabBoot.restart): the pass fails at the host, as where it cannot
      // be reached at the pass's start. No machine is recorded degraded for it, nor waits a backoff:
      // the next pass tries again.
      const atHost = results.find(
        (r): r is PromiseRejectedResult =>
          r.status === 'rejected' && r.reason instanceof HostUnreachable,
      );
      if (atHost) throw atHost.reason;
      if (failedAt >= 0) {
        // A sharer left behind still runs, without network: said apart from those left stopped.
        const left = waves.slice(index + 1).flat();
        const withoutNetwork = sharersAmong(left.map(m => m.machineRef));
        return {
          kind: 'degraded',
          machineRefs: restarted,
          ...said(),
          failed: {
            machineRef: wave[failedAt].machineRef,
            message: messageOf(
              (results[failedAt] as PromiseRejectedResult).reason,
            ),
          },
          notStarted: left.filter(m => !sharers.has(m)).map(m => m.machineRef),
          ...(withoutNetwork.length > 0 && { withoutNetwork }),
        };
      }
    }
    return {
      kind: 'restarted',
      machineRefs: restarted,
      seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
      ...said(),
    };
  }

  /**
   * Records the outcome on the failover (RunSupervision) and its timeline. A machine failing the
   * same way at each try is one degradation: not counted again, its next try waits twice as long
   * (RunSupervision.retry, kept on the run so a backend restart keeps the wait); each such try is
   * logged, and said on the timeline as SAID_AT_CAP_EVERY_MS bounds. `triedAt`: when the try began
   * (its wait counts from then); `stoppedAt`: when the failed machine stopped, where its host told;
   * `networkLostAt`: per sharer, when its namespace lost its network, where its host told.
   */
  private async record(
    run: RecoveryRun,
    host: HypervisorHost,
    keptCount: number,
    outcome: SupervisionRestart,
    {
      triedAt,
      stoppedAt,
      networkLostAt,
    }: {
      triedAt: number;
      stoppedAt?: string;
      networkLostAt: ReadonlyMap<string, string>;
    },
  ): Promise<RunSupervision> {
    const before = run.supervision;
    const at = now();
    const retryIn = (delaySeconds: number, tries: number) => ({
      delaySeconds,
      nextAt: new Date(triedAt + delaySeconds * 1000).toISOString(),
      tries,
    });
    if (outcome.kind === 'degraded') {
      const { machineRef, message } = outcome.failed;
      if (
        before?.degraded?.machineRef === machineRef &&
        before.degraded.message === message &&
        outcome.machineRefs.length === 0
      ) {
        const waited = before.retry?.delaySeconds ?? 0;
        const retry = retryIn(
          Math.min(
            Math.max(2 * waited, this.backoff.firstSeconds),
            this.backoff.maxSeconds,
          ),
          (before.retry?.tries ?? 1) + 1,
        );
        const again: RunSupervision = { ...before, retry };
        await this.runStore.setSupervision(run.id, again);
        const said = `${SUPERVISION_STEP}try ${retry.tries} to bring back ${machineRef} on ${host.id} failed the same way: ${message}; still degraded, next try at ${formatUtcTime(retry.nextAt)}`;
        this.logger.child({ runId: run.id, machineRef }).warn(said);
        const atCapEvery = Math.max(
          1,
          Math.round(SAID_AT_CAP_EVERY_MS / (this.backoff.maxSeconds * 1000)),
        );
        if (waited < this.backoff.maxSeconds || retry.tries % atCapEvery === 0)
          await this.runStore.appendStep(run.id, {
            at,
            level: 'error',
            machineRef,
            message:
              waited < this.backoff.maxSeconds
                ? said
                : `${said} (said about once an hour while it fails the same way)`,
          });
        return again;
      }
    }
    const noticedAt = new Date(triedAt).toISOString();
    const supervision: RunSupervision = {
      restarts: (before?.restarts ?? 0) + 1,
      lastRestartAt: at,
      ...(outcome.kind === 'degraded' && {
        degraded: {
          // Down since it stopped where its host tells, else since this pass found it stopped.
          ...(before?.degraded?.machineRef === outcome.failed.machineRef
            ? { since: before.degraded.since, sinceIs: before.degraded.sinceIs }
            : stoppedAt
              ? { since: stoppedAt, sinceIs: 'stopped' as const }
              : { since: noticedAt, sinceIs: 'noticed' as const }),
          ...outcome.failed,
          ...(outcome.notStarted.length > 0 && {
            notStarted: outcome.notStarted,
          }),
          ...(outcome.withoutNetwork && {
            withoutNetwork: outcome.withoutNetwork.map(
              ({ machineRef, of, ownerRestarted }) => ({
                machineRef,
                of,
                // Readiness and the card say so, not that `of` stopped: it runs.
                ...(ownerRestarted && { ownerRestarted }),
                // Kept from the pass that first left it so: a noticed time would move each pass.
                since:
                  before?.degraded?.withoutNetwork?.find(
                    s => s.machineRef === machineRef && s.of === of,
                  )?.since ??
                  networkLostAt.get(machineRef) ??
                  noticedAt,
              }),
            ),
          }),
        },
        retry: retryIn(this.backoff.firstSeconds, 1),
      }),
    };
    const message = supervisionStep(
      supervision.restarts,
      host.id,
      keptCount,
      outcome,
      {
        nextAt: supervision.retry?.nextAt,
        stoppedAt,
        noticedAt,
        maxSeconds: this.backoff.maxSeconds,
      },
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
    return supervision;
  }
}

/** The machines of a kept failover supervision is about to start again, as failover-supervision-restart opens. */
function failoverRestartMeta(
  run: RecoveryRun,
  machineRefs: string[],
): AuditMeta {
  return { ...runCancelledMeta(run), machineRefs };
}

/**
 * What supervision's start of a kept failover's machines came to, as failover-supervision-restart
 * ends: `restarts` counts the failover's restarts (a try failing as the last one did is no new one:
 * `tries` counts those).
 */
function failoverRestartedMeta(
  outcome: SupervisionRestart,
  supervision: RunSupervision,
): AuditMeta {
  return {
    outcome: outcome.kind,
    restarted: outcome.machineRefs,
    restarts: supervision.restarts,
    ...(outcome.sharers && { sharers: outcome.sharers }),
    ...(outcome.kind === 'restarted'
      ? { seconds: outcome.seconds }
      : {
          failed: outcome.failed,
          notStarted: outcome.notStarted,
          ...(outcome.withoutNetwork && {
            withoutNetwork: outcome.withoutNetwork,
          }),
          ...(supervision.retry && { tries: supervision.retry.tries }),
        }),
  };
}

/** `supervision` no longer degraded: its restarts kept, its degradation and retry gone. */
export function notDegraded(supervision: RunSupervision): RunSupervision {
  const { degraded: _, retry: __, ...rest } = supervision;
  return rest;
}

/** What every timeline step of supervision starts with. */
export const SUPERVISION_STEP = 'Supervision: ';

/**
 * The running machines of `inNamespaceOf` (each with the id of the machine whose network namespace
 * it joined) that share the namespace of a `stopped` machine, or of another such sharer: each with
 * that machine. Still running, they lost their network with it, and get it back only restarted
 * after it. `leftBehind` (leftInOldNamespace) are such sharers already, as are those in theirs.
 */
export function sharersOf(
  stopped: MachineHandle[],
  inNamespaceOf: Map<MachineHandle, string>,
  leftBehind: ReadonlyMap<MachineHandle, MachineHandle> = new Map(),
): Map<MachineHandle, MachineHandle> {
  const sharers = new Map(leftBehind);
  const down = new Map([...stopped, ...leftBehind.keys()].map(m => [m.id, m]));
  for (let more = true; more;) {
    more = false;
    for (const [machine, ownerId] of inNamespaceOf) {
      const owner = down.get(ownerId);
      if (!owner || sharers.has(machine)) continue;
      sharers.set(machine, owner);
      down.set(machine.id, machine);
      more = true;
    }
  }
  return sharers;
}

/**
 * The running machines of `inNamespaceOf` whose namespace's machine runs but started after them
 * (`startedAt`, by id: the host's clock for both), each with that machine: it was restarted outside
 * supervision (`docker restart`, by hand), no stop was left to find, and they stayed in the
 * namespace it had before, without network. They boot after it, so a later start is never the
 * failover's own.
 */
export function leftInOldNamespace(
  machines: MachineHandle[],
  inNamespaceOf: Map<MachineHandle, string>,
  startedAt: ReadonlyMap<string, string>,
): Map<MachineHandle, MachineHandle> {
  const byId = new Map(machines.map(m => [m.id, m]));
  const left = new Map<MachineHandle, MachineHandle>();
  for (const [machine, ownerId] of inNamespaceOf) {
    const owner = byId.get(ownerId);
    const ownerStart = startedAt.get(ownerId);
    const start = startedAt.get(machine.id);
    if (!owner || !ownerStart || !start) continue;
    if (Date.parse(ownerStart) > Date.parse(start)) left.set(machine, owner);
  }
  return left;
}

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

/**
 * The timeline step of one outcome, the `restart`-th of the failover. A degraded one says when its
 * machine is tried next (`nextAt`), and when it stopped where its host told (`stoppedAt`), else
 * when it was noticed down (`noticedAt`). Every machine found stopped is not said to be a host
 * restart: one machine killed is that too, and no host tells when its engine restarted.
 */
export function supervisionStep(
  restart: number,
  hostId: string,
  keptCount: number,
  outcome: SupervisionRestart,
  down: {
    nextAt?: string;
    stoppedAt?: string;
    noticedAt?: string;
    maxSeconds: number;
  } = { maxSeconds: DEFAULT_BACKOFF.maxSeconds },
): string {
  const count = (n: number) => `${n} machine${n === 1 ? '' : 's'}`;
  const nth = `restart ${restart} of this failover`;
  // Those restarted though running: why, as nothing found them stopped.
  const sharers = outcome.sharers ?? [];
  const shared = sharers
    .map(
      s =>
        `; ${s.machineRef} restarted after ${s.of}, whose network namespace it shares: it kept running without network once ${s.of} ${s.ownerRestarted ? 'was restarted outside supervision' : 'stopped'}`,
    )
    .join('');
  if (outcome.kind === 'restarted') {
    const stopped = outcome.machineRefs.filter(
      m => !sharers.some(s => s.machineRef === m),
    );
    const all = stopped.length === keptCount;
    const restartedOutside = [
      ...new Set(sharers.filter(s => s.ownerRestarted).map(s => s.of)),
    ];
    const found =
      stopped.length === 0
        ? `none found stopped on ${hostId}, but ${restartedOutside.join(', ')} restarted there outside supervision (by hand, say)`
        : all && keptCount === 1
          ? `${stopped[0]} found stopped on ${hostId}`
          : all
            ? `every machine (${keptCount}) found stopped on ${hostId}`
            : `${count(stopped.length)} of ${keptCount} found stopped on ${hostId}`;
    return `${SUPERVISION_STEP}${found}; ${count(outcome.machineRefs.length)} started again in wave order in ${outcome.seconds} s (${outcome.machineRefs.join(', ')}${shared}; ${nth})`;
  }
  const again =
    outcome.machineRefs.length > 0
      ? `; started again: ${outcome.machineRefs.join(', ')}${shared}`
      : '';
  const left =
    outcome.notStarted.length > 0
      ? `; not started, as they wait for it: ${outcome.notStarted.join(', ')}`
      : '';
  const cutOff = (outcome.withoutNetwork ?? [])
    .map(s => `${s.machineRef} (shares ${s.of}'s network namespace)`)
    .join(', ');
  const withoutNetwork = cutOff
    ? `; left running without network: ${cutOff}`
    : '';
  const stopped = down.stoppedAt
    ? `stopped on ${hostId} at ${formatUtcTime(down.stoppedAt)}`
    : `stopped on ${hostId} (noticed down at ${formatUtcTime(down.noticedAt)})`;
  return `${SUPERVISION_STEP}failover running degraded: ${outcome.failed.machineRef} ${stopped} and could not be brought back: ${outcome.failed.message}${again}${left}${withoutNetwork} (${nth}; next try at ${formatUtcTime(down.nextAt)}, each failed try doubling the wait up to ${formatSeconds(down.maxSeconds)})`;
}
