import { mockCredentials, TestDatabases } from '@backstage/backend-test-utils';
import type {
  BootPlan,
  Capture,
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
const REASON =
  'capture c2: checksum mismatch for /captures/c2.tar (layer file /captures/layers/b3dc.layer no longer holds its content)';

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
  id: 'c2',
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

const damaged = { at: '2026-12-06T03:00:00.000Z', reason: REASON };
const withDamagedWeb = {
  ...base,
  captures: [
    base.captures[0],
    { machineRef: WEB_01, latest: latest(WEB_01, { damaged }), ageSeconds: 60 },
  ],
};

describe('readiness of an entity whose latest capture of a machine is damaged', () => {
  it('is at risk, naming the capture, when and why, and the older intact one a recovery restores', () => {
    const intactCaptures = new Map([
      [
        WEB_01,
        { id: 'c1', createdAt: '2026-12-06T01:00:00.000Z', ageSeconds: 3660 },
      ],
    ]);
    expect(
      assessReadiness({ ...withDamagedWeb, intactCaptures }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        `Latest capture of ${WEB_01} (capture c2 of 2026-12-06T02:00:00.000Z) is damaged, found so at 2026-12-06T03:00:00.000Z: ${REASON}; ` +
          `a recovery would restore its capture of 2026-12-06T01:00:00.000Z, the newest intact one (61 min old, over the RPO of 60 min), until a capture of it is taken`,
      ],
    });
    // Undamaged, the same facts are ready.
    expect(
      assessReadiness({ ...base, intactCaptures: new Map() }),
    ).toMatchObject({ status: 'ready', reasons: [] });
  });

  it('is not recoverable when every kept capture of the machine is damaged', () => {
    expect(
      assessReadiness({ ...withDamagedWeb, intactCaptures: new Map() }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: [
        `Every kept capture of ${WEB_01} is damaged, the latest (capture c2 of 2026-12-06T02:00:00.000Z) found so at 2026-12-06T03:00:00.000Z: ${REASON}; capture it anew`,
      ],
    });
  });
});

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'ReadinessService with a damaged capture on %s',
  databaseId => {
    it("reads each machine's newest intact capture where its latest is damaged, for an entity and for the overview", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      const runHistory = new ReadinessHistoryStore(knex);
      const now = Date.now();
      const ago = (s: number) => new Date(now - s * 1000).toISOString();
      await captureStore.insertCapture({
        ...storedCapture('data-01'),
        id: 'd1',
        createdAt: ago(60),
      });
      await captureStore.insertCapture({
        ...storedCapture('web-01'),
        id: 'w1',
        createdAt: ago(600),
      });
      await captureStore.insertCapture({
        ...storedCapture('web-01'),
        id: 'w2',
        createdAt: ago(60),
      });
      await captureStore.markCaptureDamaged('w2', {
        at: ago(30),
        reason: REASON,
      });
      const graph: RecoveryGraph = {
        rootRef: WEB,
        roots: [WEB],
        services: new Map([
          [WEB, { ref: WEB, machines: [WEB_01], dependsOn: [], probes: [] }],
        ]),
        machines: new Map([
          [
            DATA_01,
            {
              ref: DATA_01,
              locator: {
                machineRef: DATA_01,
                engine: 'primary',
                container: 'data-01',
              },
            },
          ],
          [
            WEB_01,
            {
              ref: WEB_01,
              locator: {
                machineRef: WEB_01,
                engine: 'primary',
                container: 'web-01',
              },
            },
          ],
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
        runHistory,
        plans,
        {
          visibleTo: async refs => refs,
          recoverableEntities: async () => [WEB],
        },
        graph.objectives,
        7 * 86_400,
      );
      const expected = `Latest capture of ${WEB_01} (capture w2 of ${ago(60)}) is damaged, found so at ${ago(30)}: ${REASON}; a recovery would restore its capture of ${ago(600)}, the newest intact one, until a capture of it is taken`;
      const one = await service.readiness(WEB, mockCredentials.user());
      expect(one.reasons).toContain(expected);
      expect(
        one.captures.find(c => c.machineRef === WEB_01)?.latest,
      ).toMatchObject({ id: 'w2', damaged: { at: ago(30), reason: REASON } });
      const [listed] = await service.readinessOf([WEB], mockCredentials.user());
      expect(listed.reasons).toContain(expected);
      // Its older capture damaged too: nothing intact is left, and no run can recover the entity.
      await captureStore.markCaptureDamaged('w1', {
        at: ago(10),
        reason: 'cut short',
      });
      expect(
        await service.readiness(WEB, mockCredentials.user()),
      ).toMatchObject({
        status: 'not-recoverable',
        reasons: expect.arrayContaining([
          `Every kept capture of ${WEB_01} is damaged, the latest (capture w2 of ${ago(60)}) found so at ${ago(30)}: ${REASON}; capture it anew`,
        ]),
      });
    });
  },
);
