import type { Command } from 'commander';
import {
  isRunActive,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { counted } from '@backstage-recovery/plugin-recovery-node';
import { formatRelease } from '../remote';
import { type CliContext, InputError, json } from '../cli';
import { againstBackend, type BackendCliOptions, connect } from './backend';

export type ReleaseOptions = BackendCliOptions & { yes?: boolean };

export function addReleaseCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('release')
      .description(
        'release a finished failover once production no longer needs it (failback done): remove what it kept on its hypervisor host, and with it whatever its machines wrote since it started; refused (exit status 2) without --yes; exit status 3 if the backend cannot be reached or refuses (not a finished failover, no permission)',
      )
      .argument('<run>', 'run id of the failover')
      .option(
        '--yes',
        'release it: what its machines wrote since the failover started is discarded with them',
      ),
  ).action((runId: string, opts: ReleaseOptions) => release(ctx, runId, opts));
}

/**
 * `recovery release RUN`: releases a finished failover (failback done). Its machines have served
 * production since it started, and what they wrote lives only in them (a capture reads primary
 * machines only): without `--yes`, it says so and releases nothing.
 */
export async function release(
  ctx: CliContext,
  runId: string,
  opts: ReleaseOptions,
): Promise<void> {
  const client = connect(ctx, opts);
  if (!opts.yes) {
    const refusal = releaseRefusal(await client.getRun(runId));
    if (refusal) throw new InputError(refusal);
  }
  const run = await client.releaseFailover(runId);
  ctx.io.stdout(opts.json ? json(run) : `${formatRelease(run)}\n`);
}

/**
 * What releasing `run` would discard, asking for `--yes`; none where it discards nothing: a
 * failover released before, or a run the backend refuses to release anyway (a test recovery, a
 * failover still running), whose refusal says why.
 */
export function releaseRefusal(run: RecoveryRun): string | undefined {
  const released = run.steps.some(s => s.message.startsWith('Released by '));
  if (run.mode !== 'failover' || isRunActive(run) || released) return undefined;
  const since = run.startedAt ?? run.createdAt;
  const machines = run.machines.map(m => m.machineRef);
  return [
    `failover ${run.id} of ${run.entityRef} has run production on ${run.hypervisorHost} since ${since}, ` +
      `on ${counted(machines.length, 'machine')}${machines.length ? `: ${machines.join(', ')}` : ''}.`,
    `Releasing it removes them for good, and with them whatever they wrote since ${since}: ` +
      'no capture holds it (captures read primary machines only).',
    'Copy that data back to production first (fail back), then release it: ' +
      `recovery release ${run.id} --yes`,
  ].join('\n');
}
