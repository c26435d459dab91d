/** Scoring of an analysis result against a generated history's ground truth. */
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import type {
  AnalysisResult,
  ServiceMap,
} from '../plugins/recovery-node/src/analysis';
import {
  clockCorrector,
  compileServiceMap,
  generations,
  transitiveClosure,
  transitiveReduction,
} from '../plugins/recovery-node/src/analysis';
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

export function evaluate(
  result: AnalysisResult,
  truth: GeneratedHistory['truth'],
): Evaluation {
  const names = truth.services.map(s => s.name);
  const machinesOf = new Map(truth.services.map(s => [s.name, s.machines]));
  const edges = truth.services.flatMap(s =>
    s.dependsOn.map(d => ({ service: s.name, dependsOn: d })),
  );
  const closure = transitiveClosure(names, edges);
  const direct = transitiveReduction(names, edges);
  // Every machine of a dependency boots before every machine of its dependent (replicas too:
  // which one a dependent reaches first is not for the plan to guess).
  const mEdges = edges.flatMap(e =>
    machinesOf.get(e.service)!.flatMap(ma =>
      machinesOf
        .get(e.dependsOn)!
        .filter(mb => mb !== ma)
        .map(mb => ({ service: ma, dependsOn: mb })),
    ),
  );
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
  const inferred = new Set(
    result.dependencies.map(d => `${d.service}\u0000${d.dependsOn}`),
  );
  const hit = direct.filter(e =>
    inferred.has(`${e.service}\u0000${e.dependsOn}`),
  ).length;
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

/**
 * What timing can show of the direct dependencies: a service starts some delay (at most
 * `maxDelayMs`) after the latest of its dependencies. A dependency shows in an initialization of
 * its dependent where it is that latest one (`latest`), and beyond doubt where no other dependency
 * started within `maxDelayMs` before (`alone`). Share of direct dependencies that show in at least
 * `times` initializations.
 */
export function recallCeiling(
  events: InitializationEvent[],
  map: ServiceMap,
  truth: GeneratedHistory['truth'],
  times: number,
  maxDelayMs = 3_600_000,
  mode: 'alone' | 'latest' = 'alone',
): number {
  const mapName = compileServiceMap(map);
  const correct = clockCorrector(events);
  const startsOf = new Map<string, number[]>();
  for (const e of events) {
    if (e.type !== 'start') continue;
    const s = mapName(e.service);
    if (!startsOf.has(s)) startsOf.set(s, []);
    startsOf.get(s)!.push(correct(e.machine, e.time));
  }
  for (const list of startsOf.values()) list.sort((x, y) => x - y);
  const latestBefore = (s: string, t: number) => {
    let best = -Infinity;
    for (const u of startsOf.get(s) ?? []) if (u < t && u > best) best = u;
    return best;
  };
  const names = truth.services.map(s => s.name);
  const direct = transitiveReduction(
    names,
    truth.services.flatMap(s =>
      s.dependsOn.map(d => ({ service: s.name, dependsOn: d })),
    ),
  );
  const depsOf = new Map(truth.services.map(s => [s.name, s.dependsOn]));
  let shown = 0;
  for (const e of direct) {
    let count = 0;
    for (const t of startsOf.get(e.service) ?? []) {
      const mine = latestBefore(e.dependsOn, t);
      if (t - mine > maxDelayMs) continue;
      const others = depsOf
        .get(e.service)!
        .filter(d => d !== e.dependsOn)
        .map(d => latestBefore(d, t));
      if (
        others.every(u => (mode === 'alone' ? t - u > maxDelayMs : u <= mine))
      )
        count++;
    }
    if (count >= times) shown++;
  }
  return direct.length ? shown / direct.length : 1;
}
