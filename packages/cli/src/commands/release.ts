import type { Command } from 'commander';
import { formatRelease } from '../remote';
import { type CliContext, json } from '../cli';
import { againstBackend, type BackendCliOptions, connect } from './backend';

export function addReleaseCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('release')
      .description(
        'release a finished failover once production no longer needs it (failback done): remove what it kept on its hypervisor host; exit status 3 if the backend cannot be reached or refuses (not a finished failover, no permission)',
      )
      .argument('<run>', 'run id of the failover'),
  ).action((runId: string, opts: BackendCliOptions) =>
    release(ctx, runId, opts),
  );
}

/** `recovery release RUN`: releases a finished failover (failback done). */
export async function release(
  ctx: CliContext,
  runId: string,
  opts: BackendCliOptions,
): Promise<void> {
  const run = await connect(ctx, opts).releaseFailover(runId);
  ctx.io.stdout(opts.json ? json(run) : `${formatRelease(run)}\n`);
}
