import type { Command } from 'commander';
import type { CliContext } from '../cli';
import {
  againstBackend,
  connect,
  follow,
  intervalMs,
  type RunOptions,
} from './backend';

export function addWatchCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('watch')
      .description(
        'follow a run to its end; exit status 1 if it failed, 3 if the backend cannot be reached or refuses, 4 if it was interrupted (no result: run it again). Ctrl-C stops following, not the run: recovery cancel RUN stops a test recovery',
      )
      .argument('<run>', 'run id')
      .option('--interval <seconds>', 'how often to look at the run', '1'),
  ).action((runId: string, opts: RunOptions) => watch(ctx, runId, opts));
}

/** `recovery watch RUN`: follows a run already started to its end. */
export async function watch(
  ctx: CliContext,
  runId: string,
  opts: RunOptions,
): Promise<void> {
  const client = connect(ctx, opts);
  intervalMs(opts.interval);
  ctx.doing.runId = runId;
  await follow(ctx, client, await client.getRun(runId), opts);
}
