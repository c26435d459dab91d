/** API types shared by the backend, the frontend and the CLI. Times are ISO 8601 strings. */

/**
 * A problem with an entity's recovery configuration, shown on its page.
 *
 * @public
 */
export interface EntityProblem {
  entityRef: string;
  /** The annotation (or field) at fault, when there is one. */
  annotation?: string;
  message: string;
}

/**
 * A readiness probe from the `probes` annotation: `tcp:53`, `http:80/healthz`.
 *
 * @public
 */
export interface ProbeSpec {
  kind: 'tcp' | 'http';
  port: number;
  /** For `http`: the path requested. */
  path?: string;
  /** The entity whose probes annotation it is (a service, or the machine itself). */
  of?: string;
}

/**
 * A capture of a primary machine's running state, as the API returns it.
 *
 * @public
 */
export interface Capture {
  id: string;
  machineRef: string;
  engine: string;
  container: string;
  /** Content digest of the captured image. */
  imageId: string;
  /** All the capture stores: its image archive and its volumes' archives. */
  sizeBytes: number;
  /** `sha256:…` of the stored artifact, verified on restore. */
  checksum: string;
  createdAt: string;
  /** How long the capture took, including the consistency pause. */
  durationMs: number;
  /** How long production was paused for a consistent copy (0: not paused); absent where unknown. */
  pausedMs?: number;
  /** Host-specific parts rewritten for the recovery host ("driver insertion"). */
  adaptations: string[];
  /**
   * The machine's state when it was captured (machineNotServing tells whether it served):
   * absent for captures taken before it was recorded, or by a source that cannot tell.
   */
  machineState?: CapturedMachineState;
  /**
   * Set where its pause took more than half the pause limit: the next capture may be refused for
   * pausing production too long (`pause 3m 10s of the 5m limit …: the volumes (9.1 GiB) …`).
   */
  pauseWarning?: string;
  /**
   * Set where the machine's restart policy restarted it over and over since its previous capture
   * (RESTART_GROWTH_WARNING times or more), though it may have run when captured: a crash loop
   * caught between two crashes, or just out of one (`restarted 12 times by its restart policy
   * since its previous capture …`).
   */
  restartWarning?: string;
  /**
   * Set once the capture was found damaged (its stored content no longer matches its checksums:
   * a layer file overwritten, an archive cut short or gone), by a run's verification or restore.
   * Kept, and never restored again: a run passes over it to the machine's next older intact capture.
   */
  damaged?: CaptureDamage;
}

/**
 * When and why a capture was found damaged.
 *
 * @public
 */
export interface CaptureDamage {
  /** When it was found so. */
  at: string;
  /** What its verification found, in the host's words (the file, the checksum expected and read). */
  reason: string;
}

/**
 * A primary machine's state as its capture source saw it when the capture began. A machine that
 * was not serving (stopped, restarting, paused by someone else, its health check failing) is
 * captured all the same, its disk being the best copy there is, but its capture holds a machine
 * production was not running well: a recovery from it proves nothing of production.
 *
 * @public
 */
export interface CapturedMachineState {
  /**
   * `running`; `paused` by someone else (a capture's own pause is never what it records);
   * `exited` (stopped, or crashed); `restarting` (its restart policy starting it again);
   * `created` (never started); `dead` or `removing`.
   */
  status:
    | 'running'
    | 'paused'
    | 'exited'
    | 'restarting'
    | 'created'
    | 'dead'
    | 'removing';
  /** Its last exit code, where it is not running (or restarting after it). */
  exitCode?: number;
  /** Killed for want of memory (the exit code is then usually 137). */
  oomKilled?: boolean;
  /**
   * How many times its restart policy has restarted it (the engine's count, reset when someone
   * starts it by hand): recorded with every capture whatever its status (absent from captures
   * before, but for `restarting`), so that a capture tells how many times it restarted since the
   * machine's previous one (`restartWarning`). A machine caught up between two crashes (restarted
   * by its policy within the last minute) is `restarting`.
   */
  restartCount?: number;
  /** Since when it has been so: its start for `running` and `paused`, its exit otherwise. */
  since?: string;
  /** Its health check's verdict, where it has one. */
  health?: 'starting' | 'healthy' | 'unhealthy';
  /** How many of its health checks in a row have failed, where one has. */
  failingStreak?: number;
  /** The last output of its last failing health check, trimmed (MACHINE_STATE_OUTPUT_CHARS), where one failed. */
  healthOutput?: string;
}

