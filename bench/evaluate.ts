/** Scoring of an analysis result against a generated history's ground truth. */
import type { AnalysisResult } from '../plugins/recovery-node/src/analysis';
import { generations, transitiveClosure, transitiveReduction } from '../plugins/recovery-node/src/analysis';
import type { GeneratedHistory } from './generate';

export interface Evaluation {
  truthEdges: number;
  directEdges: number;
  inferred: number;
  violatedServiceOrder: number;
  violatedMachineOrder: number;
  violatedWaves: number;
  waves: number;
  truthDepth: number;
  recall: number;
  precision: number;
}

export function evaluate(result: AnalysisResult, truth: GeneratedHistory['truth']): Evaluation {
  const names = truth.services.map(s => s.name);
  const machineOf = new Map(truth.services.map(s => [s.name, s.machine]));
  const edges = truth.services.flatMap(s => s.dependsOn.map(d => ({ service: s.name, dependsOn: d })));
  const closure = transitiveClosure(names, edges);
  const direct = transitiveReduction(names, edges);
  const mEdges = edges
    .map(e => ({ service: machineOf.get(e.service)!, dependsOn: machineOf.get(e.dependsOn)! }))
    .filter(e => e.service !== e.dependsOn);
  const truthDepth = generations(truth.machines, mEdges).length;
  const spos = new Map(result.serviceOrder.map((s, i) => [s, i]));
  const mpos = new Map(result.machineOrder.map((s, i) => [s, i]));
  const wave = new Map<string, number>();
  result.waves.forEach((w, i) => w.forEach(m => wave.set(m, i)));
  let vs = 0;
  let vm = 0;
  let vw = 0;
  for (const e of edges) {
    const a = spos.get(e.service);
    const b = spos.get(e.dependsOn);
    if (a !== undefined && b !== undefined && b > a) vs++;
  }
  for (const e of mEdges) {
    const a = mpos.get(e.service);
    const b = mpos.get(e.dependsOn);
    if (a !== undefined && b !== undefined && b > a) vm++;
    const wa = wave.get(e.service);
    const wb = wave.get(e.dependsOn);
    if (wa !== undefined && wb !== undefined && wb >= wa) vw++;
  }
  const inferred = new Set(result.dependencies.map(d => `${d.service}\u0000${d.dependsOn}`));
  const hit = direct.filter(e => inferred.has(`${e.service}\u0000${e.dependsOn}`)).length;
  const correct = [...inferred].filter(k => closure.has(k)).length;
  return {
    truthEdges: edges.length,
    directEdges: direct.length,
    inferred: inferred.size,
    violatedServiceOrder: vs,
    violatedMachineOrder: vm,
    violatedWaves: vw,
    waves: result.waves.length,
    truthDepth,
    recall: direct.length ? hit / direct.length : 1,
    precision: inferred.size ? correct / inferred.size : 1,
  };
}
