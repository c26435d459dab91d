/**
 * Worst cases of the analysis's running time, each an input that once took tens of seconds:
 * services restarting in loops (100,000 starts; the sweeps walked every start in the window,
 * 70 s) and more services than the dense matrices take, nearly all paired by the window (3,200
 * in one boot; a pair's sums in five Maps, 36 s). Prints each one's best of ROUNDS.
 */
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { analyzeDependencies } from '../plugins/recovery-node/src';

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);
/** Rounds per case; WORST_CASE_ROUNDS=N for another count. */
const ROUNDS = Number(process.env.WORST_CASE_ROUNDS ?? 3);

const start = (
  time: number,
  service: string,
  machine: string,
): InitializationEvent => ({ time, machine, service, type: 'start' });

/** A chain of 10 services on their own machines, 25 boots, and two units restarting in turn every 10 ms. */
function restartLoops(): InitializationEvent[] {
  const events: InitializationEvent[] = [];
  for (let b = 0; b < 25; b++)
    for (let i = 0; i < 10; i++)
      events.push(
        start(T0 + b * DAY + i * 5 * MIN + (b % 3) * 1000, `s${i}`, `m${i}`),
      );
  for (let k = 0; k < 100_000; k++)
    events.push(
      start(T0 + 3 * 3600_000 + k * 10, k % 2 ? 'loop-a' : 'loop-b', 'm-loop'),
    );
  return events;
}

/** 3,200 services on 200 machines in one boot, starting within 50 minutes. */
function manyServicesOneBoot(): InitializationEvent[] {
  return Array.from({ length: 3200 }, (_, k) =>
    start(T0 + (k % 50) * MIN + (k % 7) * 1000, `s${k}`, `m${k % 200}`),
  );
}

const cases: Array<[string, () => InitializationEvent[]]> = [
  [
    'restart loops: 100,000 starts of 2 units beside 25 boots of a 10-service chain',
    restartLoops,
  ],
  ['3,200 services on 200 machines in one boot', manyServicesOneBoot],
];

for (const [name, make] of cases) {
  const events = make();
  let best = Infinity;
  let summary = '';
  for (let round = 0; round < ROUNDS; round++) {
    global.gc?.();
    const began = performance.now();
    const result = analyzeDependencies(events);
    best = Math.min(best, performance.now() - began);
    summary = `${result.services.length} services, ${result.dependencies.length} dependencies, ${result.waves.length} waves`;
  }
  console.log(
    `${name}: ${events.length} events -> ${summary}; best of ${ROUNDS}: ${(best / 1000).toFixed(2)} s`,
  );
}
