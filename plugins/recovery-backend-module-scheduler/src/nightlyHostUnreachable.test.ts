/**
 * A nightly check whose hypervisor host is down: once a run of the night fails at the host
 * (`hostUnreachable`), it asks no more of it, and the entities it had not checked say the host
 * was unreachable, naming the run that found it, rather than a failure of their own each.
 */
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { metricsServiceMock } from '@backstage/backend-test-utils/alpha';
import type {
  ReadinessSummary,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryTasksApi } from '@backstage-recovery/plugin-recovery-node';
import { NightlyCheckStore } from '../../recovery-backend/src/database/NightlyCheckStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import { recordedMetrics } from '../../recovery-backend/src/testing/metrics';
import { nightlyCheck, nightlyOptOuts, nightlySummary } from './nightlyCheck';
import { NightlyCheckMetrics } from './nightlyMetrics';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/** Ten services on a machine each: one run each, in the order of their names. */
const REFS = Array.from(
  { length: 10 },
  (_, i) => `component:default/s${String(i + 1).padStart(2, '0')}`,
);
const machineOf = (ref: string) =>
  `${ref.replace('component:', 'resource:')}-01`;
const short = (ref: string) => ref.replace(/^\w+:default\//, '');

const readinessOf = (entityRef: string): ReadinessSummary => ({
  entityRef,
  status: 'ready',
  reasons: [],
  problems: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 900 },
  plan: {
    entityRef,
    waves: [[machineOf(entityRef)]],
    machines: [
      {
        machineRef: machineOf(entityRef),
        wave: 1,
        services: [entityRef],
        waitsFor: [],
        probes: [],
      },
    ],
  },
  captures: [
    {
      machineRef: machineOf(entityRef),
      latest: {
        id: `c-${short(entityRef)}`,
        createdAt: '2026-12-05T02:00:00.000Z',
      },
      ageSeconds: 600,
    },
  ],
});

const FOUND_AT = '2026-12-05T02:41:07.000Z';
const ECONNREFUSED =
  'hypervisor host recovery cannot be reached: connect ECONNREFUSED /run/recovery-docker/recovery.sock';

/**
 * The API as the nightly check sees it, its runs ending at once: each succeeds, but the third's
 * fails as `third` says, at the host or at its machine; every start and record is noted in `calls`.
 */
function fakeApi(third: 'at the host' | 'at its machine') {
  const calls: string[] = [];
  const runs = new Map<string, string>();
  const api: RecoveryTasksApi = {
    latestCapture: async () => undefined,
    capture: async () => [],
    analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
    listReadiness: async () => REFS.map(readinessOf),
    startRun: async entityRef => {
      calls.push(`start ${short(entityRef)}`);
      const id = `r${runs.size + 1}`;
      runs.set(id, entityRef);
      return {
        id,
        entityRef,
        status: 'pending',
        hypervisorHost: 'recovery',
      } as RecoveryRun;
    },
    getRun: async id => {
      const entityRef = runs.get(id)!;
      const base = {
        ...(readinessOf(entityRef).plan && {
          plan: readinessOf(entityRef).plan,
        }),
        id,
        entityRef,
        mode: 'test',
        trigger: 'schedule',
        hypervisorHost: 'recovery',
        createdAt: '2026-12-05T02:30:00.000Z',
        finishedAt: FOUND_AT,
        machines: [],
        steps: [],
      };
      if (id !== 'r3')
        return { ...base, status: 'succeeded', rtoSeconds: 42 } as RecoveryRun;
      return {
        ...base,
        status: 'failed',
        error:
          third === 'at the host'
            ? { message: ECONNREFUSED, hostUnreachable: true }
            : {
                machineRef: machineOf(entityRef),
                probe: 'http',
                message: `${machineOf(entityRef)} failed probe http: connect ECONNREFUSED 10.3.0.3:8080`,
              },
      } as RecoveryRun;
    },
    recordNightlyCheck: async night => {
      calls.push(`record ${night.partial ? 'so far' : 'whole'}`);
    },
  };
  return { api, calls };
}

