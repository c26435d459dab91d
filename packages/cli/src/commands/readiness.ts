import type { Command } from 'commander';
import { entityRefArg, formatReadiness, formatReadinessList } from '../remote';
import { type CliContext, json } from '../cli';
import { againstBackend, type BackendCliOptions, connect } from './backend';

export function addReadinessCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('readiness')
      .description(
        "an entity's recovery readiness, or every recoverable entity's, most at risk first",
      )
      .argument(
        '[entity]',
        'entity ref (component:default/web, or web for short)',
      ),
  ).action((entity: string | undefined, opts: BackendCliOptions) =>
    readiness(ctx, entity, opts),
  );
}

/** `recovery readiness [ENTITY]`: one entity's readiness, or every recoverable entity's. */
export async function readiness(
  ctx: CliContext,
  entity: string | undefined,
  opts: BackendCliOptions,
): Promise<void> {
  const { io } = ctx;
  const client = connect(ctx, opts);
  if (entity) {
    const answer = await client.getReadiness(entityRefArg(entity, ctx.doing));
    io.stdout(opts.json ? json(answer) : formatReadiness(answer));
  } else {
    const items = await client.listReadiness();
    io.stdout(opts.json ? json({ items }) : formatReadinessList(items));
  }
}
