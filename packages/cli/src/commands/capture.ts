import type { Command } from 'commander';
import {
  CaptureFailedError,
  captureInTurn,
  describeMachineState,
  formatBytes,
  machineNotServing,
  machineStateWorthSaying,
  nothingToCapture,
  type Capture,
  type CaptureRequestProgress,
} from '@backstage-recovery/plugin-recovery-common';
import { ConflictError } from '@backstage/errors';
import {
  BackendError,
  entityRefArg,
  formatStep,
  readableTimes,
} from '../remote';
import { type CliContext, json } from '../cli';
import { againstBackend, type BackendCliOptions, connect } from './backend';

/**
 * What a capture's line says of the machine's state when captured: a machine not serving (stopped,
 * restarting, paused by someone else, unhealthy) is captured all the same, and the line says what
 * that means; a health check not passed yet is said too. Nothing for a machine serving.
 */
function capturedStateWords(c: Capture): string {
  const state = c.machineState;
  if (!machineStateWorthSaying(state)) return '';
  if (!machineNotServing(state))
    return `  when captured: ${describeMachineState(state)}`;
  return `  NOT SERVING when captured: ${describeMachineState(state)}; kept, but readiness puts what it serves at risk until it is captured running and not unhealthy`;
}

/**
 * What a capture's line says after its figures: the machine's state when captured, a crash loop
 * since its previous capture, and a pause that came near its limit (the next capture may be refused).
 */
export function captureNotes(c: Capture): string {
  return `${capturedStateWords(c)}${c.restartWarning ? `  WARNING ${readableTimes(c.restartWarning)}` : ''}${c.pauseWarning ? `  WARNING ${readableTimes(c.pauseWarning)}` : ''}`;
}

export function addCaptureCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('capture')
      .description('capture the machines an entity needs, now')
      .argument(
        '<entity>',
        'entity ref (component:default/web, or web for short)',
      ),
  ).action((entity: string, opts: BackendCliOptions) =>
    capture(ctx, entity, opts),
  );
}

/** `recovery capture ENTITY`: captures the machines of the entity's plan, a machine at a time. */
export async function capture(
  ctx: CliContext,
  entity: string,
  opts: BackendCliOptions,
): Promise<void> {
  const { io } = ctx;
  // A machine at a time, each said as it is taken: a site's images take minutes to save.
  const items: Capture[] = [];
  const entityRef = entityRefArg(entity, ctx.doing);
  const client = connect(ctx, opts);
  // A large copy's progress as a run's timeline says it: the backend paces its lines, and the
  // client hands over only new ones, so each is printed (a wait for another request included).
  const onProgress = opts.json
    ? undefined
    : (progress: CaptureRequestProgress) =>
        io.stdout(`${formatStep({ ...progress, level: 'info' })}\n`);
  try {
    const api = {
      getBootPlan: (ref: string) => client.getBootPlan(ref),
      getReadiness: (ref: string) => client.getReadiness(ref),
      captureNow: (ref: string, machineRef?: string) =>
        client.captureNow(ref, machineRef, { onProgress }),
    };
    await captureInTurn(api, entityRef, {
      captured: ({ capture: c, done, total }) => {
        items.push(c);
        if (opts.json) return;
        const paused = c.pausedMs ? `, production paused ${c.pausedMs} ms` : '';
        io.stdout(
          `${c.machineRef}  capture ${c.id}  ${formatBytes(c.sizeBytes)} in ${c.durationMs} ms${paused}  (${done} of ${total})${captureNotes(c)}\n`,
        );
      },
    });
  } catch (error) {
    // Those taken before the failure are kept: a pipeline reading JSON hears of them as a terminal does.
    if (opts.json && items.length > 0) io.stdout(json({ items }));
    // Machines another capture was taking, or whose capture failed, named once the others were
    // taken: the backend's 409s, its failures (each naming its machine).
    if (error instanceof ConflictError || error instanceof CaptureFailedError)
      throw new BackendError(error.message);
    throw error;
  }
  // A plan without machines captures nothing: a pipeline must not go on as if it had.
  if (items.length === 0) throw new BackendError(nothingToCapture(entityRef));
  if (opts.json) io.stdout(json({ items }));
}
