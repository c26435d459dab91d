import type { Command } from 'commander';
import { type CliContext, EXIT_INTERRUPTED } from '../cli';
import {
  againstBackend,
  connect,
  follow,
  intervalMs,
  type RunOptions,
} from './backend';

export function addCancelCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('cancel')
      .description(
        'cancel a pending or running test recovery: it stops booting, tears its lab down and ends interrupted, naming who cancelled it; followed to that end (Ctrl-C stops following, not the cancel); exit status 3 if the backend cannot be reached or refuses (a failover, a finished run or one that has reached its result and is tearing its lab down, no permission)',
      )
      .argument('<run>', 'run id of the test recovery')
      .option('--interval <seconds>', 'how often to look at the run', '1'),
  ).action((runId: string, opts: RunOptions) => cancel(ctx, runId, opts));
}

/**
 * `recovery cancel RUN`: cancels a test recovery, then follows it until its lab is torn down and
 * the host free. Ending interrupted is what was asked: exit status 0, not watch's 4.
 */
export async function cancel(
  ctx: CliContext,
  runId: string,
  opts: RunOptions,
): Promise<void> {
  const client = connect(ctx, opts);
  intervalMs(opts.interval);
  ctx.doing.runId = runId;
  const run = await client.cancelRun(runId);
  if (!opts.json)
    ctx.io.stdout(
      `Cancelling run ${run.id} of ${run.entityRef}: it stops booting and tears its lab down (Ctrl-C stops following, not the cancel)\n`,
    );
  await follow(ctx, client, run, opts);
  if (ctx.status === EXIT_INTERRUPTED) ctx.status = 0;
}
