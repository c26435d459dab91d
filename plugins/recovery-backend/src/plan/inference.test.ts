import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import { applyInference, Inference, learnedWaitsOf } from './inference';
import {
  describeLearned,
  lowConfidenceWarning,
  type RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';

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

describe('learned evidence in the plan', () => {
  const web = 'component:default/web';
  const db = 'component:default/db';

  it('keeps with each learned edge it follows, and each disagreement, the score, samples and confidence of the analysis', () => {
    const graph: RecoveryGraph = {
      ...graphOf(['resource:default/m1', 'resource:default/m2']),
      rootRef: web,
      roots: [web],
      services: new Map([
        [
          web,
          {
            ref: web,
            machines: ['resource:default/m2'],
            dependsOn: [],
            probes: [],
          },
        ],
        [
          db,
          {
            ref: db,
            machines: ['resource:default/m1'],
            dependsOn: [],
            probes: [],
          },
        ],
      ]),
    };
    const applied = applyInference(graph, {
      ...inferenceOf([]),
      dependencies: [
        // Two log names of web: the merge keeps the stronger score, and so its evidence.
        {
          service: web,
          dependsOn: db,
          score: 0.75,
          samples: 9,
          confidence: 'high',
        },
        {
          service: web,
          dependsOn: db,
          score: 0.82,
          samples: 1,
          confidence: 'low',
        },
      ],
    });
    const evidence = {
      service: web,
      dependsOn: db,
      score: 0.82,
      samples: 1,
      confidence: 'low',
    };
    expect(applied.inferred).toEqual([evidence]);
    // Each as the analysis found it (the merge lists both).
    expect(applied.disagreements.inferredNotDeclared).toEqual([
      { ...evidence, score: 0.75, samples: 9, confidence: 'high' },
      evidence,
    ]);
    expect(describeLearned(applied.inferred[0])).toBe(
      'component:default/web → component:default/db (score 0.82, 1 boot, low confidence)',
    );
  });

  it('says which wave each learned wait holds back, leaving out those between services of one machine', () => {
    const m = (n: number) => `resource:default/m${n}`;
    const plan: BootPlan = {
      entityRef: web,
      waves: [[m(1)], [m(2)], [m(3)]],
      machines: [
        { machineRef: m(1), wave: 0, services: [db], waitsFor: [], probes: [] },
        {
          machineRef: m(2),
          wave: 1,
          services: ['component:default/api', 'component:default/cache'],
          waitsFor: [m(1)],
          probes: [],
        },
        {
          machineRef: m(3),
          wave: 2,
          services: [web],
          waitsFor: [m(2)],
          probes: [],
        },
      ],
      inferred: [
        {
          service: 'component:default/api',
          dependsOn: db,
          score: 0.9,
          samples: 3,
          confidence: 'low',
        },
        // Both on m2: no machine waits for it.
        {
          service: 'component:default/api',
          dependsOn: 'component:default/cache',
          score: 0.8,
        },
        {
          service: web,
          dependsOn: 'component:default/api',
          score: 0.85,
          samples: 20,
          confidence: 'high',
        },
      ],
      inferredMachineWaits: [
        { machine: m(3), waitsFor: m(2), followed: 2, chances: 2 },
      ],
    };
    expect(learnedWaitsOf(plan)).toEqual([
      { wave: 1, dependencies: [plan.inferred![0]], machineWaits: [] },
      {
        wave: 2,
        dependencies: [plan.inferred![2]],
        machineWaits: plan.inferredMachineWaits,
      },
    ]);
    // A plan kept before the evidence was: the score alone.
    expect(describeLearned(plan.inferred![1])).toBe(
      'component:default/api → component:default/cache (score 0.80)',
    );
  });

  it("names a learned dependency's score to two decimals, as the card does, not as the analysis keeps it", () => {
    expect(
      describeLearned({ service: web, dependsOn: db, score: 0.8237 }),
    ).toBe('component:default/web → component:default/db (score 0.82)');
  });

  it('warns of learned dependencies of low confidence in one wording, by how many there are', () => {
    const d = (confidence: 'high' | 'low', service = web) => ({
      service,
      dependsOn: db,
      score: 0.9,
      samples: confidence === 'low' ? 2 : 12,
      confidence,
    });
    expect(
      lowConfidenceWarning([
        d('high'),
        { ...d('high'), confidence: undefined },
      ]),
    ).toBeUndefined();
    expect(lowConfidenceWarning([d('high'), d('low')])).toBe(
      'a learned dependency of low confidence (seen in fewer boots than the analysis trusts) may be wrong; declare it in spec.dependsOn if it is real, or let more boots confirm or drop it',
    );
    expect(
      lowConfidenceWarning([d('low'), d('low', 'component:default/api')]),
    ).toBe(
      '2 learned dependencies of low confidence (seen in fewer boots than the analysis trusts) may be wrong; declare those that are real in spec.dependsOn, or let more boots confirm or drop them',
    );
  });
});