/**
 * A machine of a boot plan: its wave, its services and the machines it waits for.
 *
 * @public
 */
export interface BootPlanMachine {
  machineRef: string;
  wave: number;
  /** Services (entity refs) this machine runs within the plan. */
  services: string[];
  /** Machines that must be ready before this one boots. */
  waitsFor: string[];
  /** Probes gating this machine's readiness, from its services' annotations. */
  probes: ProbeSpec[];
  /**
   * A job (ANNOTATION_JOB): ready once it exits with code 0, not expected to keep running.
   * Absent for a machine that must keep running, and in plans kept before it was.
   */
  job?: boolean;
}

/**
 * A dependency learned from initialization events, with its score in [0, 1] and the evidence
 * behind it.
 *
 * @public
 */
export interface InferredDependency {
  service: string;
  dependsOn: string;
  score: number;
  /** Initializations of `service` behind the score (absent from plans kept before it was). */
  samples?: number;
  /**
   * `low` where the analysis found fewer samples than it trusts (its own notion: the analysis's
   * `confidence` of the dependency); absent from plans kept before it was.
   */
  confidence?: 'high' | 'low';
}

/**
 * A learned dependency's score as the portal, the CLI and a run's timeline write it: to two
 * decimals (`0.83`); the analysis's further digits tell a reader nothing.
 *
 * @public
 */
export function formatScore(score: number): string {
  return score.toFixed(2);
}

/**
 * A machine that waits for another, learned from reboots: its services restarted after
 * `followed` of the `chances` times `waitsFor` rebooted on its own while it was up.
 *
 * @public
 */
export interface InferredMachineWait {
  machine: string;
  waitsFor: string;
  followed: number;
  chances: number;
}

/**
 * Where the catalog's declared dependsOn and the observed boot history disagree.
 *
 * @public
 */
export interface DependencyDisagreements {
  /** Observed in the boot history (score over the threshold) but not declared. */
  inferredNotDeclared: InferredDependency[];
  /** Declared, but never observed in the boot history of services that were observed. */
  declaredNotObserved: Array<{ service: string; dependsOn: string }>;
}

/**
 * The boot plan of an entity: its machines in waves, and how the plan was made.
 *
 * @public
 */
export interface BootPlan {
  /** The entity the plan recovers (a service or a system). */
  entityRef: string;
  /** Inferred dependencies the plan follows beyond the declared ones. */
  inferred?: InferredDependency[];
  /** Machine waits learned from reboots that the plan follows beyond its services' dependencies. */
  inferredMachineWaits?: InferredMachineWait[];
  /**
   * The analysis the inferred dependencies come from, and what it warned of (a delay kernel that
   * does not fit, clocks, few samples, dependencies the analysis could not place).
   */
  analysis?: {
    id: string;
    createdAt: string;
    warnings?: string[];
    /** A run's own: the (log name, entity ref) pairs its warnings mention, kept to filter them for each reader once the analysis is pruned; never served. */
    names?: Array<[logName: string, entityRef: string]>;
  };
  /** Machine refs, wave by wave: a machine depends only on machines of earlier waves. */
  waves: string[][];
  machines: BootPlanMachine[];
}

/**
 * The boot plan as `GET /plan` returns it: with the configuration problems of the entities in
 * the plan, and where declared and observed dependencies disagree (absent while the entity's
 * system has no analysis).
 *
 * @public
 */
export interface PlanResponse extends BootPlan {
  problems: EntityProblem[];
  disagreements?: DependencyDisagreements;
}

/**
 * A recovery run's mode: `test` (an isolated lab, torn down) or `failover`.
 *
 * @public
 */
export type RunMode = 'test' | 'failover';

/**
 * Starts the error message of an `interrupted` run, and the message of its machines that were in
 * progress (phase `interrupted`), said in words: the status and the phase say it was interrupted,
 * and the error names no machine as the cause. Words only: nothing tells an interruption by them.
 *
 * @public
 */
export const INTERRUPTED_PREFIX = 'Interrupted: ';

/**
 * Where a recovery run stands. `failed`: the recovery itself failed (a machine, its lab, its host).
 * `interrupted`: the run was cut off before it reached a result (the backend driving it stopped or
 * shut down, a failover preempted it); it says nothing about recoverability, either way, and
 * readiness does not count it.
 *
 * @public
 */