describe('the nightly check with its hypervisor host down', () => {
  it.each(databases.eachSupportedId())(
    'asks no more of the host once a run failed there, and says so on every page it did not check (%s)',
    async databaseId => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const { api, calls } = fakeApi('at the host');
      api.recordNightlyCheck = async night => {
        calls.push(`record ${night.partial ? 'so far' : 'whole'}`);
        await store.record(night);
      };
      const logger = mockServices.logger.mock();
      const report = await nightlyCheck(api, nightlyOptOuts([]), logger, {
        pollIntervalMs: 1,
      });
      // Three runs: the third found the host down, and none was asked of it after.
      expect(report.started).toBe(3);
      expect(calls.filter(c => c.startsWith('start'))).toEqual([
        'start s01',
        'start s02',
        'start s03',
      ]);
      expect(report.succeeded).toEqual(REFS.slice(0, 2));
      expect(report.hostUnreachable).toEqual({
        host: 'recovery',
        at: FOUND_AT,
        runId: 'r3',
        entityRef: REFS[2],
        entities: REFS.slice(2),
      });
      const pages = await store.outcomes();
      expect(pages.size).toBe(10);
      // The one whose run failed at the host: its run, which blames no machine of its plan.
      expect(pages.get(REFS[2])).toMatchObject({
        outcome: 'started',
        runId: 'r3',
        runEntityRef: REFS[2],
        message: `run r3 failed at hypervisor host recovery, not at a machine of its plan, so it tells nothing of it: ${ECONNREFUSED}`,
      });
      // Those not checked: the host's reason, the run that found it linked; no failure of theirs.
      for (const ref of REFS.slice(3)) {
        const { checkedAt, ...page } = pages.get(ref)!;
        expect(page).toEqual({
          outcome: 'refused',
          reason: 'host-unreachable',
          runId: 'r3',
          runEntityRef: REFS[2],
          message: `not checked: hypervisor host recovery unreachable from 02:41:07 UTC; run r3 of ${REFS[2]} failed there, and no run was asked of it after (${ECONNREFUSED})`,
        });
      }
      // The night's summary says it once, the host's failure apart from any entity's.
      const summary = nightlySummary(report).split('\n');
      expect(summary.slice(0, 2)).toEqual([
        'Nightly readiness check: 10 entities checked by 3 runs: 2 recovered, 8 not (8 not checked: hypervisor host unreachable)',
        `  hypervisor host recovery unreachable from 02:41:07 UTC: 8 entities not checked (run r3 of ${REFS[2]} failed there; no run was asked of it after)`,
      ]);
      expect(summary.filter(l => l.includes('unreachable from'))).toHaveLength(
        1,
      );
      expect(summary.slice(2)).toEqual([
        '  component:default/s01: run r1 succeeded in 42 s',
        '  component:default/s02: run r2 succeeded in 42 s',
        '  component:default/s03: run r3 failed at hypervisor host recovery, unreachable (no machine of its plan tested)',
      ]);
      // One warning for the host, not one for each entity not checked.
      const warned: string[] = vi
        .mocked(logger.warn)
        .mock.calls.map(([m]: unknown[]) => String(m));
      expect(
        warned.filter(m => m.includes('hypervisor host recovery unreachable')),
      ).toEqual([
        'Nightly check 3/10: hypervisor host recovery unreachable, so the check asks no more of it tonight: 7 more entities not checked',
      ]);
      expect(warned.filter(m => m.includes('not checked: hypervisor'))).toEqual(
        [],
      );
      // The metrics count them apart, as the summary does.
      const metrics = metricsServiceMock.mock();
      const { calls: recorded } = recordedMetrics(metrics);
      new NightlyCheckMetrics(metrics).recordPass(report);
      expect(
        recorded('createGauge', 'recovery.nightly_check.entities.failed'),
      ).toEqual([
        [0, { reason: 'run-failed' }],
        [0, { reason: 'run-interrupted' }],
        [0, { reason: 'refused' }],
        [0, { reason: 'no-machine' }],
        [8, { reason: 'host-unreachable' }],
      ]);
    },
  );

  it.each(databases.eachSupportedId())(
    'goes on as before where a run fails at a machine, not at the host (%s)',
    async databaseId => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const { api, calls } = fakeApi('at its machine');
      api.recordNightlyCheck = async night => {
        calls.push(`record ${night.partial ? 'so far' : 'whole'}`);
        await store.record(night);
      };
      const report = await nightlyCheck(
        api,
        nightlyOptOuts([]),
        mockServices.logger.mock(),
        { pollIntervalMs: 1 },
      );
      expect(report.started).toBe(10);
      expect(calls.filter(c => c.startsWith('start'))).toEqual(
        REFS.map(r => `start ${short(r)}`),
      );
      expect(report.hostUnreachable).toBeUndefined();
      expect(report.failed.map(f => f.entityRef)).toEqual([REFS[2]]);
      const pages = await store.outcomes();
      expect(
        [...pages.values()].filter(p => p.reason === 'host-unreachable'),
      ).toEqual([]);
      expect(pages.get(REFS[2])).toMatchObject({
        outcome: 'started',
        runId: 'r3',
        message: `run r3 failed on ${machineOf(REFS[2])}: ${machineOf(REFS[2])} failed probe http: connect ECONNREFUSED 10.3.0.3:8080`,
      });
      for (const ref of [...REFS.slice(0, 2), ...REFS.slice(3)])
        expect(pages.get(ref)).toMatchObject({ outcome: 'started' });
      expect(nightlySummary(report).split('\n')[0]).toBe(
        'Nightly readiness check: 10 entities checked by 10 runs: 9 recovered, 1 not (1 in a run that failed)',
      );
      expect(nightlySummary(report)).not.toContain('unreachable');
    },
  );
});
