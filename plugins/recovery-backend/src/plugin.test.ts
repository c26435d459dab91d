import {
  type BackendFeature,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import {
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import knexFactory, { type Knex } from 'knex';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  type InitializationEventSource,
  type RecoveryProvidersExtensionPoint,
  type RecoveryTasksExtensionPoint,
  recoveryProvidersExtensionPoint,
  recoveryTasksExtensionPoint,
} from '@backstage-recovery/plugin-recovery-node';
import request from 'supertest';
import { EventStore } from './database/EventStore';
import { migrate } from './database/migrations';
import { recoveryPlugin } from './plugin';
import { FakeCaptureSource } from './testing/FakeCaptureSource';
import { FakeHost } from './testing/FakeHost';
import { recordingLogger } from './testing/logger';
import { providersModule } from './testing/providers';
import { captureAndPoll } from './testing/captureRequests';

const P = 'recovery.backstage-recovery.io/';
const machine = (
  name: string,
  annotations: Record<string, string> = {
    [`${P}engine`]: 'primary',
    [`${P}container`]: name,
  },
): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: { name, namespace: 'default', annotations },
  spec: { type: 'machine' },
  relations: [],
});
const service = (
  name: string,
  dependsOn: string[],
  annotations: Record<string, string> = {},
): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name, namespace: 'default', annotations },
  spec: { type: 'service' },
  relations: dependsOn.map(targetRef => ({ type: 'dependsOn', targetRef })),
});

const entities: Entity[] = [
  {
    ...machine('infra-01'),
    relations: [{ type: 'dependencyOf', targetRef: 'component:default/dns' }],
  },
  machine('data-01'),
  machine('bare', {}),
  service('dns', ['resource:default/infra-01'], { [`${P}probes`]: 'tcp:53' }),
  service('database', ['resource:default/data-01', 'component:default/dns'], {
    [`${P}probes`]: 'tcp:5432, udp:1',
  }),
  service('orphan', ['resource:default/bare']),
  service('loop-a', ['component:default/loop-b']),
  service('loop-b', ['component:default/loop-a']),
];

async function start(
  options: {
    deny?: boolean;
    /** Permissions refused, by name (the others are granted). */
    refuse?: string[];
    recoveryConfig?: Record<string, unknown>;
    eventSources?: InitializationEventSource[];
    /** The plugin's database (default: a fresh in-memory one). */
    knex?: Knex;
    /** The plugin's logger (default: the test backend's). */
    logger?: ReturnType<typeof recordingLogger>;
    /** More features of the backend (modules). */
    features?: BackendFeature[];
  } = {},
) {
  const host = new FakeHost({
    'resource:default/data-01': ['resource:default/infra-01'],
  });
  const source = new FakeCaptureSource();
  const providers = providersModule({
    captureSources: [source],
    hypervisorHosts: [host],
    eventSources: options.eventSources,
  });
  const backend = await startTestBackend({
    features: [
      recoveryPlugin,
      providers,
      ...(options.features ?? []),
      catalogServiceMock.factory({ entities }),
      ...(options.knex
        ? [mockServices.database.factory({ knex: options.knex })]
        : []),
      ...(options.logger
        ? [
            mockServices.rootLogger.mock({ child: () => options.logger! })
              .factory,
          ]
        : []),
      mockServices.rootConfig.factory({
        data: {
          recovery: {
            runs: {
              machineReadyTimeout: '2s',
              probeInterval: '1s',
              minReadyTime: '100ms',
            },
            ...options.recoveryConfig,
          },
        },
      }),
      ...(options.deny
        ? [mockServices.permissions.factory({ result: AuthorizeResult.DENY })]
        : []),
      ...(options.refuse
        ? [
            mockServices.permissions.mock({
              authorize: async requests =>
                requests.map(r => ({
                  // `name` refuses it everywhere, `name@entityRef` on that entity only.
                  result: options.refuse!.some(
                    x =>
                      x === r.permission.name ||
                      x === `${r.permission.name}@${r.resourceRef}`,
                  )
                    ? AuthorizeResult.DENY
                    : AuthorizeResult.ALLOW,
                })),
            }).factory,
          ]
        : []),
    ],
  });
  return { server: backend.server, backend, host, source };
}

