import { mockServices } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import type { ScheduledRecoveryApi } from './recoveryClient';
import { captureMachines, runNightlyCheck } from './tasks';

const run = (id: string, entityRef: string, status: RecoveryRun['status'], extra: Partial<RecoveryRun> = {}): RecoveryRun => ({
  id,
  entityRef,
  status,
  mode: 'test',
  trigger: 'schedule',
  hypervisorHost: 'recovery',
  createdAt: '2026-11-21T02:00:00.000Z',
  plan: { entityRef, waves: [], machines: [] },
  machines: [],
  steps: [],
  ...extra,
});

describe('scheduled tasks', () => {
  it('runs the nightly check entity by entity, waiting for each run to end', async () => {
    const calls: string[] = [];
    const polls = new Map<string, RecoveryRun[]>([
      ['r1', [run('r1', 'component:default/web', 'running'), run('r1', 'component:default/web', 'succeeded', { rtoSeconds: 12 })]],
      ['r2', [run('r2', 'system:default/shop', 'failed', { error: { message: 'web-01 failed: probe tcp:80' } })]],
    ]);
    const api: ScheduledRecoveryApi = {
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], failed: [] }),
      startRun: async entityRef => {
        calls.push(`start ${entityRef}`);
        if (entityRef === 'component:default/broken') throw new Error('POST /runs failed with 400: no machines');
        return run(entityRef.endsWith('web') ? 'r1' : 'r2', entityRef, 'pending');
      },
      getRun: async id => {
        calls.push(`get ${id}`);
        return polls.get(id)!.shift()!;
      },
    };
    const report = await runNightlyCheck(
      api,
      ['component:default/web', 'system:default/shop', 'component:default/broken'],
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    expect(calls).toEqual([
      'start component:default/web',
      'get r1',
      'get r1',
      'start system:default/shop',
      'get r2',
      'start component:default/broken',
    ]);
    expect(report).toEqual({
      succeeded: ['component:default/web'],
      failed: [
        { entityRef: 'system:default/shop', message: 'web-01 failed: probe tcp:80' },
        { entityRef: 'component:default/broken', message: 'POST /runs failed with 400: no machines' },
      ],
    });
  });

  it('captures every machine and reports the ones that failed', async () => {
    const api: ScheduledRecoveryApi = {
      capture: async ref => {
        if (ref.endsWith('bad')) throw new Error('No capture source for primary engine x');
        return [];
      },
      analyzeSystems: async () => ({ analysed: [], failed: [] }),
      startRun: async () => { throw new Error('unused'); },
      getRun: async () => { throw new Error('unused'); },
    };
    const report = await captureMachines(api, ['resource:default/a', 'resource:default/bad'], mockServices.logger.mock());
    expect(report).toEqual({
      succeeded: ['resource:default/a'],
      failed: [{ entityRef: 'resource:default/bad', message: 'No capture source for primary engine x' }],
    });
  });
});
