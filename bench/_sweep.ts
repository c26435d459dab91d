import { analyzeDependencies } from '../plugins/recovery-node/src';
import { evaluate } from './evaluate';
import { generateHistory, GeneratorOptions } from './generate';
const scenarios: Array<GeneratorOptions> = [
  { seed: 1, machines: 8, services: 30, siteBoots: 30, machineReboots: 30 },
  { seed: 2, machines: 20, services: 120, siteBoots: 40, machineReboots: 80 },
  { seed: 3, machines: 20, services: 120, siteBoots: 40, machineReboots: 80, cascade: 0 },
  { seed: 4, machines: 15, services: 80, siteBoots: 40, machineReboots: 60, skewMinutes: 10, dropRate: 0.08, failedFirstRate: 0.15 },
  { seed: 5, machines: 50, services: 300, siteBoots: 30, machineReboots: 100 },
];
const K = Number(process.env.K ?? 6);
let fails = 0, runs = 0, rs = 0, ps = 0, minR = 1, minP = 1; const why: string[] = [];
for (const s of scenarios) for (let k = 0; k < K; k++) {
  const o = { ...s, seed: s.seed + 100 * k };
  const h = generateHistory(o);
  const e = evaluate(analyzeDependencies(h.events, { map: h.map }), h.truth);
  runs++; rs += e.recall; ps += e.precision; minR = Math.min(minR, e.recall); minP = Math.min(minP, e.precision);
  const f = [e.violatedServiceOrder && `so${e.violatedServiceOrder}`, e.violatedMachineOrder && `mo${e.violatedMachineOrder}`, e.violatedWaves && `vw${e.violatedWaves}`, e.waves > e.truthDepth && `deep${e.waves}/${e.truthDepth}`].filter(Boolean);
  if (f.length) { fails++; why.push(`${o.seed}:${f.join(',')}`); }
}
console.log(`fails ${fails}/${runs}  recall mean ${(rs / runs).toFixed(3)} min ${minR.toFixed(2)}  precision mean ${(ps / runs).toFixed(3)} min ${minP.toFixed(2)}  ${why.join(' ')}`);
