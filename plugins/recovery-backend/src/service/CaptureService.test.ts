import type { SchedulerService } from '@backstage/backend-plugin-api';
import {
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import {
  ConflictError,
  InputError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  CaptureStoppedError,
  engineError,
  type CapturedMachine,
  type MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { componentEntity, machineEntity } from '../testing/entities';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { recoveryPlugin } from '../plugin';
import {
  FakeCaptureSource,
  GatedCaptureSource,
} from '../testing/FakeCaptureSource';
import { providersModule } from '../testing/providers';
import { recordingAuditor } from '../testing/auditor';
import { recordingLogger } from '../testing/logger';
import { CaptureService } from './CaptureService';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';
import { captureAndPoll } from '../testing/captureRequests';

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const locator = {
  machineRef: 'resource:default/data-01',
  engine: 'primary',
  container: 'data-01',
};

describe('CaptureService', () => {
  async function service<S extends FakeCaptureSource>(
    source: S = new FakeCaptureSource() as S,
    keepLast = 3,
    ...more: FakeCaptureSource[]
  ) {
    return serviceWithin(undefined, source, keepLast, ...more);
  }

  /** As `service`, a capture's deadline `timeoutMs` (the default where undefined). */
  async function serviceWithin<S extends FakeCaptureSource>(
    timeoutMs: number | undefined,
    source: S = new FakeCaptureSource() as S,
    keepLast = 3,
    ...more: FakeCaptureSource[]
  ) {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const providers = new ProviderRegistry();
    for (const s of [source, ...more]) providers.addCaptureSource(s);
    // captureMachine plans nothing.
    const plans = new PlanService({} as CatalogGraphLoader);
    const logger = recordingLogger();
    const captures = new CaptureService(
      new CaptureStore(knex),
      providers,
      plans,
      logger,
      keepLast,
      mockServices.auditor.mock(),
      timeoutMs,
    );
    return {
      knex,
      source,
      captures,
      captureStore: new CaptureStore(knex),
      logger,
    };
  }

  it('records a capture and keeps its archive', async () => {
    const { knex, source, captures } = await service();
    const capture = await captures.captureMachine(locator);
    expect(source.captured).toEqual(['data-01']);
    expect(source.discarded).toEqual([]);
    expect(capture).toMatchObject({
      machineRef: 'resource:default/data-01',
      durationMs: 5,
      pausedMs: 2,
    });
    const [stored] = await new CaptureStore(knex).listCaptures(
      locator.machineRef,
    );
    expect(stored).toMatchObject(capture);
  });

  it('keeps the capture of a machine that was not serving, recording its state, answering it and warning of it', async () => {
    const { source, captures, captureStore, logger } = await service();
    const exited = {
      status: 'exited' as const,
      exitCode: 137,
      since: '2026-12-06T00:59:00Z',
    };
    source.machineStates.set('data-01', exited);
    const capture = await captures.captureMachine(locator);
    expect(capture.machineState).toEqual(exited);
    expect(
      (await captureStore.latestCaptures([locator.machineRef])).get(
        locator.machineRef,
      ),
    ).toMatchObject({ id: capture.id, machineState: exited });
    const warned = () => logger.lines.filter(l => l.level === 'warn');
    expect(warned()).toEqual([
      {
        level: 'warn',
        message: `resource:default/data-01 was exited (code 137, since 2026-12-06T00:59:00Z) when captured at ${capture.createdAt}: the capture holds a machine that was not serving: readiness puts what it serves at risk until a capture of it taken while it runs and is not unhealthy`,
        fields: { machineRef: locator.machineRef, captureId: capture.id },
      },
    ]);
    // Captured again while it runs: said so, without a warning.
    source.machineStates.set('data-01', { status: 'running' });
    logger.lines.length = 0;
    expect((await captures.captureMachine(locator)).machineState).toEqual({
      status: 'running',
    });
    expect(warned()).toEqual([]);
  });

  it('discards the archive and image of a capture it could not record', async () => {
    let gone = async () => {};
    const source = new (class extends FakeCaptureSource {
      async capture(...args: Parameters<FakeCaptureSource['capture']>) {
        const captured = await super.capture(...args);
        await gone();
        return captured;
      }
    })();
    const { knex, captures } = await service(source);
    // The database is gone between the capture (its machine claimed there) and its record.
    gone = () => knex.destroy();
    await expect(captures.captureMachine(locator)).rejects.toThrow();
    expect(source.captured).toEqual(['data-01']);
    expect(source.discarded).toHaveLength(1);
  });

  it('logs a pruned capture it could not discard, the capture in the line and the error as its error', async () => {
    const refused = new Error('engine said no');
    const source = new (class extends FakeCaptureSource {
      async discard(): Promise<void> {
        throw refused;
      }
    })();
    const { captures, logger } = await service(source, 1);
    const first = await captures.captureMachine(locator);
    // Kept: the last 1. The first is pruned, and its discard fails.
    await captures.captureMachine(locator);
    expect(logger.lines.filter(l => l.level === 'warn')).toEqual([
      {
        level: 'warn',
        message: 'Could not discard the pruned capture',
        fields: { machineRef: locator.machineRef, captureId: first.id },
        error: refused,
      },
    ]);
  });

  it('records the capture through the source, before the source lets go of it', async () => {
    const recordedWhileHeld: string[][] = [];
    const source = new (class extends FakeCaptureSource {
      async capture(
        machine: MachineLocator,
        options: {
          captureId: string;
          record?: (c: CapturedMachine) => Promise<void>;
        },
      ) {
        const captured = await super.capture(machine, options);
        await options.record!(captured);
        // Still held here: a backend stopped now leaves the source's note, and the record is in.
        recordedWhileHeld.push(
          (await captureStore.listCaptures(machine.machineRef)).map(c => c.id),
        );
        return captured;
      }
    })();
    const held = await service(source);
    const captureStore = held.captureStore;
    const capture = await held.captures.captureMachine(locator);
    expect(recordedWhileHeld).toEqual([[capture.id]]);
    // Recorded once.
    expect(
      (await captureStore.listCaptures(locator.machineRef)).map(c => c.id),
    ).toEqual([capture.id]);
  });

  it('after pruning, has the source remove what no record of the machine accounts for, and survives its failure', async () => {
    const answers: string[][] = [];
    let fails = false;
    const source = new (class extends FakeCaptureSource {
      async removeUnrecorded(
        recorded: (machineRefs: string[]) => Promise<string[]>,
        machine?: MachineLocator,
      ) {
        expect(machine).toEqual(locator);
        answers.push(await recorded([locator.machineRef]));
        if (fails) throw new Error('engine gone');
        return [];
      }
    })();
    const { captures, captureStore, logger } = await service(source, 2);
    const taken: string[] = [];
    for (let i = 0; i < 3; i++)
      taken.push((await captures.captureMachine(locator)).id);
    // The machine's records once the last 2 are kept: the capture just taken among them.
    expect(answers.map(ids => [...ids].sort())).toEqual([
      [taken[0]],
      [taken[0], taken[1]].sort(),
      [taken[1], taken[2]].sort(),
    ]);
    expect(source.discarded).toEqual([taken[0]]);
    fails = true;
    const fourth = await captures.captureMachine(locator);
    expect(
      (await captureStore.listCaptures(locator.machineRef)).map(c => c.id),
    ).toContain(fourth.id);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'Could not remove what unrecorded captures of the machine left',
      fields: { machineRef: locator.machineRef },
      error: new Error('engine gone'),
    });
  });

  it('has every capture source remove what unrecorded captures of any machine left, from the records of the machines it asks about; a failure logged', async () => {
    const other = {
      machineRef: 'resource:default/web-01',
      engine: 'primary',
      container: 'web-01',
    };
    const Sweeping = class extends FakeCaptureSource {
      readonly answers: string[][] = [];
      fails = false;
      async removeUnrecorded(
        recorded: (machineRefs: string[]) => Promise<string[]>,
        machine?: MachineLocator,
      ) {
        if (machine) return [];
        if (this.fails) throw new Error(`engine ${this.engineId} gone`);
        this.answers.push(
          [
            ...(await recorded([
              locator.machineRef,
              other.machineRef,
              'resource:default/never-recorded',
            ])),
          ].sort(),
        );
        return [];
      }
    };
    const primary = new Sweeping('primary');
    const secondary = new Sweeping('secondary');
    const { captures, logger } = await service(primary, 2, secondary);
    const taken = [];
    for (let i = 0; i < 3; i++)
      taken.push((await captures.captureMachine(locator)).id);
    const ofOther = (await captures.captureMachine(other)).id;

    await captures.removeUnrecorded();
    // Every machine asked about, pruned captures not among them.
    const expected = [taken[1], taken[2], ofOther].sort();
    expect(primary.answers).toEqual([expected]);
    expect(secondary.answers).toEqual([expected]);

    // One source failing: logged, and the next still swept.
    primary.fails = true;
    await expect(captures.removeUnrecorded()).resolves.toBeUndefined();
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'Could not remove what unrecorded captures on the engine left',
      fields: { engine: 'primary' },
      error: new Error('engine primary gone'),
    });
    expect(secondary.answers).toHaveLength(2);
  });

  it('runs the sweep of unrecorded captures when the backend starts, and then on its schedule', async () => {
    let sweeps = 0;
    const source = new (class extends FakeCaptureSource {
      async removeUnrecorded(
        _recorded: (machineRefs: string[]) => Promise<string[]>,
        machine?: MachineLocator,
      ) {
        if (!machine) sweeps++;
        return [];
      }
    })();
    const scheduler = mockServices.scheduler.mock();
    const backend = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({ captureSources: [source] }),
        catalogServiceMock.factory({ entities: [] }),
        scheduler.factory,
      ],
    });
    try {
      await vi.waitFor(() => expect(sweeps).toBe(1));
      const tasks: Parameters<SchedulerService['scheduleTask']>[0][] =
        scheduler.scheduleTask.mock.calls.map((call: unknown[]) => call[0]);
      const task = tasks.find(t => t.id === 'recovery-unrecorded-captures');
      await task!.fn(new AbortController().signal);
      expect(sweeps).toBe(2);
    } finally {
      await backend.stop();
    }
  });

  it("records the plugin's sweep of unrecorded captures with the backend's auditor", async () => {
    const source = new (class extends FakeCaptureSource {
      async removeUnrecorded() {
        return ['left-by-a-stopped-backend'];
      }
    })();
    const auditor = recordingAuditor();
    const backend = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({ captureSources: [source] }),
        catalogServiceMock.factory({ entities: [] }),
        mockServices.auditor.mock(auditor).factory,
      ],
    });
    try {
      await vi.waitFor(() =>
        expect(auditor.events).toEqual([
          expect.objectContaining({
            eventId: 'capture-retention',
            request: undefined,
            meta: {
              pass: 'unrecorded-sweep',
              engines: [
                {
                  engine: 'primary',
                  unrecordedCaptureIds: ['left-by-a-stopped-backend'],
                },
              ],
            },
            ends: [{ status: 'succeeded', meta: undefined }],
          }),
        ]),
      );
    } finally {
      await backend.stop();
    }
  });

  /** A source whose captures wait for `release` (an engine that does not answer), seeing their signal. */
  class StuckSource extends FakeCaptureSource {
    signals: (AbortSignal | undefined)[] = [];
    release = () => {};
    constructor(
      private readonly stopsAtSignal: boolean,
      private readonly failure?: Error,
    ) {
      super();
    }
    async capture(
      machine: MachineLocator,
      options: {
        captureId: string;
        signal?: AbortSignal;
        record?: (c: CapturedMachine) => Promise<void>;
      },
    ) {
      this.signals.push(options.signal);
      await new Promise<void>((resolve, reject) => {
        this.release = resolve;
        if (this.stopsAtSignal)
          options.signal?.addEventListener('abort', () =>
            reject(this.failure ?? options.signal!.reason),
          );
      });
      return super.capture(machine, options);
    }
  }

  it('gives the source a signal that aborts at the deadline, and fails naming machine, engine and deadline', async () => {
    const source = new StuckSource(true);
    const { captures, captureStore } = await serviceWithin(200, source);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const capturing = captures.captureMachine(locator).catch(e => e);
      await vi.waitFor(() => expect(source.signals).toHaveLength(1));
      // The clock moved on by the deadline, not the 60 s a source has to stop at it: it fails.
      await vi.advanceTimersByTimeAsync(200);
      const failure = await capturing;
      expect(failure.message).toBe(
        'capture of resource:default/data-01 on engine primary did not finish within 0.2 s (recovery.captures.timeout)',
      );
      // 503, as for an engine that does not answer.
      expect(failure.name).toBe('ServiceUnavailableError');
      expect(source.signals[0]?.aborted).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    expect(await captureStore.listCaptures(locator.machineRef)).toEqual([]);
  });

  it('names the deadline where the source fails at it with an error of its own, keeping its name', async () => {
    const source = new StuckSource(
      true,
      new NotFoundError('the engine cut the stream'),
    );
    const { captures } = await serviceWithin(200, source);
    const failure = await captures.captureMachine(locator).catch(e => e);
    expect(failure.message).toBe(
      'capture of resource:default/data-01 on engine primary did not finish within 0.2 s (recovery.captures.timeout); caused by NotFoundError: the engine cut the stream',
    );
    expect(failure.name).toBe('NotFoundError');
  });

  it("keeps the status of an engine's failure (EngineError: 502, 503) where it names the machine or the deadline with it", async () => {
    const failing = (statusCode: 502 | 503) =>
      new (class extends FakeCaptureSource {
        async capture(): Promise<never> {
          throw engineError(
            `Docker engine 'primary' ${statusCode === 502 ? 'answered HTTP 500' : 'is unreachable'}`,
            'primary',
            statusCode === 502 ? 'answered' : 'unreachable',
          );
        }
      })();
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities: [machineEntity('data-01')] }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    for (const statusCode of [502, 503] as const) {
      const providers = new ProviderRegistry();
      providers.addCaptureSource(failing(statusCode));
      const captures = new CaptureService(
        new CaptureStore(knex),
        providers,
        new PlanService(graphs),
        mockServices.logger.mock(),
        3,
        mockServices.auditor.mock(),
      );
      // An entity's capture names the machine: ForwardedError alone would keep the name, not the status (a 500).
      const failure = await captures
        .captureEntity('resource:default/data-01')
        .catch(e => e);
      expect({
        statusCode: failure.statusCode,
        message: failure.message,
      }).toEqual({
        statusCode,
        message: `capture of resource:default/data-01 failed; caused by ${statusCode === 502 ? 'EngineFailedError' : 'ServiceUnavailableError'}: Docker engine 'primary' ${statusCode === 502 ? 'answered HTTP 500' : 'is unreachable'}`,
      });
    }
    // Past the deadline, the deadline is named, the engine's status kept.
    const { captures } = await serviceWithin(
      200,
      new StuckSource(
        true,
        engineError(
          "Docker engine 'primary' answered HTTP 500: commit failed",
          'primary',
          'answered',
        ),
      ),
    );
    const late = await captures.captureMachine(locator).catch(e => e);
    expect({
      name: late.name,
      statusCode: late.statusCode,
      message: late.message,
    }).toEqual({
      name: 'EngineFailedError',
      statusCode: 502,
      message:
        "capture of resource:default/data-01 on engine primary did not finish within 0.2 s (recovery.captures.timeout); caused by EngineFailedError: Docker engine 'primary' answered HTTP 500: commit failed",
    });
  });

  it('words deadlines of minutes as such, and lets a capture within its deadline finish', async () => {
    const source = new StuckSource(true);
    const { captures } = await serviceWithin(30 * 60_000, source);
    const capturing = captures.captureMachine(locator);
    await vi.waitFor(() => expect(source.signals).toHaveLength(1));
    source.release();
    await expect(capturing).resolves.toMatchObject({
      machineRef: locator.machineRef,
    });
    expect(source.signals[0]?.aborted).toBe(false);
  });

  it('fails, rather than wait for good, with a source that ignores the signal, and discards what it returns late', async () => {
    const source = new StuckSource(false);
    const { captures, captureStore } = await serviceWithin(30 * 60_000, source);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const capturing = captures.captureMachine(locator).catch(e => e);
      await vi.waitFor(() => expect(source.signals).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(30 * 60_000);
      expect(source.signals[0]?.aborted).toBe(true);
      // The grace a source has to stop at the deadline.
      await vi.advanceTimersByTimeAsync(60_000);
      expect((await capturing).message).toBe(
        'capture of resource:default/data-01 on engine primary did not finish within 30 min (recovery.captures.timeout), and its capture source did not stop within 60 s of it',
      );
    } finally {
      vi.useRealTimers();
    }
    source.release();
    await vi.waitFor(() => expect(source.discarded).toHaveLength(1));
    expect(await captureStore.listCaptures(locator.machineRef)).toEqual([]);
  });

  it('gives up, after the grace, a source that ignores a stop signalled before the source was called', async () => {
    // A capture request ended elsewhere while its capture claimed the machine: its stop came first.
    const source = new StuckSource(false);
    const { captures, knex } = await serviceWithin(30 * 60_000, source);
    const stop = new AbortController();
    stop.abort(new ServiceUnavailableError('capture request r1 was ended'));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const capturing = captures
        .captureMachine(locator, undefined, stop.signal)
        .catch(e => e);
      await vi.waitFor(() => expect(source.signals).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(60_000);
      const settled = await Promise.race([capturing, Promise.resolve()]);
      expect(settled?.message).toBe(
        'capture request r1 was ended, and its capture source did not stop within 60 s of it',
      );
    } finally {
      vi.useRealTimers();
    }
    // The machine stays claimed until the source is done.
    expect(await knex('recovery_capture_claims').first()).toBeDefined();
    source.release();
    await vi.waitFor(async () =>
      expect(await knex('recovery_capture_claims').first()).toBe(undefined),
    );
  });

  it('refuses the record of a capture its source finishes after it was given up: the source keeps nothing', async () => {
    const refused: string[] = [];
    const source = new (class extends StuckSource {
      async capture(
        machine: MachineLocator,
        options: {
          captureId: string;
          signal?: AbortSignal;
          record?: (c: CapturedMachine) => Promise<void>;
        },
      ) {
        const captured = await super.capture(machine, options);
        await options.record!(captured).catch(e => {
          refused.push(e.message);
          throw e;
        });
        return captured;
      }
    })(false);
    const { captures, captureStore } = await serviceWithin(1000, source);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const capturing = captures.captureMachine(locator).catch(e => e);
      await vi.waitFor(() => expect(source.signals).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(61_000);
      expect((await capturing).name).toBe('ServiceUnavailableError');
    } finally {
      vi.useRealTimers();
    }
    source.release();
    await vi.waitFor(() =>
      expect(refused).toEqual([
        'capture of resource:default/data-01 on engine primary did not finish within 1 s (recovery.captures.timeout)',
      ]),
    );
    expect(await captureStore.listCaptures(locator.machineRef)).toEqual([]);
  });

  it('returns a recorded capture at the deadline where removing what unrecorded ones left hangs, leaving that to the sweep', async () => {
    const source = new (class extends FakeCaptureSource {
      async removeUnrecorded() {
        // The engine went silent right after the capture.
        return new Promise<string[]>(() => {});
      }
    })();
    const { captures, captureStore, logger } = await serviceWithin(300, source);
    const capture = await captures.captureMachine(locator);
    expect(
      (await captureStore.listCaptures(locator.machineRef)).map(c => c.id),
    ).toEqual([capture.id]);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message:
        'Captured the machine, but pruning its older captures and removing what unrecorded ones left did not finish within its deadline (recovery.captures.timeout): left to the sweep of unrecorded captures',
      fields: { machineRef: locator.machineRef, captureId: capture.id },
    });
  });

  it('takes its deadline from recovery.captures.timeout: a POST /captures on an engine that does not answer is a 503 naming it', async () => {
    const source = new StuckSource(true);
    const start = (captures: { timeout: string }) =>
      startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({ captureSources: [source] }),
          catalogServiceMock.factory({ entities: [machineEntity('data-01')] }),
          mockServices.rootConfig.factory({ data: { recovery: { captures } } }),
        ],
      });
    await expect(start({ timeout: '0s' })).rejects.toThrow(
      'Invalid duration "0s" at recovery.captures.timeout: must be longer than 0s',
    );
    const backend = await start({ timeout: '300ms' });
    try {
      const request = await captureAndPoll(backend.server, {
        entityRef: 'resource:default/data-01',
      });
      expect({
        status: request.status,
        statusCode: request.statusCode,
        message: request.error?.message,
      }).toEqual({
        status: 'failed',
        statusCode: 503,
        message:
          'capture of resource:default/data-01 failed; caused by ServiceUnavailableError: capture of resource:default/data-01 on engine primary did not finish within 0.3 s (recovery.captures.timeout)',
      });
    } finally {
      await backend.stop();
    }
  });

  /** A capture service over the real plan service, reading `entities` as the catalog. */
  async function overCatalog(entities: Entity[]) {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const source = new FakeCaptureSource();
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    return {
      source,
      captures: new CaptureService(
        new CaptureStore(knex),
        providers,
        new PlanService(graphs),
        mockServices.logger.mock(),
        3,
        mockServices.auditor.mock(),
      ),
    };
  }

  it('captures the machines of an entity whose plan a dependency cycle stops: a cycle stops recoveries, not captures', async () => {
    const { source, captures } = await overCatalog([
      machineEntity('data-01'),
      machineEntity('web-01'),
      {
        ...componentEntity('db', []),
        relations: [
          { type: 'dependsOn', targetRef: 'resource:default/data-01' },
          { type: 'dependsOn', targetRef: 'component:default/web' },
        ],
      },
      {
        ...componentEntity('web', []),
        relations: [
          { type: 'dependsOn', targetRef: 'component:default/db' },
          { type: 'dependsOn', targetRef: 'resource:default/web-01' },
        ],
      },
    ]);
    expect(
      (await captures.captureEntity('component:default/web')).map(
        c => c.machineRef,
      ),
    ).toEqual(['resource:default/data-01', 'resource:default/web-01']);
    expect(
      (
        await captures.captureEntity(
          'component:default/web',
          'resource:default/web-01',
        )
      ).map(c => c.machineRef),
    ).toEqual(['resource:default/web-01']);
    expect(source.captured).toEqual(['data-01', 'web-01', 'web-01']);
  });

  it('refuses, naming it, to capture an entity that runs on no machine, rather than answer with nothing captured', async () => {
    const { captures } = await overCatalog([componentEntity('lonely', [])]);
    const refused = await captures
      .captureEntity('component:default/lonely')
      .catch(e => e);
    expect(refused).toBeInstanceOf(InputError);
    expect(refused.message).toBe(
      'component:default/lonely runs on no machine, so there is nothing to capture: add dependsOn relations to machine Resources',
    );
  });

  it('names the machine whose capture failed, and those captured before it, keeping the status', async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    // web on web-01 depends on db on data-01: data-01 is captured first, then web-01 fails.
    const entities = [
      machineEntity('data-01'),
      machineEntity('web-01'),
      {
        ...componentEntity('db', []),
        relations: [
          { type: 'dependsOn', targetRef: 'resource:default/data-01' },
        ],
      },
      {
        ...componentEntity('web', []),
        relations: [
          { type: 'dependsOn', targetRef: 'component:default/db' },
          { type: 'dependsOn', targetRef: 'resource:default/web-01' },
        ],
      },
    ];
    const source = new (class extends FakeCaptureSource {
      async capture(machine: MachineLocator, options: { captureId: string }) {
        if (machine.container === 'web-01')
          throw new ConflictError('capture 42 is under way');
        return super.capture(machine, options);
      }
    })();
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    const captures = new CaptureService(
      new CaptureStore(knex),
      providers,
      new PlanService(graphs),
      mockServices.logger.mock(),
      3,
      mockServices.auditor.mock(),
    );
    const failure = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    expect(failure.message).toBe(
      'capture of component:default/web: 1 of 2 machines not captured: resource:default/web-01: ConflictError: capture 42 is under way; captured, and kept: resource:default/data-01',
    );
    // A capture under way elsewhere, its source says: the 409 kept.
    expect({ name: failure.name, statusCode: failure.statusCode }).toEqual({
      name: 'CaptureFailedError',
      statusCode: 409,
    });
    expect(
      failure.captures.map((c: { machineRef: string }) => c.machineRef),
    ).toEqual(['resource:default/data-01']);
    expect(
      (await new CaptureStore(knex).listCaptures('resource:default/data-01'))
        .length,
    ).toBe(1);
    // No failure of web-01 to put its entities at risk: it is being captured.
    expect(
      await new CaptureStore(knex).captureFailures(['resource:default/web-01']),
    ).toEqual(new Map());
  });

  it('goes on past a machine whose capture failed, naming each failure with its machine and cause, never a 404, and records it until a capture succeeds', async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const entities = [
      machineEntity('infra-01'),
      machineEntity('data-01'),
      machineEntity('web-01'),
      {
        ...componentEntity('web', []),
        relations: ['infra-01', 'data-01', 'web-01'].map(m => ({
          type: 'dependsOn',
          targetRef: `resource:default/${m}`,
        })),
      },
    ];
    const gone = new Set(['infra-01']);
    const source = new (class extends FakeCaptureSource {
      async capture(machine: MachineLocator, options: { captureId: string }) {
        if (gone.has(machine.container)) {
          throw new NotFoundError(
            `machine ${machine.machineRef}: no container "${machine.container}" on engine primary`,
          );
        }
        if (machine.container === 'data-01' && gone.has('engine')) {
          throw engineError(
            "Docker engine 'primary' is unreachable",
            'primary',
            'unreachable',
          );
        }
        return super.capture(machine, options);
      }
    })();
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    const captureStore = new CaptureStore(knex);
    const captures = new CaptureService(
      captureStore,
      providers,
      new PlanService(graphs),
      mockServices.logger.mock(),
      3,
      mockServices.auditor.mock(),
    );

    const failure = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    const noContainer =
      'machine resource:default/infra-01: no container "infra-01" on engine primary';
    expect(failure.name).toBe('CaptureFailedError');
    // The engine lacks the container the catalog names: not a 404, which would say the entity is missing.
    expect(failure.statusCode).toBe(502);
    expect(failure.message).toBe(
      `capture of component:default/web: 1 of 3 machines not captured: resource:default/infra-01: NotFoundError: ${noContainer}; captured, and kept: resource:default/data-01, resource:default/web-01`,
    );
    expect(failure.failed).toEqual([
      {
        machineRef: 'resource:default/infra-01',
        kind: 'failed',
        error: { name: 'NotFoundError', message: noContainer },
      },
    ]);
    expect(
      failure.captures.map((c: { machineRef: string }) => c.machineRef),
    ).toEqual(['resource:default/data-01', 'resource:default/web-01']);
    expect(
      (await captureStore.listCaptures('resource:default/web-01')).length,
    ).toBe(1);
    const [recorded] = (
      await captureStore.captureFailures([
        'resource:default/infra-01',
        'resource:default/web-01',
      ])
    ).values();
    expect(recorded).toMatchObject({
      machineRef: 'resource:default/infra-01',
      engine: 'primary',
      container: 'infra-01',
      message: noContainer,
    });

    // The machine alone: its own failure, named, still not a 404.
    const alone = await captures
      .captureEntity('component:default/web', 'resource:default/infra-01')
      .catch(e => e);
    expect({
      name: alone.name,
      statusCode: alone.statusCode,
      message: alone.message,
    }).toEqual({
      name: 'NotFoundError',
      statusCode: 502,
      message: `capture of resource:default/infra-01 failed; caused by NotFoundError: ${noContainer}`,
    });

    // Two failures, one of an engine out of reach: a 502 still (not every one is worth retrying).
    gone.add('engine');
    const two = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    expect({
      statusCode: two.statusCode,
      failed: two.failed.map(
        (f: { machineRef: string; kind: string }) =>
          `${f.machineRef} ${f.kind}`,
      ),
    }).toEqual({
      statusCode: 502,
      failed: [
        'resource:default/data-01 unreachable',
        'resource:default/infra-01 failed',
      ],
    });
    // Only the engine out of reach: a 503, worth trying again.
    gone.delete('infra-01');
    const unreachable = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    expect({
      name: unreachable.name,
      statusCode: unreachable.statusCode,
    }).toEqual({ name: 'CaptureFailedError', statusCode: 503 });

    // Captured again: its failure is no longer recorded.
    gone.clear();
    await captures.captureEntity('component:default/web');
    expect(
      await captureStore.captureFailures([
        'resource:default/infra-01',
        'resource:default/data-01',
      ]),
    ).toEqual(new Map());
  });

  it('records no failed capture of a machine whose capture the backend stopped as it shut down: a 503, nothing said of the machine', async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const entities = [
      machineEntity('web-01'),
      {
        ...componentEntity('web', []),
        relations: [
          { type: 'dependsOn', targetRef: 'resource:default/web-01' },
        ],
      },
    ];
    const source = new (class extends FakeCaptureSource {
      async capture(machine: MachineLocator): Promise<never> {
        throw new CaptureStoppedError(
          `capture of ${machine.machineRef} stopped as the backend shuts down: nothing kept`,
        );
      }
    })();
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    const captureStore = new CaptureStore(knex);
    const captures = new CaptureService(
      captureStore,
      providers,
      new PlanService(graphs),
      mockServices.logger.mock(),
      3,
      mockServices.auditor.mock(),
    );
    const stopped = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    // Named as @backstage/errors' 503, which Backstage's error handler answers by its name.
    expect(stopped.name).toBe('ServiceUnavailableError');
    expect(
      await captureStore.captureFailures(['resource:default/web-01']),
    ).toEqual(new Map());
  });

  /**
   * A source whose captures of the containers in `gated` wait until let through (an image that takes
   * long to save), and whose captures of those in `failing` fail, as an engine's own error would.
   */
  /** Gated, and failing the `failing` containers as the engine would. */
  class GatedSource extends GatedCaptureSource {
    readonly failing = new Set<string>();
    override async capture(
      machine: MachineLocator,
      options: { captureId: string },
    ) {
      if (this.failing.has(machine.container)) {
        if (this.gated.has(machine.container))
          await new Promise<void>(resolve =>
            this.waiting.set(machine.container, resolve),
          );
        this.captured.push(machine.container);
        throw new Error(`engine: no space left saving ${machine.container}`);
      }
      return super.capture(machine, options);
    }
  }

  it('refuses a capture of a machine it is capturing already with a 409 naming the machine and when that one started, whatever its source', async () => {
    const source = new GatedSource();
    source.gated.add('data-01');
    const { captures, captureStore } = await service(source);
    const first = captures.captureMachine(locator);
    await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));

    const refused = await captures.captureMachine(locator).catch(e => e);
    // Another machine entity naming the same container is the same machine.
    const alias = {
      machineRef: 'resource:default/data-01-alias',
      engine: 'primary',
      container: 'data-01',
    };
    const aliasRefused = await captures.captureMachine(alias).catch(e => e);
    // Another machine is not held up.
    await expect(
      captures.captureMachine({
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: 'web-01',
      }),
    ).resolves.toMatchObject({
      machineRef: 'resource:default/web-01',
    });

    source.letThrough('data-01');
    const taken = await first;
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refused.message).toBe(
      `capture of resource:default/data-01 refused: it is being captured since ${taken.createdAt} (capture ${taken.id}); one capture of a machine at a time: try again once it has finished`,
    );
    expect(aliasRefused).toBeInstanceOf(ConflictError);
    expect(aliasRefused.message).toBe(
      `capture of resource:default/data-01-alias refused: it is being captured since ${taken.createdAt} (capture ${taken.id}, as resource:default/data-01: its container data-01 on engine primary); one capture of a machine at a time: try again once it has finished`,
    );
    // The refused ones never reached the source, and left nothing.
    expect(source.captured).toEqual(['web-01', 'data-01']);
    expect(
      (await captureStore.listCaptures(locator.machineRef)).map(c => c.id),
    ).toEqual([taken.id]);
    // Once it has finished, the machine is captured again.
    await expect(captures.captureMachine(locator)).resolves.toMatchObject({
      machineRef: locator.machineRef,
    });
    await expect(captures.captureMachine(alias)).resolves.toMatchObject({
      machineRef: alias.machineRef,
    });
  });

  it('lets go of the machine however its capture ends: failed, past its deadline, its source not stopping, stopped at shutdown, no source', async () => {
    // The source fails.
    const failing = new GatedSource();
    failing.failing.add('data-01');
    const failed = await service(failing);
    await expect(failed.captures.captureMachine(locator)).rejects.toThrow(
      'engine: no space left saving data-01',
    );
    failing.failing.delete('data-01');
    await expect(
      failed.captures.captureMachine(locator),
    ).resolves.toMatchObject({ machineRef: locator.machineRef });

    // Past its deadline.
    const stuck = new StuckSource(true);
    const late = await serviceWithin(100, stuck);
    await expect(late.captures.captureMachine(locator)).rejects.toThrow(
      'did not finish within 0.1 s',
    );
    const again = late.captures.captureMachine(locator).catch(e => e);
    await vi.waitFor(() => expect(stuck.signals).toHaveLength(2));
    expect((await again).name).toBe('ServiceUnavailableError');

    // Its source ignores the deadline: given up after the grace, but the machine stays claimed
    // while the source may still pause and commit it, and is let go once the source is done.
    const deaf = new StuckSource(false);
    const givenUp = await serviceWithin(1000, deaf);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const capturing = givenUp.captures.captureMachine(locator).catch(e => e);
      await vi.waitFor(() => expect(deaf.signals).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(61_000);
      expect((await capturing).message).toContain(
        'its capture source did not stop within 60 s of it',
      );
      await expect(
        givenUp.captures.captureMachine(locator),
      ).rejects.toMatchObject({ name: 'ConflictError' });
      expect(deaf.signals).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
    deaf.release();
    await vi.waitFor(async () =>
      expect(await givenUp.knex('recovery_capture_claims').first()).toBe(
        undefined,
      ),
    );
    expect(deaf.discarded).toHaveLength(1);
    const next = givenUp.captures.captureMachine(locator);
    await vi.waitFor(() => expect(deaf.signals).toHaveLength(2));
    deaf.release();
    await expect(next).resolves.toMatchObject({
      machineRef: locator.machineRef,
    });

    // Stopped as the backend shuts down: the source fails at its own signal, as the Docker one does.
    const shuttingDown = new AbortController();
    const stopping = new (class extends FakeCaptureSource {
      started = 0;
      async capture(machine: MachineLocator, options: { captureId: string }) {
        if (this.started++ === 0) {
          await new Promise((_resolve, reject) =>
            shuttingDown.signal.addEventListener('abort', () =>
              reject(
                new ServiceUnavailableError(
                  `capture of ${machine.machineRef} stopped as the backend shuts down: nothing kept`,
                ),
              ),
            ),
          );
        }
        return super.capture(machine, options);
      }
    })();
    const stopped = await service(stopping);
    const atShutdown = stopped.captures.captureMachine(locator).catch(e => e);
    await vi.waitFor(() => expect(stopping.started).toBe(1));
    expect(
      (await stopped.captures.captureMachine(locator).catch(e => e)).name,
    ).toBe('ConflictError');
    shuttingDown.abort();
    expect((await atShutdown).message).toBe(
      'capture of resource:default/data-01 stopped as the backend shuts down: nothing kept',
    );
    await expect(
      stopped.captures.captureMachine(locator),
    ).resolves.toMatchObject({ machineRef: locator.machineRef });

    // No capture source for its engine.
    const nowhere = { ...locator, engine: 'nowhere' };
    for (let i = 0; i < 2; i++) {
      const refused = await failed.captures
        .captureMachine(nowhere)
        .catch(e => e);
      expect(refused.message).toBe(
        "No capture source for primary engine 'nowhere' (configured: primary)",
      );
    }
  });

  /** A capture service over the real plan service and `source`, web on web-01 depending on db on data-01. */
  async function overWebAndDb(source: FakeCaptureSource) {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const entities = [
      machineEntity('data-01'),
      machineEntity('web-01'),
      {
        ...componentEntity('db', []),
        relations: [
          { type: 'dependsOn', targetRef: 'resource:default/data-01' },
        ],
      },
      {
        ...componentEntity('web', []),
        relations: [
          { type: 'dependsOn', targetRef: 'component:default/db' },
          { type: 'dependsOn', targetRef: 'resource:default/web-01' },
        ],
      },
    ];
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const graphs = new CatalogGraphLoader(
      catalogServiceMock({ entities }),
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
    );
    const captureStore = new CaptureStore(knex);
    return {
      captureStore,
      captures: new CaptureService(
        captureStore,
        providers,
        new PlanService(graphs),
        mockServices.logger.mock(),
        3,
        mockServices.auditor.mock(),
      ),
    };
  }

  it("captures an entity's other machines where one is being captured, and refuses that one at the end, naming those it kept", async () => {
    const source = new GatedSource();
    source.gated.add('data-01');
    const { captures, captureStore } = await overWebAndDb(source);
    // The scheduled capture of data-01 under way.
    const scheduled = captures.captureEntity('resource:default/data-01');
    await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));

    // data-01 comes first in web's plan: left to the capture under way, and web-01 still taken.
    const refused = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    const [webCapture] = await captureStore.listCaptures(
      'resource:default/web-01',
    );
    // Where another machine then fails, its failure is the answer, naming what was kept and what refused.
    source.failing.add('web-01');
    const failed = await captures
      .captureEntity('component:default/web')
      .catch(e => e);
    // Only the busy machine asked for: refused.
    const alone = await captures
      .captureEntity('component:default/web', 'resource:default/data-01')
      .catch(e => e);

    source.letThrough('data-01');
    const [taken] = await scheduled;
    const underWay = `capture of resource:default/data-01 refused: it is being captured since ${taken.createdAt} (capture ${taken.id})`;
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refused.message).toBe(
      `${underWay}; one capture of a machine at a time: try again once it has finished (captured, and kept: resource:default/web-01)`,
    );
    expect(webCapture.createdAt >= taken.createdAt).toBe(true);
    expect({ name: failed.name, statusCode: failed.statusCode }).toEqual({
      name: 'CaptureFailedError',
      statusCode: 502,
    });
    expect(failed.message).toBe(
      `capture of component:default/web: 2 of 2 machines not captured: resource:default/web-01: Error: engine: no space left saving web-01; resource:default/data-01: ConflictError: ${underWay}; one capture of a machine at a time: try again once it has finished`,
    );
    expect(alone.message).toBe(
      `${underWay}; one capture of a machine at a time: try again once it has finished`,
    );
    expect(source.captured).toEqual(['web-01', 'web-01', 'data-01']);
    expect(
      (await captureStore.listCaptures('resource:default/data-01')).map(
        c => c.id,
      ),
    ).toEqual([taken.id]);

    // Free again: every machine of the plan taken.
    source.failing.clear();
    expect(
      (await captures.captureEntity('component:default/web')).map(
        c => c.machineRef,
      ),
    ).toEqual(['resource:default/data-01', 'resource:default/web-01']);
  });
});
