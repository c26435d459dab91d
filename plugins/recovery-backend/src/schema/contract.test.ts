import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { ConflictError, ServiceUnavailableError } from '@backstage/errors';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { NightlyCheckRecord } from '@backstage-recovery/plugin-recovery-common';
import {
  CaptureStoreError,
  engineError,
  type MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import { resolve } from 'path';
import request from 'supertest';
import { gzipSync } from 'zlib';
import { CaptureStore } from '../database/CaptureStore';
import { RunStore } from '../database/RunStore';
import { recoveryPlugin } from '../plugin';
import { ApiContract, SentRequest } from '../testing/apiContract';
import {
  accepted,
  pollCapture,
  refusedAtOnce,
} from '../testing/captureRequests';
import { catalogHidingFromUsers } from '../testing/catalog';
import { componentEntity, machineEntity } from '../testing/entities';
import {
  FakeCaptureSource,
  GatedCaptureSource,
} from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';
import { tasksModule } from '../testing/tasksModule';

/*
 * openapi.yaml as a contract: every route runs for real (the plugin in a test backend, its store
 * on each database), and each exchange is checked against the description: a status it does not
 * document, a field it does not name, a request it refuses that succeeds, all fail. Last, every
 * answer it documents must have been seen.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const P = 'recovery.backstage-recovery.io/';

const SHOP = 'system:default/shop';
/** The shop's services again, in a system the catalog hides from users. */
const OPS = 'system:default/ops';
const DB = 'component:default/db';
const APP = 'component:default/app';
const DB_01 = 'resource:default/db-01';
const APP_01 = 'resource:default/app-01';
/** A service whose machine stops as soon as it starts: its runs fail. */
const CRASHY = 'component:default/crashy';
const CRASH_01 = 'resource:default/crash-01';
/** Runs crashy, hidden from users. */
const VAULT = 'system:default/vault';

const system = (name: string, parts: string[]): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'System',
  metadata: { name, namespace: 'default' },
  spec: {},
  relations: parts.map(targetRef => ({ type: 'hasPart', targetRef })),
});
/** A machine running these services, mapped to `engine` (null: not mapped). */
const machineOf = (
  name: string,
  services: string[],
  engine: string | null = 'primary',
): Entity => {
  const machine = machineEntity(name);
  return {
    ...machine,
    metadata: {
      ...machine.metadata,
      annotations: engine
        ? { [`${P}engine`]: engine, [`${P}container`]: name }
        : {},
    },
    relations: services.map(targetRef => ({ type: 'dependencyOf', targetRef })),
  };
};
/** A service of the shop, with its probe. */
const shopService = (name: string, machine: string, probe: string): Entity => {
  const service = componentEntity(name, [machine]);
  return {
    ...service,
    metadata: { ...service.metadata, annotations: { [`${P}probes`]: probe } },
    // Its plan follows what the shop's analysis learned.
    spec: { ...service.spec, system: 'shop' },
    relations: [
      ...service.relations!,
      { type: 'partOf', targetRef: SHOP },
      { type: 'partOf', targetRef: OPS },
    ],
  };
};

const entities: Entity[] = [
  // app starts after db in every boot; the catalog does not declare it: a disagreement.
  shopService('db', DB_01, 'tcp:5432'),
  shopService('app', APP_01, 'http:8080/healthz'),
  machineOf('db-01', [DB]),
  machineOf('app-01', [APP]),
  system('shop', [DB, APP]),
  system('ops', [DB, APP]),
  componentEntity('crashy', [CRASH_01]),
  machineOf('crash-01', [CRASHY]),
  system('vault', [CRASHY]),
  // Never analysed: it has no parts.
  system('empty', []),
  // No plan: each depends on the other.
  componentEntity('ping', ['component:default/pong']),
  componentEntity('pong', ['component:default/ping']),
  // Declares a dependency the catalog does not hold.
  componentEntity('orders', [APP_01, 'component:default/ledger']),
  // On a machine never captured.
  componentEntity('fresh', ['resource:default/fresh-01']),
  machineOf('fresh-01', []),
  // On a machine mapped to no engine.
  componentEntity('bare', ['resource:default/bare-01']),
  machineOf('bare-01', [], null),
  // On a machine whose engine has a capture of it under way.
  componentEntity('held', ['resource:default/held-01']),
  machineOf('held-01', [], 'held'),
  // On a machine whose engine stops its captures (the backend shutting down).
  componentEntity('stalled', ['resource:default/stalled-01']),
  machineOf('stalled-01', [], 'stalled'),
  // On a machine whose engine saves its images slowly: a capture of it lasts until let through.
  componentEntity('slow', ['resource:default/slow-01']),
  machineOf('slow-01', [], 'slow'),
  // On machines whose engines fail: one answers with an error, one cannot be reached.
  componentEntity('broken', ['resource:default/broken-01']),
  machineOf('broken-01', [], 'broken'),
  componentEntity('unplugged', ['resource:default/unplugged-01']),
  machineOf('unplugged-01', [], 'unplugged'),
  // On a machine that captures, and on both failing ones: each tried, the failures named.
  componentEntity('mixed', [
    'resource:default/broken-01',
    'resource:default/mixed-01',
    'resource:default/unplugged-01',
  ]),
  machineOf('mixed-01', []),
  // On a machine whose capture store is full.
  componentEntity('full', ['resource:default/full-01']),
  machineOf('full-01', [], 'full'),
  // On a machine whose only capture is found damaged.
  componentEntity('spoilt', ['resource:default/spoilt-01']),
  machineOf('spoilt-01', []),
];

/** The engine `full`: its capture store is full, as the Docker module says it (CaptureStoreError). */
class FullStoreCaptureSource extends FakeCaptureSource {
  async capture(machine: MachineLocator): Promise<never> {
    throw new CaptureStoreError(
      `capture of ${machine.machineRef} could not write to the capture store /captures while saving it into the capture store (ENOSPC: no space left on device, write): unpaused, nothing kept: the capture store is full: free room there`,
      '/captures',
    );
  }
}

/** The engine `held`: another capture holds every machine, as the Docker module answers then. */
class HeldCaptureSource extends FakeCaptureSource {
  async capture(machine: MachineLocator): Promise<never> {
    throw new ConflictError(
      `machine ${machine.machineRef}: capture c-1 is under way (paused it at 2024-01-01T00:00:00.000Z); one capture of a machine at a time`,
    );
  }
}

/** The engine `stalled`: its captures stop unfinished, as the Docker module's do when the backend shuts down. */
class StalledCaptureSource extends FakeCaptureSource {
  async capture(machine: MachineLocator): Promise<never> {
    throw new ServiceUnavailableError(
      `capture of ${machine.machineRef} stopped as the backend shuts down: nothing kept`,
    );
  }
}

/** An engine that fails every capture, as the Docker module says it (EngineError): `answered` with an error, or `unreachable`. */
class FailingEngineCaptureSource extends FakeCaptureSource {
  constructor(
    engineId: string,
    private readonly failure: 'answered' | 'unreachable',
  ) {
    super(engineId);
  }

  async capture(machine: MachineLocator): Promise<never> {
    const cause =
      this.failure === 'answered'
        ? `answered HTTP 500: commit failed`
        : 'is unreachable at 10.0.0.9:2376 (ECONNREFUSED)';
    throw engineError(
      `capture of ${machine.machineRef} (container ${machine.container}) failed while committing the image: Docker engine '${this.engineId}' ${cause}`,
      this.engineId,
      this.failure,
    );
  }
}

/** The engine `primary`: crash-01 is captured stopped, as a machine that exits at once is. */
const primaryEngine = new FakeCaptureSource();
primaryEngine.machineStates.set('crash-01', {
  status: 'exited',
  exitCode: 1,
  since: '2024-01-01T00:00:00.123456789Z',
});

/** The engine `slow`: a capture of a gated machine waits until let through; no note of its own. */
const slow = new GatedCaptureSource('slow');

