import { AnalysisOptions, analyzeDependencies } from '../plugins/recovery-node/src';
import { evaluate } from './evaluate';
import { generateHistory, GeneratorOptions } from './generate';
const medium = { machines: 20, services: 120, siteBoots: 40, machineReboots: 80 };
const variants: Array<[string, Partial<GeneratorOptions>, AnalysisOptions?]> = [
  ['stacked', { stacked: true }],
  ['stacked 8 levels', { stacked: true, levels: 8 }],
  ['stacked, 40 machines', { stacked: true, machines: 40, services: 120 }],
  ['stacked, power-on 5 min', { stacked: true, powerOnMinutes: 5 }],
  ['stacked, 4-10 min, peak 6', { stacked: true, delayMinutes: [4, 10] }, { kernel: { peakDelay: 6 * 60_000 } }],
];
const seeds = (process.env.BENCH_SEEDS ?? '11,22,33,44,55,66,77,88').split(',').map(Number);
for (const [name, options, analysis] of variants) {
  let failed = 0, r = 0, p = 0; const det: string[] = [];
  for (const seed of seeds) {
    const h = generateHistory({ ...medium, ...options, seed } as GeneratorOptions);
    const e = evaluate(analyzeDependencies(h.events, { ...analysis, map: h.map }), h.truth);
    if (e.violatedServiceOrder || e.violatedMachineOrder || e.violatedWaves || e.waves > e.truthDepth) { failed++; }
    det.push(`${e.violatedServiceOrder}/${e.violatedMachineOrder}/${e.violatedWaves} ${e.waves}v${e.truthDepth}`);
    r += e.recall; p += e.precision;
  }
  console.log(`${name.padEnd(30)} ${failed} ${(r / seeds.length).toFixed(2)} ${(p / seeds.length).toFixed(2)}  ${det.join(' | ')}`);
}
