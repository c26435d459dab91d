import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  MACHINE_LABEL,
  SERVICE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import { parseEvents } from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import { rebootFollowerHistory } from '../../../../bench/generate';
import { EventStore } from '../database/EventStore';
import { migrate } from '../database/migrations';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { AnalysisService } from './AnalysisService';
import { PlanService } from './PlanService';

// api (on machine a) waits for cache (on d) and queue (on k), and restarts after queue's
// machine reboots alone: a machine wait a -> k learned from the boots.
const history = rebootFollowerHistory();
const SYSTEM = 'system:default/rebooted';

/** The system, its machines' containers named apart from the machines (`prod-a` for a). */
function catalog(): Entity[] {
  const machines = history.truth.machines.map<Entity>(name => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name,
      namespace: 'default',
      annotations: {
        'recovery.backstage-recovery.io/engine': 'primary',
        'recovery.backstage-recovery.io/container': `prod-${name}`,
      },
    },
    spec: { type: 'machine', system: 'rebooted' },
  }));
  const services = history.truth.services.map<Entity>(s => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: s.name, namespace: 'default' },
    spec: { type: 'service', system: 'rebooted' },
    relations: s.machines.map(m => ({
      type: 'dependsOn',
      targetRef: `resource:default/${m}`,
    })),
  }));
  const root: Entity = {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'rebooted', namespace: 'default' },
    spec: {},
    relations: history.truth.services.map(s => ({
      type: 'hasPart',
      targetRef: `component:default/${s.name}`,
    })),
  };
  // Another system's machine, where a staging copy of db runs.
  const elsewhere: Entity = {
    ...machines[0],
    metadata: { name: 'staging-01', namespace: 'default' },
    spec: { type: 'machine', system: 'staging' },
  };
  return [root, ...machines, ...services, elsewhere];
}

/** The history as `docker events` gives it, each container labelled with its machine as `label` writes it. */
function dockerEvents(label: (machine: string) => string): string {
  return history.events
    .map(e =>
      JSON.stringify({
        Type: 'container',
        Action: e.type === 'start' ? 'start' : 'die',
        Actor: {
          ID: `id-${e.machine}`,
          Attributes: {
            name: `prod-${e.machine}`,
            [SERVICE_LABEL]: e.service,
            [MACHINE_LABEL]: label(e.machine),
            ...(e.type === 'failure' && { exitCode: '1' }),
          },
        },
        timeNano: `${e.time}000000`,
      }),
    )
    .join('\n');
}

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'AnalysisService matching machine labels on %p',
  databaseId => {
    let knex: Knex;

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
    });

    /** What the analysis of events labelled so learns, and the plan of api follows of it. */
    async function learnedWith(label: (machine: string) => string) {
      await knex('recovery_analyses').delete();
      await knex('recovery_events').delete();
      const store = new EventStore(knex);
      const { events, skipped } = parseEvents(dockerEvents(label), {
        format: 'docker',
      });
      expect(skipped).toBe(0);
      await store.insertEvents(events, 'docker');
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({ entities: catalog() }),
        mockServices.auth(),
        { rpoSeconds: 86400, rtoSeconds: 3600 },
      );
      const analyses = new AnalysisService(
        store,
        graphs,
        mockServices.logger.mock(),
        { threshold: 0.7, eventRetentionMs: 365 * 86_400_000, keepAnalyses: 5 },
      );
      const { result } = await analyses.analyzeSystem(SYSTEM);
      const { plan } = await new PlanService(graphs, analyses).plan(
        'component:default/api',
      );
      return {
        machines: result.services.map(s => ({
          service: result.entityRefs[s.service],
          machines: s.machines.map(m => result.machineRefs![m] ?? m),
        })),
        dependencies: result.dependencies,
        waves: result.waves.map(w => w.map(m => result.machineRefs![m] ?? m)),
        inferred: plan!.inferred,
        machineWaits: plan!.inferredMachineWaits,
        planWaves: plan!.waves,
      };
    }

    it('learns the same from events labelled with the machine name, resource:name or its full ref, in any case', async () => {
      const byName = await learnedWith(m => m);
      // The learned wait this history shows, which only matching its machines gives.
      expect(byName.machineWaits).toEqual([
        expect.objectContaining({
          machine: 'resource:default/a',
          waitsFor: 'resource:default/k',
        }),
      ]);
      expect(byName.machines).toContainEqual({
        service: 'component:default/api',
        machines: ['resource:default/a'],
      });
      for (const label of [
        (m: string) => `resource:${m}`,
        (m: string) => `resource:default/${m}`,
        (m: string) => `Resource:Default/${m.toUpperCase()}`,
      ])
        expect(await learnedWith(label)).toEqual(byName);
    });

    it("leaves out a service's events from another system's machine, labelled by its ref", async () => {
      const store = new EventStore(knex);
      const staging = ['resource:staging-01', 'Resource:default/Staging-01']
        .map((label, i) =>
          JSON.stringify({
            Type: 'container',
            Action: 'start',
            Actor: {
              ID: `staging-${i}`,
              Attributes: {
                name: `staging-db-${i}`,
                [SERVICE_LABEL]: 'db',
                [MACHINE_LABEL]: label,
              },
            },
            timeNano: `${history.events[i].time + 1}000000`,
          }),
        )
        .join('\n');
      await store.insertEvents(
        parseEvents(`${dockerEvents(m => m)}\n${staging}`).events,
        'docker',
      );
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({ entities: catalog() }),
        mockServices.auth(),
        { rpoSeconds: 86400, rtoSeconds: 3600 },
      );
      const { result } = await new AnalysisService(
        store,
        graphs,
        mockServices.logger.mock(),
        { threshold: 0.7, eventRetentionMs: 365 * 86_400_000, keepAnalyses: 5 },
      ).analyzeSystem(SYSTEM);
      expect(result.warnings).toContainEqual(
        expect.stringContaining(
          `2 initialization events of service names of ${SYSTEM} left out, as they come from machines the catalog gives to others, ` +
            `not to ${SYSTEM} (if a service of it runs there, add a dependsOn on that machine): ` +
            'resource:default/staging-01 (resource:default/staging-01): 2',
        ),
      );
      expect(result.services.flatMap(s => s.machines)).not.toContain(
        'resource:default/staging-01',
      );
    });
  },
);
