import { ANNOTATION_JOB } from './annotations';
import type { Capture, CapturedMachineState } from './types';

/** Longest a failing health check's output is kept on a capture: its last line or two. */
export const MACHINE_STATE_OUTPUT_CHARS = 200;

/**
 * A health check's output as a capture keeps it: on one line, at most MACHINE_STATE_OUTPUT_CHARS.
 *
 * @public
 */
export function trimHealthOutput(output: string): string {
  const line = output.replace(/\s+/g, ' ').trim();
  return line.length <= MACHINE_STATE_OUTPUT_CHARS
    ? line
    : `${line.slice(0, MACHINE_STATE_OUTPUT_CHARS - 1).trimEnd()}…`;
}

/**
 * Whether a machine in this state was not serving: anything but running (stopped, restarting,
 * paused by someone else, never started), or running with its health check failing. A state not
 * recorded (a capture from before it was, a source that cannot tell) says nothing either way.
 *
 * @public
 */
export function machineNotServing(
  state: CapturedMachineState | undefined,
): boolean {
  return (
    state !== undefined &&
    (state.status !== 'running' || state.health === 'unhealthy')
  );
}

/**
 * Whether a capture's answer should say the machine's state: where it was not serving, and where
 * its health check had not decided yet (`starting`), which a capture of a machine just restarted
 * shows.
 *
 * @public
 */
export function machineStateWorthSaying(
  state: CapturedMachineState | undefined,
): state is CapturedMachineState {
  return (
    machineNotServing(state) ||
    (state?.status === 'running' && state.health === 'starting')
  );
}

/** Its health check, in words: how many failed in a row, and what the last that failed said. */
function healthWords(state: CapturedMachineState): string {
  const streak = state.failingStreak
    ? `${state.failingStreak} failing health check${state.failingStreak === 1 ? '' : 's'} in a row`
    : '';
  const said = state.healthOutput
    ? `the last said: "${state.healthOutput}"`
    : '';
  return [streak, said].filter(Boolean).join('; ');
}

/**
 * A machine's state in words, as the capture's answer, readiness and a run say it: `exited (code
 * 137, since 2026-12-06T01:00:00Z)`, `running but unhealthy (3 failing health checks in a row; the
 * last said: "…")`, `paused by someone else`, `restarting (last exit code 1)`.
 *
 * @public
 */
export function describeMachineState(state: CapturedMachineState): string {
  const code = state.exitCode !== undefined ? `code ${state.exitCode}` : '';
  const oom = state.oomKilled ? 'killed for want of memory' : '';
  const since = state.since ? `since ${state.since}` : '';
  const inParens = (...parts: string[]) => {
    const said = parts.filter(Boolean).join(', ');
    return said ? ` (${said})` : '';
  };
  switch (state.status) {
    case 'running': {
      if (state.health === 'unhealthy')
        return `running but unhealthy${inParens(healthWords(state))}`;
      if (state.health === 'starting')
        return `running, its health check not passed yet${inParens(healthWords(state))}`;
      return state.health === 'healthy' ? 'running and healthy' : 'running';
    }
    case 'paused':
      return `paused by someone else${state.health === 'unhealthy' ? `, and unhealthy${inParens(healthWords(state))}` : ''}`;
    case 'exited':
      return `exited${inParens(code, oom, since)}`;
    case 'restarting': {
      const count = state.restartCount ?? 0;
      const restarts = count
        ? `restarted ${count === 1 ? 'once' : `${count} times`} by its restart policy`
        : '';
      return `restarting${count > 1 ? ' repeatedly' : ''}${inParens(restarts, state.exitCode !== undefined ? `last exit code ${state.exitCode}` : '', oom, state.since ? `last exited ${state.since}` : '')}`;
    }
    case 'created':
      return 'created but never started';
    case 'dead':
      return `dead${inParens(code, since)}`;
    case 'removing':
      return 'being removed';
    default:
      return String((state as { status: unknown }).status);
  }
}

/**
 * A machine's state without its health check's output: what text that any caller who sees the
 * entity reads (readiness, a run's warnings, a capture's) may say of it. The output may carry
 * secrets (a database's error naming its user, a URL with credentials), so it is answered only in
 * `healthOutput`, to callers granted recovery.run.logs.read on the machine, as its console is.
 *
 * @public
 */
export function withoutHealthOutput(
  state: CapturedMachineState,
): CapturedMachineState {
  const { healthOutput: _withheld, ...said } = state;
  return said;
}

/**
 * What a capture of a machine that was not serving when captured says of itself (readiness, a
 * run restoring it): `resource:default/web-01 was exited (code 137, since …) when captured at …:
 * the capture holds a machine that was not serving`. Undefined where it was serving, or its state
 * was not recorded.
 *
 * @public
 */
export function notServingWhenCaptured(
  capture: Pick<Capture, 'machineRef' | 'createdAt' | 'machineState'>,
): string | undefined {
  if (!machineNotServing(capture.machineState)) return undefined;
  return `${capture.machineRef} was ${describeMachineState(withoutHealthOutput(capture.machineState!))} when captured at ${capture.createdAt}: the capture holds a machine that was not serving`;
}

/**
 * Whether a machine in this state had exited with code 0 on its own (not killed for want of
 * memory): a job that completed, or as well a service an operator stopped cleanly. Only the job
 * annotation tells the two apart (ANNOTATION_JOB); this state can only suggest it.
 *
 * @public
 */
export function exitedWithZero(
  state: CapturedMachineState | undefined,
): boolean {
  return state?.status === 'exited' && state.exitCode === 0 && !state.oomKilled;
}

/**
 * What readiness and a run suggest of a machine that exited with code 0, where the catalog does not
 * say it is a job: `if … is a job that runs to completion (an init, a migration), annotate its
 * Resource with recovery.backstage-recovery.io/job: 'true'`.
 *
 * @public
 */
export function jobAnnotationHint(machineRef: string): string {
  return `if ${machineRef} is a job that runs to completion (an init, a migration), annotate its Resource with ${ANNOTATION_JOB}: 'true' and a run counts it ready once it exits with code 0`;
}
