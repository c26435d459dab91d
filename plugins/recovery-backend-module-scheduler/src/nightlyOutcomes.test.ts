/**
 * What the nightly check records of a night per entity, for the entity's page: its run started,
 * covered by another's, left out, or refused and why; in one call, once its runs were started.
 */
import { mockCredentials, mockServices } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import type { NightlyCheckEntityOutcome, ReadinessSummary, RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import request from 'supertest';
import { componentEntity, machineEntity } from '../../recovery-backend/src/testing/entities';
import { HOST_BUSY_ERROR_NAME, KEPT_FAILOVER_ERROR_NAME, MACHINES_NOT_CAPTURED_ERROR_NAME, RecoveryApiError, type ScheduledRecoveryApi } from './recoveryClient';
import { finishTask, nightlyCheck, nightlyOptOuts } from './tasks';
import { startSchedulerBackend } from './testing/schedulerBackend';

const SHOP = 'system:default/shop';
const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e'].map(n => `component:default/${n}`);
const machine = (entityRef: string) => entityRef.replace('component:', 'resource:').replace('system:default/shop', 'resource:default/shop') + '-01';
const [A01, B01] = [machine(A), machine(B)];
const NIGHTLY = 'recovery.backstage-recovery.io/nightly-check';

/** Readiness as `GET /readiness?include=plan` lists it: `machines` in one wave; none for no plan. */
const readinessOf = (entityRef: string, machines?: string[], options: { uncaptured?: string[]; services?: Record<string, string[]> } = {}): ReadinessSummary => ({
  entityRef,
  status: machines ? 'unknown' : 'not-recoverable',
  reasons: machines ? [] : ['Dependency cycle: component:default/loop -> component:default/hoop -> component:default/loop'],
  problems: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 900 },
  plan: machines && {
    entityRef,
    waves: [machines],
    machines: machines.map(machineRef => ({ machineRef, wave: 1, services: options.services?.[machineRef] ?? [entityRef], waitsFor: [], probes: [] })),
  },
  captures: (machines ?? []).map(machineRef => ({
    machineRef,
    ...(!options.uncaptured?.includes(machineRef) && { latest: { id: `c-${machineRef}`, createdAt: '2026-12-05T02:00:00.000Z' }, ageSeconds: 600 }),
  })),
});

const FAILOVER = 'failover f1 of component:default/bank (succeeded at 2026-12-04T10:00:00.000Z)';
const REMEDY = 'release failover f1 (recovery release f1, or POST /runs/f1/release), or else remove what it kept there by hand';
const besideFailover = () =>
  new RecoveryApiError(`POST /runs failed with 409: kept failover`, 409, KEPT_FAILOVER_ERROR_NAME, {
    name: KEPT_FAILOVER_ERROR_NAME,
    failover: FAILOVER,
    host: 'recovery',
    keeps: '2 containers and 1 network',
    holding: "production's subnet 10.3.0.0/24",
    remedy: REMEDY,
    runId: 'f1',
    entityRef: 'component:default/bank',
  });
const NO_CAPTURE = `No capture of ${machine(D)} yet: capture first (POST /captures)`;

