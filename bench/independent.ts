/**
 * The engine on histories it was not tuned on: an independent tester's generator
 * (bench/independent/generate.ts, written from the spec without reading the engine) and their
 * scoring, run in-process. Their 6 variants (tiered or mixed placement of services on machines;
 * defaults, 10 boots, fast starters (3-8 min), fast starters with the kernel peak at 5.5 min, and
 * a messy site: ±20 min skew drifting by up to ±15 min, clock lines on ~1/3 of boots, 8% dropped
 * events, 20% failed first attempts, 2 reboots per site boot with 90% cascade, shuffled lines),
 * 12 seeds each (INDEPENDENT_SEEDS=N for another count, INDEPENDENT_SEED0 for another first seed;
 * seeds step by 7919, the same for every variant). Per variant: how many histories fail a "must"
 * and how many fail each (1: a true direct dependency violated by serviceOrder, 2: a true machine
 * edge violated by machineOrder, 3: by waves, 4: more waves than the truth's depth; a missing
 * service or machine counts as a violation), mean recall of the truth's transitive reduction, mean
 * precision against its transitive closure, mean waves against mean truth depth. Beside recall,
 * what timing can show: recall of the dependencies that were their dependent's latest in at least
 * half the whole-site boots, and the share that never were (those only restarts can reveal).
 * Informational: exits 0; `bench:analysis` is the gate.
 */
import {
  AnalysisOptions,
  analyzeDependencies,
  parseEvents,
} from '../plugins/recovery-node/src';
import { generate, IndependentParams } from './independent/generate';
import { score, Score } from './independent/score';

// The tester's variants (run.mjs); the third element: analysis options other than the defaults
// (their runner passed `--kernel-peak 5.5` to the CLI).
const variants: Array<[string, Partial<IndependentParams>, AnalysisOptions?]> =
  [
    ['tiered-default', { placement: 'tiered' }],
    ['mixed-default', { placement: 'mixed' }],
    ['mixed-fewboots', { placement: 'mixed', boots: 10 }],
    ['tiered-fast', { placement: 'tiered', delay: [3, 8] }],
    // Same histories as tiered-fast with the kernel peak moved.
    [
      'tiered-fast-kp5.5',
      { placement: 'tiered', delay: [3, 8] },
      { kernel: { peakDelay: 5.5 * 60_000 } },
    ],
    // Realistic messy site: heavy skew (±20 min) drifting by up to ±15 min over the history, clock
    // lines only on ~1/3 of boots, 8% dropped events, 20% failed first attempts, 2 single-machine
    // reboots per site boot with 90% cascade, shuffled file order.
    [
      'mixed-messy',
      {
        placement: 'mixed',
        skew: 20,
        drift: 15,
        clockEvery: 3,
        drop: 0.08,
        failFirst: 0.2,
        reboots: 2,
        cascade: 0.9,
        shuffle: true,
      },
    ],
  ];
const count = Number(process.env.INDEPENDENT_SEEDS ?? 12);
const seed0 = Number(process.env.INDEPENDENT_SEED0 ?? 1000);
const seeds = Array.from({ length: count }, (_, k) => seed0 + k * 7919);

let runs = 0;
let failedRuns = 0;
let crashedRuns = 0;
let recall = 0;
let recallLatest = 0;
let neverLatest = 0;
let precision = 0;
console.log(
  `${'variant'.padEnd(20)} failed a must   must 1/2/3/4   recall   (latest in ≥½ | never latest)   precision   waves / truth depth   (of ${seeds.length} seeds)`,
);
for (const [name, params, analysis] of variants) {
  const scores: Score[] = [];
  let crashed = 0;
  for (const seed of seeds) {
    const g = generate(params, seed);
    try {
      const { events } = parseEvents(g.text);
      scores.push(
        score(
          g.truth,
          analyzeDependencies(events, { map: g.map, ...analysis }),
        ),
      );
    } catch (e) {
      crashed++;
      console.log(`  ${name} seed ${seed}: ${(e as Error).message}`);
    }
  }
  const n = scores.length;
  const mean = (f: (s: Score) => number) =>
    scores.reduce((sum, s) => sum + f(s), 0) / n;
  const failed = scores.filter(s => s.musts.some(Boolean)).length;
  const perMust = [0, 1, 2, 3]
    .map(k => scores.filter(s => s.musts[k]).length)
    .join('/');
  runs += n;
  failedRuns += failed;
  crashedRuns += crashed;
  recall += mean(s => s.recall) * n;
  recallLatest += mean(s => s.recallLatest) * n;
  neverLatest += mean(s => s.neverLatest) * n;
  precision += mean(s => s.precision) * n;
  console.log(
    `${name.padEnd(20)} ${String(failed).padStart(13)}   ${perMust.padStart(12)}   ${mean(
      s => s.recall,
    )
      .toFixed(3)
      .padStart(
        6,
      )}   ${`(${mean(s => s.recallLatest).toFixed(3)} | ${mean(s => s.neverLatest).toFixed(3)})`.padStart(29)}   ${mean(
      s => s.precision,
    )
      .toFixed(3)
      .padStart(
        9,
      )}   ${`${mean(s => s.waves).toFixed(1)} / ${mean(s => s.depth).toFixed(1)}`.padStart(19)}${
      crashed ? `   (${crashed} crashed)` : ''
    }`,
  );
}
console.log(
  `\n${failedRuns} of ${runs} histories fail a must; mean recall ${(recall / runs).toFixed(3)} (${(recallLatest / runs).toFixed(3)} of the dependencies latest in at least half the site boots; ${(neverLatest / runs).toFixed(3)} never latest), mean precision ${(precision / runs).toFixed(3)}.${
    crashedRuns ? ` ${crashedRuns} analyses threw.` : ''
  }`,
);