export type RunStatus =
  'pending' | 'running' | 'succeeded' | 'failed' | 'interrupted';
/**
 * Where a machine of a recovery run stands.
 *
 * @public
 */
export type MachinePhase =
  | 'waiting'
  | 'restoring'
  | 'starting'
  | 'verifying'
  | 'ready'
  | 'failed'
  /** Final: the run finished (failed or interrupted) before it started this machine. */
  | 'skipped'
  /**
   * Final: the run was interrupted (see RunStatus) while this machine was in progress; no failure
   * of the machine's, and it says nothing about whether it boots.
   */
  | 'interrupted';

/**
 * A machine of a recovery run: its phase, the capture it was restored from and its timings.
 *
 * @public
 */
export interface RunMachine {
  machineRef: string;
  wave: number;
  phase: MachinePhase;
  captureId?: string;
  /**
   * Where the capture the run restored was taken (its engine and container), recorded when the
   * run chose it: the capture itself may since have been pruned. A machine replaced since (the
   * catalog naming another container) is not vouched for by this run. Absent on runs recorded
   * before it was kept.
   */
  capturedFrom?: { engine: string; container: string };
  /**
   * When the capture the run restored was taken, recorded when the run chose it (its newest, or
   * at a recovery point its newest taken at or before it). Absent on runs recorded before it was kept.
   */
  capturedAt?: string;
  restoreStartedAt?: string;
  restoredAt?: string;
  startedAt?: string;
  readyAt?: string;
  finishedAt?: string;
  /** Why the machine failed, naming the probe when a probe failed; or why it was interrupted. */
  message?: string;
  probe?: string;
  /** Last lines of the machine's console, kept as evidence. */
  logTail?: string;
  /**
   * The run kept a console tail of this machine that the caller may not read: they lack
   * recovery.run.logs.read on this machine. Absent where the tail is shown or none was kept.
   */
  logTailWithheld?: true;
}

/**
 * How a step reads: `warning` for what did not stop the run but may explain a later failure
 * (a lab without production's addresses).
 *
 * @public
 */
export type RunStepLevel = 'info' | 'warning' | 'error';

/**
 * One line of a run's timeline.
 *
 * @public
 */
export interface RunStep {
  at: string;
  machineRef?: string;
  level: RunStepLevel;
  message: string;
}

/**
 * A machine a degraded failover left running without network (RunSupervision.degraded): it shares
 * the network namespace (`--network container:`) of `of`, and gets its network back only restarted
 * after that one.
 *
 * @public
 */
export interface MachineWithoutNetwork {
  machineRef: string;
  of: string;
  /** When `of`'s namespace lost its network: the stop of the machine down behind it, or `of`'s restart. */
  since: string;
  /**
   * `of` did not stop: it was restarted outside supervision (by hand, say) after this one started,
   * which left this one in the namespace `of` had before. Absent: `of` stopped (or is itself
   * without network).
   */
  ownerRestarted?: boolean;
}

/**
 * How the backend keeps a succeeded failover's machines running on its hypervisor host (they serve
 * production there): those the host stopped (its engine restarted, the host rebooted) are started
 * again in boot order, wave by wave, each gated by the run's readiness checks.
 *
 * @public
 */
export interface RunSupervision {
  /** How many times it started machines of the failover again. */
  restarts: number;
  lastRestartAt: string;
  /**
   * Set while a machine it could not bring back (its readiness checks failed within the run's
   * timeouts) leaves the failover running degraded: that machine and why. The run's status stays
   * `succeeded`: the failover happened; this is how it runs now.
   */
  degraded?: {
    since: string;
    /**
     * What `since` is: the time its host says the machine stopped (`stopped`: Docker's
     * FinishedAt), or the time a pass of supervision found it stopped where the host tells none
     * (`noticed`: it may have stopped earlier). Absent on failovers degraded before it was kept.
     */
    sinceIs?: 'stopped' | 'noticed';
    machineRef: string;
    message: string;
    /** Left stopped with it: they wait for it. Absent where none does. */
    notStarted?: string[];
    /**
     * Left running, but without network: each shares the network namespace (`--network
     * container:`) of `of`, down with it (or itself without network), and gets its network back
     * only restarted after that one. `since`: when `of`'s namespace lost its network, as `since`
     * above says (the stop of the machine down behind it). Absent where none is.
     */
    withoutNetwork?: MachineWithoutNetwork[];
  };
  /**
   * While degraded, when the supervision tries that machine again: each failed try doubles the
   * wait, from the sweep's interval up to a cap, so a machine that keeps failing is not restarted
   * every sweep. Absent: at the next sweep. `tries`: how many tries failed so far (absent: one).
   */
  retry?: { nextAt: string; delaySeconds: number; tries?: number };
}

