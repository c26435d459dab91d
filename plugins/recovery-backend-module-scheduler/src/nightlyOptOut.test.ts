/**
 * Who the nightly check leaves out: the nightly-check annotation as people write it, read by the
 * module from the catalog, and what the check says of a value it cannot read.
 */
import { mockServices } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import type { ReadinessSummary } from '@backstage-recovery/plugin-recovery-common';
import {
  componentEntity,
  machineEntity,
} from '../../recovery-backend/src/testing/entities';
import type { RecoveryTasksApi } from '@backstage-recovery/plugin-recovery-node';
import { nightlyCheck, nightlyOptOuts, nightlySummary } from './nightlyCheck';
import { startSchedulerBackend } from './testing/schedulerBackend';

const NIGHTLY = 'recovery.backstage-recovery.io/nightly-check';

/** A service `name` on its machine `<name>-01`, its nightly-check annotation set to `value`. */
const service = (name: string, value?: string): Entity => {
  const entity = componentEntity(name, [`resource:default/${name}-01`]);
  return value === undefined
    ? entity
    : {
        ...entity,
        metadata: { ...entity.metadata, annotations: { [NIGHTLY]: value } },
      };
};
const machine = (name: string): Entity => ({
  ...machineEntity(`${name}-01`),
  relations: [{ type: 'dependencyOf', targetRef: `component:default/${name}` }],
});
const unread = (ref: string, value: string) =>
  `${ref}: ${NIGHTLY} "${value}" is neither 'false' nor 'true', so it is checked; set it to 'false' to leave it out of the nightly check`;

describe('nightly check opt-outs', () => {
  it("leaves out 'false' in any case, keeps 'true', and checks any other value, naming it", () => {
    const values = [
      'false',
      'False',
      ' FALSE ',
      'true',
      'True',
      'no',
      'off',
      '0',
      '',
    ];
    const { optedOut, unread: named } = nightlyOptOuts([
      ...values.map((v, i) => service(`s${i}`, v)),
      service('plain'),
    ]);
    expect([...optedOut]).toEqual([
      'component:default/s0',
      'component:default/s1',
      'component:default/s2',
    ]);
    expect(named).toEqual([
      unread('component:default/s5', 'no'),
      unread('component:default/s6', 'off'),
      unread('component:default/s7', '0'),
      unread('component:default/s8', ''),
    ]);
  });

  it("names the values it could not read in the check's report and log, and checks their entities", async () => {
    const item = (entityRef: string): ReadinessSummary => ({
      entityRef,
      status: 'unknown',
      reasons: [],
      problems: [],
      objectives: { rpoSeconds: 86_400, rtoSeconds: 900 },
      plan: {
        entityRef,
        waves: [[`${entityRef}-01`]],
        machines: [
          {
            machineRef: `${entityRef}-01`,
            wave: 0,
            services: [entityRef],
            waitsFor: [],
            probes: [],
          },
        ],
      },
      captures: [
        {
          machineRef: `${entityRef}-01`,
          latest: { id: 'c', createdAt: '2026-11-21T02:00:00.000Z' },
          ageSeconds: 60,
        },
      ],
    });
    const started: string[] = [];
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [
        item('component:default/web'),
        item('component:default/legacy'),
      ],
      startRun: async entityRef => {
        started.push(entityRef);
        return {
          id: 'r1',
          entityRef,
          status: 'succeeded',
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'recovery',
          createdAt: '',
          rtoSeconds: 3,
          plan: item(entityRef).plan!,
          machines: [],
          steps: [],
        };
      },
      getRun: async () => {
        throw new Error('not polled: the run ended at once');
      },
    };
    const logger = mockServices.logger.mock();
    const optOuts = nightlyOptOuts([
      service('web', 'no'),
      service('legacy', 'False'),
    ]);
    const report = await nightlyCheck(api, optOuts, logger, {
      pollIntervalMs: 1,
    });
    expect(started).toEqual(['component:default/web']);
    expect(report.unread).toEqual([unread('component:default/web', 'no')]);
    expect(nightlySummary(report)).toBe(
      [
        'Nightly readiness check: 1 entity checked by 1 run: 1 recovered',
        '  component:default/web: run r1 succeeded in 3 s',
        `  ${unread('component:default/web', 'no')}`,
      ].join('\n'),
    );
    expect(logger.warn).toHaveBeenCalledWith(
      `Nightly check: ${unread('component:default/web', 'no')}`,
    );
  });

  it('the scheduled task reads the annotation from the catalog: a value it cannot read is checked and named', async () => {
    const { task, logger } = await startSchedulerBackend({
      entities: [
        ...['web', 'legacy', 'batch', 'api'].map(machine),
        service('web', 'no'),
        service('legacy', 'FALSE'),
        service('batch', ' false '),
        service('api', 'true'),
      ],
    });
    const nightly = task('recovery-nightly-check');
    // Nothing was captured: every run the check starts is refused, which its summary says at warn,
    // naming whom; the check itself went through, so its task does not fail.
    await nightly.fn(new AbortController().signal);
    const lines = String(vi.mocked(logger.warn).mock.calls.at(-1)?.[0]).split(
      '\n',
    );
    // legacy and batch opted out; web and api checked, and only web's value named. Neither run:
    // refused, not failed.
    expect(lines[0]).toBe(
      'Nightly readiness check: 2 entities checked by no run: 0 recovered, 2 not (2 refused: no run)',
    );
    expect(lines.filter(l => l.includes(NIGHTLY))).toEqual([
      `  ${unread('component:default/web', 'no')}`,
    ]);
    expect(
      lines
        .filter(l => l.includes('No hypervisor host is registered'))
        .map(l => l.split(': ')[0].trim()),
    ).toEqual(['component:default/api', 'component:default/web']);
  });
});
