import type { Command } from 'commander';
import {
  readRecoveryPoint,
  RECOVERY_POINT_FORMAT,
} from '@backstage-recovery/plugin-recovery-common';
import { entityRefArg, startRun } from '../remote';
import { type CliContext, InputError, json } from '../cli';
import {
  againstBackend,
  connect,
  follow,
  intervalMs,
  type RunOptions,
} from './backend';

export type RunCommandOptions = RunOptions & {
  failover?: boolean;
  acceptMissingDependencies?: boolean;
  acceptCycles?: boolean;
  recoveryPoint?: string;
  detach?: boolean;
};

export function addRunCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('run')
      .description(
        'start a test recovery of an entity (or a failover) and follow it to its end; exit status 1 if it fails, 3 if the backend cannot be reached or refuses, 4 if it is interrupted (no result: run it again). Ctrl-C stops following, not the run: recovery cancel RUN stops a test recovery',
      )
      .argument(
        '<entity>',
        'entity ref (component:default/web, or web for short)',
      )
      .option(
        '--failover',
        'a failover: machines boot on a network that is not isolated, and stay',
      )
      .option(
        '--accept-missing-dependencies',
        'recover without the dependencies the catalog names but the plan cannot include',
      )
      .option(
        '--accept-cycles',
        'recover although the catalog declares a dependency cycle: one dependency per cycle is not waited for, each named in the timeline',
      )
      .option(
        '--recovery-point <time>',
        'recover to this time (ISO 8601 with its zone, such as 2026-11-02T01:00:00Z), before a bad change: each machine restores its newest capture taken at or before it',
      )
      .option('--detach', 'print the run and return, without following it')
      .option('--interval <seconds>', 'how often to look at the run', '1'),
  ).action((entity: string, opts: RunCommandOptions) => run(ctx, entity, opts));
}

/** `recovery run ENTITY`: starts a recovery run and follows it to its end (or not, `--detach`). */
export async function run(
  ctx: CliContext,
  entity: string,
  opts: RunCommandOptions,
): Promise<void> {
  const { io } = ctx;
  const client = connect(ctx, opts);
  intervalMs(opts.interval);
  // Malformed, it is refused here, before any request; the backend refuses one in its future.
  const read =
    opts.recoveryPoint === undefined
      ? undefined
      : readRecoveryPoint(opts.recoveryPoint);
  if (read && 'problem' in read) {
    throw new InputError(
      `--recovery-point: ${RECOVERY_POINT_FORMAT}, got '${opts.recoveryPoint}': ${read.problem}`,
    );
  }
  const recoveryPoint = read?.point;
  ctx.doing.starting = true;
  const started = await startRun(client, entityRefArg(entity, ctx.doing), {
    ...opts,
    recoveryPoint,
  });
  ctx.doing.runId = started.id;
  // The point the backend recorded: a run restoring earlier captures than the latest says so.
  const at = started.recoveryPoint
    ? ` to the recovery point ${started.recoveryPoint}`
    : '';
  if (opts.detach) {
    io.stdout(
      opts.json
        ? json(started)
        : `Run ${started.id} of ${started.entityRef}${at} started: recovery watch ${started.id} follows it\n`,
    );
    return;
  }
  if (!opts.json)
    io.stdout(
      `Run ${started.id} of ${started.entityRef}${at} started (Ctrl-C stops following, not the run)\n`,
    );
  await follow(ctx, client, started, opts);
}
