import type { LoggerService } from '@backstage/backend-plugin-api';
import {
  mockServices,
  type TestDatabaseId,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type {
  CapturedMachine,
  MachineLocator,
  TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { componentEntity, machineEntity } from '../testing/entities';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { GatedCaptureSource } from '../testing/FakeCaptureSource';
import { CaptureService, type CaptureRequestEnd } from './CaptureService';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const WEB = 'component:default/web';
const DATA = 'resource:default/data-01';
const WEB_01 = 'resource:default/web-01';
const DB = 'component:default/db';

/**
 * A capture source whose capture of data-01 goes on until its signal aborts, then stops keeping
 * nothing, as a source stops at its deadline.
 */
class StoppableSource extends GatedCaptureSource {
  started = 0;

  override async capture(
    machine: MachineLocator,
    options: { captureId: string; signal?: AbortSignal },
  ): Promise<CapturedMachine> {
    if (machine.container !== 'data-01') return super.capture(machine, options);
    this.started++;
    const signal = options.signal!;
    await new Promise(resolve =>
      signal.addEventListener('abort', resolve, { once: true }),
    );
    throw new Error(`${(signal.reason as Error).message}: nothing kept`);
  }
}

/** A capture source whose capture of data-01 fails once let through its gate. */
class FailingSource extends GatedCaptureSource {
  override async capture(
    machine: MachineLocator,
    options: { captureId: string },
  ): Promise<CapturedMachine> {
    if (machine.container !== 'data-01') return super.capture(machine, options);
    await new Promise<void>(resolve => this.waiting.set('data-01', resolve));
    throw new Error('engine: no space left saving data-01');
  }
}

/** A capture source that says how far its copy of data-01's volume is before its gate. */
class SayingSource extends GatedCaptureSource {
  static readonly LINE =
    'Archiving volume /data (machine paused): 300.0 MiB so far at 120.0 MiB/s';

  override async capture(
    machine: MachineLocator,
    options: { captureId: string; progress?: TransferProgressListener },
  ): Promise<CapturedMachine> {
    if (machine.container === 'data-01')
      options.progress?.({
        message: SayingSource.LINE,
        what: 'volume /data (machine paused)',
        doneBytes: 300 * 1024 * 1024,
        elapsedMs: 2_500,
        final: false,
      });
    return super.capture(machine, options);
  }
}

/** A capture service over the real plan service: web on web-01 depending on db on data-01. */
async function overWebAndDb<S extends GatedCaptureSource>(
  source: S = new GatedCaptureSource() as S,
  databaseId: TestDatabaseId = 'SQLITE_3',
) {
  const knex = await databases.init(databaseId);
  await migrate(knex);
  const providers = new ProviderRegistry();
  providers.addCaptureSource(source);
  const graphs = new CatalogGraphLoader(
    catalogServiceMock({
      entities: [
        machineEntity('data-01'),
        machineEntity('web-01'),
        {
          ...componentEntity('db', []),
          relations: [{ type: 'dependsOn', targetRef: DATA }],
        },
        {
          ...componentEntity('web', []),
          relations: [
            { type: 'dependsOn', targetRef: 'component:default/db' },
            { type: 'dependsOn', targetRef: WEB_01 },
          ],
        },
      ],
    }),
    mockServices.auth(),
    { rpoSeconds: 86400, rtoSeconds: 3600 },
  );
  const store = new CaptureStore(knex);
  const logger = mockServices.logger.mock();
  const captures = new CaptureService(
    store,
    providers,
    new PlanService(graphs),
    logger,
    3,
    mockServices.auditor.mock(),
  );
  return { knex, source, store, captures, logger };
}

/** The request's backend silent for `ms`, as one killed that long ago. */
function silence(knex: Knex, requestId: string, ms: number) {
  return knex('recovery_capture_requests')
    .where({ id: requestId })
    .update({ heard_at: new Date(Date.now() - ms) });
}

describe('CaptureService capture requests', () => {
  it('stops a request another replica ended as interrupted before its next machine, and tells it ended so, not as a success', async () => {
    const { knex, source, store, captures } = await overWebAndDb();
    source.gated.add('data-01');
    const ends: CaptureRequestEnd[] = [];
    const { requestId } = await captures.requestCapture(
      WEB,
      undefined,
      async end => {
        ends.push(end);
      },
    );
    await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
    // Another replica polls it while this backend seems gone: failed as interrupted, its caller
    // told to capture again.
    await silence(knex, requestId, 61_000);
    const claimed = await captures.captureRequest(requestId);
    expect(claimed).toMatchObject({ status: 'failed', statusCode: 503 });

    source.letThrough('data-01');
    await vi.waitFor(() => expect(ends).toHaveLength(1));
    // The machine under way was captured (its source could not be stopped), but not the next.
    expect(source.captured).toEqual(['data-01']);
    expect(await store.listCaptures(WEB_01)).toEqual([]);
    // Told as it is recorded: failed, as the caller was told, not succeeded.
    expect(ends[0].error).toMatchObject({
      name: 'CaptureFailedError',
      statusCode: 503,
      message: claimed!.error!.message,
    });
    expect(await captures.captureRequest(requestId)).toEqual(claimed);
  });

  it('stops the capture under way of a request whose heartbeat finds it ended by another replica, recording no failure of the machine', async () => {
    const { knex, source, store, captures } = await overWebAndDb(
      new StoppableSource(),
    );
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const ends: CaptureRequestEnd[] = [];
      const { requestId } = await captures.requestCapture(
        WEB,
        undefined,
        async end => {
          ends.push(end);
        },
      );
      await vi.waitFor(() => expect(source.started).toBe(1));
      await silence(knex, requestId, 61_000);
      expect(await captures.captureRequest(requestId)).toMatchObject({
        status: 'failed',
      });
      // Its next heartbeat finds it ended.
      vi.advanceTimersByTime(5_000);
      await vi.waitFor(() => expect(ends).toHaveLength(1));
      expect(source.captured).toEqual([]);
      expect(await store.listCaptures(WEB_01)).toEqual([]);
      expect((await store.captureFailures([DATA, WEB_01])).size).toBe(0);
      expect(ends[0].error).toMatchObject({ statusCode: 503 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends a request whose backend died after its last capture, before its end, succeeded with its captures', async () => {
    const { knex, store, captures } = await overWebAndDb();
    const [data] = await captures.captureEntity(WEB, DATA);
    const [web] = await captures.captureEntity(WEB, WEB_01);
    const accept = async (requestId: string, machineRefs: string[]) => {
      await store.requests.insert({
        requestId,
        entityRef: WEB,
        machineRefs,
        createdAt: new Date().toISOString(),
      });
    };

    // One machine, captured: succeeded, not "capture of undefined failed".
    await accept('one', [DATA]);
    await store.requests.progress('one', [data]);
    await silence(knex, 'one', 61_000);
    expect(await captures.captureRequest('one')).toMatchObject({
      status: 'succeeded',
      captures: [data],
    });

    // Every machine captured: succeeded.
    await accept('all', [DATA, WEB_01]);
    await store.requests.progress('all', [data, web]);
    await silence(knex, 'all', 61_000);
    expect(await captures.captureRequest('all')).toMatchObject({
      status: 'succeeded',
      captures: [data, web],
    });

    // One of two left: that one alone named.
    await accept('half', [DATA, WEB_01]);
    await store.requests.progress('half', [data]);
    await silence(knex, 'half', 61_000);
    const half = await captures.captureRequest('half');
    expect(half).toMatchObject({
      status: 'failed',
      statusCode: 503,
      captures: [data],
      error: {
        name: 'CaptureFailedError',
        failed: [{ machineRef: WEB_01, kind: 'unreachable' }],
      },
    });
    expect(half!.error!.message).toBe(
      `capture of ${WEB}: 1 of 2 machines not captured: ${WEB_01}: ServiceUnavailableError: capture request half was interrupted: the backend taking it stopped (no heartbeat for 60 s) before it finished: capture again; captured, and kept: ${DATA}`,
    );

    // One machine, not captured: named.
    await accept('none', [WEB_01]);
    await silence(knex, 'none', 61_000);
    expect((await captures.captureRequest('none'))!.error!.message).toBe(
      `capture of ${WEB_01} failed: capture request none was interrupted: the backend taking it stopped (no heartbeat for 60 s) before it finished: capture again`,
    );
  });

  it.each(databases.eachSupportedId())(
    "says how far the capture under way is while it captures, with the numbers of its line, that machine's line gone once its capture ended, on %s",
    async databaseId => {
      const { source, captures } = await overWebAndDb(
        new SayingSource(),
        databaseId,
      );
      source.gated.add('data-01');
      source.gated.add('web-01');
      const ends: CaptureRequestEnd[] = [];
      const { requestId } = await captures.requestCapture(
        WEB,
        undefined,
        async end => {
          ends.push(end);
        },
      );
      await vi.waitFor(async () =>
        expect((await captures.captureRequest(requestId))?.progress).toEqual({
          machineRef: DATA,
          message: SayingSource.LINE,
          at: expect.any(String),
          what: 'volume /data (machine paused)',
          doneBytes: 300 * 1024 * 1024,
          elapsedMs: 2_500,
        }),
      );
      expect(source.waiting.has('data-01')).toBe(true);
      source.letThrough('data-01');
      await vi.waitFor(() => expect(source.waiting.has('web-01')).toBe(true));
      // web-01's capture says nothing: data-01's line went with its capture.
      await vi.waitFor(async () =>
        expect(await captures.captureRequest(requestId)).toMatchObject({
          status: 'capturing',
          captures: [{ machineRef: DATA }],
        }),
      );
      expect((await captures.captureRequest(requestId))!.progress).toBe(
        undefined,
      );
      source.letThrough('web-01');
      await vi.waitFor(() => expect(ends).toHaveLength(1));
      const ended = await captures.captureRequest(requestId);
      expect(ended).toMatchObject({ status: 'succeeded' });
      expect(ended!.progress).toBeUndefined();
    },
  );

  it('fails the requests it is taking as interrupted by its shutdown, once their capture under way stopped, and captures no further machine', async () => {
    const { source, captures } = await overWebAndDb();
    source.gated.add('data-01');
    const ends: CaptureRequestEnd[] = [];
    const { requestId } = await captures.requestCapture(
      WEB,
      undefined,
      async end => {
        ends.push(end);
      },
    );
    await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
    const shutdown = captures.shutdown();
    // The capture under way stops (here it ends) as the backend shuts down.
    source.letThrough('data-01');
    await shutdown;

    expect(source.captured).toEqual(['data-01']);
    const request = await captures.captureRequest(requestId);
    expect(request).toMatchObject({
      status: 'failed',
      statusCode: 503,
      captures: [{ machineRef: DATA }],
      error: {
        name: 'CaptureFailedError',
        failed: [{ machineRef: WEB_01, kind: 'unreachable' }],
      },
    });
    expect(request!.error!.message).toBe(
      `capture of ${WEB}: 1 of 2 machines not captured: ${WEB_01}: ServiceUnavailableError: capture request ${requestId} was interrupted: the backend taking it shut down before it finished: capture again; captured, and kept: ${DATA}`,
    );
    expect(ends).toHaveLength(1);
    expect(ends[0].error).toMatchObject({ statusCode: 503 });
  });

  it.each(databases.eachSupportedId())(
    'counts for a request the capture another request is taking of its machine, waiting for it, on %s',
    async databaseId => {
      const { source, captures, logger } = await overWebAndDb(
        undefined,
        databaseId,
      );
      source.gated.add('data-01');
      source.gated.add('web-01');
      const ends: CaptureRequestEnd[] = [];
      const ended = async (end: CaptureRequestEnd) => {
        ends.push(end);
      };
      // The site and its database asked for at the same moment: data-01 is the site's to take.
      const site = await captures.requestCapture(WEB, undefined, ended);
      const db = await captures.requestCapture(DB, undefined, ended);
      expect(db).toMatchObject({ status: 'capturing', machineRefs: [DATA] });
      await vi.waitFor(async () =>
        expect(
          (await captures.captureRequest(db.requestId))?.progress?.message,
        ).toBe(
          `Waiting for capture request ${site.requestId}, which is capturing ${DATA}: its capture counts for this request`,
        ),
      );
      source.letThrough();
      await vi.waitFor(() => expect(ends).toHaveLength(2));

      const siteEnd = await captures.captureRequest(site.requestId);
      const dbEnd = await captures.captureRequest(db.requestId);
      expect(siteEnd).toMatchObject({ status: 'succeeded' });
      const [taken] = siteEnd!.captures.filter(c => c.machineRef === DATA);
      expect(dbEnd).toMatchObject({ status: 'succeeded', captures: [taken] });
      expect(dbEnd!.progress).toBeUndefined();
      expect(dbEnd!.error).toBeUndefined();
      // One capture of data-01, not two.
      expect(source.captured.sort()).toEqual(['data-01', 'web-01']);
      // The line saying so, in the waiting request's log.
      const children: LoggerService[] = vi
        .mocked(logger.child)
        .mock.results.map((child: { value: LoggerService }) => child.value);
      const said = children.flatMap(child =>
        vi.mocked(child.info).mock.calls.map(([line]) => line),
      );
      expect(said).toContain(
        `Capture request: ${DATA} was captured by capture request ${site.requestId} (capture ${taken.id} at ${taken.createdAt}), counted for this request`,
      );
    },
  );

  it('counts for a request the scheduled capture under way of its machine, waiting for it', async () => {
    const { source, captures } = await overWebAndDb();
    source.gated.add('data-01');
    const scheduled = captures.captureMachine({
      machineRef: DATA,
      engine: 'primary',
      container: 'data-01',
    });
    await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
    const ends: CaptureRequestEnd[] = [];
    const db = await captures.requestCapture(DB, undefined, async end => {
      ends.push(end);
    });
    source.letThrough();
    const taken = await scheduled;
    await vi.waitFor(() => expect(ends).toHaveLength(1));
    expect(await captures.captureRequest(db.requestId)).toMatchObject({
      status: 'succeeded',
      captures: [{ id: taken.id, machineRef: DATA }],
    });
    expect(source.captured).toEqual(['data-01']);
  });

  it.each(databases.eachSupportedId())(
    'fails a request for the machine whose capture by another request it waited for as that capture failed, on %s',
    async databaseId => {
      const { source, captures } = await overWebAndDb(
        new FailingSource(),
        databaseId,
      );
      source.gated.add('data-01');
      const ends: CaptureRequestEnd[] = [];
      const ended = async (end: CaptureRequestEnd) => {
        ends.push(end);
      };
      const site = await captures.requestCapture(WEB, undefined, ended);
      await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
      const db = await captures.requestCapture(DB, undefined, ended);
      source.letThrough();
      await vi.waitFor(() => expect(ends).toHaveLength(2));

      expect(await captures.captureRequest(db.requestId)).toMatchObject({
        status: 'failed',
        captures: [],
        error: {
          message: `capture of ${DATA} failed; caused by Error: capture request ${site.requestId} failed to capture it; caused by Error: engine: no space left saving data-01`,
        },
      });
      expect(source.captured).toEqual(['web-01']);
    },
  );
});
