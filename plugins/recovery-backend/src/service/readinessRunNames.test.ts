import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { assessReadiness, hiddenRun, runNamed, runNamedIn } from './readiness';

// The notifier words a reason tied to another entity's run as the plugin sees it where the owners
// told may be told that run: it reads which run from the reason (runNamedIn).

const WEB = 'component:default/web';
const machine = (machineRef: string) => ({ machineRef, wave: 0, services: [WEB], waitsFor: [], probes: [] });
const web01 = machine('resource:default/web-01');
const plan = { entityRef: WEB, waves: [['resource:default/web-01', 'resource:default/cache-01']], machines: [web01, machine('resource:default/cache-01')] };
const capture = (machineRef: string) => ({
  machineRef,
  ageSeconds: 60,
  latest: { id: 'c', machineRef, engine: 'primary', container: 'x', imageId: 'i', sizeBytes: 1, checksum: 'c', createdAt: '', durationMs: 1, adaptations: [] },
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
    error: { machineRef: 'resource:default/web-01', message: 'web-01 exited with code 3 (it logged: run job-7 of component:default/batch)' },
  }) as unknown as RecoveryRun;

describe('runs named in reasons', () => {
  it('reads back the run a reason names first, not one its message names after', () => {
    const run = { id: '0b8c5f2e-8d7e-4f0e-9d7a-3f2b1c0d9e8f', entityRef: 'system:team-b/shop.floor_1' };
    expect(runNamedIn(`A test recovery failed on resource:default/web-01 (${runNamed(run)}): run job-7 of component:default/batch failed`)).toEqual(run);
    expect(runNamedIn(`Its boot plan changed since its last test recovery, ${runNamed(run)} (60 min ago), which did not boot x`)).toEqual(run);
    expect(runNamedIn(`Last test recovery, ${runNamed(run)}, failed: boom`)).toEqual(run);
    expect(runNamedIn('A test recovery after the last that recovered its plan failed on resource:default/web-01 (its run r-1): boom')).toBeUndefined();
    expect(runNamedIn('Never test-recovered')).toBeUndefined();
  });

  it("names another entity's run first in every reason tied to it where the caller sees it: the last that recovered part of a grown plan, and a failure since", () => {
    const shopRun = failedRun('shop-run', 'system:default/shop');
    const apiRun = failedRun('api-run', 'component:default/api');
    const input = {
      entityRef: WEB,
      ownMachines: ['resource:default/web-01'],
      problems: [],
      objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
      plan,
      captures: [capture('resource:default/web-01'), capture('resource:default/cache-01')],
      maxTestAgeSeconds: 7 * 86_400,
    };
    const seen = assessReadiness({ ...input, outgrownRun: { run: shopRun, shown: shopRun, ageSeconds: 600 }, failedRun: { run: apiRun, shown: apiRun } });
    const hidden = assessReadiness({
      ...input,
      outgrownRun: { run: shopRun, shown: hiddenRun(shopRun), ageSeconds: 600 },
      failedRun: { run: apiRun, shown: hiddenRun(apiRun) },
    });
    expect(seen.status).toBe('not-recoverable');
    expect(seen.reasons[0]).toBe('Last test recovery, run shop-run of system:default/shop, failed: web-01 exited with code 3 (it logged: run job-7 of component:default/batch)');
    // Each reason the caller may not see the run of reads differently, and names, seen, that run.
    expect(hidden.reasons).toHaveLength(seen.reasons.length);
    const tied = seen.reasons.filter((r, i) => r !== hidden.reasons[i]).map(r => runNamedIn(r)?.id);
    expect(tied).toEqual(['shop-run', 'api-run', 'shop-run']);
    for (const reason of hidden.reasons) expect(reason).not.toMatch(/shop-run|api-run|system:default\/shop|component:default\/api/);
  });
});
