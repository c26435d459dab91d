import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { analyzeDependencies, createKernel, criticalPath } from '.';
import { prng } from '../../../../bench/generate';

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);
const start = (
  time: number,
  service: string,
  machine: string,
): InitializationEvent => ({ time, machine, service, type: 'start' });

/** 30 boots: a on m1; b on m2 and c on m3 each about 10 min after a; d on m4 about 10 min after b. */
function forkHistory(): InitializationEvent[] {
  const rnd = prng(5);
  const out: InitializationEvent[] = [];
  for (let k = 0; k < 30; k++) {
    const t = T0 + k * DAY + rnd() * MIN;
    const b = t + (9 + 2 * rnd()) * MIN;
    out.push(
      start(t, 'a', 'm1'),
      start(b, 'b', 'm2'),
      start(t + (9 + 2 * rnd()) * MIN, 'c', 'm3'),
      start(b + (9 + 2 * rnd()) * MIN, 'd', 'm4'),
    );
  }
  return out;
}

describe('kernel shape options', () => {
  it('gamma and lognormal are the densities with their mode at the peak, scaled to 1 there; each parameter narrows the shape as it grows or shrinks', () => {
    const peak = 600_000;
    for (const k of [1.5, 3, 10]) {
      const g = createKernel({ shape: 'gamma', gammaShape: k });
      const theta = peak / (k - 1);
      const density = (d: number) => Math.pow(d, k - 1) * Math.exp(-d / theta);
      for (const d of [90_000, 300_000, 900_000, 2_400_000])
        expect(g(d)).toBeCloseTo(density(d) / density(peak), 12);
    }
    for (const s of [0.3, 0.8, 2]) {
      const l = createKernel({ shape: 'lognormal', lognormalSigma: s });
      const mu = Math.log(peak) + s * s;
      const density = (d: number) =>
        Math.exp(-((Math.log(d) - mu) ** 2) / (2 * s * s)) / d;
      for (const d of [90_000, 300_000, 900_000, 2_400_000])
        expect(l(d)).toBeCloseTo(density(d) / density(peak), 12);
    }
    const at = (o: object) => createKernel(o)(300_000);
    expect(at({ shape: 'gamma', gammaShape: 10 })).toBeLessThan(
      at({ shape: 'gamma', gammaShape: 3 }),
    );
    expect(at({ shape: 'lognormal', lognormalSigma: 0.3 })).toBeLessThan(
      at({ shape: 'lognormal', lognormalSigma: 0.8 }),
    );
    expect(
      new Set([at({}), at({ shape: 'gamma' }), at({ shape: 'lognormal' })])
        .size,
    ).toBe(3);
  });

  it('extreme parameters give a kernel of 1 at the peak and 0 far from it, never NaN', () => {
    for (const o of [
      { shape: 'gamma', gammaShape: 1e308 },
      { shape: 'lognormal', lognormalSigma: 1e-300 },
    ] as const) {
      const k = createKernel(o);
      expect(k(600_000)).toBe(1);
      for (const d of [61_000, 300_000, 599_000, 601_000, 1_800_000, 3_600_000])
        expect(k(d)).toBe(0);
    }
  });

  it('refuses a shape parameter that is not a finite number in range, naming it and the value', () => {
    for (const gammaShape of [1, 0.5, Infinity, NaN]) {
      expect(() => createKernel({ shape: 'gamma', gammaShape })).toThrow(
        `kernel gammaShape must be a finite number over 1 (got ${gammaShape})`,
      );
    }
    for (const lognormalSigma of [0, -1, Infinity, NaN]) {
      expect(() =>
        createKernel({ shape: 'lognormal', lognormalSigma }),
      ).toThrow(
        `kernel lognormalSigma must be a finite number over 0 (got ${lognormalSigma})`,
      );
    }
    expect(() => createKernel({ shape: 'Gamma' as 'gamma' })).toThrow(
      "unknown kernel shape 'Gamma': piecewise, gamma or lognormal",
    );
  });
});