/**
 * A recovery run: one execution of a boot plan on a hypervisor host.
 *
 * @public
 */
export interface RecoveryRun {
  id: string;
  entityRef: string;
  mode: RunMode;
  status: RunStatus;
  trigger: 'user' | 'schedule';
  createdBy?: string;
  hypervisorHost: string;
  createdAt: string;
  /**
   * The time the run recovers to, where one was asked (`POST /runs` `recoveryPoint`): each machine
   * restored its newest capture taken at or before it, not its latest. Such a run proves that point
   * boots, not the latest captures: readiness does not count it. Absent: the latest captures.
   */
  recoveryPoint?: string;
  startedAt?: string;
  finishedAt?: string;
  /** Measured recovery time: from the lab's creation (or an earlier restore, on a resumed run) to the last machine verified. */
  rtoSeconds?: number;
  /**
   * Why it failed: the machine and probe where one failed it; `hostUnreachable` where its hypervisor
   * host could not be reached (or stopped answering): the host's condition, not the plan's, so it
   * covers no plan (coversPlan).
   */
  error?: {
    machineRef?: string;
    probe?: string;
    message: string;
    hostUnreachable?: boolean;
    /** Who cancelled an interrupted test recovery (POST /runs/{id}/cancel): a user or service ref. */
    cancelledBy?: string;
  };
  plan: BootPlan;
  machines: RunMachine[];
  steps: RunStep[];
  /** A succeeded failover's, once its supervision started a machine of it again. */
  supervision?: RunSupervision;
}

/**
 * An entity's recovery readiness in one word.
 *
 * @public
 */
export type ReadinessStatus =
  'ready' | 'at-risk' | 'not-recoverable' | 'unknown';

/**
 * A machine's latest capture and its age.
 *
 * @public
 */
export interface MachineCaptureStatus {
  machineRef: string;
  latest?: Capture;
  ageSeconds?: number;
}

/**
 * The recovery readiness of an entity, with the reasons for it.
 *
 * @public
 */
export interface Readiness {
  entityRef: string;
  status: ReadinessStatus;
  /** Why the status is what it is, most important first. */
  reasons: string[];
  /**
   * The reasons that are about a run (its failure, its RTO, its age, a plan grown since it), each
   * with that run as data, in the order of `reasons`: read which run a reason is about here, not
   * from its words. Absent where no reason is about a run.
   */
  reasonRuns?: ReasonRun[];
  problems: EntityProblem[];
  objectives: { rpoSeconds: number; rtoSeconds: number };
  plan?: BootPlan;
  /**
   * Where a dependency cycle the catalog declares makes no plan (the entity not recoverable, its
   * reasons say why): the plan a run started accepting cycles (`acceptCycles`) would boot, one
   * edge per cycle not waited for. The entity's own readiness only, not the overview's.
   */
  cyclePlan?: BootPlan;
  /** Where the entity's own machines sit in the plan, and what they wait for. */
  position?: { wave: number; machines: string[]; waitsFor: string[] };
  captures: MachineCaptureStatus[];
  /**
   * The last finished run that counts for this entity: in full, or only what its verdict rests on
   * (a HiddenRun) where the catalog does not show the caller the entity it was for.
   */
  lastRun?: RecoveryRun | HiddenRun;
  /** Declared vs observed dependencies of this entity's services. */
  disagreements?: DependencyDisagreements;
  /** What the latest nightly check did about the entity; absent until one has recorded it. */
  nightlyCheck?: NightlyCheckOutcome;
}

/**
 * A reason of a Readiness that is about a run, and which run.
 *
 * @public
 */
export interface ReasonRun {
  /** The reason's index in `reasons`. */
  reason: number;
  /**
   * The run it is about, as `GET /runs/:id` finds it. Absent where the caller may not see that run
   * (the catalog does not show them its entity): the reason does not name it either.
   */
  run?: { id: string; entityRef: string };
}

