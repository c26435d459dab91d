import { mockCredentials, TestDatabases } from '@backstage/backend-test-utils';
import {
  bindMountDropped,
  type BootPlan,
  type Capture,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { ReadinessHistoryStore } from '../database/ReadinessHistoryStore';
import { storedCapture } from '../testing/entities';
import type { PlanService } from './PlanService';
import { assessReadiness, type ReadinessInput } from './readiness';
import { ReadinessService } from './ReadinessService';

const WEB = 'component:default/web';
const DATA_01 = 'resource:default/data-01';
const WEB_01 = 'resource:default/web-01';

/** `-v /srv/data:/data` on data-01, as the docker module's capture words it. */
const DROPPED = bindMountDropped('/srv/data', '/data');

const plan: BootPlan = {
  entityRef: WEB,
  waves: [[DATA_01], [WEB_01]],
  machines: [
    { machineRef: DATA_01, wave: 0, services: [], waitsFor: [], probes: [] },
    {
      machineRef: WEB_01,
      wave: 1,
      services: [WEB],
      waitsFor: [DATA_01],
      probes: [],
    },
  ],
};

const latest = (machineRef: string, extra: Partial<Capture> = {}): Capture => ({
  id: `cap-${machineRef.split('/')[1]}`,
  machineRef,
  engine: 'primary',
  container: machineRef.split('/')[1],
  imageId: 'i',
  sizeBytes: 1,
  checksum: 'c',
  createdAt: '2026-12-06T02:00:00.000Z',
  durationMs: 1,
  adaptations: [],
  ...extra,
});

const base: ReadinessInput = {
  entityRef: WEB,
  ownMachines: [WEB_01],
  problems: [],
  objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
  plan,
  captures: [
    { machineRef: DATA_01, latest: latest(DATA_01), ageSeconds: 60 },
    { machineRef: WEB_01, latest: latest(WEB_01), ageSeconds: 60 },
  ],
  lastRun: {
    id: 'r',
    status: 'succeeded',
    mode: 'test',
    rtoSeconds: 60,
  } as ReadinessInput['lastRun'],
  lastRunAgeSeconds: 3600,
  maxTestAgeSeconds: 7 * 86_400,
};

const withBindMount = (...adaptations: string[]): ReadinessInput => ({
  ...base,
  captures: [
    {
      machineRef: DATA_01,
      latest: latest(DATA_01, {
        adaptations: ['publish-all-ports dropped', ...adaptations],
      }),
      ageSeconds: 60,
    },
    base.captures[1],
  ],
});

const risk = (createdAt: string, id = 'cap-data-01') =>
  `Latest capture of ${DATA_01} (capture ${id} of ${createdAt}) holds nothing of host path /srv/data bind-mounted at /data: a bind mount is the host's, so every recovery restores ${DATA_01} with /data empty. Move what it keeps there to a Docker volume (captures carry volumes) and capture it again`;

describe('readiness of an entity whose plan holds a machine with a bind mount', () => {
  it('is ready without one', () => {
    expect(assessReadiness(base)).toMatchObject({
      status: 'ready',
      reasons: [],
    });
  });

  it('is at risk, naming the machine, the host path, the mount point and what to do', () => {
    expect(assessReadiness(withBindMount(DROPPED))).toMatchObject({
      status: 'at-risk',
      reasons: [risk('2026-12-06T02:00:00.000Z')],
    });
  });

  it('names every host path of the machine in one reason', () => {
    const r = assessReadiness(
      withBindMount(DROPPED, bindMountDropped('/etc/app', '/etc/app')),
    );
    expect(r.reasons).toEqual([
      `Latest capture of ${DATA_01} (capture cap-data-01 of 2026-12-06T02:00:00.000Z) holds nothing of host paths /srv/data bind-mounted at /data, /etc/app bind-mounted at /etc/app: a bind mount is the host's, so every recovery restores ${DATA_01} with /data, /etc/app empty. Move what it keeps there to a Docker volume (captures carry volumes) and capture it again`,
    ]);
  });
});

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'ReadinessService with a bind-mounted machine on %s',
  databaseId => {
    it('puts the entity whose plan holds it at risk, for an entity and for the overview', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      const createdAt = new Date(Date.now() - 60_000).toISOString();
      await captureStore.insertCapture({
        ...storedCapture('data-01'),
        id: 'd1',
        createdAt,
        adaptations: [DROPPED],
      });
      await captureStore.insertCapture({
        ...storedCapture('web-01'),
        id: 'w1',
        createdAt,
      });
      const locator = (machineRef: string) => ({
        ref: machineRef,
        locator: {
          machineRef,
          engine: 'primary',
          container: machineRef.split('/')[1],
        },
      });
      const graph: RecoveryGraph = {
        rootRef: WEB,
        roots: [WEB],
        services: new Map([
          [WEB, { ref: WEB, machines: [WEB_01], dependsOn: [], probes: [] }],
        ]),
        machines: new Map([
          [DATA_01, locator(DATA_01)],
          [WEB_01, locator(WEB_01)],
        ]),
        problems: [],
        missing: [],
        objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
      };
      const plans = {
        withMemo: () => plans,
        plan: async () => ({ graph, plan }),
      } as unknown as PlanService;
      const service = new ReadinessService(
        captureStore,
        new ReadinessHistoryStore(knex),
        plans,
        {
          visibleTo: async refs => refs,
          recoverableEntities: async () => [WEB],
        },
        graph.objectives,
        7 * 86_400,
      );
      const one = await service.readiness(WEB, mockCredentials.user());
      expect(one.status).toBe('at-risk');
      expect(one.reasons).toContain(risk(createdAt, 'd1'));
      const [listed] = await service.readinessOf([WEB], mockCredentials.user());
      expect(listed.status).toBe('at-risk');
      expect(listed.reasons).toContain(risk(createdAt, 'd1'));
    });
  },
);