describe('analysis options', () => {
  const events = forkHistory();
  it.each([
    [{ threshold: 0 }, 'threshold must be in (0, 1] (got 0)'],
    [{ threshold: NaN }, 'threshold must be in (0, 1] (got NaN)'],
    [
      { at: NaN },
      'at must be a time in epoch milliseconds that a date holds (got NaN)',
    ],
    [
      { at: Infinity },
      'at must be a time in epoch milliseconds that a date holds (got Infinity)',
    ],
    [
      { halfLife: -DAY },
      'halfLife must be 0 or more milliseconds (0 or Infinity: no decay) (got -86400000)',
    ],
    [
      { halfLife: NaN },
      'halfLife must be 0 or more milliseconds (0 or Infinity: no decay) (got NaN)',
    ],
    [
      { failureWindow: NaN },
      'failureWindow must be a finite number of milliseconds, 0 or more (got NaN)',
    ],
    [{ failureFactor: 5 }, 'failureFactor must be in [0, 1] (got 5)'],
    [
      { minSamples: NaN },
      'minSamples must be a finite number, 0 or more (got NaN)',
    ],
    [{ method: 'ful' }, "method must be 'full' or 'plain' (got ful)"],
    [
      { bootDurations: { m1: -1 } },
      'the boot duration of m1 must be a finite number, 0 or more (got -1)',
    ],
    [
      { bootDurations: { m2: '30s' } },
      'the boot duration of m2 must be a finite number, 0 or more (got "30s")',
    ],
  ] as Array<[object, string]>)(
    'refuses %o, naming the option and the value',
    (options, message) => {
      expect(() => analyzeDependencies(events, options)).toThrow(message);
    },
  );
  it('takes the bounds: a half-life of 0 or Infinity (no decay), a failure factor of 0 or 1, the threshold 1', () => {
    const plain = JSON.stringify(analyzeDependencies(events, { halfLife: 0 }));
    expect(
      JSON.stringify(analyzeDependencies(events, { halfLife: Infinity })),
    ).toBe(plain);
    for (const options of [
      { failureFactor: 0 },
      { failureFactor: 1 },
      { threshold: 1 },
      { failureWindow: 0, minSamples: 0 },
    ]) {
      expect(() => analyzeDependencies(events, options)).not.toThrow();
    }
  });
});

describe('critical path', () => {
  it('of the analysed plan, for the boot durations given: the longest chain of machine waits across parallel branches, and wave after wave', () => {
    const r = analyzeDependencies(forkHistory(), {
      bootDurations: { m1: 10, m2: 5, m3: 30, m4: 1 },
    });
    expect(r.waves).toEqual([['m1'], ['m2', 'm3'], ['m4']]);
    expect(r.machineDependencies.map(d => [d.machine, d.waitsFor])).toEqual([
      ['m1', []],
      ['m2', ['m1']],
      ['m3', ['m1']],
      ['m4', ['m2']],
    ]);
    // m3 runs beside m2 → m4: the chain through it is the longest (40 against 16); booted wave
    // after wave, m4 waits for m3 too (10 + 30 + 1).
    expect(r.criticalPath).toEqual({
      path: ['m1', 'm3'],
      duration: 40,
      byWaves: { path: ['m1', 'm3', 'm4'], duration: 41 },
    });
    const other = analyzeDependencies(forkHistory(), {
      bootDurations: { m1: 10, m2: 20, m3: 25, m4: 8 },
    });
    expect(other.criticalPath).toEqual({
      path: ['m1', 'm2', 'm4'],
      duration: 38,
      byWaves: { path: ['m1', 'm3', 'm4'], duration: 43 },
    });
    expect(other.warnings.filter(w => /boot duration/.test(w))).toEqual([]);
    // Without durations the result is as before: no critical path.
    expect(analyzeDependencies(forkHistory())).not.toHaveProperty(
      'criticalPath',
    );
  });
  it('says which machines had no duration, and which durations name no machine of the analysis', () => {
    const r = analyzeDependencies(forkHistory(), {
      bootDurations: { m1: 10, m3: 30, 'web-01': 5 },
    });
    expect(r.criticalPath?.duration).toBe(40);
    expect(r.warnings).toContain(
      'boot durations given for 1 machine the analysis does not know: web-01',
    );
    expect(r.warnings).toContain(
      'no boot duration for 2 machines, counted as 0 in the critical path: m2, m4',
    );
  });
  it('refuses a negative or non-finite duration, naming the machine; a machine named like an Object member has no duration unless given', () => {
    const plan = { waves: [['constructor', 'm2']], edges: [] };
    expect(() => criticalPath(plan, { m2: -5 })).toThrow(
      'the boot duration of m2 must be a finite number, 0 or more (got -5)',
    );
    expect(() => criticalPath(plan, { m2: NaN })).toThrow('(got NaN)');
    expect(criticalPath(plan, { m2: 3 })).toEqual({
      path: ['m2'],
      duration: 3,
    });
  });
});
