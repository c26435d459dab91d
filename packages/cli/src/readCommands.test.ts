/**
 * The CLI's read commands (`runs`, `show-run`, `captures`, `plan`) against the real recovery
 * backend plugin on each database, over HTTP on a real port: runs and captures seeded through the
 * plugin's own stores, a dependency analysis made by the API from the demo's sample boots, and a
 * test recovery run on the project's fake hypervisor host.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type {
  BootPlan,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { CaptureStore } from '../../../plugins/recovery-backend/src/database/CaptureStore';
import { migrate } from '../../../plugins/recovery-backend/src/database/migrations';
import { RunStore } from '../../../plugins/recovery-backend/src/database/RunStore';
import { recoveryPlugin } from '../../../plugins/recovery-backend/src/plugin';
import { FakeCaptureSource } from '../../../plugins/recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../../plugins/recovery-backend/src/testing/FakeHost';
import {
  captureOf,
  componentEntity,
  machineEntity,
} from '../../../plugins/recovery-backend/src/testing/entities';
import { providersModule } from '../../../plugins/recovery-backend/src/testing/providers';
import { runCli } from './testing/runCli';

const P = 'recovery.backstage-recovery.io/';
const BOOTS = resolve(__dirname, '../../../demo/boots.jsonl');
const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const ref = (kind: string, name: string) => `${kind}:default/${name}`;
const INFRA_01 = ref('resource', 'infra-01');
const DATA_01 = ref('resource', 'data-01');
const WEB_01 = ref('resource', 'web-01');
const WEB = ref('component', 'web');
const FILES = ref('component', 'files');
const DEMO_SYSTEM = ref('system', 'demo');

/**
 * The demo site as its catalog holds it, in the system `demo`: what runs where (demo/site.ts),
 * and of the dependencies between its services only web's on database, and one the boots
 * contradict: directory on files (files needs directory).
 */
const DEMO: Record<string, { services: string[] }> = {
  'infra-01': { services: ['dns', 'directory'] },
  'data-01': { services: ['database', 'files'] },
  'web-01': { services: ['web'] },
};
const DECLARED: Record<string, string[]> = {
  web: ['database'],
  directory: ['files'],
};
function demoCatalog(): Entity[] {
  const system: Entity = {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'demo', namespace: 'default' },
    spec: {},
    relations: Object.values(DEMO)
      .flatMap(m => m.services)
      .map(s => ({ type: 'hasPart', targetRef: ref('component', s) })),
  };
  const machines = Object.entries(DEMO).map<Entity>(([name, m]) => ({
    ...machineEntity(name),
    spec: { type: 'machine', system: 'demo' },
    relations: m.services.map(s => ({
      type: 'dependencyOf',
      targetRef: ref('component', s),
    })),
  }));
  const services = Object.entries(DEMO).flatMap(([machine, m]) =>
    m.services.map<Entity>(s => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: s, namespace: 'default' },
      spec: { type: 'service', system: 'demo' },
      relations: [
        { type: 'dependsOn', targetRef: ref('resource', machine) },
        ...(DECLARED[s] ?? []).map(d => ({
          type: 'dependsOn',
          targetRef: ref('component', d),
        })),
        { type: 'partOf', targetRef: 'system:default/demo' },
      ],
    })),
  );
  return [system, ...machines, ...services];
}

/** A machine Resource whose relations the catalog derives from `dependents`' dependsOn. */
const machineOf = (name: string, dependents: string[]): Entity => ({
  ...machineEntity(name),
  relations: dependents.map(d => ({
    type: 'dependencyOf',
    targetRef: ref('component', d),
  })),
});

/**
 * orders declares a dependency the catalog does not hold (a problem of its plan); loop-a and
 * loop-b declare a dependency cycle (no plan).
 */
const others: Entity[] = [
  machineOf('orders-01', ['orders']),
  componentEntity('orders', [
    ref('resource', 'orders-01'),
    ref('component', 'ledger'),
  ]),
  machineOf('loop-a-01', ['loop-a']),
  machineOf('loop-b-01', ['loop-b']),
  componentEntity('loop-a', [
    ref('resource', 'loop-a-01'),
    ref('component', 'loop-b'),
  ]),
  componentEntity('loop-b', [
    ref('resource', 'loop-b-01'),
    ref('component', 'loop-a'),
  ]),
];

/** A machine of its own for a real test recovery, with a probe the fake host answers. */
const solo: Entity[] = [
  {
    ...machineEntity('solo-01'),
    relations: [{ type: 'dependencyOf', targetRef: ref('component', 'solo') }],
  },
  {
    ...componentEntity('solo', ['resource:default/solo-01']),
    metadata: {
      name: 'solo',
      namespace: 'default',
      annotations: { [`${P}probes`]: 'tcp:80' },
    },
  },
];

