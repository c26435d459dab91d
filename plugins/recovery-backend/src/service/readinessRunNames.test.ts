import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { assessReadiness, hiddenRun } from './readiness';

// The notifier words a reason tied to another entity's run as the plugin sees it where the owners
// told may be told that run: it reads which run from `reasonRuns`, never from the reason's words.

const WEB = 'component:default/web';
const machine = (machineRef: string) => ({
  machineRef,
  wave: 0,
  services: [WEB],
  waitsFor: [],
  probes: [],
});
const web01 = machine('resource:default/web-01');
const plan = {
  entityRef: WEB,
  waves: [['resource:default/web-01', 'resource:default/cache-01']],
  machines: [web01, machine('resource:default/cache-01')],
};
const capture = (machineRef: string) => ({
  machineRef,
  ageSeconds: 60,
  latest: {
    id: 'c',
    machineRef,
    engine: 'primary',
    container: 'x',
    imageId: 'i',
    sizeBytes: 1,
    checksum: 'c',
    createdAt: '',
    durationMs: 1,
    adaptations: [],
  },
});
/** A run of `entityRef` that booted web-01 alone and failed there, its message naming a run of its own. */
const failedRun = (id: string, entityRef: string) =>
  ({
    id,
    entityRef,
    mode: 'test',
    status: 'failed',
    plan: { entityRef, waves: [], machines: [web01] },
    machines: [],
    error: {
      machineRef: 'resource:default/web-01',
      message:
        'web-01 exited with code 3 (it logged: run job-7 of component:default/batch)',
    },
  }) as unknown as RecoveryRun;

describe('runs reasons are about', () => {
  it("gives, with every reason tied to another entity's run, that run as data where the caller sees it: the last that recovered part of a grown plan, and a failure since", () => {
    const shopRun = failedRun('shop-run', 'system:default/shop');
    const apiRun = failedRun('api-run', 'component:default/api');
    const input = {
      entityRef: WEB,
      ownMachines: ['resource:default/web-01'],
      problems: [],
      objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
      plan,
      captures: [
        capture('resource:default/web-01'),
        capture('resource:default/cache-01'),
      ],
      maxTestAgeSeconds: 7 * 86_400,
    };
    const seen = assessReadiness({
      ...input,
      outgrownRun: { run: shopRun, shown: shopRun, ageSeconds: 600 },
      failedRun: { run: apiRun, shown: apiRun },
    });
    const hidden = assessReadiness({
      ...input,
      outgrownRun: { run: shopRun, shown: hiddenRun(shopRun), ageSeconds: 600 },
      failedRun: { run: apiRun, shown: hiddenRun(apiRun) },
    });
    expect(seen.status).toBe('not-recoverable');
    expect(seen.reasons[0]).toBe(
      'Last test recovery, run shop-run of system:default/shop, failed: web-01 exited with code 3 (it logged: run job-7 of component:default/batch)',
    );
    // Each reason the caller may not see the run of reads differently; seen, it is tied to that
    // run, not to one its message names (job-7); hidden, to a run that is not shown.
    expect(hidden.reasons).toHaveLength(seen.reasons.length);
    const shop = { id: 'shop-run', entityRef: 'system:default/shop' };
    const api = { id: 'api-run', entityRef: 'component:default/api' };
    expect(seen.reasonRuns).toEqual([
      { reason: 0, run: shop },
      { reason: 1, run: api },
      { reason: 2, run: shop },
    ]);
    expect(seen.reasons.filter((r, i) => r !== hidden.reasons[i])).toHaveLength(
      3,
    );
    expect(hidden.reasonRuns).toEqual([
      { reason: 0 },
      { reason: 1 },
      { reason: 2 },
    ]);
    expect(JSON.stringify(hidden)).not.toMatch(
      /shop-run|api-run|system:default\/shop|component:default\/api/,
    );
  });

  it("ties each reason about the last run to it, by its place among the others, its own run's too, and no reason about none", () => {
    const run = {
      ...failedRun('web-run', WEB),
      status: 'succeeded',
      error: undefined,
      rtoSeconds: 900,
      finishedAt: '2026-12-01T00:00:00.000Z',
    } as RecoveryRun;
    const input = {
      entityRef: WEB,
      ownMachines: ['resource:default/web-01'],
      problems: [],
      objectives: { rpoSeconds: 30, rtoSeconds: 300 },
      plan,
      captures: [
        capture('resource:default/web-01'),
        capture('resource:default/cache-01'),
      ],
      maxTestAgeSeconds: 7 * 86_400,
      lastRun: run,
      lastRunAgeSeconds: 8 * 86_400,
    };
    const readiness = assessReadiness(input);
    // Two captures over the RPO first, then the RTO and the age of the run.
    expect(readiness.reasons).toHaveLength(4);
    expect(
      readiness.reasons.slice(0, 2).every(r => r.startsWith('Last capture of')),
    ).toBe(true);
    const web = { id: 'web-run', entityRef: WEB };
    expect(readiness.reasonRuns).toEqual([
      { reason: 2, run: web },
      { reason: 3, run: web },
    ]);
    // Failed, its failure alone is about it; a readiness about no run has none.
    const failed = assessReadiness({
      ...input,
      lastRun: failedRun('web-run', WEB),
    });
    expect(failed.reasonRuns).toEqual([
      {
        reason: failed.reasons.findIndex(r =>
          r.startsWith('Last test recovery failed: '),
        ),
        run: web,
      },
    ]);
    expect(
      assessReadiness({ ...input, lastRun: undefined }),
    ).not.toHaveProperty('reasonRuns');
  });
});