/**
 * Why the nightly check started no run for an entity it checks: a machine of its plan never
 * captured; a finished failover kept on the hypervisor host holding what its plan needs; the host
 * busy with another run past the check's retries; no boot plan (a dependency cycle, say); a boot
 * plan with no machine (a service on none, or whose machines left the catalog: nothing says where
 * it runs, so it cannot be recovered); the check's time ran out (or it was stopped) before its run
 * could start; the hypervisor host could not be reached that night (a run of the night failed
 * there, `hostUnreachable`: the check asked no more of it, and its outcome names that run); any
 * other refusal.
 *
 * @public
 */
export type NightlyCheckRefusal =
  | 'uncaptured'
  | 'kept-failover'
  | 'host-busy'
  | 'host-unreachable'
  | 'no-plan'
  | 'no-machine'
  | 'out-of-time'
  | 'error';

/**
 * What a night's check did about one entity: started a test recovery of it (`started`); counted
 * it covered by another entity's run, a system's run covering its services (`covered`); left it
 * out, its nightly-check annotation `false` (`excluded`); or could not run it (`refused`, saying
 * `reason`).
 *
 * @public
 */
export interface NightlyCheckOutcome {
  /** When that night's check began. */
  checkedAt: string;
  outcome: 'started' | 'covered' | 'excluded' | 'refused';
  /** Only with `refused`. */
  reason?: NightlyCheckRefusal;
  /**
   * The run the outcome names: the entity's own (`started`), the one covering it (`covered`), the
   * failover kept on the host (`kept-failover`), the run holding the host (`host-busy`) or the run
   * that found the host unreachable (`host-unreachable`). Absent
   * where the catalog does not show the caller `runEntityRef`.
   */
  runId?: string;
  /** Whose run `runId` is (or the run that was to cover the entity was to be). */
  runEntityRef?: string;
  /** The check's own words about it (the refusal's, for `refused`). */
  message: string;
  /**
   * That night's check, where it has not recorded its end: still under way, or interrupted (the
   * outcome is real, but the night is not a whole one). Absent for a night recorded whole.
   */
  night?: NightlyCheckProgress;
  /**
   * A newer night's check that has not reached the entity: under way, or interrupted before it
   * did. The outcome is then the one of an earlier night, dated by `checkedAt`.
   */
  newer?: NightlyCheckProgress;
}

/**
 * A night's check that has not recorded its end (the night whole): `under-way` while it is heard
 * from, `interrupted` once it is not (killed, or its backend restarted, before its end), or once a
 * newer night began.
 *
 * @public
 */
export interface NightlyCheckProgress {
  /** When that night's check began. */
  checkedAt: string;
  state: 'under-way' | 'interrupted';
  /** When the check was last heard from: for an interrupted night, when it stopped (within a minute or so). */
  heardAt: string;
  /** Entities it recorded an outcome of: checked so far, or before it was interrupted. */
  checked: number;
  /** Entities it set out to check; absent where it did not say. */
  entities?: number;
}

/**
 * How long a night's check under way may go unheard from (it records as it goes, and says it is
 * still there at least every minute) before its pages take it as interrupted.
 *
 * @public
 */
export const NIGHTLY_CHECK_SILENCE_MS = 10 * 60_000;

/**
 * Longest `message` of a nightly check's outcome, in characters: a refusal's words, not a log.
 *
 * @public
 */
export const NIGHTLY_CHECK_MESSAGE_MAX_LENGTH = 2000;

/**
 * A night's outcome for an entity, as the nightly check records it in the backend's own process
 * (no route takes one): readiness shows it as `nightlyCheck`.
 *
 * @public
 */
export type NightlyCheckEntityOutcome = Omit<
  NightlyCheckOutcome,
  'checkedAt' | 'night' | 'newer'
> & { entityRef: string };

/**
 * A night's check as the nightly check records it in the backend's own process (no route takes
 * one): when it began, and what it did about each entity.
 *
 * @public
 */
export interface NightlyCheckRecord {
  checkedAt: string;
  outcomes: NightlyCheckEntityOutcome[];
  /**
   * The outcomes known so far of a night under way: they replace those entities' outcomes alone,
   * and every other entity keeps its own (last night's, until the check reaches it); none at all
   * says the check is still there. Without it, the night whole, as the check records it once it ends.
   */
  partial?: boolean;
  /** How many entities the night's check sets out to check: how far it got, once interrupted. */
  entities?: number;
}