/** A user refused every recovery permission; every other user but the DR engineer is refused only failovers and their release. */
const GUEST = mockCredentials.user.header('user:default/guest');
const DR = mockCredentials.user.header('user:default/dr');
const permissions = mockServices.permissions.mock({
  authorize: async (requests, { credentials }) => {
    const user = (credentials.principal as { userEntityRef?: string })
      .userEntityRef;
    return requests.map(r => ({
      result:
        user === 'user:default/guest' ||
        (['recovery.run.failover', 'recovery.run.release'].includes(
          r.permission.name,
        ) &&
          user !== 'user:default/dr')
          ? AuthorizeResult.DENY
          : AuthorizeResult.ALLOW,
    }));
  },
});
const AS_PLUGIN = mockCredentials.service.header();

/** Three boots: db, then app ten minutes later. */
const BOOTS = [0, 1, 2]
  .flatMap(boot => {
    const at = Date.UTC(2024, 0, 1) + boot * 86_400_000;
    return [
      { time: at, machine: 'db-01', service: 'db' },
      { time: at + 600_000, machine: 'app-01', service: 'app' },
    ];
  })
  .map(e => JSON.stringify(e))
  .join('\n');
/** Over the 1mb the JSON routes accept. */
const HUGE_JSON = { entityRef: 'x'.repeat(1_100_000) };