describe('nightly check outcomes', () => {
  const items = [
    // The shop's run covers a and b.
    readinessOf(SHOP, [A01, B01], { services: { [A01]: [A], [B01]: [B] } }),
    readinessOf(A, [A01]),
    readinessOf(B, [B01]),
    // Beside a failover kept on the host.
    readinessOf(C, [machine(C)]),
    // Never captured.
    readinessOf(D, [machine(D)], { uncaptured: [machine(D)] }),
    // The host busy with another run until the budget runs out.
    readinessOf(E, [machine(E)]),
    readinessOf('component:default/legacy', [machine('component:default/legacy')]),
    readinessOf('component:default/loop'),
  ];
  const optOuts = nightlyOptOuts([{ ...componentEntity('legacy', []), metadata: { name: 'legacy', namespace: 'default', annotations: { [NIGHTLY]: 'false' } } }]);

  const apiOf = (record: ScheduledRecoveryApi['recordNightlyCheck']) => {
    const calls: string[] = [];
    const api: ScheduledRecoveryApi = {
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      listReadiness: async () => items,
      startRun: async entityRef => {
        calls.push(`start ${entityRef}`);
        if (entityRef === C) throw besideFailover();
        if (entityRef === D) throw new RecoveryApiError(`POST /runs failed with 409: ${NO_CAPTURE}`, 409, MACHINES_NOT_CAPTURED_ERROR_NAME, { name: MACHINES_NOT_CAPTURED_ERROR_NAME, message: NO_CAPTURE, neverCaptured: [machine(D)] });
        if (entityRef === E) {
          throw new RecoveryApiError('POST /runs failed with 409: busy', 409, HOST_BUSY_ERROR_NAME, {
            name: HOST_BUSY_ERROR_NAME,
            runId: 'r-bank',
            entityRef: 'system:default/bank',
          });
        }
        return { id: 'r1', entityRef, status: 'pending' } as RecoveryRun;
      },
      getRun: async id => ({ ...(items[0].plan && { plan: items[0].plan }), id, entityRef: SHOP, status: 'succeeded', rtoSeconds: 42, machines: [], steps: [] }) as unknown as RecoveryRun,
      recordNightlyCheck: async (night, options) => {
        calls.push('record');
        await record(night, options);
      },
    };
    return { api, calls };
  };

  it('records what it did about each entity, in one call once its runs were started', async () => {
    const recorded: Array<{ checkedAt: string; outcomes: NightlyCheckEntityOutcome[] }> = [];
    const { api, calls } = apiOf(async night => void recorded.push(night));
    const before = new Date().toISOString();
    const report = await nightlyCheck(api, optOuts, mockServices.logger.mock(), { pollIntervalMs: 5, deadline: Date.now() + 300 });
    expect(calls).toEqual([`start ${SHOP}`, `start ${C}`, `start ${D}`, ...calls.slice(3, -1).map(() => `start ${E}`), 'record']);
    expect(recorded).toHaveLength(1);
    const [{ checkedAt, outcomes }] = recorded;
    expect(checkedAt >= before && checkedAt <= new Date().toISOString()).toBe(true);
    const shopRun = { runId: 'r1', runEntityRef: SHOP };
    expect(outcomes).toEqual([
      { entityRef: 'component:default/legacy', outcome: 'excluded', message: `left out: its ${NIGHTLY} annotation is 'false'` },
      {
        entityRef: 'component:default/loop',
        outcome: 'refused',
        reason: 'no-plan',
        message: 'no boot plan, so no test recovery: Dependency cycle: component:default/loop -> component:default/hoop -> component:default/loop',
      },
      { entityRef: SHOP, outcome: 'started', ...shopRun, message: 'run r1 succeeded in 42 s' },
      { entityRef: A, outcome: 'covered', ...shopRun, message: `run r1 of ${SHOP} succeeded in 42 s` },
      { entityRef: B, outcome: 'covered', ...shopRun, message: `run r1 of ${SHOP} succeeded in 42 s` },
      {
        entityRef: C,
        outcome: 'refused',
        reason: 'kept-failover',
        runId: 'f1',
        runEntityRef: 'component:default/bank',
        message: `refused: ${FAILOVER} keeps 2 containers and 1 network on recovery, serving production with production's subnet 10.3.0.0/24; ${REMEDY}`,
      },
      { entityRef: D, outcome: 'refused', reason: 'uncaptured', message: `POST /runs failed with 409: ${NO_CAPTURE}` },
      {
        entityRef: E,
        outcome: 'refused',
        reason: 'host-busy',
        runId: 'r-bank',
        runEntityRef: 'system:default/bank',
        message: expect.stringMatching(/^not started: the hypervisor host was still busy after \d+ attempts when the task's time budget ran out/),
      },
    ]);
    expect(report.outcomes).toEqual(outcomes);
  });

  it('logs a failure to record them, and fails nothing for it', async () => {
    const { api, calls } = apiOf(async () => {
      throw new RecoveryApiError('POST /nightly-check failed with 503: database unreachable', 503);
    });
    const logger = mockServices.logger.mock();
    // Only what the night itself found fails the task: here, none of it.
    const quiet = nightlyOptOuts([]);
    api.listReadiness = async () => items.slice(0, 3);
    const report = await nightlyCheck(api, quiet, logger, { pollIntervalMs: 1 });
    expect(calls).toEqual([`start ${SHOP}`, 'record']);
    expect(report).toMatchObject({ succeeded: [SHOP, A, B], failed: [] });
    expect(logger.warn).toHaveBeenCalledWith(
      'Nightly check: could not record its outcomes for 3 entities, so their pages still show the last night recorded: POST /nightly-check failed with 503: database unreachable',
    );
    expect(() => finishTask('Nightly readiness check', report.failed, logger)).not.toThrow();
  });

  it("the scheduled task records them in the backend, and each entity's readiness says what the night did about it", async () => {
    const web = componentEntity('web', ['resource:default/web-01']);
    const legacy = componentEntity('legacy', ['resource:default/legacy-01']);
    const entities: Entity[] = [
      web,
      { ...legacy, metadata: { ...legacy.metadata, annotations: { [NIGHTLY]: 'false' } } },
      ...['web', 'legacy'].map(name => ({ ...machineEntity(`${name}-01`), relations: [{ type: 'dependencyOf', targetRef: `component:default/${name}` }] })),
    ];
    const { server, task, logger } = await startSchedulerBackend({ entities });
    // No hypervisor host is registered: web's run is refused, which fails the task.
    await expect(Promise.resolve(task('recovery-nightly-check').fn(new AbortController().signal))).rejects.toThrow(/No hypervisor host is registered/);
    expect(logger.warn).not.toHaveBeenCalledWith(expect.stringContaining('could not record'));
    const readiness = async (name: string) =>
      (await request(server).get(`/api/recovery/readiness/component/default/${name}`).set('authorization', mockCredentials.user.header())).body;
    expect((await readiness('web')).nightlyCheck).toEqual({
      checkedAt: expect.any(String),
      outcome: 'refused',
      reason: 'error',
      message: expect.stringContaining('POST /runs failed with 503: No hypervisor host is registered'),
    });
    expect((await readiness('legacy')).nightlyCheck).toMatchObject({ outcome: 'excluded' });
    const list = await request(server).get('/api/recovery/readiness').set('authorization', mockCredentials.user.header());
    expect(Object.fromEntries(list.body.items.map((r: ReadinessSummary) => [r.entityRef, r.nightlyCheck?.outcome]))).toEqual({
      'component:default/web': 'refused',
      'component:default/legacy': 'excluded',
    });
  });
});