/**
 * What readiness shows of a run whose entity the catalog hides from the caller: what its verdict
 * rests on (outcome, measured RTO, when, the machine it failed at, which the caller's plan holds),
 * none of what `GET /runs/{id}` hides from them: no id, entity, plan, machines (their console
 * tails), steps or creator.
 *
 * @public
 */
export type HiddenRun = Pick<
  RecoveryRun,
  'mode' | 'status' | 'createdAt' | 'startedAt' | 'finishedAt' | 'rtoSeconds'
> & {
  /** The machine it failed at, not the probe nor the run's own message. */
  error?: { machineRef?: string; message: string };
};

/**
 * A run as the readiness overview lists it: what its row shows (outcome, measured RTO, when, the
 * machine it failed at), not its plan, machines or steps (`GET /runs/{id}` has those). Its id and
 * entity only where the caller sees that entity, as for a HiddenRun.
 *
 * @public
 */
export type RunSummary = Pick<
  RecoveryRun,
  'mode' | 'status' | 'createdAt' | 'startedAt' | 'finishedAt' | 'rtoSeconds'
> &
  Partial<Pick<RecoveryRun, 'id' | 'entityRef'>> & {
    /**
     * The machine it failed at (failedMachine); none where it succeeded or failed as a whole (at
     * its host or its lab: no machine to blame).
     */
    failedAt?: string;
  };

/**
 * A machine's latest capture as the readiness overview lists it: which one and when, not what it
 * holds (`GET /captures` has that).
 *
 * @public
 */
export type MachineCaptureSummary = Omit<MachineCaptureStatus, 'latest'> & {
  latest?: Pick<Capture, 'id' | 'createdAt'>;
};

/**
 * An entity's readiness as the overview (`GET /readiness`) lists it: its boot plan as the number
 * of machines in it, each latest capture as its id and time, its last run as a RunSummary.
 * `GET /readiness?include=plan` gives each plan in full too: the nightly check chooses its runs
 * by them.
 *
 * @public
 */
export type ReadinessSummary = Omit<
  Readiness,
  'lastRun' | 'plan' | 'cyclePlan' | 'captures'
> & {
  /** Machines in its boot plan; none where it has no plan (a dependency cycle, say). */
  machineCount?: number;
  captures: MachineCaptureSummary[];
  /** Only with `include=plan`. */
  plan?: BootPlan;
  lastRun?: RunSummary;
};

/**
 * A page of `GET /readiness`: pages split the entities in the order of their refs, each page most
 * at risk first; `pageInfo.nextCursor` asks for the next (absent on the last), as the catalog's
 * `queryEntities` pages.
 *
 * @public
 */
export interface ReadinessPage {
  items: ReadinessSummary[];
  /** Entities in every page together. */
  totalItems: number;
  pageInfo: { nextCursor?: string };
}

/**
 * A page of `GET /runs`, newest first: `pageInfo.nextCursor` asks for the next (absent on the
 * last), as ReadinessPage's. No `totalItems`: which runs a caller may see is the catalog's to say.
 *
 * @public
 */
export interface RunPage {
  items: RecoveryRun[];
  pageInfo: { nextCursor?: string };
}

/**
 * A page of `GET /captures`: one machine's kept captures, newest first; `pageInfo.nextCursor`
 * asks for the next (absent on the last), as ReadinessPage's.
 *
 * @public
 */
export interface CapturePage {
  items: Capture[];
  /** Captures of the machine kept, in every page together. */
  totalItems: number;
  pageInfo: { nextCursor?: string };
}

/**
 * The machine a run failed at: the one its error names. A run-wide error (its lab, its host out of
 * reach, which fails the machines it stopped with its own words) blames none; only a run without
 * an error falls back to the first machine that failed on its own. An interrupted run's machines
 * in progress were interrupted, not failed: none is blamed.
 *
 * @public
 */
export function failedMachine(
  run: Pick<RecoveryRun, 'error' | 'machines'>,
): string | undefined {
  if (run.error) return run.error.machineRef;
  return run.machines.find(m => m.phase === 'failed')?.machineRef;
}

/**
 * Whether readiness shows the run in full (the caller sees its entity).
 *
 * @public
 */
export function isFullRun(run: RecoveryRun | HiddenRun): run is RecoveryRun {
  return 'id' in run;
}
