import {
  formatScore,
  type InferredDependency,
  type InferredMachineWait,
} from '@backstage-recovery/plugin-recovery-common';
import { counted } from '../analysis/graph';

/*
 * What a boot plan learned from the boot history beyond the catalog's dependsOn, in the words a
 * run's timeline, readiness and the CLI's `recovery plan` share.
 */

/** A learned dependency and its evidence: `web → db (score 0.82, 12 boots, low confidence)`. */
export function describeLearned(d: InferredDependency): string {
  const evidence = [
    `score ${formatScore(d.score)}`,
    ...(d.samples !== undefined ? [counted(d.samples, 'boot')] : []),
    ...(d.confidence === 'low' ? ['low confidence'] : []),
  ];
  return `${d.service} → ${d.dependsOn} (${evidence.join(', ')})`;
}

/** A machine wait learned from reboots and its evidence. */
export function describeLearnedMachineWait(w: InferredMachineWait): string {
  return `${w.machine} → ${w.waitsFor} (its services restarted after ${w.followed} of ${w.chances} reboots)`;
}

/**
 * The warning given where a plan waits on learned dependencies of low confidence: seen in fewer
 * boots than the analysis trusts, such a wait may be wrong (the order of a boot or two by
 * chance, or reversed). Undefined where none of `dependencies` is of low confidence.
 */
export function lowConfidenceWarning(
  dependencies: InferredDependency[],
): string | undefined {
  const low = dependencies.filter(d => d.confidence === 'low');
  if (low.length === 0) return undefined;
  const one = low.length === 1;
  return `${one ? 'a learned dependency' : `${low.length} learned dependencies`} of low confidence (seen in fewer boots than the analysis trusts) may be wrong; declare ${one ? 'it in spec.dependsOn if it is real' : 'those that are real in spec.dependsOn'}, or let more boots confirm or drop ${one ? 'it' : 'them'}`;
}