describe('recovery API', () => {
  it("captures one machine of an entity's plan when asked, and names the plan's machines for one not in it", async () => {
    const { server, source } = await start();
    const one = await captureAndPoll(server, {
      entityRef: 'database',
      machineRef: 'data-01',
    });
    expect(one.status).toBe('succeeded');
    expect(one.captures.map(c => c.machineRef)).toEqual([
      'resource:default/data-01',
    ]);
    expect(source.captured).toEqual(['data-01']);

    const outside = await request(server).post('/api/recovery/captures').send({
      entityRef: 'component:default/dns',
      machineRef: 'resource:default/data-01',
    });
    expect(outside.status).toBe(400);
    expect(outside.body.error.message).toBe(
      "machineRef: resource:default/data-01 is not a machine of component:default/dns's boot plan (resource:default/infra-01)",
    );
    const malformed = await request(server)
      .post('/api/recovery/captures')
      .send({ entityRef: 'database', machineRef: 7 });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toBe(
      'machineRef must be a string, got a number (7)',
    );
    expect(source.captured).toEqual(['data-01']);
  });

  it('captures, plans, runs a test recovery and reports readiness', async () => {
    const { server, source } = await start();

    const plan = await request(server).get(
      '/api/recovery/plan/component/default/database',
    );
    expect(plan.status).toBe(200);
    expect(plan.body.waves).toEqual([
      ['resource:default/infra-01'],
      ['resource:default/data-01'],
    ]);
    expect(plan.body.problems).toEqual([
      expect.objectContaining({
        annotation: `${P}probes`,
        message: expect.stringContaining('probe "udp:1"'),
      }),
    ]);

    const noCapture = await request(server)
      .post('/api/recovery/runs')
      .send({ entityRef: 'component:default/database' });
    expect(noCapture.status).toBe(409);
    expect(noCapture.body.error.message).toContain(
      'No capture of resource:default/infra-01, resource:default/data-01 yet',
    );

    const captured = await captureAndPoll(server, { entityRef: 'database' });
    expect(captured.status).toBe('succeeded');
    expect(captured.captures.map(c => c.machineRef)).toEqual([
      'resource:default/infra-01',
      'resource:default/data-01',
    ]);
    expect(captured.captures[0]).not.toHaveProperty('artifact');
    expect(source.captured).toEqual(['infra-01', 'data-01']);

    const started = await request(server)
      .post('/api/recovery/runs')
      .send({ entityRef: 'component:default/database' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({
      status: 'pending',
      mode: 'test',
      hypervisorHost: 'fake',
    });

    let run = started.body;
    for (
      let i = 0;
      i < 100 && (run.status === 'pending' || run.status === 'running');
      i++
    ) {
      await new Promise(r => setTimeout(r, 50));
      run = (await request(server).get(`/api/recovery/runs/${run.id}`)).body;
    }
    expect(run.status).toBe('succeeded');
    expect(run.machines.map((m: any) => [m.machineRef, m.phase])).toEqual([
      ['resource:default/infra-01', 'ready'],
      ['resource:default/data-01', 'ready'],
    ]);

    const readiness = await request(server).get(
      '/api/recovery/readiness/component/default/database',
    );
    expect(readiness.status).toBe(200);
    expect(readiness.body).toMatchObject({
      entityRef: 'component:default/database',
      position: {
        wave: 1,
        machines: ['resource:default/data-01'],
        waitsFor: ['resource:default/infra-01'],
      },
      lastRun: { id: run.id, status: 'succeeded' },
    });
    // The bad probe annotation leaves that probe out: at risk, and says so.
    expect(readiness.body.status).toBe('at-risk');
    expect(readiness.body.reasons[0]).toContain('probe "udp:1"');

    const listed = await request(server).get(
      '/api/recovery/runs?entityRef=component:default/database',
    );
    expect(listed.body.items.map((r: any) => r.id)).toEqual([run.id]);
    const overview = await request(server).get('/api/recovery/readiness');
    expect(overview.body.items.map((r: any) => r.entityRef)).toEqual([
      'component:default/dns',
    ]);
  });

  it('answers bad requests with what was wrong', async () => {
    const { server } = await start();
    const cases: Array<[request.Test, number, string]> = [
      [
        request(server).post('/api/recovery/runs').send({}),
        400,
        'Request body must have an entityRef',
      ],
      [
        request(server)
          .post('/api/recovery/runs')
          .send({ entityRef: 'component:default/dns', mode: 'drill' }),
        400,
        'mode must be "test" or "failover", got "drill"',
      ],
      [
        request(server)
          .post('/api/recovery/runs')
          .send({
            entityRef: 'component:default/dns',
            options: { reverseBootOrder: true },
          }),
        400,
        'are test hooks',
      ],
      [
        request(server)
          .post('/api/recovery/runs')
          .send({ entityRef: 'component:default/nope' }),
        404,
        'Entity component:default/nope not found in the catalog',
      ],
      [
        request(server)
          .post('/api/recovery/runs')
          .send({ entityRef: 'component:default/loop-a' }),
        409, // the catalog's state, not the request: a conflict
        'Dependency cycle between services: component:default/loop-a -> component:default/loop-b -> component:default/loop-a',
      ],
      [
        request(server)
          .post('/api/recovery/captures')
          .send({ entityRef: 'component:default/orphan' }),
        400,
        `Machine resource:default/bare has no ${P}engine annotation`,
      ],
      [
        request(server).get('/api/recovery/runs/unknown'),
        404,
        'Run unknown not found',
      ],
      [
        request(server).get('/api/recovery/runs?limit=0'),
        400,
        'Query parameter limit must be given once, an integer from 1 to 500, got "0"',
      ],
      [
        request(server).get('/api/recovery/captures'),
        400,
        'Query parameter machineRef is required',
      ],
    ];
    for (const [req, status, message] of cases) {
      const res = await req;
      expect({ status: res.status, message: res.body.error?.message }).toEqual({
        status,
        message: expect.stringContaining(message),
      });
    }
  });

  it('needs recovery.run.create to start a run and recovery.capture.create to capture', async () => {
    const { server } = await start({ deny: true });
    const run = await request(server)
      .post('/api/recovery/runs')
      .send({ entityRef: 'component:default/dns' });
    expect(run.status).toBe(403);
    expect(run.body.error.message).toBe(
      'Missing permission recovery.run.create on component:default/dns',
    );
    const capture = await request(server)
      .post('/api/recovery/captures')
      .send({ entityRef: 'component:default/dns' });
    expect(capture.status).toBe(403);
    expect(capture.body.error.message).toBe(
      'Missing permission recovery.capture.create on component:default/dns',
    );
  });

  it('asks the permission policy about the entity itself: granted on one entity, refused on another', async () => {
    const { server } = await start({
      refuse: [
        'recovery.capture.create@component:default/database',
        'recovery.run.create@component:default/database',
      ],
    });
    const refused = await request(server)
      .post('/api/recovery/captures')
      .send({ entityRef: 'component:default/database' });
    expect({
      status: refused.status,
      message: refused.body.error.message,
    }).toEqual({
      status: 403,
      message:
        'Missing permission recovery.capture.create on component:default/database',
    });
    const run = await request(server)
      .post('/api/recovery/runs')
      .send({ entityRef: 'component:default/database' });
    expect({ status: run.status, message: run.body.error.message }).toEqual({
      status: 403,
      message:
        'Missing permission recovery.run.create on component:default/database',
    });
    const granted = await captureAndPoll(server, {
      entityRef: 'component:default/dns',
    });
    expect(granted.status).toBe('succeeded');
    expect(granted.captures.map(c => c.machineRef)).toEqual([
      'resource:default/infra-01',
    ]);
  });

  it('needs recovery.run.failover besides recovery.run.create to start a failover', async () => {
    const { server } = await start({ refuse: ['recovery.run.failover'] });
    const failover = await request(server)
      .post('/api/recovery/runs')
      .send({ entityRef: 'component:default/dns', mode: 'failover' });
    expect(failover.status).toBe(403);
    expect(failover.body.error.message).toBe(
      'Missing permission recovery.run.failover on component:default/dns',
    );
    // A test recovery needs no more than recovery.run.create: refused here only for want of a capture.
    const test = await request(server)
      .post('/api/recovery/runs')
      .send({ entityRef: 'component:default/dns', mode: 'test' });
    expect(test.status).toBe(409);
    expect(test.body.error.message).toContain(
      'No capture of resource:default/infra-01 yet',
    );
  });

  it('refuses to start unless recovery.captureStore.keepLast keeps at least one capture', async () => {
    for (const keepLast of [0, -1, 2.5]) {
      await expect(
        start({ recoveryConfig: { captureStore: { keepLast } } }),
      ).rejects.toThrow(
        `Invalid recovery.captureStore.keepLast ${keepLast}: captures kept per machine must be an integer of at least 1`,
      );
    }
  });

  it('refuses to start on a recovery.events.maxRequestSize that is not a positive size', async () => {
    // `10 megabytes` is the case body-parser silently reads as 10 bytes.
    for (const maxRequestSize of [
      '10 megabytes',
      'lots',
      '0',
      '0kb',
      '-1mb',
      '1.5b',
    ]) {
      await expect(
        start({ recoveryConfig: { events: { maxRequestSize } } }),
      ).rejects.toThrow(
        `Invalid recovery.events.maxRequestSize "${maxRequestSize}"`,
      );
    }
  });

  it('enforces a valid recovery.events.maxRequestSize on POST /events', async () => {
    // A plain number of bytes is accepted (a YAML number used to fail getOptionalString).
    const { server } = await start({
      recoveryConfig: { events: { maxRequestSize: 1024 } },
    });
    const res = await request(server)
      .post('/api/recovery/events')
      .set('content-type', 'text/plain')
      .send('x'.repeat(2048));
    expect(res.status).toBe(413);
  });

  it('refuses to start on durations of 0s, naming the key', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['recovery.objectives.rpo', { objectives: { rpo: '0s' } }],
      ['recovery.objectives.rto', { objectives: { rto: '0s' } }],
      [
        'recovery.runs.machineReadyTimeout',
        { runs: { machineReadyTimeout: '0s', probeInterval: '1s' } },
      ],
      [
        'recovery.runs.probeInterval',
        { runs: { machineReadyTimeout: '2s', probeInterval: '0s' } },
      ],
      [
        'recovery.runs.stepTimeout',
        {
          runs: {
            machineReadyTimeout: '2s',
            probeInterval: '1s',
            stepTimeout: '0s',
          },
        },
      ],
      [
        'recovery.runs.minReadyTime',
        {
          runs: {
            machineReadyTimeout: '2s',
            probeInterval: '1s',
            minReadyTime: '0s',
          },
        },
      ],
      ['recovery.objectives.maxTestAge', { objectives: { maxTestAge: '0s' } }],
      ['recovery.captures.timeout', { captures: { timeout: '0s' } }],
      ['recovery.analysis.halfLife', { analysis: { halfLife: '0s' } }],
    ];
    for (const [key, recoveryConfig] of cases) {
      await expect(start({ recoveryConfig })).rejects.toThrow(
        `Invalid duration "0s" at ${key}: must be longer than 0s`,
      );
    }
  });

  it('refuses to start on a recovery.hypervisorHost no module registered, naming it and those registered', async () => {
    await expect(
      start({ recoveryConfig: { hypervisorHost: 'recovry' } }),
    ).rejects.toThrow(
      'Invalid recovery.hypervisorHost "recovry": no module registered a hypervisor host of that id (registered: fake)',
    );
    const { server } = await start({
      recoveryConfig: { hypervisorHost: 'fake' },
    });
    expect((await request(server).get('/api/recovery/health')).status).toBe(
      200,
    );
  });

  it('refuses to start on a database other than PostgreSQL and SQLite, naming its client, before any query', async () => {
    // No MySQL server: the first query would fail to connect, with another error.
    const mysql = knexFactory({ client: 'mysql2' });
    await expect(start({ knex: mysql })).rejects.toThrow(
      'Backstage Recovery supports PostgreSQL and SQLite (database clients pg, better-sqlite3, sqlite3); the database client here is mysql2',
    );
  });

  it("refuses providers a module registers once the plugin's init has begun, naming each and where to register", async () => {
    let registry!: RecoveryProvidersExtensionPoint;
    const late = createBackendModule({
      pluginId: 'recovery',
      moduleId: 'late-providers',
      register(env) {
        env.registerInit({
          deps: { providers: recoveryProvidersExtensionPoint },
          async init({ providers }) {
            registry = providers;
          },
        });
      },
    });
    await start({ features: [late] });
    const after =
      "registered after the recovery plugin started: register in your module's init";
    expect(() => registry.addHypervisorHost(new FakeHost({}))).toThrow(
      `Hypervisor host 'fake' ${after}`,
    );
    expect(() =>
      registry.addCaptureSource(new FakeCaptureSource('late-engine')),
    ).toThrow(`Capture source for engine 'late-engine' ${after}`);
    expect(() =>
      registry.addEventSource({ id: 'late-events', start: async () => {} }),
    ).toThrow(`Event source 'late-events' ${after}`);
  });

  it("refuses a module's connect to the tasks API once the plugin's init has begun, saying where to connect", async () => {
    let tasks!: RecoveryTasksExtensionPoint;
    const late = createBackendModule({
      pluginId: 'recovery',
      moduleId: 'late-tasks',
      register(env) {
        env.registerInit({
          deps: { tasks: recoveryTasksExtensionPoint },
          async init({ tasks: point }) {
            tasks = point;
          },
        });
      },
    });
    await start({ features: [late] });
    expect(() => tasks.connect(async () => {})).toThrow(
      "Recovery tasks connected after the recovery plugin started: connect in your module's init",
    );
  });

  it('refuses to start on a readiness notice schedule that cannot work, naming the key', async () => {
    const schedule = (value: Record<string, unknown>) =>
      start({ recoveryConfig: { notifications: { schedule: value } } });
    await expect(
      schedule({ frequency: { minutes: 0 }, timeout: { minutes: 1 } }),
    ).rejects.toThrow(
      'Invalid schedule at recovery.notifications.schedule: frequency must be longer than zero, got {"minutes":0}',
    );
    await expect(
      schedule({
        frequency: { minutes: 15 },
        timeout: { minutes: 10 },
        initialDelay: { minutes: -1 },
      }),
    ).rejects.toThrow(
      'Invalid schedule at recovery.notifications.schedule: initialDelay must not be negative, got {"minutes":-1}',
    );
  });

  it('keeps the newest capture with keepLast 1 and discards the older one', async () => {
    const { server, source } = await start({
      recoveryConfig: { captureStore: { keepLast: 1 } },
    });
    const first = await captureAndPoll(server, {
      entityRef: 'component:default/dns',
    });
    const second = await captureAndPoll(server, {
      entityRef: 'component:default/dns',
    });
    expect([first.status, second.status]).toEqual(['succeeded', 'succeeded']);
    const kept = await request(server).get(
      '/api/recovery/captures?machineRef=resource:default/infra-01',
    );
    expect(kept.body.items.map((c: any) => c.id)).toEqual([
      second.captures[0].id,
    ]);
    expect(source.discarded).toEqual([first.captures[0].id]);
  });

  it('starts each event source from the newest event stored from it', async () => {
    const knex = await TestDatabases.create({ ids: ['SQLITE_3'] }).init(
      'SQLITE_3',
    );
    await migrate(knex);
    const stored = new EventStore(knex);
    const event = (time: number) => ({
      machine: 'infra-01',
      service: 'dns',
      type: 'start' as const,
      time,
    });
    await stored.insertEvents([event(5_000), event(9_000)], 'docker:primary');
    await stored.insertEvents([event(20_000)], 'api');
    const resumed = new Map<string, number | undefined>();
    const source = (id: string): InitializationEventSource => ({
      id,
      async start(_onEvents, signal, resume) {
        resumed.set(id, resume?.since);
        await new Promise(resolve =>
          signal.addEventListener('abort', resolve, { once: true }),
        );
      },
    });
    const { backend } = await start({
      eventSources: [source('docker:primary'), source('docker:other')],
      knex,
    });
    const deadline = Date.now() + 5_000;
    while (resumed.size < 2 && Date.now() < deadline)
      await new Promise(r => setTimeout(r, 10));
    await backend.stop();
    expect([...resumed]).toEqual([
      ['docker:primary', 9_000],
      ['docker:other', undefined],
    ]);
  });

  it('waits on shutdown for event sources to stop and store what they flush', async () => {
    const flushed: string[] = [];
    let stopped = false;
    const events: InitializationEventSource = {
      id: 'flushing',
      async start(onEvents, signal) {
        await new Promise(resolve =>
          signal.addEventListener('abort', resolve, { once: true }),
        );
        // Like a real source sending what it still buffers once asked to stop.
        await new Promise(resolve => setTimeout(resolve, 50));
        await onEvents([
          { machine: 'infra-01', service: 'dns', type: 'start', time: 1_000 },
        ]);
        flushed.push('dns');
        stopped = true;
      },
    };
    const { backend } = await start({ eventSources: [events] });
    await backend.stop();
    expect(stopped).toBe(true);
    expect(flushed).toEqual(['dns']);
  });

  it('logs an event source that stops, the source in the line and its error as the error', async () => {
    const logger = recordingLogger();
    const failure = new Error('engine went away');
    const { backend } = await start({
      eventSources: [
        {
          id: 'docker:primary',
          start: async () => {
            throw failure;
          },
        },
      ],
      logger,
    });
    // Shutdown waits for each source's collector, its failure logged.
    await backend.stop();
    expect(logger.lines.filter(l => l.level === 'error')).toEqual([
      {
        level: 'error',
        message: 'Event source stopped',
        fields: { source: 'docker:primary' },
        error: failure,
      },
    ]);
  });
});
