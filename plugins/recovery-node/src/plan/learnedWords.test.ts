import {
  describeLearned,
  describeLearnedMachineWait,
  lowConfidenceWarning,
} from './learnedWords';

const WEB = 'component:default/web';
const DB = 'component:default/db';

describe("what a plan learned, in the words a run's timeline, readiness and the CLI share", () => {
  it('names a learned dependency with its score, the boots behind it and a low confidence', () => {
    expect(
      describeLearned({
        service: WEB,
        dependsOn: DB,
        score: 0.8237,
        samples: 1,
        confidence: 'low',
      }),
    ).toBe(`${WEB} → ${DB} (score 0.82, 1 boot, low confidence)`);
    // A plan kept before samples were: its score alone.
    expect(describeLearned({ service: WEB, dependsOn: DB, score: 0.9 })).toBe(
      `${WEB} → ${DB} (score 0.90)`,
    );
  });

  it('names a machine wait learned from reboots with how often the machine followed', () => {
    expect(
      describeLearnedMachineWait({
        machine: 'resource:default/web-01',
        waitsFor: 'resource:default/db-01',
        followed: 3,
        chances: 4,
      }),
    ).toBe(
      'resource:default/web-01 → resource:default/db-01 (its services restarted after 3 of 4 reboots)',
    );
  });

  it('warns only of dependencies of low confidence', () => {
    const d = (confidence: 'high' | 'low') => ({
      service: WEB,
      dependsOn: DB,
      score: 0.8,
      confidence,
    });
    expect(lowConfidenceWarning([d('high')])).toBeUndefined();
    expect(lowConfidenceWarning([d('high'), d('low'), d('low')])).toMatch(
      /^2 learned dependencies of low confidence /,
    );
  });
});