const PLAN: BootPlan = {
  entityRef: WEB,
  waves: [[DATA_01], [WEB_01]],
  machines: [
    { machineRef: DATA_01, wave: 0, services: [], waitsFor: [], probes: [] },
    {
      machineRef: WEB_01,
      wave: 1,
      services: [WEB],
      waitsFor: [DATA_01],
      probes: [{ kind: 'tcp', port: 80 }],
    },
  ],
};

/**
 * The demo's sample boots, moved in time to end an hour ago: the backend refuses a time to come
 * (a clock reading's reference too).
 */
function bootsBeforeNow(): string {
  const records = readFileSync(BOOTS, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(line => JSON.parse(line));
  const last = Math.max(
    ...records.flatMap(r => [r.time, r.reference ?? r.time].map(Date.parse)),
  );
  const shift = Date.now() - 3_600_000 - last;
  const moved = (iso: string) =>
    new Date(Date.parse(iso) + shift).toISOString();
  return records
    .map(r =>
      JSON.stringify({
        ...r,
        time: moved(r.time),
        ...(r.reference && { reference: moved(r.reference) }),
      }),
    )
    .join('\n');
}

const at = (minutes: number) =>
  new Date(Date.UTC(2026, 10, 2, 10, 0, 0) + minutes * 60_000).toISOString();

/** A finished run as the run service records one, step by step. */
async function seedRun(
  store: RunStore,
  run: Pick<RecoveryRun, 'id' | 'entityRef' | 'mode' | 'trigger'> &
    Partial<RecoveryRun> & { minute: number },
  machines: Array<
    Partial<RecoveryRun['machines'][number]> & {
      machineRef: string;
      wave: number;
    }
  > = [],
): Promise<void> {
  const { id, minute } = run;
  await store.insertRun(
    {
      id,
      entityRef: run.entityRef,
      mode: run.mode,
      trigger: run.trigger,
      createdBy: run.createdBy,
      hypervisorHost: 'fake',
      plan: machines.length
        ? PLAN
        : { entityRef: run.entityRef, waves: [], machines: [] },
      options: {},
      recoveryPoint: run.recoveryPoint,
      machines: machines.map(m => ({
        machineRef: m.machineRef,
        wave: m.wave,
        captureId: m.captureId,
        capturedAt: m.capturedAt,
      })),
    },
    new Date(at(minute)),
  );
  await store.updateRun(id, { status: 'running', startedAt: at(minute) });
  for (const m of machines) {
    const {
      machineRef,
      wave: _wave,
      captureId: _c,
      capturedAt: _a,
      ...patch
    } = m;
    await store.updateRunMachine(id, machineRef, patch);
  }
  for (const step of run.steps ?? []) await store.appendStep(id, step);
  await store.updateRun(id, {
    status: run.status,
    finishedAt: run.finishedAt ?? at(minute + 1),
    rtoSeconds: run.rtoSeconds,
    error: run.error,
  });
}

describe.each(databases.eachSupportedId())(
  'recovery runs, show-run, captures and plan against a backend on %s',
  databaseId => {
    let url: string;
    const token = mockCredentials.service.token();
    const as = (...argv: string[]) => [...argv, '--url', url, '--token', token];
    const cli = (...argv: string[]) => runCli(as(...argv));
    let runStore: RunStore;

    beforeAll(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const runs = new RunStore(knex);
      runStore = runs;
      const captures = new CaptureStore(knex);
      // web's history: a failover that failed at web-01, a test by hand, one scheduled, one to a
      // recovery point, one interrupted.
      await seedRun(
        runs,
        {
          id: 'r-1-failover',
          entityRef: WEB,
          mode: 'failover',
          trigger: 'user',
          createdBy: 'user:default/dr',
          status: 'failed',
          minute: 0,
          finishedAt: at(3),
          error: {
            machineRef: WEB_01,
            probe: 'tcp:80',
            message: `${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
          },
          steps: [
            {
              at: at(0),
              level: 'info',
              message: `Failover of ${WEB} on fake: 2 waves, 2 machines`,
            },
            { at: at(0), level: 'info', message: `Wave 1: booting ${DATA_01}` },
            {
              at: at(1),
              machineRef: DATA_01,
              level: 'info',
              message: 'Ready: restored in 20.0 s, verified 4.2 s after start',
            },
            { at: at(1), level: 'info', message: `Wave 2: booting ${WEB_01}` },
            {
              at: at(2),
              machineRef: WEB_01,
              level: 'error',
              message: `${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
            },
            {
              at: at(2),
              level: 'error',
              message: `${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
            },
          ],
        },
        [
          {
            machineRef: DATA_01,
            wave: 0,
            phase: 'ready',
            captureId: 'c-data-1',
            capturedAt: at(-60),
            restoreStartedAt: at(0),
            readyAt: at(1),
          },
          {
            machineRef: WEB_01,
            wave: 1,
            phase: 'failed',
            captureId: 'c-web-1',
            capturedAt: at(-60),
            probe: 'tcp:80',
            message: `${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
            logTail:
              'starting web\nwaiting for database\n\u001b[31mdependency database not ready within 20s\u001b[0m\n',
            finishedAt: at(2),
          },
        ],
      );
      await seedRun(runs, {
        id: 'r-2-test',
        entityRef: WEB,
        mode: 'test',
        trigger: 'user',
        createdBy: 'user:default/dr',
        status: 'succeeded',
        rtoSeconds: 42.125,
        minute: 10,
      });
      await seedRun(runs, {
        id: 'r-3-nightly',
        entityRef: WEB,
        mode: 'test',
        trigger: 'schedule',
        status: 'succeeded',
        rtoSeconds: 61.5,
        minute: 20,
      });
      await seedRun(runs, {
        id: 'r-4-point',
        entityRef: WEB,
        mode: 'test',
        trigger: 'user',
        createdBy: 'user:default/dr',
        status: 'succeeded',
        rtoSeconds: 40,
        recoveryPoint: at(-30),
        minute: 30,
      });
      await seedRun(runs, {
        id: 'r-5-cut',
        entityRef: WEB,
        mode: 'test',
        trigger: 'schedule',
        status: 'interrupted',
        error: { message: 'Interrupted: the backend is shutting down' },
        minute: 40,
      });
      // files: more runs than a page of GET /runs holds, the three oldest failed.
      for (let i = 0; i < 505; i++)
        await seedRun(runs, {
          id: `f-${String(i).padStart(3, '0')}`,
          entityRef: FILES,
          mode: 'test',
          trigger: 'schedule',
          status: i < 3 ? 'failed' : 'succeeded',
          rtoSeconds: i < 3 ? undefined : 30,
          error:
            i < 3 ? { message: 'lab network could not be created' } : undefined,
          minute: -10_000 + i,
        });
      // The system's kept failover, older than every other run: data-01 could not be brought back.
      await seedRun(
        runs,
        {
          id: 'd-1-failover',
          entityRef: DEMO_SYSTEM,
          mode: 'failover',
          trigger: 'user',
          createdBy: 'user:default/dr',
          status: 'succeeded',
          rtoSeconds: 50,
          minute: -20_000,
        },
        [
          { machineRef: DATA_01, wave: 0, phase: 'ready' },
          { machineRef: WEB_01, wave: 1, phase: 'ready' },
        ],
      );
      await runs.setSupervision('d-1-failover', {
        restarts: 1,
        lastRestartAt: at(60),
        degraded: {
          since: at(60),
          machineRef: DATA_01,
          message: `${DATA_01}: not running: exited with code 3`,
          notStarted: [WEB_01],
        },
        retry: { nextAt: at(62), delaySeconds: 120 },
      });
      await captures.insertCapture({
        ...captureOf('c-web-1', WEB_01, at(-60)),
        sizeBytes: 1536,
      });
      await captures.insertCapture({
        ...captureOf('c-web-2', WEB_01, at(-30)),
        sizeBytes: 3 * 1024 ** 3,
        damaged: {
          at: at(5),
          reason: 'checksum mismatch for /captures/c-web-2.tar',
        },
      });
      await captures.insertCapture({
        ...captureOf('c-web-3', WEB_01, at(50)),
        sizeBytes: 5 * 1024 ** 2,
        pausedMs: 200_000,
        pauseWarning:
          'pause 3m 20s of the 5m limit: the volumes (9.1 GiB) took most of it',
        machineState: { status: 'exited', exitCode: 137, since: at(45) },
      });
      await captures.insertCapture({
        ...captureOf('c-data-1', DATA_01, at(-60)),
        sizeBytes: 700,
      });

      const { server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({
            captureSources: [new FakeCaptureSource()],
            hypervisorHosts: [new FakeHost({})],
          }),
          catalogServiceMock.factory({
            entities: [...demoCatalog(), ...others, ...solo],
          }),
          mockServices.database.factory({ knex }),
          mockServices.rootConfig.factory({
            data: {
              recovery: {
                runs: {
                  machineReadyTimeout: '2s',
                  probeInterval: '1s',
                  minReadyTime: '100ms',
                },
              },
            },
          }),
        ],
      });
      url = `http://127.0.0.1:${server.port()}`;
      // The system's dependency analysis, as a platform engineer makes it: boots pushed, analysed.
      const post = async (path: string, body: string, type: string) => {
        const answer = await fetch(`${url}/api/recovery${path}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': type },
          body,
        });
        if (answer.status !== 201)
          throw new Error(
            `POST ${path}: ${answer.status} ${await answer.text()}`,
          );
      };
      await post(
        '/events?source=boots.jsonl',
        bootsBeforeNow(),
        'application/x-ndjson',
      );
      await post(
        '/analysis',
        JSON.stringify({ entityRef: 'system:default/demo' }),
        'application/json',
      );
    });

    /** GET of the API itself, with the CLI's token: what `--json` must print. */
    const get = async (path: string) =>
      (
        await fetch(`${url}/api/recovery${path}`, {
          headers: { Authorization: `Bearer ${token}` },
        })
      ).json();
    const lines = (text: string) => text.trimEnd().split('\n');
    const WEB_RUNS = [
      'RUN           MODE      STATUS       STARTED                  MEASURED RTO  STARTED BY       RECOVERY POINT',
      'r-5-cut       test      interrupted  2026-11-02 10:40:00 UTC  —             scheduled',
      'r-4-point     test      succeeded    2026-11-02 10:30:00 UTC  40s           user:default/dr  2026-11-02 09:30:00 UTC',
      'r-3-nightly   test      succeeded    2026-11-02 10:20:00 UTC  1m 1.5s       scheduled',
      'r-2-test      test      succeeded    2026-11-02 10:10:00 UTC  42.125s       user:default/dr',
      'r-1-failover  failover  failed       2026-11-02 10:00:00 UTC  —             user:default/dr',
    ];

    it("lists an entity's runs newest first, with who started them and their measured RTO; --status and --limit choose; --json is the API's", async () => {
      expect(await cli('runs', 'web')).toEqual({
        status: 0,
        stderr: '',
        stdout: `${WEB_RUNS.join('\n')}\n`,
      });
      // No recovery point among those listed: no such column.
      expect(
        await cli(
          'runs',
          'component:default/web',
          '--status',
          'succeeded',
          '--limit',
          '2',
        ),
      ).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'RUN          MODE  STATUS     STARTED                  MEASURED RTO  STARTED BY       RECOVERY POINT',
          'r-4-point    test  succeeded  2026-11-02 10:30:00 UTC  40s           user:default/dr  2026-11-02 09:30:00 UTC',
          'r-3-nightly  test  succeeded  2026-11-02 10:20:00 UTC  1m 1.5s       scheduled',
          '',
        ].join('\n'),
      });
      expect(
        lines((await cli('runs', 'web', '--status', 'failed')).stdout),
      ).toEqual([
        'RUN           MODE      STATUS  STARTED                  MEASURED RTO  STARTED BY',
        'r-1-failover  failover  failed  2026-11-02 10:00:00 UTC  —             user:default/dr',
      ]);
      expect(await cli('runs', 'web', '--status', 'running')).toEqual({
        status: 0,
        stderr: '',
        stdout: 'No running runs of component:default/web.\n',
      });
      const asJson = await cli('runs', 'web', '--json');
      expect(asJson.status).toBe(0);
      expect(asJson.stdout.endsWith('\n')).toBe(true);
      expect(lines(asJson.stdout)).toHaveLength(1);
      // The API's runs, without its pageInfo: the CLI reads pages on as --limit says.
      expect(JSON.parse(asJson.stdout)).toEqual({
        items: (await get(`/runs?entityRef=${encodeURIComponent(WEB)}`)).items,
      });
      expect(
        JSON.parse(
          (await cli('runs', 'web', '--status', 'succeeded', '--json')).stdout,
        ).items.map((r: RecoveryRun) => r.id),
      ).toEqual(['r-4-point', 'r-3-nightly', 'r-2-test']);
    });

    it('reads older pages as the API pages them (each at the nextCursor of the one before), up to --limit', async () => {
      // 505 runs of files: more than a page of GET /runs holds (500).
      const all = await cli('runs', 'files', '--limit', '1000', '--json');
      const ids = JSON.parse(all.stdout).items.map((r: RecoveryRun) => r.id);
      const expected = Array.from(
        { length: 505 },
        (_, i) => `f-${String(504 - i).padStart(3, '0')}`,
      );
      expect(ids).toEqual(expected);
      const some = lines((await cli('runs', 'files', '--limit', '502')).stdout);
      expect(some).toHaveLength(503);
      expect(some.slice(1).map(l => l.split(' ')[0])).toEqual(
        expected.slice(0, 502),
      );
      // The failed ones are the three oldest, past the first page: found on the second.
      expect(
        await cli('runs', 'files', '--status', 'failed', '--limit', '2'),
      ).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'RUN    MODE  STATUS  STARTED                  MEASURED RTO  STARTED BY',
          'f-002  test  failed  2026-10-26 11:22:00 UTC  —             scheduled',
          'f-001  test  failed  2026-10-26 11:21:00 UTC  —             scheduled',
          '',
        ].join('\n'),
      });
      // Every entity's: the entity said on each line. The 20 newest, as the API answers by default.
      const every = lines((await cli('runs')).stdout);
      expect(every).toHaveLength(21);
      expect(every[0].split(/ {2,}/)).toEqual([
        'RUN',
        'ENTITY',
        'MODE',
        'STATUS',
        'STARTED',
        'MEASURED RTO',
        'STARTED BY',
        'RECOVERY POINT',
      ]);
      const cells = every.slice(1).map(l => l.split(/ {2,}/));
      expect(cells.filter(c => c[1] === WEB).map(c => c[0])).toEqual([
        'r-5-cut',
        'r-4-point',
        'r-3-nightly',
        'r-2-test',
        'r-1-failover',
      ]);
      expect(cells.filter(c => c[1] === FILES).map(c => c[0])).toEqual(
        expected.slice(0, 15),
      );
    });

    it("shows a run's whole record: its machines wave by wave, its timeline, the failed machine's console, how it ended; exit 0 however it ended", async () => {
      expect(await cli('show-run', 'r-1-failover')).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'Run r-1-failover of component:default/web: failover on fake, started by user:default/dr',
          '  created 2026-11-02 10:00:00 UTC, started 2026-11-02 10:00:00 UTC, finished 2026-11-02 10:03:00 UTC',
          '',
          'WAVE  MACHINE                   PHASE   CAPTURE RESTORED                     MESSAGE',
          '1     resource:default/data-01  ready   c-data-1 of 2026-11-02 09:00:00 UTC',
          `2     resource:default/web-01   failed  c-web-1 of 2026-11-02 09:00:00 UTC   ${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
          '',
          'Timeline:',
          `  10:00:00  Failover of ${WEB} on fake: 2 waves, 2 machines`,
          `  10:00:00  Wave 1: booting ${DATA_01}`,
          `  10:01:00  ${DATA_01}: Ready: restored in 20.0 s, verified 4.2 s after start`,
          `  10:01:00  Wave 2: booting ${WEB_01}`,
          // The run's own copy of the machine's failure is left to the outcome line.
          `  10:02:00  error: ${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
          '',
          // Its escape sequences are not passed on to the terminal.
          `Console of ${WEB_01} (3 lines):`,
          '  starting web',
          '  waiting for database',
          '  dependency database not ready within 20s',
          '',
          `Run r-1-failover of ${WEB} failed: ${WEB_01}: probe tcp:80 not ready within 20s: connection refused`,
          '',
        ].join('\n'),
      });
      expect(await cli('show-run', 'r-4-point')).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          `Run r-4-point of ${WEB}: test recovery on fake, started by user:default/dr`,
          '  created 2026-11-02 10:30:00 UTC, started 2026-11-02 10:30:00 UTC, finished 2026-11-02 10:31:00 UTC',
          '  to the recovery point 2026-11-02 09:30:00 UTC: each machine restored its newest capture taken at or before it',
          '',
          `Run r-4-point of ${WEB} to the recovery point 2026-11-02T09:30:00.000Z succeeded: 0 machines verified, measured RTO 40s`,
          '',
        ].join('\n'),
      });
      expect(lines((await cli('show-run', 'r-5-cut')).stdout).at(-1)).toBe(
        `Run r-5-cut of ${WEB} interrupted: the backend is shutting down. It reached no result: run it again`,
      );
      const asJson = await cli('show-run', 'r-1-failover', '--json');
      expect(asJson).toMatchObject({ status: 0, stderr: '' });
      expect(JSON.parse(asJson.stdout)).toEqual(
        await get('/runs/r-1-failover'),
      );
    });

    it('says when a kept failover runs degraded: the machine down, since when, its next try; readiness says it of the services that need it', async () => {
      const degraded = `${DATA_01} down since 2026-11-02 11:00:00 UTC, next try 2026-11-02 11:02:00 UTC`;
      expect(lines((await cli('runs', DEMO_SYSTEM)).stdout)).toEqual([
        'RUN           MODE      STATUS     STARTED                  MEASURED RTO  STARTED BY       DEGRADED',
        `d-1-failover  failover  succeeded  2026-10-19 12:40:00 UTC  50s           user:default/dr  ${degraded}`,
      ]);
      const record = lines((await cli('show-run', 'd-1-failover')).stdout);
      expect(record.slice(0, 3)).toEqual([
        `Run d-1-failover of ${DEMO_SYSTEM}: failover on fake, started by user:default/dr`,
        '  created 2026-10-19 12:40:00 UTC, started 2026-10-19 12:40:00 UTC, finished 2026-10-19 12:41:00 UTC',
        `  running degraded: ${degraded}; it stopped on fake and could not be brought back: ${DATA_01}: not running: exited with code 3; left stopped as they wait for it: ${WEB_01}`,
      ]);
      // The failover's own entity, and a service whose plan holds the machines down.
      const readiness = async (entity: string) => {
        const { status, stdout } = await cli('readiness', entity);
        expect(status).toBe(0);
        return lines(stdout);
      };
      expect(await readiness(DEMO_SYSTEM)).toContainEqual(
        expect.stringMatching(
          /^ {2}- Failover d-1-failover runs degraded \(down since 2026-11-02 11:00:00 UTC\): /,
        ),
      );
      expect(await readiness(WEB)).toContainEqual(
        `  - Its machines ${DATA_01}, ${WEB_01} are down in failover d-1-failover of ${DEMO_SYSTEM} (down since 2026-11-02 11:00:00 UTC): ${DATA_01} could not be brought back on fake (${DATA_01}: not running: exited with code 3); ${WEB_01} is left stopped as it waits for ${DATA_01}; the supervision tries again at 2026-11-02 11:02:00 UTC. Production runs on that failover: look at its timeline, or ask the owners of ${DEMO_SYSTEM}`,
      );
    });

    it("says 'noticed down at' where the host told no stop time: the machine may have stopped earlier", async () => {
      const stored = (await runStore.getRun('d-1-failover'))!.supervision!;
      await runStore.setSupervision('d-1-failover', {
        ...stored,
        degraded: { ...stored.degraded!, sinceIs: 'noticed' },
      });
      try {
        const degraded = `${DATA_01} noticed down at 2026-11-02 11:00:00 UTC, next try 2026-11-02 11:02:00 UTC`;
        expect(lines((await cli('runs', DEMO_SYSTEM)).stdout)[1]).toMatch(
          new RegExp(`  ${degraded}$`),
        );
        expect(lines((await cli('show-run', 'd-1-failover')).stdout)[2]).toBe(
          `  running degraded: ${degraded}; it stopped on fake and could not be brought back: ${DATA_01}: not running: exited with code 3; left stopped as they wait for it: ${WEB_01}`,
        );
        expect(
          lines((await cli('readiness', DEMO_SYSTEM)).stdout),
        ).toContainEqual(
          expect.stringMatching(
            /^ {2}- Failover d-1-failover runs degraded \(noticed down at 2026-11-02 11:00:00 UTC\): /,
          ),
        );
      } finally {
        await runStore.setSupervision('d-1-failover', stored);
      }
    });

    it('shows a run the fake host really ran with the timeline `run` printed as it went', async () => {
      expect((await cli('capture', 'solo')).status).toBe(0);
      const ran = await cli('run', 'solo', '--interval', '0.1');
      expect(ran).toMatchObject({ status: 0, stderr: '' });
      const printed = lines(ran.stdout);
      const id = /^Run (\S+) of/.exec(printed[0])![1];
      const shown = await cli('show-run', id);
      expect(shown).toMatchObject({ status: 0, stderr: '' });
      const record = lines(shown.stdout);
      // The token's subject: a static token of backend.auth.externalAccess.
      expect(record[0]).toBe(
        `Run ${id} of component:default/solo: test recovery on fake, started by external:test-service`,
      );
      expect(record).toContainEqual(
        expect.stringMatching(
          /^1 {5}resource:default\/solo-01 {2}ready {2}\S+ of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
        ),
      );
      // Its timeline is the steps the run printed, and it ends with the same outcome.
      const timeline = record.slice(
        record.indexOf('Timeline:') + 1,
        record.lastIndexOf(''),
      );
      expect(timeline.map(l => l.slice(2))).toEqual(
        printed
          .slice(1, -1)
          .filter(l => !/ (restored, starting|started, verifying)$/.test(l)),
      );
      expect(record.at(-1)).toBe(printed.at(-1));
      expect(lines((await cli('runs', 'solo')).stdout)[1]).toMatch(
        new RegExp(
          `^${id} +test +succeeded +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC +\\d+(\\.\\d{1,3})?s `,
        ),
      );
    });

    it("lists the captures kept, machine by machine, newest first: size, intact or damaged, the state captured, a long pause; --json is the API's", async () => {
      const WEB_01_CAPTURES = [
        'resource:default/web-01    c-web-3         2026-11-02 10:50:00 UTC  5.0 MiB    intact  NOT SERVING when captured: exited (code 137, since 2026-11-02T10:45:00.000Z); kept, but readiness puts what it serves at risk until it is captured running and not unhealthy  WARNING pause 3m 20s of the 5m limit: the volumes (9.1 GiB) took most of it',
        'resource:default/web-01    c-web-2         2026-11-02 09:30:00 UTC  3.0 GiB    DAMAGED (found so at 2026-11-02 10:05:00 UTC: checksum mismatch for /captures/c-web-2.tar; no run restores it)',
        'resource:default/web-01    c-web-1         2026-11-02 09:00:00 UTC  1.5 KiB    intact',
      ];
      // web's plan, in its order; a machine never captured said so.
      expect(await cli('captures', 'web')).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'MACHINE                    CAPTURE         TAKEN                    SIZE       STATE',
          'resource:default/infra-01  never captured',
          'resource:default/data-01   c-data-1        2026-11-02 09:00:00 UTC  700 bytes  intact',
          ...WEB_01_CAPTURES,
          '',
        ].join('\n'),
      });
      expect(
        await cli('captures', '--machine', 'web-01', '--limit', '2'),
      ).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'MACHINE                  CAPTURE  TAKEN                    SIZE     STATE',
          'resource:default/web-01  c-web-3  2026-11-02 10:50:00 UTC  5.0 MiB  intact  NOT SERVING when captured: exited (code 137, since 2026-11-02T10:45:00.000Z); kept, but readiness puts what it serves at risk until it is captured running and not unhealthy  WARNING pause 3m 20s of the 5m limit: the volumes (9.1 GiB) took most of it',
          'resource:default/web-01  c-web-2  2026-11-02 09:30:00 UTC  3.0 GiB  DAMAGED (found so at 2026-11-02 10:05:00 UTC: checksum mismatch for /captures/c-web-2.tar; no run restores it)',
          '',
        ].join('\n'),
      });
      // A dependency cycle makes no plan, not less to list: the machines readiness names.
      expect(lines((await cli('captures', 'loop-a')).stdout)).toEqual([
        'MACHINE                     CAPTURE         TAKEN  SIZE  STATE',
        'resource:default/loop-a-01  never captured',
        'resource:default/loop-b-01  never captured',
      ]);
      // Every recoverable entity's machines, by ref.
      const every = lines((await cli('captures')).stdout)
        .slice(1)
        .map(l => l.split(/ {2,}/).slice(0, 2));
      expect([...new Set(every.map(([machine]) => machine))]).toEqual(
        [...new Set(every.map(([machine]) => machine))].sort(),
      );
      expect(every).toEqual(
        expect.arrayContaining([
          [DATA_01, 'c-data-1'],
          [INFRA_01, 'never captured'],
          [ref('resource', 'orders-01'), 'never captured'],
          [WEB_01, 'c-web-3'],
          [WEB_01, 'c-web-2'],
          [WEB_01, 'c-web-1'],
        ]),
      );
      const asJson = await cli(
        'captures',
        '--machine',
        'resource:default/web-01',
        '--json',
      );
      expect(asJson).toMatchObject({ status: 0, stderr: '' });
      expect(JSON.parse(asJson.stdout)).toEqual({
        items: (await get(`/captures?machineRef=${encodeURIComponent(WEB_01)}`))
          .items,
      });
      const ofWeb = JSON.parse((await cli('captures', 'web', '--json')).stdout);
      expect(ofWeb.items.map((c: { id: string }) => c.id)).toEqual([
        'c-data-1',
        'c-web-3',
        'c-web-2',
        'c-web-1',
      ]);
    });

    it("prints the boot plan: waves of machines, the dependencies learned with their evidence, the cycles dropped, the disagreements; --json is the API's", async () => {
      const shown = await cli('plan', 'web');
      expect(shown).toMatchObject({ status: 0, stderr: '' });
      const analysis = (await get(`/plan/component/default/web`)).analysis;
      const text = lines(shown.stdout);
      expect(text.slice(0, 7)).toEqual([
        `Boot plan of ${WEB}: 3 machines in 3 waves (the machines of a wave boot in parallel)`,
        'Wave 1:',
        `  ${INFRA_01}  runs component:default/dns`,
        'Wave 2:',
        `  ${DATA_01}   waits for ${INFRA_01}; runs component:default/database, component:default/files`,
        'Wave 3:',
        `  ${WEB_01}    waits for ${DATA_01}; runs ${WEB}`,
      ]);
      expect(text).toContain(
        `Learned from the boot history (analysis ${analysis.id} of ${analysis.createdAt.slice(0, 10)} ${analysis.createdAt.slice(11, 19)} UTC), beyond the catalog's dependsOn:`,
      );
      // Each learned dependency as a run's timeline names it, with its score and the boots behind it.
      const learned = text.filter(l =>
        /^ {2}component:default\/\S+ → \S+ \(score \d\.\d\d, \d+ boots\)$/.test(
          l,
        ),
      );
      expect(learned.length).toBeGreaterThan(0);
      // The learned edge that closes a cycle with the catalog's (directory on files) is dropped, and said.
      expect(text).toContainEqual(
        expect.stringMatching(
          /^ {2}- Learned dependency component:default\/files -> component:default\/directory \(score \d\.\d\d\) not followed: it closes the dependency cycle between services: /,
        ),
      );
      const notDeclared = text.indexOf(
        'Observed in the boot history but not declared in spec.dependsOn:',
      );
      expect(notDeclared).toBeGreaterThan(0);
      expect(text[notDeclared + 1]).toMatch(
        /^ {2}component:default\/\S+ → component:default\/\S+ \(score \d\.\d\d, \d+ boots\)$/,
      );
      expect(text).toContain(
        'Declared in spec.dependsOn but never observed in the boot history:',
      );
      const asJson = await cli('plan', 'web', '--json');
      expect(JSON.parse(asJson.stdout)).toEqual(
        await get('/plan/component/default/web'),
      );

      // Without an analysis of its system; with the catalog's problems.
      expect(await cli('plan', 'orders')).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'Boot plan of component:default/orders: 1 machine in 1 wave (the machines of a wave boot in parallel)',
          'Wave 1:',
          '  resource:default/orders-01  runs component:default/orders',
          '',
          "No dependency analysis of its system: the order follows the catalog's dependsOn alone.",
          '',
          'Problems:',
          '  - component:default/orders dependsOn component:default/ledger, which is not in the catalog: a recovery plan cannot include it',
          '',
        ].join('\n'),
      });
    });

    it('says a dependency cycle the catalog declares as the backend does, an unknown entity or run as its 404, exit 3; bad input exits 2', async () => {
      const cycle = await cli('plan', 'loop-a');
      expect(cycle).toMatchObject({ status: 3, stdout: '' });
      expect(cycle.stderr).toMatch(
        /^recovery: .*component:default\/loop-a.*recovery run --accept-cycles.* \(409\)\n$/,
      );
      for (const argv of [
        ['runs', 'nosuch'],
        ['plan', 'nosuch'],
        ['captures', 'nosuch'],
      ])
        expect(await cli(...argv)).toEqual({
          status: 3,
          stdout: '',
          stderr:
            "recovery: Entity component:default/nosuch not found in the catalog (404): a name without its kind is a Component's; for a machine, use resource:nosuch\n",
        });
      expect(await cli('show-run', 'nosuch')).toEqual({
        status: 3,
        stdout: '',
        stderr: 'recovery: Run nosuch not found (404)\n',
      });
      for (const [argv, stderr] of [
        [
          ['runs', 'web', '--limit', '0'],
          "recovery: --limit: runs to list, a whole number from 1 up, got '0'\n",
        ],
        [
          ['runs', 'web', '--limit', '1.5'],
          "recovery: --limit: runs to list, a whole number from 1 up, got '1.5'\n",
        ],
        [
          ['runs', 'web', '--limit', 'ten'],
          "recovery: --limit: runs to list, a whole number from 1 up, got 'ten'\n",
        ],
        [
          ['runs', 'web', '--status', 'done'],
          "error: option '--status <status>' argument 'done' is invalid. Allowed choices are pending, running, succeeded, failed, interrupted.\n",
        ],
        [
          ['runs', 'x:y/'],
          'recovery: not an entity ref: \'x:y/\' (such as component:default/web, or web): Entity reference "x:y/" was not on the form [<kind>:][<namespace>/]<name>\n',
        ],
        [
          ['captures', '--limit', '501'],
          "recovery: --limit: captures of each machine, a whole number from 1 to 500, got '501'\n",
        ],
        [
          ['captures', '--machine', ':'],
          'recovery: --machine: not a machine ref: \':\' (such as resource:default/web-01, or web-01): Entity reference ":" was not on the form [<kind>:][<namespace>/]<name>\n',
        ],
        [
          ['captures', 'web', '--machine', 'web-01'],
          'recovery: give an entity or --machine, not both (web, --machine web-01)\n',
        ],
        [
          ['plan', 'web', 'api'],
          "error: too many arguments for 'plan'. Expected 1 argument but got 2.\n",
        ],
        [
          ['show-run', 'r-1', 'r-2'],
          "error: too many arguments for 'show-run'. Expected 1 argument but got 2.\n",
        ],
      ] as const)
        expect(await cli(...argv)).toEqual({ status: 2, stdout: '', stderr });
    });
  },
);
