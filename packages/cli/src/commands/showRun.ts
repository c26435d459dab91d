import type { Command } from 'commander';
import {
  formatUtcTime,
  isJobMachine,
  JOB_MACHINE_NOTE,
  type RecoveryRun,
  runModeName,
  runStartedBy,
  shownMachinePhase,
  timelineSteps,
} from '@backstage-recovery/plugin-recovery-common';
import {
  formatFailureTail,
  formatOutcome,
  formatStep,
  readableTimes,
} from '../remote';
import { type CliContext, json, table } from '../cli';
import { againstBackend, type BackendCliOptions, connect } from './backend';
import { degradedNote } from './runs';

export function addShowRunCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('show-run')
      .description(
        "one run's whole record: its machines wave by wave with their phases, its timeline, how it ended; exit status 0 however it ended (recovery watch RUN follows one to its end)",
      )
      .argument('<run>', 'run id'),
  ).action((runId: string, opts: BackendCliOptions) =>
    showRun(ctx, runId, opts),
  );
}

/** `recovery show-run RUN`: a run as it stands, finished or not, without following it. */
export async function showRun(
  ctx: CliContext,
  runId: string,
  opts: BackendCliOptions,
): Promise<void> {
  const run = await connect(ctx, opts).getRun(runId);
  ctx.io.stdout(opts.json ? json(run) : formatRun(run));
}

/**
 * A run's record: who started it and when, its machines wave by wave (phase, the capture
 * restored, what went wrong, a job said to be one: a job done reads `completed`), its timeline as
 * `watch` prints it, the failed machine's console, and last the outcome line `run` and `watch`
 * end with.
 */
export function formatRun(run: RecoveryRun): string {
  const times = [
    `created ${formatUtcTime(run.createdAt)}`,
    ...(run.startedAt ? [`started ${formatUtcTime(run.startedAt)}`] : []),
    ...(run.finishedAt ? [`finished ${formatUtcTime(run.finishedAt)}`] : []),
  ];
  const out = [
    `Run ${run.id} of ${run.entityRef}: ${runModeName(run.mode)} on ${run.hypervisorHost}, ${runStartedBy(run, undefined, 'started by ')}`,
    `  ${times.join(', ')}`,
  ];
  if (run.recoveryPoint)
    out.push(
      `  to the recovery point ${formatUtcTime(run.recoveryPoint)}: each machine restored its newest capture taken at or before it`,
    );
  const degraded = run.supervision?.degraded;
  if (degraded) {
    const waiting = degraded.notStarted?.length
      ? `; left stopped as they wait for it: ${degraded.notStarted.join(', ')}`
      : '';
    out.push(
      `  running degraded: ${degradedNote(run)}; it stopped on ${run.hypervisorHost} and could not be brought back: ${readableTimes(degraded.message)}${waiting}`,
    );
  }
  const machines = [...run.machines].sort(
    (a, b) => a.wave - b.wave || a.machineRef.localeCompare(b.machineRef),
  );
  if (machines.length > 0) {
    out.push(
      '',
      table([
        ['WAVE', 'MACHINE', 'PHASE', 'CAPTURE RESTORED', 'MESSAGE'],
        ...machines.map(m => [
          String(m.wave + 1),
          m.machineRef,
          shownMachinePhase(run.plan, m),
          m.captureId
            ? `${m.captureId}${m.capturedAt ? ` of ${formatUtcTime(m.capturedAt)}` : ''}`
            : '—',
          [
            ...(isJobMachine(run.plan, m.machineRef) ? [JOB_MACHINE_NOTE] : []),
            ...(m.message ? [readableTimes(m.message)] : []),
          ].join('; '),
        ]),
      ]),
    );
  }
  const steps = timelineSteps(run);
  if (steps.length > 0)
    out.push('', 'Timeline:', ...steps.map(s => `  ${formatStep(s)}`));
  const tail = formatFailureTail(run);
  if (tail.length > 0) out.push('', ...tail);
  out.push('', formatOutcome(run));
  return `${out.join('\n')}\n`;
}
