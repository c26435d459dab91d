import { parseEntityRef } from '@backstage/catalog-model';
import { entityPresentationSnapshot } from '@backstage/plugin-catalog-react';
import {
  CLOCK_AHEAD_TOLERANCE_SECONDS,
  failedMachine,
  formatDuration,
  formatMeasured,
  formatUtcTime,
  interruptionCause,
  READINESS_STATUS_LABELS,
  readableTimes,
  type ReadinessStatus,
  type RecoveryRun,
  type ShownMachinePhase,
} from '@backstage-recovery/plugin-recovery-common';

// The CLI writes figures with the same functions: one form wherever a person reads them.
export {
  formatAgainst,
  formatDuration,
  formatMeasured,
  isRunInterrupted,
} from '@backstage-recovery/plugin-recovery-common';
/**
 * Every time the plugin shows, in UTC and saying so, `2024-05-01 10:00:01 UTC`, as the readiness
 * notices write them; with `clock`, the time of day alone where the run's start gives the date.
 */
export const formatTime = formatUtcTime;
/** A backend's message with each ISO time in it written as formatTime writes times. */
export { readableTimes };
// And says readiness and runs in the same words, and ranks them the same.
export {
  CLOCK_AHEAD_TOLERANCE_SECONDS,
  READINESS_RISK_RANK,
  runModeName,
  runStartedBy,
} from '@backstage-recovery/plugin-recovery-common';

/**
 * How long a capture paused production, to the millisecond as an RTO is written: `0.42s`,
 * `2.5s`; `not paused`; `—` where unknown.
 */
export function formatPause(ms: number | undefined): string {
  if (ms === undefined) return '—';
  if (ms === 0) return 'not paused';
  return formatMeasured(ms / 1000);
}

/** `1, 'machine', 'machines'` → `1 machine`; `3, …` → `3 machines`. */
export function formatCount(k: number, one: string, many: string): string {
  return `${k} ${k === 1 ? one : many}`;
}

/** Seconds between two ISO times, or undefined when either is missing. */
export function secondsBetween(
  from: string | undefined,
  to: string | undefined,
): number | undefined {
  if (!from || !to) return undefined;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

/** The UTC date of an ISO time, `2024-05-01`; undefined for none or an unreadable one. */
function utcDate(iso: string | undefined): string | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString().slice(0, 10);
}

/**
 * A time read after `previous` (the step above it, or the run's start): the time of day alone
 * where that gives its date, `00:00:03 UTC`, the date too where the UTC date has changed since,
 * `2026-12-05 00:00:03 UTC`. A run that crosses midnight shows on which day each step fell.
 */
export function formatTimeAfter(
  iso: string | undefined,
  previous: string | undefined,
): string {
  const date = utcDate(iso);
  return formatTime(iso, {
    clock: date === undefined || date === utcDate(previous),
  });
}

/**
 * The age of an ISO time, relative to now: `2h 5m ago`, `just now` under 5 seconds. One dated
 * further ahead than {@link CLOCK_AHEAD_TOLERANCE_SECONDS} says so, `3h in the future`: read as
 * `just now`, a capture a wrong clock dated hours ahead would pass for a fresh one.
 */
export function formatAgo(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const seconds = (now - Date.parse(iso)) / 1000;
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < -CLOCK_AHEAD_TOLERANCE_SECONDS)
    return `${formatDuration(-seconds)} in the future`;
  if (seconds < 5) return 'just now';
  return `${formatDuration(seconds)} ago`;
}

/**
 * CSI (colours, cursor moves, erasing), OSC (window titles, links) up to BEL or ST, then any
 * other escape: ESC, its intermediate bytes, its final byte.
 */
const ESCAPE_SEQUENCE =
  // eslint-disable-next-line no-control-regex
  /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]?/g;
/** Control characters but tab, line feed and carriage return. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

/**
 * A machine's console tail as a terminal would show it, for a page: without the escape sequences
 * of colours and cursor moves (`\x1b[31m`, which a page shows as `[31m` around every word), a
 * line rewritten after carriage returns (a progress bar) as its last state, and no other control
 * characters.
 */
export function consoleText(tail: string): string {
  return tail
    .replace(ESCAPE_SEQUENCE, '')
    .replace(CONTROL_CHARACTER, '')
    .split(/\r*\n/)
    .map(line => line.split('\r').filter(Boolean).pop() ?? '')
    .join('\n');
}

/**
 * An entity as Backstage writes a reference for people: a Component of the default namespace by
 * its name (`web`), any other with its kind (`resource:db`, `system:shop`, `user:alice`), and a
 * namespace but the default. The readiness notices name entities by the same rule (`resource db`
 * in their prose). A text that is no reference is shown as it came.
 */
export function entityLabel(ref: string): string {
  return presentRef(ref, 'component');
}

/**
 * A machine (always a Resource) by its name, `resource:default/web-01` → `web-01`, with its
 * namespace but the default.
 */
