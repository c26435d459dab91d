import type Docker from 'dockerode';
import {
  trimHealthOutput,
  type CapturedMachineState,
} from '@backstage-recovery/plugin-recovery-common';

const STATUSES = new Set<CapturedMachineState['status']>([
  'running',
  'paused',
  'exited',
  'restarting',
  'created',
  'dead',
  'removing',
]);

/** Docker's zero time, which an engine answers for a container never started (or never stopped). */
export const dockerTime = (time: string | undefined) =>
  time && !time.startsWith('0001-01-01') ? time : undefined;

type DockerState = Partial<
  Omit<Docker.ContainerInspectInfo['State'], 'Health'>
> & {
  Health?: {
    Status?: string;
    FailingStreak?: number;
    Log?: Array<{ ExitCode?: number; Output?: string }> | null;
  };
};

/**
 * How recently a container up again after a restart by its restart policy must have started, when
 * the capture looks, to be captured as `restarting`: Docker says `running` in the seconds a crash
 * loop is up between two crashes (the count is the policy's own; `docker restart` leaves it be).
 */
export const RESTART_LOOP_WINDOW_MS = 60_000;

/**
 * A container's state as a capture records it (CapturedMachineState), from `docker inspect`'s
 * `State` and `RestartCount`, looked at `lookedAt`: its status, its last exit code and since when
 * where it is not running, and its health check's verdict with the output of the last check that
 * failed, and how many times its restart policy restarted it (whatever its status). Running, but
 * restarted by its policy within RESTART_LOOP_WINDOW_MS before `lookedAt` (the engine's time, as
 * its `StartedAt` is: EngineClock), it is `restarting`, with its last exit. Undefined where the
 * engine said nothing of it.
 */
export function machineStateOf(
  state: DockerState | undefined,
  restartCount?: number,
  lookedAt: number = Date.now(),
): CapturedMachineState | undefined {
  if (!state) return undefined;
  const said = state.Status as CapturedMachineState['status'] | undefined;
  const reported: CapturedMachineState['status'] | undefined =
    said && STATUSES.has(said)
      ? said
      : // An engine older than the Status field: its flags.
        state.Restarting
        ? 'restarting'
        : state.Paused
          ? 'paused'
          : state.Running
            ? 'running'
            : state.Dead
              ? 'dead'
              : dockerTime(state.StartedAt)
                ? 'exited'
                : state.StartedAt !== undefined
                  ? 'created'
                  : undefined;
  if (!reported) return undefined;
  const restarts = restartCount ?? 0;
  const startedAt = dockerTime(state.StartedAt);
  // Up between two crashes: its exit code was reset when it started again, its FinishedAt kept.
  const upBetweenCrashes =
    reported === 'running' &&
    restarts > 0 &&
    startedAt !== undefined &&
    lookedAt - Date.parse(startedAt) < RESTART_LOOP_WINDOW_MS;
  const status = upBetweenCrashes ? 'restarting' : reported;
  const up = status === 'running' || status === 'paused';
  const since = dockerTime(up ? state.StartedAt : state.FinishedAt);
  const result: CapturedMachineState = { status };
  if (
    !up &&
    !upBetweenCrashes &&
    status !== 'created' &&
    typeof state.ExitCode === 'number'
  )
    result.exitCode = state.ExitCode;
  // With every capture, 0 too: the next one tells how many times its policy restarted it since.
  if (restartCount !== undefined) result.restartCount = restartCount;
  if (!up && state.OOMKilled) result.oomKilled = true;
  if (since && status !== 'created') result.since = since;
  // A stopped machine's health is what it was when it stopped: its status says more.
  const health = up ? state.Health : undefined;
  if (
    health?.Status === 'starting' ||
    health?.Status === 'healthy' ||
    health?.Status === 'unhealthy'
  ) {
    result.health = health.Status;
    if (health.FailingStreak) result.failingStreak = health.FailingStreak;
    const output =
      health.Status === 'healthy' ? undefined : lastFailedCheckOutput(health);
    if (output) result.healthOutput = output;
  }
  return result;
}

/** What the last health check that failed said, on one line; undefined where none said anything. */
export function lastFailedCheckOutput(
  health: DockerState['Health'],
): string | undefined {
  const failed = [...(health?.Log ?? [])]
    .reverse()
    .find(check => check.ExitCode !== 0);
  return failed?.Output?.trim() ? trimHealthOutput(failed.Output) : undefined;
}
