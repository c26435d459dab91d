import { applyInference, Inference } from './inference';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';

const graphOf = (machines: string[]): RecoveryGraph => ({
  rootRef: 'component:default/a',
  roots: ['component:default/a'],
  services: new Map([
    [
      'component:default/a',
      {
        ref: 'component:default/a',
        machines: [machines[0]],
        dependsOn: [],
        probes: [],
      },
    ],
  ]),
  machines: new Map(machines.map(ref => [ref, { ref }])),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
});

const inferenceOf = (machineWaits: Inference['machineWaits']): Inference => ({
  id: 'a1',
  createdAt: '2026-01-01T00:00:00Z',
  dependencies: [],
  machineWaits,
  warnings: [],
  names: new Map(),
  observed: new Set(),
  threshold: 0.7,
});

describe('applyInference', () => {
  it('gives the machine waits it follows in one order, whatever order the analysis kept them in', () => {
    const m = (n: number) => `resource:default/m${n}`;
    const waits = [
      { machine: m(2), waitsFor: m(1), followed: 2, chances: 3 },
      { machine: m(1), waitsFor: m(3), followed: 1, chances: 2 },
      { machine: m(1), waitsFor: m(2), followed: 3, chances: 3 },
    ];
    const applied = applyInference(
      graphOf([m(1), m(2), m(3)]),
      inferenceOf(waits),
    );
    const reversed = applyInference(
      graphOf([m(1), m(2), m(3)]),
      inferenceOf([...waits].reverse()),
    );
    expect(applied.machineWaits.map(w => `${w.machine} ${w.waitsFor}`)).toEqual(
      [`${m(1)} ${m(2)}`, `${m(1)} ${m(3)}`, `${m(2)} ${m(1)}`],
    );
    expect(reversed.machineWaits).toEqual(applied.machineWaits);
  });
});