export function machineName(ref: string): string {
  return presentRef(ref, 'resource');
}

/**
 * A run's id as a narrow column shows it, its first 8 characters (`3f9c2a1b`, of a UUID), as a
 * commit is named by its hash's start; its link and its page give it whole.
 */
export function shortRunId(runId: string): string {
  return runId.slice(0, 8);
}

/** The overview page's name for {@link machineName} (it names only machines), until it is renamed there. */
export const shortRef = machineName;

function presentRef(ref: string, defaultKind: string): string {
  try {
    return entityPresentationSnapshot(parseEntityRef(ref), { defaultKind })
      .primaryTitle;
  } catch {
    return ref;
  }
}

/** A readiness status as a label: `At risk`. */
export const READINESS_LABELS = Object.fromEntries(
  Object.entries(READINESS_STATUS_LABELS).map(([status, words]) => [
    status,
    words[0].toLocaleUpperCase('en-US') + words.slice(1),
  ]),
) as Record<ReadinessStatus, string>;

export const PHASE_LABELS: Record<ShownMachinePhase, string> = {
  waiting: 'Waiting',
  restoring: 'Restoring',
  starting: 'Starting',
  verifying: 'Verifying',
  ready: 'Ready',
  // A job the run counted ready: it exited with code 0, done rather than running.
  completed: 'Completed',
  failed: 'Failed',
  // The run ended before it started the machine: it will not boot, whatever "waiting" would say.
  skipped: 'Not started',
  interrupted: 'Interrupted',
};

/**
 * Why a failed run failed, said once. The run's error message starts with "<machineRef> failed: "
 * (as the timeline says it), which a view naming the machine itself would repeat; the failed
 * machine's own message does not, so it is preferred.
 */
export function runFailure(run: RecoveryRun): {
  /**
   * The machine the run failed at: the one its error names. None when the run failed as a whole
   * (its host or lab, an interruption): the backend records such an error without a machine, and
   * the machines it stopped are failed with its words, not as its cause. Only a run without an
   * error names the first machine that failed on its own.
   */
  machineRef?: string;
  /** The probe that failed, unless `reason` already names it. */
  probe?: string;
  reason: string;
} {
  const named = run.error?.machineRef;
  const machine = named
    ? run.machines.find(m => m.machineRef === named)
    : run.machines.find(m => m.phase === 'failed');
  const machineRef = failedMachine(run);
  const prefix = `${machineRef} failed: `;
  let reason =
    (named ? machine?.message : undefined) ??
    run.error?.message ??
    machine?.message ??
    'Unknown error';
  if (machineRef && reason.startsWith(prefix))
    reason = reason.slice(prefix.length);
  reason = readableTimes(reason);
  const probe = run.error?.probe ?? (named ? machine?.probe : undefined);
  return {
    machineRef,
    probe: probe && !reason.includes(`probe ${probe}`) ? probe : undefined,
    reason,
  };
}

/**
 * A failed run's failure in one sentence, as every view says it:
 * `Machine web-1 failed probe http:80/healthz: no answer within 60s`. RunOutcome says the same
 * words with the machine and the probe in bold.
 */
export function formatRunFailure(run: RecoveryRun): string {
  const { machineRef, probe, reason } = runFailure(run);
  if (!machineRef) return reason;
  return `Machine ${machineName(machineRef)} failed${probe ? ` probe ${probe}` : ''}: ${reason}`;
}

/**
 * Why an interrupted run stopped, as a sentence: `Preempted by failover run-7 of
 * system:default/site.` from `Interrupted: preempted by failover run-7 of system:default/site`.
 */
export function interruptionReason(run: {
  error?: { message: string };
}): string {
  const text = readableTimes(interruptionCause(run));
  const sentence = text[0].toLocaleUpperCase('en-US') + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

export { isRunActive } from '@backstage-recovery/plugin-recovery-common';

/**
 * When to try a failed poll again: interval × 2ⁿ after n failures in a row, at most 30
 * intervals, so an unreachable backend is not hammered while the page stays open.
 */
export function retryDelayMs(intervalMs: number, failures: number): number {
  return intervalMs * Math.min(2 ** failures, 30);
}

/** The shortest poll interval taken: 0 (or less) would poll in a tight loop. */
export const MIN_POLL_INTERVAL_MS = 100;

/** A poll interval as given, but no shorter than {@link MIN_POLL_INTERVAL_MS}; `fallback` if unset. */
export function pollInterval(ms: number | undefined, fallback: number): number {
  if (ms === undefined || Number.isNaN(ms)) return fallback;
  return Math.max(ms, MIN_POLL_INTERVAL_MS);
}

/** Entity refs compare without regard to case (`Component:default/web` is `component:default/web`). */
export function sameRef(a: string, b: string): boolean {
  return a.toLocaleLowerCase('en-US') === b.toLocaleLowerCase('en-US');
}
