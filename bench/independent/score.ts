/** The independent tester's scoring (their run.mjs `score`), shared by bench:independent and bench:scale. */
import type { AnalysisResult } from '../../plugins/recovery-node/src';
import type { IndependentTruth } from './generate';

export interface Score {
  /** Per must (1-4): whether the history fails it. */
  musts: [boolean, boolean, boolean, boolean];
  /** True machine edges the waves violate (must 3), and all of them. */
  violatedWaves: number;
  machineEdges: number;
  recall: number;
  /** Recall of the dependencies latest in at least half the site boots. */
  recallLatest: number;
  /** Share of the dependencies never latest in a site boot. */
  neverLatest: number;
  precision: number;
  waves: number;
  depth: number;
}

/** The tester's scoring (run.mjs `score`), the musts, recall and precision. */
export function score(truth: IndependentTruth, out: AnalysisResult): Score {
  const pos = new Map(out.serviceOrder.map((s, i) => [s, i]));
  let v1 = 0;
  let miss1 = 0;
  const repDeps = new Set(
    out.dependencies.map(d => `${d.service}\u0000${d.dependsOn}`),
  );
  for (const [a, b] of truth.directEdges) {
    if (!pos.has(a) || !pos.has(b)) miss1++;
    else if (pos.get(b)! > pos.get(a)!) v1++;
  }
  const mpos = new Map(out.machineOrder.map((m, i) => [m, i]));
  const wave = new Map<string, number>();
  out.waves.forEach((w, i) => w.forEach(m => wave.set(m, i)));
  let v2 = 0;
  let v3 = 0;
  let miss2 = 0;
  for (const [x, y] of truth.machineEdges) {
    if (!mpos.has(x) || !mpos.has(y)) miss2++;
    else if (mpos.get(y)! > mpos.get(x)!) v2++;
    if (!wave.has(x) || !wave.has(y) || wave.get(y)! >= wave.get(x)!) v3++;
  }
  const closure = new Set(truth.closureEdges.map(([a, b]) => `${a}\u0000${b}`));
  const found = truth.reduction.filter(([a, b]) =>
    repDeps.has(`${a}\u0000${b}`),
  ).length;
  const latestShare = ([a, b]: [string, string]) =>
    truth.edgeStats[`${a}>${b}`]?.[0] ?? 0;
  const mostlyLatest = truth.reduction.filter(e => latestShare(e) >= 0.5);
  const good = out.dependencies.filter(d =>
    closure.has(`${d.service}\u0000${d.dependsOn}`),
  ).length;
  return {
    musts: [
      v1 + miss1 > 0,
      v2 + miss2 > 0,
      v3 > 0,
      out.waves.length > truth.machineDepth,
    ],
    violatedWaves: v3,
    machineEdges: truth.machineEdges.length,
    recall: found / truth.reduction.length,
    recallLatest:
      mostlyLatest.filter(([a, b]) => repDeps.has(`${a}\u0000${b}`)).length /
      mostlyLatest.length,
    neverLatest:
      truth.reduction.filter(e => latestShare(e) === 0).length /
      truth.reduction.length,
    precision: out.dependencies.length ? good / out.dependencies.length : 1,
    waves: out.waves.length,
    depth: truth.machineDepth,
  };
}
