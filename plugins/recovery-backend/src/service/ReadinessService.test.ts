import { NotFoundError } from '@backstage/errors';
import type { RecoveryStore } from '../database/RecoveryStore';
import type { RecoveryGraph } from '../plan/recoveryGraph';
import type { PlanService } from './PlanService';
import { ReadinessService } from './ReadinessService';

const graph = (rootRef: string): RecoveryGraph => ({
  rootRef,
  roots: [rootRef],
  services: new Map([[rootRef, { ref: rootRef, machines: [], dependsOn: [], probes: [] }]]),
  machines: new Map(),
  problems: [],
  objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
});

const plans = {
  async plan(entityRef: string) {
    if (entityRef === 'component:default/broken') {
      throw new NotFoundError('Entity system:default/gone not found in the catalog');
    }
    return {
      graph: graph(entityRef),
      plan: { entityRef, waves: [], machines: [] },
    };
  },
} as unknown as PlanService;

const store = {
  latestCaptures: async () => new Map(),
  lastFinishedRuns: async () => new Map(),
} as unknown as RecoveryStore;

describe('ReadinessService.readinessOf', () => {
  it('keeps the other entities when one cannot be assessed', async () => {
    const service = new ReadinessService(store, plans, { rpoSeconds: 86_400, rtoSeconds: 3_600 });
    const items = await service.readinessOf([
      'component:default/a',
      'component:default/broken',
      'component:default/b',
    ]);
    expect(items.map(i => i.entityRef)).toEqual([
      'component:default/broken',
      'component:default/a',
      'component:default/b',
    ]);
    expect(items[0]).toMatchObject({
      status: 'not-recoverable',
      reasons: ['Entity system:default/gone not found in the catalog'],
      captures: [],
      objectives: { rpoSeconds: 86_400, rtoSeconds: 3_600 },
    });
    expect(items[1].status).not.toBe('not-recoverable');
  });
});
