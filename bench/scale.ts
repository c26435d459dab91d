/**
 * The engine at the speed test's scale on histories it was not tuned on: the independent tester's
 * generator (bench/independent/generate.ts) with 1,000 services on 200 machines and 85 site boots
 * (about 100,000 events: the relevant tenth of bench:speed's million lines), tiered and mixed
 * placement, seeds 1-4 (SCALE_SEEDS=1,2,... for others). Scored as bench:independent does. Per
 * history: the musts it fails (1: a true direct dependency violated by serviceOrder, 2: a true
 * machine edge by machineOrder, 3: by waves, 4: more waves than the truth's depth), how many true
 * machine edges the waves violate, waves against the truth's depth, recall, precision, time.
 * Informational: exits 0; `bench:analysis` is the gate.
 */
import { analyzeDependencies, parseEvents } from '../plugins/recovery-node/src';
import { generate } from './independent/generate';
import { score } from './independent/score';

const seeds = (process.env.SCALE_SEEDS ?? '1,2,3,4').split(',').map(Number);
let failed = 0;
let violated = 0;
let edges = 0;
let runs = 0;
console.log(
  `${'placement, seed'.padEnd(16)} failed musts   waves violate   waves / depth   recall   precision   analysed in`,
);
for (const placement of ['tiered', 'mixed'] as const) {
  for (const seed of seeds) {
    const g = generate(
      { placement, services: 1000, machines: 200, boots: 85 },
      seed,
    );
    const t = performance.now();
    const out = analyzeDependencies(parseEvents(g.text).events, { map: g.map });
    const seconds = (performance.now() - t) / 1000;
    const s = score(g.truth, out);
    const musts =
      s.musts.flatMap((f, k) => (f ? [k + 1] : [])).join(',') || '-';
    console.log(
      `${`${placement} ${seed}`.padEnd(16)} ${musts.padStart(12)}   ${`${s.violatedWaves} of ${s.machineEdges}`.padStart(13)}   ${`${s.waves} / ${s.depth}`.padStart(13)}   ${s.recall.toFixed(3).padStart(6)}   ${s.precision.toFixed(3).padStart(9)}   ${`${seconds.toFixed(1)} s`.padStart(11)}`,
    );
    runs++;
    failed += s.musts.some(Boolean) ? 1 : 0;
    violated += s.violatedWaves;
    edges += s.machineEdges;
  }
}
console.log(
  `\n${failed} of ${runs} histories fail a must; the waves violate ${violated} of ${edges} true machine edges.`,
);
