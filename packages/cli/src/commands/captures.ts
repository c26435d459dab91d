import type { Command } from 'commander';
import {
  type Capture,
  formatBytes,
  formatUtcTime,
} from '@backstage-recovery/plugin-recovery-common';
import { entityRefArg, machineRefArg } from '../remote';
import { type CliContext, InputError, json, table } from '../cli';
import {
  againstBackend,
  API_LIMIT_MAX,
  type BackendCliOptions,
  type Client,
  connect,
  limitArg,
} from './backend';
import { captureNotes } from './capture';

export type CapturesOptions = BackendCliOptions & {
  machine?: string;
  limit?: string;
};

export function addCapturesCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('captures')
      .description(
        "the kept captures of one machine, of an entity's machines, or of every recoverable entity's, newest first",
      )
      .argument(
        '[entity]',
        'entity ref (component:default/web, or web for short): the machines of its boot plan',
      )
      .option(
        '--machine <ref>',
        'only this machine (resource:default/web-01, or web-01 for short)',
      )
      .option(
        '--limit <n>',
        `captures of each machine, newest first, from 1 to ${API_LIMIT_MAX} (default: 20)`,
      ),
  ).action((entity: string | undefined, opts: CapturesOptions) =>
    captures(ctx, entity, opts),
  );
}

/** `recovery captures [ENTITY] [--machine REF]`: the captures kept, machine by machine. */
export async function captures(
  ctx: CliContext,
  entity: string | undefined,
  opts: CapturesOptions,
): Promise<void> {
  if (entity !== undefined && opts.machine !== undefined)
    throw new InputError(
      `give an entity or --machine, not both (${entity}, --machine ${opts.machine})`,
    );
  const limit =
    opts.limit === undefined
      ? undefined
      : limitArg(opts.limit, 'captures of each machine', API_LIMIT_MAX);
  const machineRef =
    opts.machine === undefined ? undefined : machineRefArg(opts.machine);
  const entityRef =
    entity === undefined ? undefined : entityRefArg(entity, ctx.doing);
  const client = connect(ctx, opts);
  const machines = machineRef
    ? [machineRef]
    : await machinesOf(client, entityRef);
  const byMachine: Array<{ machineRef: string; items: Capture[] }> = [];
  for (const ref of machines)
    byMachine.push({
      machineRef: ref,
      items: await client.listCaptures(ref, limit),
    });
  ctx.io.stdout(
    opts.json
      ? json({ items: byMachine.flatMap(m => m.items) })
      : formatCaptureList(byMachine, entityRef),
  );
}

/**
 * The machines whose captures are listed: those readiness lists for the entity (its boot plan's,
 * or where a dependency cycle makes none, the catalog's), else those of every recoverable entity.
 */
async function machinesOf(
  client: Client,
  entityRef: string | undefined,
): Promise<string[]> {
  const listed = entityRef
    ? (await client.getReadiness(entityRef)).captures
    : (await client.listReadiness()).flatMap(r => r.captures);
  const refs = [...new Set(listed.map(c => c.machineRef))];
  return entityRef ? refs : refs.sort();
}

/** Whether a capture can be restored: damaged ones are kept, never restored. */
function integrity(c: Capture): string {
  return c.damaged
    ? `DAMAGED (found so at ${formatUtcTime(c.damaged.at)}: ${c.damaged.reason}; no run restores it)`
    : 'intact';
}

/**
 * A line a capture: its machine, id, when it was taken, its size, whether it is intact, and what
 * its line says in `recovery capture` (the machine not serving when captured, a long pause).
 */
export function formatCaptureList(
  byMachine: Array<{ machineRef: string; items: Capture[] }>,
  entityRef?: string,
): string {
  if (byMachine.length === 0)
    return entityRef
      ? `${entityRef} runs on no machine: no captures to list.\n`
      : 'No recoverable entities: no service depends on a machine Resource.\n';
  const rows = byMachine.flatMap(({ machineRef, items }) =>
    items.length === 0
      ? [[machineRef, 'never captured']]
      : items.map(c => [
          machineRef,
          c.id,
          formatUtcTime(c.createdAt),
          formatBytes(c.sizeBytes),
          `${integrity(c)}${captureNotes(c)}`,
        ]),
  );
  return `${table([['MACHINE', 'CAPTURE', 'TAKEN', 'SIZE', 'STATE'], ...rows])}\n`;
}
