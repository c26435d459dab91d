/**
 * The accuracy benchmark's figures over a wider spread of generated histories: 31 variants of a
 * medium site (fewer or more boots, shallower or deeper DAGs, slower or faster starters, lognormal
 * delays, roots close together, no machine reboots, every reboot cascading or none, noisier logs,
 * smaller and larger sites, services on several machines, machines that host services of every
 * level; fast starters also with a kernel peak given), 8 seeds each.
 * Per variant: how many histories fail a "must" (a true dependency violated by serviceOrder,
 * machineOrder or waves, or more waves than the truth's depth), and mean recall and precision;
 * with BENCH_VERBOSE=1 also which must each failing history breaks. Informational: exits 0;
 * `bench:analysis` is the gate.
 */
import {
  AnalysisOptions,
  analyzeDependencies,
} from '../plugins/recovery-node/src';
import { evaluate } from './evaluate';
import { generateHistory, GeneratorOptions } from './generate';

const medium = {
  machines: 20,
  services: 120,
  siteBoots: 40,
  machineReboots: 80,
};
// A variant's third element: analysis options other than the defaults (as the CLI's flags set them).
const variants: Array<[string, Partial<GeneratorOptions>, AnalysisOptions?]> = [
  ['medium site', {}],
  ['12 site boots, 20 reboots', { siteBoots: 12, machineReboots: 20 }],
  ['80 site boots, 160 reboots', { siteBoots: 80, machineReboots: 160 }],
  ['3 levels', { levels: 3 }],
  ['8 levels', { levels: 8 }],
  ['slow starters (10-30 min)', { delayMinutes: [10, 30] }],
  ['fast starters (3-8 min)', { delayMinutes: [3, 8] }],
  // A peak given near their delay, against the peak the row above moves by itself.
  [
    'fast starters, --kernel-peak 4',
    { delayMinutes: [3, 8] },
    { kernel: { peakDelay: 4 * 60_000 } },
  ],
  ['each dependency its own delay', { perDependencyDelay: true }],
  ['no clock lines', { clocks: false, skewMinutes: 0.2 }],
  [
    'tiny (12 services, 4 machines)',
    { machines: 4, services: 12, siteBoots: 20, machineReboots: 20 },
  ],
  [
    'large (300 services, 50 machines)',
    { machines: 50, services: 300, siteBoots: 30, machineReboots: 100 },
  ],
  ['up to 5 dependencies', { maxDeps: 5 }],
  ['30% roots', { rootRate: 0.3 }],
  ['no machine reboots', { machineReboots: 0 }],
  ['lognormal delays (log-spread 0.5)', { delaySpread: 0.5 }],
  ['reboots never cascade', { cascade: 0 }],
  ['reboots always cascade', { cascade: 1 }],
  ['heavy noise', { skewMinutes: 10, dropRate: 0.08, failedFirstRate: 0.15 }],
  ['roots spread over 40 min', { rootSpreadMinutes: 40 }],
  ['roots within 3 min', { rootSpreadMinutes: 3 }],
  ['80 services, 40 machines', { machines: 40, services: 80 }],
  ['150 services, 5 machines', { machines: 5, services: 150 }],
  ['one machine (30 services)', { machines: 1, services: 30 }],
  ['20% replicated, first replica awaited', { replicaRate: 0.2 }],
  [
    '20% replicated, all replicas awaited',
    { replicaRate: 0.2, replicaWait: 'all' },
  ],
  // Machines that host services of every level: machine chains far deeper than service chains.
  ['stacked machines', { stacked: true }],
  ['stacked, 40 machines', { stacked: true, machines: 40 }],
  ['stacked, power-on over 5 min', { stacked: true, powerOnMinutes: 5 }],
  [
    'stacked, 12 site boots, 20 reboots',
    { stacked: true, siteBoots: 12, machineReboots: 20 },
  ],
  [
    'stacked, 5 deps, each its own delay',
    { stacked: true, maxDeps: 5, perDependencyDelay: true },
  ],
];
const seeds = (process.env.BENCH_SEEDS ?? '11,22,33,44,55,66,77,88')
  .split(',')
  .map(Number);
// BENCH_VERBOSE=1: which must each failing history breaks.
const verbose = Boolean(process.env.BENCH_VERBOSE);
let runs = 0;
let failedRuns = 0;
let recall = 0;
let precision = 0;
console.log(
  `${'variant'.padEnd(36)} failed a must   recall   precision   (of ${seeds.length} seeds)`,
);
for (const [name, options, analysis] of variants) {
  let failed = 0;
  let r = 0;
  let p = 0;
  for (const seed of seeds) {
    const h = generateHistory({
      ...medium,
      ...options,
      seed,
    } as GeneratorOptions);
    const e = evaluate(
      analyzeDependencies(h.events, { ...analysis, map: h.map }),
      h.truth,
    );
    if (
      e.violatedServiceOrder ||
      e.violatedMachineOrder ||
      e.violatedWaves ||
      e.waves > e.truthDepth
    ) {
      failed++;
      if (verbose) {
        console.log(
          `  seed ${seed}: violated by serviceOrder ${e.violatedServiceOrder}, machineOrder ${e.violatedMachineOrder}, waves ${e.violatedWaves}; ${e.waves} waves, truth depth ${e.truthDepth}`,
        );
      }
    }
    r += e.recall;
    p += e.precision;
  }
  runs += seeds.length;
  failedRuns += failed;
  recall += r;
  precision += p;
  console.log(
    `${name.padEnd(36)} ${String(failed).padStart(13)}   ${(r / seeds.length).toFixed(2).padStart(6)}   ${(p / seeds.length).toFixed(2).padStart(9)}`,
  );
}
console.log(
  `\n${failedRuns} of ${runs} histories fail a must; mean recall ${(recall / runs).toFixed(3)}, mean precision ${(precision / runs).toFixed(3)}.`,
);
