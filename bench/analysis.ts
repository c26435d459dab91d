/**
 * Accuracy on generated histories with known ground truth: ours (`full`) beside the plain method
 * (kernel score over the threshold, nothing more). Exits non-zero if a "must" fails:
 * true dependencies violated by serviceOrder, machineOrder or waves, or more waves than the
 * truth's own machine depth.
 */
import { analyzeDependencies, parseEvents } from '../plugins/recovery-node/src';
import { evaluate, Evaluation, recallCeiling } from './evaluate';
import { generateHistory, GeneratorOptions, toJsonl } from './generate';

const scenarios: Array<{ name: string; options: GeneratorOptions }> = [
  {
    name: 'small site',
    options: {
      seed: 1,
      machines: 8,
      services: 30,
      siteBoots: 30,
      machineReboots: 30,
    },
  },
  {
    name: 'medium site',
    options: {
      seed: 2,
      machines: 20,
      services: 120,
      siteBoots: 40,
      machineReboots: 80,
    },
  },
  {
    name: 'no cascades on reboots',
    options: {
      seed: 3,
      machines: 20,
      services: 120,
      siteBoots: 40,
      machineReboots: 80,
      cascade: 0,
    },
  },
  {
    name: 'heavy noise (10 min skew, 8% dropped, 15% failed first)',
    options: {
      seed: 4,
      machines: 15,
      services: 80,
      siteBoots: 40,
      machineReboots: 60,
      skewMinutes: 10,
      dropRate: 0.08,
      failedFirstRate: 0.15,
    },
  },
  {
    name: 'large site',
    options: {
      seed: 5,
      machines: 50,
      services: 300,
      siteBoots: 30,
      machineReboots: 100,
    },
  },
  {
    name: 'each dependency ready after its own delay',
    options: {
      seed: 6,
      machines: 20,
      services: 120,
      siteBoots: 40,
      machineReboots: 80,
      perDependencyDelay: true,
    },
  },
  {
    name: 'slow starters (10-30 min after the last dependency)',
    options: {
      seed: 7,
      machines: 20,
      services: 120,
      siteBoots: 40,
      machineReboots: 80,
      delayMinutes: [10, 30],
    },
  },
];

const pct = (x: number) => x.toFixed(2);
// Every scenario at several seeds (offsets of its own seed): the musts must hold on all of them.
const seedOffsets = (process.env.BENCH_SEEDS ?? '0,100,200')
  .split(',')
  .map(Number);
let failed = false;
const failedRuns: string[] = [];
const runs = scenarios.flatMap(s =>
  seedOffsets.map(o => ({
    name: `${s.name} [seed ${s.options.seed + o}]`,
    options: { ...s.options, seed: s.options.seed + o },
  })),
);
for (const s of runs) {
  const h = generateHistory(s.options);
  // Through the parser, as the CLI reads it.
  const { events } = parseEvents(toJsonl(h.events).join('\n'), {
    source: s.name,
  });
  const t = performance.now();
  const full = evaluate(analyzeDependencies(events, { map: h.map }), h.truth);
  const ms = performance.now() - t;
  const plain = evaluate(
    analyzeDependencies(events, { map: h.map, method: 'plain' }),
    h.truth,
  );
  console.log(
    `\n${s.name}: ${s.options.services} services on ${s.options.machines} machines, ${s.options.siteBoots} site boots, ${s.options.machineReboots} machine reboots; ${events.length} events; ${full.truthEdges} true edges (${full.directEdges} direct); analysed in ${ms.toFixed(0)} ms`,
  );
  const row = (
    label: string,
    f: (e: Evaluation) => string,
    must?: (e: Evaluation) => boolean,
  ) => {
    const ok = must ? (must(full) ? 'ok' : 'FAIL') : '';
    if (ok === 'FAIL') {
      failed = true;
      if (failedRuns[failedRuns.length - 1] !== s.name) failedRuns.push(s.name);
    }
    console.log(
      `  ${label.padEnd(44)} ours ${f(full).padStart(6)}   plain ${f(plain).padStart(6)}   ${ok}`,
    );
  };
  row(
    'violated by serviceOrder (must be 0)',
    e => String(e.violatedServiceOrder),
    e => e.violatedServiceOrder === 0,
  );
  row(
    'violated by machineOrder (must be 0)',
    e => String(e.violatedMachineOrder),
    e => e.violatedMachineOrder === 0,
  );
  row(
    'violated by waves (must be 0)',
    e => String(e.violatedWaves),
    e => e.violatedWaves === 0,
  );
  row(
    `waves (must be <= truth depth ${full.truthDepth})`,
    e => String(e.waves),
    e => e.waves <= e.truthDepth,
  );
  row('recall of direct dependencies (goal >= 0.95)', e => pct(e.recall));
  // Direct dependencies that are the latest of their dependent's dependencies to start before it
  // in at least 3 of its initializations, and those that are alone there (no other dependency
  // started within the generator's longest delay before).
  const maxDelayMs = (s.options.delayMinutes ?? [6, 18])[1] * 60_000;
  const ceiling = (['latest', 'alone'] as const)
    .map(mode =>
      pct(recallCeiling(events, h.map, h.truth, 3, maxDelayMs, mode)),
    )
    .join(', ');
  console.log(
    `  ${'direct deps latest, alone in >= 3 inits'.padEnd(44)} ${ceiling}`,
  );
  row('precision vs transitive closure (goal >= 0.9)', e => pct(e.precision));
  row('dependencies reported', e => String(e.inferred));
}
console.log(
  failed
    ? `\nA "must" failed in ${failedRuns.length} of ${runs.length} histories: ${failedRuns.join('; ')}.`
    : `\nAll "must" figures hold on all ${runs.length} histories.`,
);
process.exitCode = failed ? 1 : 0;