describe.each(databases.eachSupportedId())(
  'the API as openapi.yaml describes it, on %s',
  databaseId => {
    let contract: ApiContract;
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    /** What the nightly check records through: the plugin's tasks API. */
    const nightly = tasksModule();
    /** The same plugin without a hypervisor host. */
    let hostless: typeof server;
    const host = new FakeHost({}, [CRASH_01]);

    beforeAll(async () => {
      contract = await ApiContract.load(resolve(__dirname, 'openapi.yaml'));
      knex = await databases.init(databaseId);
      const catalog = catalogHidingFromUsers(entities, [OPS, VAULT]);
      const catalogFactory = createServiceFactory({
        service: catalogServiceRef,
        deps: {},
        factory: () => catalog,
      });
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          nightly.module,
          providersModule({
            captureSources: [
              primaryEngine,
              new HeldCaptureSource('held'),
              new StalledCaptureSource('stalled'),
              slow,
              new FailingEngineCaptureSource('broken', 'answered'),
              new FailingEngineCaptureSource('unplugged', 'unreachable'),
              new FullStoreCaptureSource('full'),
            ],
            hypervisorHosts: [host],
          }),
          catalogFactory,
          permissions.factory,
          mockServices.database.factory({ knex }),
          mockServices.rootConfig.factory({
            data: { recovery: { events: { maxRequestSize: '64kb' } } },
          }),
        ],
      }));
      ({ server: hostless } = await startTestBackend({
        features: [recoveryPlugin, catalogFactory],
      }));
    });

    /**
     * Sends a request as the default user (or `as`), checks the exchange against the description, and
     * returns the answer. `encoding`: the body sent with that Content-Encoding (compressed for gzip),
     * checked as the server reads it.
     */
    const call = async (
      method: SentRequest['method'],
      url: string,
      options: {
        body?: unknown;
        type?: string;
        as?: string;
        to?: typeof server;
        encoding?: string;
      } = {},
    ) => {
      let req = request(options.to ?? server)[method](`/api/recovery${url}`);
      if (options.as) req = req.set('authorization', options.as);
      if (options.type) req = req.set('content-type', options.type);
      let sent = options.body;
      if (options.encoding) {
        const text = typeof sent === 'string' ? sent : JSON.stringify(sent);
        // As it is: superagent would write a Buffer sent as application/json as JSON.
        req = req
          .set('content-encoding', options.encoding)
          .set('content-type', options.type ?? 'application/json')
          .serialize(body => body);
        sent = options.encoding === 'gzip' ? gzipSync(text) : text;
      }
      const res = await (sent === undefined ? req : req.send(sent as object));
      contract.check(
        {
          method,
          url,
          body: options.body,
          contentType:
            options.body === undefined
              ? undefined
              : (options.type ?? 'application/json'),
        },
        res,
      );
      return res;
    };
    /** Polls the run until it has finished, each answer checked too. */
    const finished = async (id: string, as?: string) => {
      let status = '';
      await vi.waitFor(
        async () => {
          status = (await call('get', `/runs/${id}`, { as })).body.status;
          expect(['succeeded', 'failed']).toContain(status);
        },
        { timeout: 15_000, interval: 50 },
      );
      return status;
    };

    /**
     * A capture as the API answers it, the 202 and each poll checked too: its refusal where
     * POST /captures refuses it at once, else its request as it ended.
     */
    const captureAnswer = (options: { body?: unknown; as?: string }) =>
      pollCapture({
        post: () => call('post', '/captures', options),
        get: url => call('get', url, { as: options.as }),
      });
    /** A capture the test expects accepted: its request as it ended. */
    const capture = async (options: { body?: unknown; as?: string }) =>
      accepted(await captureAnswer(options));

    it('answers /health', async () => {
      expect((await call('get', '/health')).body).toEqual({ status: 'ok' });
    });

    it('answers 401 on every other route to a caller without a valid token', async () => {
      const invalid = mockCredentials.user.invalidHeader();
      for (const { method, template } of contract
        .operations()
        .filter(o => o.template !== '/health')) {
        const url = template
          .replace('{kind}', 'component')
          .replace('{namespace}', 'default')
          .replace('{name}', 'app')
          .replace('{id}', 'r-1');
        const res = await call(method, url, {
          as: invalid,
          ...(method === 'post' && { body: {} }),
        });
        expect({ url, status: res.status }).toEqual({ url, status: 401 });
      }
    });

    it('pushes events', async () => {
      const pushed = await call(
        'post',
        '/events?format=jsonl&source=boots.jsonl',
        { body: BOOTS, type: 'application/x-ndjson' },
      );
      expect(pushed.status).toBe(201);
      expect(pushed.body).toMatchObject({
        format: 'jsonl',
        received: 6,
        stored: 6,
      });
      // Lenient: a malformed line skipped, read as text whatever the content type.
      const lenient = await call('post', '/events?lenient=1', {
        body: `${BOOTS}\nnot json`,
        type: 'text/plain',
      });
      expect(lenient.body).toMatchObject({
        received: 6,
        stored: 0,
        duplicates: 6,
        skipped: 1,
      });

      expect(
        (
          await call('post', '/events', {
            body: 'not json',
            type: 'text/plain',
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await call('post', '/events?format=syslog', {
            body: BOOTS,
            type: 'text/plain',
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await call('post', '/events?lenient=yes', {
            body: BOOTS,
            type: 'text/plain',
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await call('post', '/events', {
            body: BOOTS,
            type: 'text/plain',
            as: GUEST,
          })
        ).status,
      ).toBe(403);
      expect(
        (
          await call('post', '/events', {
            body: BOOTS.repeat(200),
            type: 'text/plain',
          })
        ).status,
      ).toBe(413);

      // Compressed, read once inflated, and held to the limit then: 64kb of lines that pack into far fewer bytes.
      const lines = (n: number) =>
        Array.from({ length: n }, (_, i) =>
          JSON.stringify({
            time: Date.UTC(2024, 1, 1) + i,
            machine: 'db-01',
            service: 'db',
          }),
        );
      expect(
        (
          await call('post', '/events', {
            body: lines(100).join('\n'),
            type: 'text/plain',
            encoding: 'gzip',
          })
        ).body,
      ).toMatchObject({ received: 100 });
      const bomb = await call('post', '/events', {
        body: lines(5000).join('\n'),
        type: 'text/plain',
        encoding: 'gzip',
      });
      expect(bomb.status).toBe(413);
      expect(bomb.body.error.message).toBe(
        'Request body once decompressed is larger than recovery.events.maxRequestSize (65536 bytes): push the log in smaller parts, or raise that setting',
      );
      // The limit itself is accepted.
      const atLimit = lines(1000).join('\n').slice(0, 65_536);
      const whole = atLimit.slice(0, atLimit.lastIndexOf('\n'));
      const exact = whole + ' '.repeat(65_536 - Buffer.byteLength(whole));
      expect(
        (await call('post', '/events', { body: exact, type: 'text/plain' }))
          .status,
      ).toBe(201);
      expect(
        (
          await call('post', '/events', {
            body: `${exact} `,
            type: 'text/plain',
          })
        ).status,
      ).toBe(413);
      for (const [options, message] of [
        [
          { encoding: 'br' },
          'Request body: unsupported content encoding "br"; send it uncompressed, or with Content-Encoding gzip or deflate',
        ],
        [
          { type: 'text/plain; charset=klingon' },
          'Request body: unsupported charset "KLINGON"; send it as UTF-8',
        ],
      ] as const) {
        const refused = await call('post', '/events', {
          body: BOOTS,
          type: 'text/plain',
          ...options,
        });
        expect({ status: refused.status, error: refused.body.error }).toEqual({
          status: 415,
          error: {
            name: 'UnsupportedMediaTypeError',
            message,
            statusCode: 415,
          },
        });
      }
      const corrupt = await call('post', '/events', {
        body: BOOTS,
        type: 'text/plain',
        encoding: 'deflate',
      });
      expect(corrupt.body.error).toEqual({
        name: 'InputError',
        message:
          'Request body could not be decompressed (Content-Encoding deflate): incorrect header check',
      });
    });

    it('analyses a system, and every system', async () => {
      // Not analysed yet.
      expect((await call('get', '/analysis/system/default/empty')).status).toBe(
        404,
      );
      const analysed = await call('post', '/analysis', {
        body: { entityRef: SHOP },
      });
      expect(analysed.status).toBe(201);
      expect(analysed.body.result.dependencies).toEqual([
        expect.objectContaining({ service: 'app', dependsOn: 'db' }),
      ]);
      const latest = await call('get', '/analysis/system/default/shop');
      expect(latest.body.id).toBe(analysed.body.id);
      // The plugin sees the system the catalog hides from users.
      const swept = await call('post', '/analysis', {
        body: {},
        as: AS_PLUGIN,
      });
      expect(swept.body).toEqual({
        analysed: [OPS, SHOP],
        skipped: [],
        failed: [],
        hidden: 0,
      });
      const sweptForUser = await call('post', '/analysis');
      expect(sweptForUser.body).toEqual({
        analysed: [SHOP],
        skipped: [],
        failed: [],
        hidden: 1,
      });

      const refused: Array<[unknown, number, string?]> = [
        [[], 400],
        [{ entityRef: 5 }, 400],
        // A field the description does not name: refused, not ignored.
        [{ entityRef: SHOP, system: SHOP }, 400],
        [{ entityRef: 'system:default/empty' }, 400],
        [{ entityRef: SHOP }, 403, GUEST],
        [{ entityRef: OPS }, 404],
        [HUGE_JSON, 413],
      ];
      for (const [body, status, as] of refused) {
        expect({
          body,
          status: (await call('post', '/analysis', { body, as })).status,
        }).toEqual({ body, status });
      }
      expect((await call('get', '/analysis/system/default/a%3Ab')).status).toBe(
        400,
      );
    });

    it('captures the machines of an entity, and lists them', async () => {
      const captured = await capture({
        body: { entityRef: SHOP },
      });
      expect(captured.status).toBe('succeeded');
      expect(captured.captures.map(c => c.machineRef).sort()).toEqual([
        APP_01,
        DB_01,
      ]);
      // A machine captured while it was not serving: kept, and its state said.
      const stopped = await capture({
        body: { entityRef: CRASHY },
      });
      expect(stopped.status).toBe('succeeded');
      expect(stopped.captures[0].machineState).toEqual({
        status: 'exited',
        exitCode: 1,
        since: '2024-01-01T00:00:00.123456789Z',
      });
      expect(
        (await call('get', `/readiness/component/default/crashy`)).body.reasons,
      ).toContainEqual(
        expect.stringMatching(
          /^resource:default\/crash-01 was exited \(code 1, since 2024-01-01T00:00:00.123456789Z\) when captured at \S+: the capture holds a machine that was not serving/,
        ),
      );
      const listed = await call('get', `/captures?machineRef=${DB_01}&limit=1`);
      expect(listed.body.items).toEqual([
        captured.captures.find(c => c.machineRef === DB_01),
      ]);
      const one = await capture({
        body: { entityRef: SHOP, machineRef: DB_01 },
      });
      expect(one.status).toBe('succeeded');
      expect(one.captures.map(c => c.machineRef)).toEqual([DB_01]);
      // Pages of one, the next at the nextCursor of the newest: the capture listed before.
      const newest = await call('get', `/captures?machineRef=${DB_01}&limit=1`);
      expect(newest.body).toMatchObject({
        items: [{ id: one.captures[0].id }],
        totalItems: 2,
      });
      const next = encodeURIComponent(newest.body.pageInfo.nextCursor);
      expect(
        (
          await call(
            'get',
            `/captures?machineRef=${DB_01}&limit=1&cursor=${next}`,
          )
        ).body,
      ).toEqual({ items: listed.body.items, totalItems: 2, pageInfo: {} });

      // Refused at once (POST's own status), or accepted and failed (its request's statusCode).
      const failed = (statusCode: number) => ({ status: 'failed', statusCode });
      const refused: Array<
        [unknown, number | ReturnType<typeof failed>, string?]
      > = [
        [{}, 400],
        [{ entityRef: SHOP, machine: DB_01 }, 400],
        [{ entityRef: SHOP, machineRef: 'resource:default/nowhere-01' }, 400],
        [{ entityRef: SHOP, machineRef: 'resource:' }, 400],
        [{ entityRef: 'component:default/bare' }, 400],
        [{ entityRef: SHOP }, 403, GUEST],
        [{ entityRef: OPS }, 404],
        [{ entityRef: 'component:default/held' }, failed(409)],
        [HUGE_JSON, 413],
        [{ entityRef: 'component:default/stalled' }, failed(503)],
        [{ entityRef: 'component:default/broken' }, failed(502)],
        [{ entityRef: 'component:default/unplugged' }, failed(503)],
        [{ entityRef: 'component:default/full' }, failed(507)],
      ];
      for (const [body, answer, as] of refused) {
        const answered = await captureAnswer({ body, as });
        expect({
          body,
          answer: refusedAtOnce(answered)
            ? answered.status
            : { status: answered.status, statusCode: answered.statusCode },
        }).toEqual({ body, answer });
      }
      // An engine's failure answers its own status (502: it answered with an error), never the engine's; the source's error in cause.
      const broken = await capture({
        body: { entityRef: 'component:default/broken' },
      });
      expect(broken.error).toMatchObject({
        name: 'EngineFailedError',
        statusCode: 502,
        cause: { name: 'EngineFailedError', statusCode: 502, engine: 'broken' },
      });
      // A capture store full: 507, named, saying the store and what is wrong; never a 500.
      const full = await capture({
        body: { entityRef: 'component:default/full' },
      });
      expect(full.error).toMatchObject({
        name: 'CaptureStoreError',
        statusCode: 507,
        directory: '/captures',
        message: expect.stringContaining(
          'could not write to the capture store /captures',
        ),
        cause: {
          name: 'CaptureStoreError',
          statusCode: 507,
          directory: '/captures',
        },
      });
      // A capture found damaged: listed with the mark, and no run restores it (its only one: refused, naming it).
      const spoiltCaptured = await capture({
        body: { entityRef: 'component:default/spoilt' },
      });
      expect(spoiltCaptured.status).toBe('succeeded');
      const [spoilt] = spoiltCaptured.captures;
      await new CaptureStore(knex).markCaptureDamaged(spoilt.id, {
        at: '2026-12-20T00:00:00.000Z',
        reason: 'checksum mismatch',
      });
      expect(
        (await call('get', '/captures?machineRef=resource:default/spoilt-01'))
          .body.items,
      ).toEqual([
        {
          ...spoilt,
          damaged: {
            at: '2026-12-20T00:00:00.000Z',
            reason: 'checksum mismatch',
          },
        },
      ]);
      const refusedRun = await call('post', '/runs', {
        body: { entityRef: 'component:default/spoilt', mode: 'test' },
      });
      expect({
        status: refusedRun.status,
        error: refusedRun.body.error,
      }).toMatchObject({
        status: 409,
        error: {
          name: 'CapturesDamagedError',
          damaged: [
            {
              machineRef: 'resource:default/spoilt-01',
              captureId: spoilt.id,
              createdAt: spoilt.createdAt,
              reason: 'checksum mismatch',
            },
          ],
        },
      });
      // Of an entity's several machines, each is tried: those failed and those captured named.
      const mixed = await capture({
        body: { entityRef: 'component:default/mixed' },
      });
      expect({ status: mixed.status, statusCode: mixed.statusCode }).toEqual({
        status: 'failed',
        statusCode: 502,
      });
      expect(mixed.error).toMatchObject({
        name: 'CaptureFailedError',
        statusCode: 502,
        failed: [
          {
            machineRef: 'resource:default/broken-01',
            kind: 'failed',
            error: { name: 'EngineFailedError' },
          },
          {
            machineRef: 'resource:default/unplugged-01',
            kind: 'unreachable',
            error: { name: 'ServiceUnavailableError' },
          },
        ],
        captures: [
          expect.objectContaining({ machineRef: 'resource:default/mixed-01' }),
        ],
      });
      // A machine this backend is capturing already: the second request waits for that capture
      // and counts it (its source keeps no note), rather than failing with the machine captured.
      slow.gated.add('slow-01');
      const first = capture({
        body: { entityRef: 'component:default/slow' },
      });
      await vi.waitFor(() => expect(slow.waiting.size).toBe(1));
      // Accepted while the first still captures slow-01, then polled once it may go on.
      const posted = await call('post', '/captures', {
        body: {
          entityRef: 'component:default/slow',
          machineRef: 'resource:default/slow-01',
        },
      });
      expect(posted.status).toBe(202);
      slow.letThrough();
      const second = pollCapture({
        post: async () => posted,
        get: url => call('get', url),
      });
      const firstCaptured = await first;
      expect(firstCaptured.status).toBe('succeeded');
      const [taken] = firstCaptured.captures;
      expect(accepted(await second)).toMatchObject({
        status: 'succeeded',
        captures: [taken],
      });
      // `curl -d` sends a form: refused, not taken for a body without entityRef.
      const form = await call('post', '/captures', {
        body: JSON.stringify({ entityRef: SHOP }),
        type: 'application/x-www-form-urlencoded',
      });
      expect(form.body.error).toEqual({
        name: 'UnsupportedMediaTypeError',
        message:
          'Request body must be JSON (Content-Type: application/json), got application/x-www-form-urlencoded',
        statusCode: 415,
      });
      for (const [query, status] of [
        ['', 400],
        [`?machineRef=${DB_01}&limit=0`, 400],
        ['?machineRef=resource:default/nowhere-01', 404],
      ] as const) {
        expect({
          query,
          status: (await call('get', `/captures${query}`)).status,
        }).toEqual({ query, status });
      }
    });

    it('answers a capture request while it captures, then with its captures; one of a backend that died as interrupted', async () => {
      slow.gated.add('slow-01');
      const posted = await call('post', '/captures', {
        body: { entityRef: 'component:default/slow' },
      });
      expect(posted.status).toBe(202);
      expect(posted.headers['retry-after']).toBe('1');
      const { requestId } = posted.body;
      expect(posted.body).toEqual({
        requestId,
        entityRef: 'component:default/slow',
        machineRefs: ['resource:default/slow-01'],
        status: 'capturing',
        createdAt: expect.any(String),
        captures: [],
      });
      await vi.waitFor(() => expect(slow.waiting.size).toBe(1));
      const path = `/captures/requests/${requestId}`;
      // Asked while it captures: as it was accepted (no replica's memory: the database's).
      expect((await call('get', path)).body).toEqual(posted.body);
      slow.letThrough();
      let polled = posted;
      await vi.waitFor(async () => {
        polled = await call('get', path);
        expect(polled.body.status).toBe('succeeded');
      });
      expect(polled.body).toEqual({
        ...posted.body,
        status: 'succeeded',
        finishedAt: expect.any(String),
        captures: [
          expect.objectContaining({ machineRef: 'resource:default/slow-01' }),
        ],
      });
      expect(
        (
          await call(
            'get',
            '/captures?machineRef=resource:default/slow-01&limit=1',
          )
        ).body.items,
      ).toEqual(polled.body.captures);

      // No such request, or one of an entity the caller may not see: the same 404.
      const unknown = await call('get', '/captures/requests/no-such-request');
      expect({ status: unknown.status, error: unknown.body.error }).toEqual({
        status: 404,
        error: {
          name: 'NotFoundError',
          message: 'No capture request no-such-request',
        },
      });
      const requests = new CaptureStore(knex).requests;
      await requests.insert({
        requestId: 'hidden-request',
        entityRef: OPS,
        machineRefs: [DB_01],
        createdAt: new Date().toISOString(),
      });
      expect(
        (await call('get', '/captures/requests/hidden-request')).status,
      ).toBe(404);
      expect(
        (
          await call('get', '/captures/requests/hidden-request', {
            as: AS_PLUGIN,
          })
        ).body.status,
      ).toBe('capturing');

      // Its backend stopped mid-capture (killed): not heard from for a minute, it failed as
      // interrupted, by whichever replica is asked; the machines captured before, kept.
      const [kept] = polled.body.captures;
      await requests.insert({
        requestId: 'orphaned',
        entityRef: SHOP,
        machineRefs: ['resource:default/slow-01', DB_01],
        createdAt: new Date().toISOString(),
      });
      await requests.progress('orphaned', [kept]);
      // Its copy under way, with the numbers its line is made of.
      const line = {
        machineRef: DB_01,
        message:
          'Archiving volume /data (machine paused): 300.0 MiB so far at 120.0 MiB/s',
        at: new Date().toISOString(),
        what: 'volume /data (machine paused)',
        doneBytes: 300 * 1024 * 1024,
        totalBytes: 600 * 1024 * 1024,
        elapsedMs: 2_500.5,
      };
      await requests.progressLine('orphaned', line);
      expect(
        (await call('get', '/captures/requests/orphaned')).body.progress,
      ).toEqual(line);
      await requests.insert({
        requestId: 'orphaned-one',
        entityRef: DB,
        machineRef: DB_01,
        machineRefs: [DB_01],
        createdAt: new Date().toISOString(),
      });
      // Still heard from: capturing.
      expect(
        (await call('get', '/captures/requests/orphaned')).body.status,
      ).toBe('capturing');
      await knex('recovery_capture_requests')
        .whereIn('id', ['orphaned', 'orphaned-one'])
        .update({ heard_at: new Date(Date.now() - 61_000) });
      const interrupted = await call('get', '/captures/requests/orphaned');
      const why =
        'capture request orphaned was interrupted: the backend taking it stopped (no heartbeat for 60 s) before it finished: capture again';
      expect(interrupted.body).toEqual({
        requestId: 'orphaned',
        entityRef: SHOP,
        machineRefs: ['resource:default/slow-01', DB_01],
        status: 'failed',
        createdAt: expect.any(String),
        finishedAt: expect.any(String),
        captures: [kept],
        statusCode: 503,
        error: {
          name: 'CaptureFailedError',
          message: `capture of ${SHOP}: 1 of 2 machines not captured: ${DB_01}: ServiceUnavailableError: ${why}; captured, and kept: resource:default/slow-01`,
          statusCode: 503,
          failed: [
            {
              machineRef: DB_01,
              kind: 'unreachable',
              error: { name: 'ServiceUnavailableError', message: why },
            },
          ],
          captures: [kept],
        },
      });
      // Told once: asked again, the same.
      expect((await call('get', '/captures/requests/orphaned')).body).toEqual(
        interrupted.body,
      );
      expect(
        (await call('get', '/captures/requests/orphaned-one')).body,
      ).toMatchObject({
        status: 'failed',
        statusCode: 503,
        captures: [],
        error: {
          name: 'ServiceUnavailableError',
          message: `capture of ${DB_01} failed: ${why.replace('orphaned', 'orphaned-one')}`,
        },
      });
    });

    it('plans', async () => {
      const plan = await call('get', '/plan/component/default/app');
      expect(plan.status).toBe(200);
      expect(plan.body.waves).toEqual([[DB_01], [APP_01]]);
      expect(plan.body.disagreements.inferredNotDeclared).toEqual([
        expect.objectContaining({ service: APP, dependsOn: DB }),
      ]);
      // The learned wait with the evidence behind it, as the description has it.
      expect(plan.body.inferred).toEqual([
        {
          service: APP,
          dependsOn: DB,
          score: expect.any(Number),
          samples: expect.any(Number),
          confidence: expect.stringMatching(/^(high|low)$/),
        },
      ]);
      for (const [path, status] of [
        ['component/default/ping', 409],
        ['component/default/a%3Ab', 400],
        ['system/default/ops', 404],
      ] as const) {
        expect({
          path,
          status: (await call('get', `/plan/${path}`)).status,
        }).toEqual({ path, status });
      }
    });

    it('answers what a buggy or hostile client sends as the description says, naming what was wrong, never with a 500', async () => {
      const answers: Array<
        [
          SentRequest['method'],
          string,
          { body?: unknown; type?: string; encoding?: string },
          number,
          string?,
        ]
      > = [
        // fetch sends a string body as text/plain: refused, not read as no body (the sweep of every system).
        [
          'post',
          '/analysis',
          {
            body: JSON.stringify({ entityRef: SHOP }),
            type: 'text/plain;charset=UTF-8',
          },
          415,
          'Request body must be JSON (Content-Type: application/json), got text/plain;charset=UTF-8',
        ],
        [
          'post',
          '/runs',
          { body: JSON.stringify({ entityRef: SHOP }), type: 'text/plain' },
          415,
        ],
        [
          'post',
          '/runs',
          { body: '{"entityRef":', type: 'application/json' },
          400,
          'Request body must be a JSON object: Unexpected end of JSON input',
        ],
        ['post', '/runs', { body: 'null', type: 'application/json' }, 400],
        [
          'post',
          '/analysis',
          { body: '"system:default/shop"', type: 'application/json' },
          400,
        ],
        [
          'post',
          '/runs',
          {
            body: { entityRef: SHOP },
            type: 'application/json; charset=latin1',
          },
          415,
          'Request body: unsupported charset "LATIN1"; send it as UTF-8',
        ],
        ['post', '/runs', { body: { entityRef: SHOP }, encoding: 'br' }, 415],
        [
          'post',
          '/runs',
          {
            body: { entityRef: SHOP },
            encoding: 'gzip',
            type: 'application/json',
          },
          202,
        ],
        // Read once inflated: its mode is refused by name.
        [
          'post',
          '/runs',
          { body: { entityRef: SHOP, mode: 'drill' }, encoding: 'gzip' },
          400,
          'mode must be "test" or "failover", got "drill"',
        ],
        [
          'post',
          '/runs',
          { body: { entityRef: SHOP }, encoding: 'deflate' },
          400,
          'Request body could not be decompressed (Content-Encoding deflate): incorrect header check',
        ],
        ['post', '/runs', { body: { entityRef: [SHOP] } }, 400],
        ['post', '/runs', { body: { entityRef: SHOP, mode: ['test'] } }, 400],
        [
          'post',
          '/runs',
          { body: { entityRef: SHOP, acceptMissingDependencies: 'true' } },
          400,
        ],
        ['post', '/runs', { body: { entityRef: 'x'.repeat(100_000) } }, 400],
        [
          'post',
          '/captures',
          { body: { entityRef: SHOP, machineRef: [DB_01] } },
          400,
        ],
        // No run has such an id: PostgreSQL refuses NUL in text, which is no reason for a 500.
        ['get', '/runs/%00', {}, 404, 'Run \u0000 not found'],
        ['get', `/runs/${'r'.repeat(5000)}`, {}, 404],
        [
          'get',
          '/runs?cursor=%00',
          {},
          400,
          'Query parameter cursor must be given once, a pageInfo.nextCursor of GET /runs, got "\\u0000"',
        ],
        ['post', '/runs/%00/release', {}, 404],
        ['get', '/captures/requests/%00', {}, 404],
        ['get', '/captures/requests/%ED%A0%80', {}, 400],
        [
          'get',
          '/runs/%ED%A0%80',
          {},
          400,
          "path: Failed to decode param '%ED%A0%80': not percent-encoded UTF-8",
        ],
        ['get', '/readiness/component/%ED%A0%80/app', {}, 400],
        ['get', '/runs?entity=app', {}, 400],
        ['get', '/runs?limit=-1', {}, 400],
        ['get', '/runs?limit=1.5', {}, 400],
        ['get', '/runs?limit=99999999999999999999', {}, 400],
        ['get', '/runs?limit[]=5', {}, 400],
        ['get', '/runs?entityRef=app&entityRef=db', {}, 400],
        ['get', `/captures?machineRef[kind]=resource`, {}, 400],
        ['get', '/readiness?include=plan&include=plan', {}, 400],
      ];
      const admitted: string[] = [];
      for (const [method, url, options, status, message] of answers) {
        const res = await call(method, url, options);
        expect({ url, body: options.body, status: res.status }).toEqual({
          url,
          body: options.body,
          status,
        });
        if (message) expect(res.body.error.message).toBe(message);
        if (res.status === 202) admitted.push(res.body.id);
      }
      // The run admitted from a compressed body: finished, and gone before the runs the next test counts.
      for (const id of admitted) await finished(id);
      await knex('recovery_runs').whereIn('id', admitted).delete();

      // Entity refs in the forms people write them: no kind (a System's analysis), no namespace, upper case.
      expect(
        (await call('post', '/analysis', { body: { entityRef: 'shop' } })).body
          .scope,
      ).toBe(SHOP);
      expect(
        (await call('get', '/readiness/Component/Default/APP')).body.entityRef,
      ).toBe(APP);
      expect(
        (await call('get', '/captures?machineRef=DB-01&limit=1')).status,
      ).toBe(200);
      expect(
        (
          await call(
            'get',
            `/runs?entityRef=${encodeURIComponent('System:Default/Shop')}`,
          )
        ).status,
      ).toBe(200);
    });

    it('runs a recovery, and lists runs', async () => {
      const started = await call('post', '/runs', {
        body: {
          entityRef: SHOP,
          mode: 'test',
          acceptMissingDependencies: false,
          options: { reverseBootOrder: false },
        },
      });
      expect(started.status).toBe(202);
      expect(await finished(started.body.id)).toBe('succeeded');
      expect(
        (await call('get', '/runs')).body.items.map(
          (r: { id: string }) => r.id,
        ),
      ).toEqual([started.body.id]);
      expect(
        (await call('get', `/runs?entityRef=${SHOP}&limit=5`)).body.items,
      ).toHaveLength(1);
      expect((await call('get', '/runs?active=true')).body.items).toEqual([]);
      // A failed run: its error, and its machine's message and console tail.
      const crashed = await call('post', '/runs', {
        body: { entityRef: CRASHY },
      });
      expect(await finished(crashed.body.id)).toBe('failed');
      const failed = await call('get', `/runs/${crashed.body.id}`);
      expect(failed.body.error).toMatchObject({ machineRef: CRASH_01 });
      expect(failed.body.machines).toEqual([
        expect.objectContaining({
          phase: 'failed',
          message: expect.any(String),
          logTail: expect.any(String),
        }),
      ]);

      const refused: Array<[unknown, number, string?]> = [
        [{ entityRef: SHOP, mode: 'drill' }, 400],
        [{ entityRef: SHOP, options: { reverseBootorder: true } }, 400],
        // Misspelt, a failover would run as a test.
        [{ entityRef: SHOP, Mode: 'failover' }, 400],
        // A dependency cycle the catalog declares: its state, as GET /plan answers it.
        [{ entityRef: 'component:default/ping' }, 409],
        [{ entityRef: SHOP, mode: 'failover' }, 403],
        [{ entityRef: SHOP }, 403, GUEST],
        [{ entityRef: OPS }, 404],
        [{ entityRef: 'component:default/fresh' }, 409],
        [{ entityRef: 'component:default/orders' }, 409],
        [HUGE_JSON, 413],
      ];
      for (const [body, status, as] of refused) {
        expect({
          body,
          status: (await call('post', '/runs', { body, as })).status,
        }).toEqual({ body, status });
      }
      // Named, with the machines to capture first: a client checking every entity says why.
      expect(
        (
          await call('post', '/runs', {
            body: { entityRef: 'component:default/fresh' },
          })
        ).body.error,
      ).toMatchObject({
        name: 'MachinesNotCapturedError',
        neverCaptured: ['resource:default/fresh-01'],
      });
      expect(
        (
          await call('post', '/runs', {
            body: { entityRef: SHOP, Mode: 'failover' },
          })
        ).body.error.message,
      ).toBe(
        'Request body: unknown "Mode"; the fields are entityRef, mode, acceptMissingDependencies, acceptCycles, recoveryPoint, options',
      );
      // The next page of a history: after the crashed run, the shop's run; none after that.
      const newest = await call('get', '/runs?limit=1');
      expect(newest.body.items.map((r: { id: string }) => r.id)).toEqual([
        crashed.body.id,
      ]);
      const next = encodeURIComponent(newest.body.pageInfo.nextCursor);
      const older = await call('get', `/runs?limit=1&cursor=${next}`);
      expect(older.body).toEqual({
        items: [expect.objectContaining({ id: started.body.id })],
        pageInfo: {},
      });
      expect(
        (await call('get', `/runs?entityRef=${SHOP}`)).body.pageInfo,
      ).toEqual({});
      expect(
        (await call('get', '/runs?cursor=no-such-cursor')).body.error.message,
      ).toBe(
        'Query parameter cursor must be given once, a pageInfo.nextCursor of GET /runs, got "no-such-cursor"',
      );
      for (const [query, status] of [
        ['?active=false', 400],
        ['?limit=501', 400],
        ['?cursor=no-such-cursor', 400],
        ['?before=no-such-run', 400],
        [`?entityRef=${OPS}`, 404],
      ] as const) {
        expect({
          query,
          status: (await call('get', `/runs${query}`)).status,
        }).toEqual({ query, status });
      }
      expect((await call('get', '/runs/no-such-run')).status).toBe(404);
      expect(
        (
          await call('post', '/runs', {
            body: { entityRef: SHOP },
            to: hostless,
          })
        ).status,
      ).toBe(503);
    });

    it('runs a recovery to a recovery point, with the captures of then; refuses a point before every kept capture (409), a malformed or future one (400)', async () => {
      type Listed = { id: string; createdAt: string };
      const kept = async (machineRef: string): Promise<Listed[]> =>
        (await call('get', `/captures?machineRef=${machineRef}&limit=500`)).body
          .items;
      const [db, app] = [await kept(DB_01), await kept(APP_01)];
      // Just before db-01's newest capture: it restores the one before, app-01 its newest taken by then.
      const point = new Date(Date.parse(db[0].createdAt) - 1).toISOString();
      const then = (items: Listed[]) => items.find(c => c.createdAt <= point);
      expect(then(db)?.id).not.toBe(db[0].id);
      expect(then(app)).toBeDefined();
      const lastBefore = (await call('get', '/readiness/system/default/shop'))
        .body.lastRun;
      const started = await call('post', '/runs', {
        body: { entityRef: SHOP, recoveryPoint: point.replace('Z', '+00:00') },
      });
      expect(started.status).toBe(202);
      expect(started.body.recoveryPoint).toBe(point);
      expect(await finished(started.body.id)).toBe('succeeded');
      const run = (await call('get', `/runs/${started.body.id}`)).body;
      expect(run.recoveryPoint).toBe(point);
      expect(
        Object.fromEntries(
          run.machines.map(
            (m: {
              machineRef: string;
              captureId: string;
              capturedAt: string;
            }) => [m.machineRef, [m.captureId, m.capturedAt]],
          ),
        ),
      ).toEqual({
        [DB_01]: [then(db)!.id, then(db)!.createdAt],
        [APP_01]: [then(app)!.id, then(app)!.createdAt],
      });
      // It proves that point boots, not the latest captures: readiness still reads the run before it.
      expect(
        (await call('get', '/readiness/system/default/shop')).body.lastRun,
      ).toEqual(lastBefore);

      const oldest = (items: Listed[]) => items[items.length - 1].createdAt;
      const newestOldest = [oldest(db), oldest(app)].sort().at(-1)!;
      const early = await call('post', '/runs', {
        body: { entityRef: SHOP, recoveryPoint: '2000-01-01T00:00:00Z' },
      });
      expect({ status: early.status, error: early.body.error }).toEqual({
        status: 409,
        error: {
          name: 'RecoveryPointTooEarlyError',
          statusCode: 409,
          message:
            `No capture kept at or before the recovery point 2000-01-01T00:00:00.000Z of ${DB_01} (its oldest kept is of ${oldest(db)}), ` +
            `${APP_01} (its oldest kept is of ${oldest(app)}): choose a later point, ${newestOldest} at the earliest ` +
            '(recovery.captureStore.keepLast sets how many captures of a machine are kept), or none to restore the latest captures',
          recoveryPoint: '2000-01-01T00:00:00.000Z',
          machines: [
            { machineRef: DB_01, oldestCaptureAt: oldest(db) },
            { machineRef: APP_01, oldestCaptureAt: oldest(app) },
          ],
          neverCaptured: [],
          earliestRecoveryPoint: newestOldest,
        },
      });
      // A year Date.UTC would read as 1900 to 1999: read as written.
      const ancient = await call('post', '/runs', {
        body: { entityRef: SHOP, recoveryPoint: '0050-01-01T00:30:00+01:00' },
      });
      expect({
        status: ancient.status,
        error: ancient.body.error,
      }).toMatchObject({
        status: 409,
        error: {
          name: 'RecoveryPointTooEarlyError',
          recoveryPoint: '0049-12-31T23:30:00.000Z',
          earliestRecoveryPoint: newestOldest,
        },
      });
      // The earliest point it names is admitted.
      const earliest = await call('post', '/runs', {
        body: { entityRef: SHOP, recoveryPoint: newestOldest },
      });
      expect(earliest.status).toBe(202);
      expect(await finished(earliest.body.id)).toBe('succeeded');
      // A machine never captured is said apart, with no earliest point.
      const fresh = await call('post', '/runs', {
        body: {
          entityRef: 'component:default/fresh',
          recoveryPoint: '2000-01-01T00:00:00Z',
        },
      });
      expect({ status: fresh.status, error: fresh.body.error }).toEqual({
        status: 409,
        error: {
          name: 'RecoveryPointTooEarlyError',
          statusCode: 409,
          message:
            'No capture kept at or before the recovery point 2000-01-01T00:00:00.000Z of resource:default/fresh-01 (never captured): ' +
            'capture resource:default/fresh-01 first (POST /captures): no point, nor the latest captures, can restore it until then',
          recoveryPoint: '2000-01-01T00:00:00.000Z',
          machines: [],
          neverCaptured: ['resource:default/fresh-01'],
        },
      });
      const format =
        'an ISO 8601 time with its zone, such as 2026-11-02T01:00:00Z or 2026-11-02T03:00:00+02:00';
      for (const [recoveryPoint, message] of [
        [
          'yesterday',
          `recoveryPoint must be ${format}, got "yesterday": not a date and time of day`,
        ],
        [
          '2026-11-02T01:00:00',
          `recoveryPoint must be ${format}, got "2026-11-02T01:00:00": no zone: end it with Z (UTC) or an offset such as +02:00`,
        ],
        [
          '2026-02-30T01:00:00Z',
          `recoveryPoint must be ${format}, got "2026-02-30T01:00:00Z": 2026-02-30 does not exist: February 2026 has 28 days`,
        ],
        [
          '2026-11-02T03:00:00+02',
          `recoveryPoint must be ${format}, got "2026-11-02T03:00:00+02": its zone +02 gives hours alone: write +02:00`,
        ],
        [
          '0000-01-01T00:30:00+01:00',
          `recoveryPoint must be ${format}, got "0000-01-01T00:30:00+01:00": before the year 0000 in UTC`,
        ],
        [
          1730509200,
          `recoveryPoint must be ${format}, got a number (1730509200)`,
        ],
        [null, `recoveryPoint must be ${format}, got null`],
        [
          '2999-01-01T00:00:00Z',
          expect.stringMatching(
            /^recoveryPoint 2999-01-01T00:00:00Z is in the future \(the backend's clock reads .+\): no capture is of it yet$/,
          ),
        ],
      ] as const) {
        const refused = await call('post', '/runs', {
          body: { entityRef: SHOP, recoveryPoint },
        });
        expect({
          recoveryPoint,
          status: refused.status,
          error: refused.body.error,
        }).toEqual({
          recoveryPoint,
          status: 400,
          error: { name: 'InputError', message },
        });
      }
      // Gone before the runs the next tests count.
      await knex('recovery_runs')
        .whereIn('id', [started.body.id, earliest.body.id])
        .delete();
    });

    it('answers a run cut off before its result as interrupted, apart from failed, in GET /runs/{id} and GET /runs', async () => {
      const runStore = new RunStore(knex);
      await runStore.insertRun(
        {
          id: 'cut-off',
          entityRef: SHOP,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'elsewhere',
          plan: { entityRef: SHOP, waves: [], machines: [] },
          options: {},
          machines: [{ machineRef: 'resource:default/shop-01', wave: 0 }],
        },
        new Date(),
      );
      await runStore.updateRun('cut-off', { status: 'running' });
      await runStore.updateRunMachine('cut-off', 'resource:default/shop-01', {
        phase: 'restoring',
      });
      const error = { message: 'Interrupted: the backend is shutting down' };
      await runStore.updateRun('cut-off', { status: 'interrupted', error });
      await runStore.settleUnfinishedMachines(
        'cut-off',
        { status: 'interrupted', message: error.message },
        new Date(),
      );
      try {
        // The machine it was restoring, cut off with it: a phase of its own, as the spec lists.
        expect((await call('get', '/runs/cut-off')).body).toMatchObject({
          status: 'interrupted',
          error,
          machines: [
            {
              machineRef: 'resource:default/shop-01',
              phase: 'interrupted',
              message: error.message,
            },
          ],
        });
        expect(
          (await call('get', `/runs?entityRef=${SHOP}`)).body.items.find(
            (r: { id: string }) => r.id === 'cut-off',
          ),
        ).toMatchObject({ status: 'interrupted' });
      } finally {
        await knex('recovery_runs').where({ id: 'cut-off' }).delete();
      }
    });

    it('refuses a run while another holds the hypervisor host, naming it to who may see it', async () => {
      const runStore = new RunStore(knex);
      await runStore.insertRun(
        {
          id: 'holder',
          entityRef: OPS,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'fake',
          plan: { entityRef: OPS, waves: [], machines: [] },
          options: {},
          machines: [],
        },
        new Date(),
      );
      try {
        const refused = await call('post', '/runs', {
          body: { entityRef: SHOP },
        });
        expect(refused.body.error).toMatchObject({
          name: 'HypervisorHostBusyError',
          statusCode: 409,
        });
        expect(refused.body.error).not.toHaveProperty('runId');
        const named = await call('post', '/runs', {
          body: { entityRef: SHOP },
          as: AS_PLUGIN,
        });
        expect(named.body.error).toMatchObject({
          name: 'HypervisorHostBusyError',
          runId: 'holder',
          entityRef: OPS,
        });
      } finally {
        await knex('recovery_runs').where({ id: 'holder' }).delete();
      }
    });

    it('tells readiness, with a run the catalog hides from the user as a hidden run', async () => {
      // The plugin runs the hidden system, whose plan covers the shop's.
      const started = await call('post', '/runs', {
        body: { entityRef: OPS },
        as: AS_PLUGIN,
      });
      expect(started.status).toBe(202);
      expect(await finished(started.body.id, AS_PLUGIN)).toBe('succeeded');
      expect((await call('get', `/runs/${started.body.id}`)).status).toBe(404);

      const list = await call('get', '/readiness');
      expect(
        list.body.items.map((r: { entityRef: string }) => r.entityRef).sort(),
      ).toEqual([APP, CRASHY, DB, SHOP]);
      const app = await call('get', '/readiness/component/default/app');
      expect(app.body.lastRun).not.toHaveProperty('id');
      expect(app.body.lastRun).toMatchObject({ status: 'succeeded' });
      expect(
        (
          await call('get', '/readiness/component/default/app', {
            as: AS_PLUGIN,
          })
        ).body.lastRun.id,
      ).toBe(started.body.id);
      // The overview lists each last run as a summary (its id where the caller sees its entity);
      // the entity's own readiness gives it in full.
      const overview = (await call('get', '/readiness', { as: AS_PLUGIN })).body
        .items;
      const appRow = overview.find(
        (r: { entityRef: string }) => r.entityRef === APP,
      );
      expect(appRow.lastRun).toMatchObject({
        id: started.body.id,
        entityRef: OPS,
        mode: 'test',
        status: 'succeeded',
      });
      for (const full of ['plan', 'machines', 'steps'])
        expect(appRow.lastRun).not.toHaveProperty(full);
      // Its plan as a machine count; in full for the nightly check, which asks for it.
      const appPlan = (
        await call('get', '/readiness/component/default/app', { as: AS_PLUGIN })
      ).body.plan;
      expect(appRow).toMatchObject({ machineCount: appPlan.machines.length });
      expect(appRow).not.toHaveProperty('plan');
      const planned = (
        await call('get', '/readiness?include=plan', { as: AS_PLUGIN })
      ).body.items;
      expect(
        planned.find((r: { entityRef: string }) => r.entityRef === APP).plan,
      ).toEqual(appPlan);
      expect((await call('get', '/readiness?include=plans')).status).toBe(400);
      expect(
        (
          await call('get', '/readiness/component/default/app', {
            as: AS_PLUGIN,
          })
        ).body.lastRun,
      ).toHaveProperty('steps');
      // A failed hidden run: the machine it failed at, not the run's own message.
      const vault = await call('post', '/runs', {
        body: { entityRef: VAULT },
        as: AS_PLUGIN,
      });
      expect(await finished(vault.body.id, AS_PLUGIN)).toBe('failed');
      const crashy = await call('get', '/readiness/component/default/crashy');
      expect(crashy.body.lastRun).toEqual(
        expect.objectContaining({
          status: 'failed',
          error: expect.objectContaining({ machineRef: CRASH_01 }),
        }),
      );
      expect(crashy.body.lastRun).not.toHaveProperty('id');
      for (const [path, status] of [
        ['component/%2F/app', 400],
        ['system/default/ops', 404],
      ] as const) {
        expect({
          path,
          status: (await call('get', `/readiness/${path}`)).status,
        }).toEqual({ path, status });
      }
    });

    it('admits one of several identical runs started at once, and refuses the others with a 409 naming it', async () => {
      // The host holds the first machine's start until all have answered.
      const start = host.startMachine.bind(host);
      let open = () => {};
      const held = new Promise<void>(release => {
        open = release;
      });
      host.startMachine = async machine => {
        await held;
        return start(machine);
      };
      try {
        const answers = await Promise.all(
          [1, 2, 3].map(() =>
            call('post', '/runs', { body: { entityRef: SHOP } }),
          ),
        );
        const admitted = answers.filter(a => a.status === 202);
        expect(admitted).toHaveLength(1);
        expect(
          answers.filter(a => a !== admitted[0]).map(a => a.body.error),
        ).toEqual(
          [1, 2].map(() =>
            expect.objectContaining({
              name: 'HypervisorHostBusyError',
              runId: admitted[0].body.id,
            }),
          ),
        );
        open();
        expect(await finished(admitted[0].body.id)).toBe('succeeded');
      } finally {
        host.startMachine = start;
        open();
      }
    });

    it('releases a finished failover, and refuses what is no finished failover of the caller', async () => {
      const failover = await call('post', '/runs', {
        body: { entityRef: SHOP, mode: 'failover' },
        as: DR,
      });
      expect(failover.status).toBe(202);
      const id = failover.body.id;
      expect(await finished(id, DR)).toBe('succeeded');
      const tests = (
        await call('get', `/runs?entityRef=${SHOP}`)
      ).body.items.filter((r: { mode: string }) => r.mode === 'test');
      // What it keeps on the host refuses another failover of its machines until it is released.
      const kept = await call('post', '/runs', {
        body: { entityRef: SHOP, mode: 'failover' },
        as: DR,
      });
      expect(kept.status).toBe(409);
      expect(kept.body.error).toMatchObject({
        name: 'KeptFailoverError',
        failover: expect.stringContaining(id),
        host: 'fake',
        remedy: expect.stringContaining(`POST /runs/${id}/release`),
        runId: id,
        entityRef: SHOP,
      });
      // One held by the host's own run (pending): a failover not finished yet.
      const runStore = new RunStore(knex);
      // Degraded, a machine left in the old namespace of one restarted by hand: as described.
      const since = new Date().toISOString();
      await runStore.setSupervision(id, {
        restarts: 1,
        lastRestartAt: since,
        degraded: {
          since,
          sinceIs: 'noticed',
          machineRef: 'resource:default/shop-01',
          message: 'stopped with exit code 3',
          withoutNetwork: [
            {
              machineRef: 'resource:default/shop-02',
              of: 'resource:default/shop-01',
              since,
              ownerRestarted: true,
            },
          ],
        },
        retry: { nextAt: since, delaySeconds: 30, tries: 1 },
      });
      expect(
        (await call('get', `/runs/${id}`, { as: DR })).body.supervision.degraded
          .withoutNetwork,
      ).toEqual([expect.objectContaining({ ownerRestarted: true })]);
      await runStore.insertRun(
        {
          id: 'booting',
          entityRef: SHOP,
          mode: 'failover',
          trigger: 'user',
          hypervisorHost: 'fake',
          plan: { entityRef: SHOP, waves: [], machines: [] },
          options: {},
          machines: [],
        },
        new Date(),
      );
      try {
        const refused: Array<[string, unknown, number, string?]> = [
          [id, { force: true }, 400],
          [id, HUGE_JSON, 413],
          [id, undefined, 403],
          [id, undefined, 403, GUEST],
          ['no-such-run', undefined, 404],
          [tests[0].id, undefined, 409, DR],
          ['booting', undefined, 409, DR],
        ];
        for (const [run, body, status, as] of refused) {
          expect({
            run,
            status: (await call('post', `/runs/${run}/release`, { body, as }))
              .status,
          }).toEqual({ run, status });
        }
        expect(
          (
            await call('post', `/runs/${id}/release`, {
              body: '{}',
              type: 'text/plain',
              as: DR,
            })
          ).status,
        ).toBe(415);
      } finally {
        await knex('recovery_runs').where({ id: 'booting' }).delete();
      }
      const teardown = host.teardown.bind(host);
      host.teardown = async () => {
        throw new Error('engine unreachable');
      };
      try {
        expect(
          (await call('post', `/runs/${id}/release`, { as: DR })).status,
        ).toBe(503);
      } finally {
        host.teardown = teardown;
      }
      const released = await call('post', `/runs/${id}/release`, {
        body: {},
        as: DR,
      });
      expect(released.status).toBe(200);
      expect(released.body.steps.at(-1).message).toMatch(
        /^Released by user:default\/dr: removed 2 containers \(.*\) and 1 network \(.*\) it kept on fake$/,
      );
    });

    it('cancels a pending test recovery, and refuses a failover, a finished run and a caller without recovery.run.create', async () => {
      // Pending, and driven by no backend here: a cancel is recorded for a driver to see. Each on
      // a host of its own, which it would otherwise hold.
      const runStore = new RunStore(knex);
      const ids = ['to-cancel', 'cancel-done', 'cancel-failover'];
      for (const id of ids)
        await runStore.insertRun(
          {
            id,
            entityRef: SHOP,
            mode: id === 'cancel-failover' ? 'failover' : 'test',
            trigger: 'user',
            hypervisorHost: `host-of-${id}`,
            plan: { entityRef: SHOP, waves: [], machines: [] },
            options: {},
            machines: [],
          },
          new Date(),
        );
      await runStore.updateRun('cancel-done', { status: 'succeeded' });
      try {
        const refused: Array<[string, unknown, number, string?]> = [
          ['to-cancel', { force: true }, 400],
          ['to-cancel', HUGE_JSON, 413],
          ['to-cancel', undefined, 403, GUEST],
          ['no-such-run', undefined, 404],
          ['%00', undefined, 404],
          ['cancel-done', undefined, 409],
          ['cancel-failover', undefined, 409, DR],
        ];
        for (const [run, body, status, as] of refused) {
          expect({
            run,
            status: (await call('post', `/runs/${run}/cancel`, { body, as }))
              .status,
          }).toEqual({ run, status });
        }
        expect(
          (
            await call('post', '/runs/to-cancel/cancel', {
              body: '{}',
              type: 'text/plain',
            })
          ).status,
        ).toBe(415);
        const cancelled = await call('post', '/runs/to-cancel/cancel', {
          body: {},
        });
        expect(cancelled.status).toBe(202);
        expect(cancelled.body).toMatchObject({
          id: 'to-cancel',
          status: 'pending',
        });
      } finally {
        await knex('recovery_runs').whereIn('id', ids).delete();
      }
    });

    it('gives each entity its own outcome of the night the nightly check recorded (in-process)', async () => {
      const night: NightlyCheckRecord = {
        checkedAt: '2026-11-05T03:30:00+01:00',
        outcomes: [
          {
            entityRef: SHOP,
            outcome: 'started',
            runId: 'r-shop',
            runEntityRef: SHOP,
            message: 'run r-shop succeeded in 4 s',
          },
          {
            entityRef: APP,
            outcome: 'covered',
            runId: 'r-ops',
            runEntityRef: OPS,
            message: `run r-ops of ${OPS} succeeded in 4 s`,
          },
          {
            entityRef: DB,
            outcome: 'refused',
            reason: 'kept-failover',
            runId: 'f1',
            runEntityRef: SHOP,
            message:
              'refused: failover f1 of system:default/shop keeps 2 containers on fake; release failover f1',
          },
          {
            entityRef: CRASHY,
            outcome: 'excluded',
            message:
              "left out: its recovery.backstage-recovery.io/nightly-check annotation is 'false'",
          },
        ],
      };
      await nightly.tasks().recordNightlyCheck(night);
      // Each entity's own, and in the overview; app's covering run is of a system users may not see.
      expect(
        (await call('get', '/readiness/component/default/db')).body
          .nightlyCheck,
      ).toMatchObject({
        outcome: 'refused',
        reason: 'kept-failover',
        runId: 'f1',
      });
      expect(
        (await call('get', '/readiness/component/default/app')).body
          .nightlyCheck,
      ).not.toHaveProperty('runId');
      expect(
        (
          await call('get', '/readiness/component/default/app', {
            as: AS_PLUGIN,
          })
        ).body.nightlyCheck,
      ).toMatchObject({ runId: 'r-ops', runEntityRef: OPS });
      const items: Array<{
        entityRef: string;
        nightlyCheck?: { outcome: string };
      }> = (await call('get', '/readiness')).body.items;
      expect(
        Object.fromEntries(
          items.map(i => [i.entityRef, i.nightlyCheck?.outcome]),
        ),
      ).toEqual({
        [SHOP]: 'started',
        [APP]: 'covered',
        [DB]: 'refused',
        [CRASHY]: 'excluded',
      });

      // The night before, recorded late: last night's stays.
      await expect(
        nightly
          .tasks()
          .recordNightlyCheck({ ...night, checkedAt: '2026-11-04T02:30:00Z' }),
      ).rejects.toMatchObject({ statusCode: 409, name: 'ConflictError' });
    });

    it('answered every answer the description documents', () => {
      expect(
        contract.documented().filter(answer => !contract.exercised.has(answer)),
      ).toEqual([]);
    });
  },
);
