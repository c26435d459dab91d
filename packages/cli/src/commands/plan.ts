import type { Command } from 'commander';
import {
  describeProbe,
  formatUtcTime,
  JOB_MACHINE_NOTE,
  type PlanResponse,
} from '@backstage-recovery/plugin-recovery-common';
import {
  counted,
  describeLearned,
  describeLearnedMachineWait,
  lowConfidenceWarning,
} from '@backstage-recovery/plugin-recovery-node';
import { entityRefArg } from '../remote';
import { type CliContext, json } from '../cli';
import { againstBackend, type BackendCliOptions, connect } from './backend';

export function addPlanCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('plan')
      .description(
        "an entity's boot plan: its machines wave by wave, what the order learned from the boot history, where the catalog and the history disagree",
      )
      .argument(
        '<entity>',
        'entity ref (component:default/web, or web for short)',
      ),
  ).action((entity: string, opts: BackendCliOptions) =>
    plan(ctx, entity, opts),
  );
}

/** `recovery plan ENTITY`: the boot plan a recovery of the entity would follow now. */
export async function plan(
  ctx: CliContext,
  entity: string,
  opts: BackendCliOptions,
): Promise<void> {
  const answer = await connect(ctx, opts).getBootPlan(
    entityRefArg(entity, ctx.doing),
  );
  ctx.io.stdout(opts.json ? json(answer) : formatPlan(answer));
}

/**
 * The plan as a person reads it: each wave's machines (a job said to be one) with the services
 * they run, the machines they wait for and the probes that gate them; then the dependencies learned from the boot
 * history that the order follows beyond the catalog's dependsOn, with their evidence, and what
 * the analysis warned of (learned dependencies dropped for closing a cycle among them); last,
 * where the catalog and the history disagree, and the catalog's problems.
 */
export function formatPlan(p: PlanResponse): string {
  const machines = new Map(p.machines.map(m => [m.machineRef, m]));
  const out = [
    p.waves.length === 0
      ? `${p.entityRef} runs on no machine: its boot plan is empty`
      : `Boot plan of ${p.entityRef}: ${counted(p.machines.length, 'machine')} in ${counted(p.waves.length, 'wave')} (the machines of a wave boot in parallel)`,
  ];
  const width = Math.max(0, ...p.waves.flat().map(ref => ref.length));
  p.waves.forEach((wave, i) => {
    out.push(`Wave ${i + 1}:`);
    for (const ref of wave) {
      const m = machines.get(ref);
      const about = [
        ...(m?.job ? [JOB_MACHINE_NOTE] : []),
        ...(m?.waitsFor.length ? [`waits for ${m.waitsFor.join(', ')}`] : []),
        ...(m?.services.length ? [`runs ${m.services.join(', ')}`] : []),
        ...(m?.probes.length
          ? [`probes ${m.probes.map(describeProbe).join(', ')}`]
          : []),
      ];
      out.push(`  ${ref.padEnd(width)}  ${about.join('; ')}`.trimEnd());
    }
  });
  const learned = p.inferred ?? [];
  const waits = p.inferredMachineWaits ?? [];
  if (!p.analysis) {
    out.push(
      '',
      "No dependency analysis of its system: the order follows the catalog's dependsOn alone.",
    );
  } else {
    out.push(
      '',
      `Learned from the boot history (analysis ${p.analysis.id} of ${formatUtcTime(p.analysis.createdAt)}), beyond the catalog's dependsOn:`,
    );
    if (learned.length === 0 && waits.length === 0) out.push('  nothing');
    for (const d of learned) out.push(`  ${describeLearned(d)}`);
    for (const w of waits) out.push(`  ${describeLearnedMachineWait(w)}`);
    const doubt = lowConfidenceWarning(learned);
    if (doubt) out.push(`  warning: ${doubt}`);
    if (p.analysis.warnings?.length)
      out.push(
        '',
        'The analysis warns:',
        ...p.analysis.warnings.map(w => `  - ${w}`),
      );
  }
  const notDeclared = p.disagreements?.inferredNotDeclared ?? [];
  if (notDeclared.length > 0)
    out.push(
      '',
      'Observed in the boot history but not declared in spec.dependsOn:',
      ...notDeclared.map(d => `  ${describeLearned(d)}`),
    );
  const notObserved = p.disagreements?.declaredNotObserved ?? [];
  if (notObserved.length > 0)
    out.push(
      '',
      'Declared in spec.dependsOn but never observed in the boot history:',
      ...notObserved.map(d => `  ${d.service} → ${d.dependsOn}`),
    );
  if (p.problems.length > 0)
    out.push('', 'Problems:', ...p.problems.map(x => `  - ${x.message}`));
  return `${out.join('\n')}\n`;
}
