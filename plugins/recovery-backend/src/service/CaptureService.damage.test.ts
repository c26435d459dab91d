import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  CaptureDamagedError,
  CaptureStoreError,
  type HypervisorHost,
  type MachineLocator,
  type RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { captureOf, componentEntity, machineEntity } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { recordingLogger } from '../testing/logger';
import { CaptureService } from './CaptureService';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';

// What a capture does to the marks of captures found damaged, and an entity's capture failing on the store.

const WEB_01 = 'resource:default/web-01';
const DATA_01 = 'resource:default/data-01';
const locator = (machineRef: string): MachineLocator => ({
  machineRef,
  engine: 'primary',
  container: machineRef.split('/')[1],
});
const damage = { at: '2026-12-06T05:00:00.000Z', reason: 'checksum mismatch' };

/**
 * A host whose verification finds the `damaged` captures damaged, and fails with `unreadable` where
 * set; with `slow`, each verification reads until it resolves (or its signal aborts).
 */
class VerifyingHost extends FakeHost {
  readonly verified: string[] = [];
  damaged = new Set<string>();
  unreadable?: Error;
  slow?: Promise<void>;
  constructor() {
    super({});
  }
  async verifyCapture(
    capture: RestorableCapture,
    { signal }: { signal?: AbortSignal } = {},
  ) {
    this.verified.push(capture.captureId);
    if (this.slow) {
      await Promise.race([
        this.slow,
        new Promise((_resolve, reject) =>
          signal?.addEventListener('abort', () => reject(signal.reason), {
            once: true,
          }),
        ),
      ]);
    }
    if (this.unreadable) throw this.unreadable;
    if (this.damaged.has(capture.captureId))
      throw new CaptureDamagedError(
        `capture ${capture.captureId}: checksum mismatch`,
        capture.captureId,
      );
  }
}

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

describe('CaptureService and damaged captures', () => {
  let store: CaptureStore;
  let host: VerifyingHost;
  let captures: CaptureService;
  let logger: ReturnType<typeof recordingLogger>;
  let providers: ProviderRegistry;

  beforeEach(async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    store = new CaptureStore(knex);
    providers = new ProviderRegistry();
    providers.addCaptureSource(new FakeCaptureSource());
    host = new VerifyingHost();
    providers.addHypervisorHost(host);
    logger = recordingLogger();
    captures = new CaptureService(
      store,
      providers,
      new PlanService({} as CatalogGraphLoader),
      logger,
      10,
      mockServices.auditor.mock(),
    );
    for (const [id, hour] of [
      ['w1', '01'],
      ['w2', '02'],
      ['w3', '03'],
    ] as const)
      await store.insertCapture(
        captureOf(id, WEB_01, `2026-12-06T${hour}:00:00.000Z`),
      );
    await store.insertCapture(
      captureOf('d1', DATA_01, '2026-12-06T01:00:00.000Z'),
    );
  });

  const warned = () => logger.lines.filter(l => l.level === 'warn');
  const marks = async (machineRef: string) =>
    (await store.listCaptures(machineRef)).map(c => [
      c.id,
      c.damaged !== undefined,
    ]);

  it("verifies the machine's captures marked damaged again after each capture of it, and lifts the mark of those found intact", async () => {
    for (const id of ['w2', 'w3']) await store.markCaptureDamaged(id, damage);
    await store.markCaptureDamaged('d1', damage);
    // w3 still damaged; w2 mended (the capture wrote anew a layer they share).
    host.damaged = new Set(['w3']);
    const taken = await captures.captureMachine(locator(WEB_01));
    await captures.idle();
    // Only that machine's marked captures: not the intact one, nor another machine's.
    expect(host.verified).toEqual(['w3', 'w2']);
    expect(await marks(WEB_01)).toEqual([
      [taken.id, false],
      ['w3', true],
      ['w2', false],
      ['w1', false],
    ]);
    expect(await marks(DATA_01)).toEqual([['d1', true]]);
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: expect.stringMatching(
        new RegExp(
          `^Capture marked damaged since ${damage.at} verified intact after the machine's next capture.*: its mark lifted, runs restore it again$`,
        ),
      ),
      fields: {
        machineRef: WEB_01,
        captureId: 'w2',
        capturedAt: '2026-12-06T02:00:00.000Z',
        mendedBy: taken.id,
      },
    });
    // Nothing marked: nothing verified.
    host.verified.length = 0;
    host.damaged.clear();
    await store.clearCaptureDamaged('w3');
    await captures.captureMachine(locator(WEB_01));
    await captures.idle();
    expect(host.verified).toEqual([]);
  });

  it('answers a capture before the re-check of damaged captures it starts has read them, and lifts the mark once it has', async () => {
    await store.markCaptureDamaged('w2', damage);
    let read!: () => void;
    host.slow = new Promise(resolve => {
      read = resolve;
    });
    const taken = await captures.captureMachine(locator(WEB_01));
    // Answered, and the machine free for its next capture, while w2 is still being read.
    await vi.waitFor(() => expect(host.verified).toEqual(['w2']));
    expect((await store.listCaptures(WEB_01))[0].id).toBe(taken.id);
    expect(await marks(WEB_01)).toContainEqual(['w2', true]);
    const next = await captures.captureMachine(locator(WEB_01));
    expect(next.id).not.toBe(taken.id);
    read();
    await captures.idle();
    expect(await marks(WEB_01)).toContainEqual(['w2', false]);
    // One re-check at a time: the next capture's began once the first had lifted the mark.
    expect(host.verified).toEqual(['w2']);
  });

  it('stops a re-check under way at shutdown, keeping the marks', async () => {
    await store.markCaptureDamaged('w2', damage);
    host.slow = new Promise(() => {});
    await captures.captureMachine(locator(WEB_01));
    await vi.waitFor(() => expect(host.verified).toEqual(['w2']));
    await captures.shutdown();
    expect(await marks(WEB_01)).toContainEqual(['w2', true]);
    expect(warned()).toEqual([]);
  });

  it('skips the re-check quietly where several hypervisor hosts are registered and none is designated', async () => {
    await store.markCaptureDamaged('w2', damage);
    providers.addHypervisorHost({ id: 'recovery-b' } as HypervisorHost);
    const taken = await captures.captureMachine(locator(WEB_01));
    await captures.idle();
    expect(host.verified).toEqual([]);
    expect(await marks(WEB_01)).toContainEqual(['w2', true]);
    expect(warned()).toEqual([]);
    expect(logger.lines).toContainEqual({
      level: 'debug',
      message:
        'Captures of the machine marked damaged not verified again after its capture: no single hypervisor host is designated (recovery.hypervisorHost)',
      fields: { machineRef: WEB_01, captureId: taken.id },
    });
  });

  it('keeps the capture and the marks where verifying them again fails, warning of it', async () => {
    await store.markCaptureDamaged('w3', damage);
    host.unreadable = Object.assign(
      new Error("EACCES: permission denied, open '/captures/w3.tar'"),
      { code: 'EACCES' },
    );
    const taken = await captures.captureMachine(locator(WEB_01));
    await captures.idle();
    expect((await store.listCaptures(WEB_01))[0].id).toBe(taken.id);
    expect(await marks(WEB_01)).toEqual([
      [taken.id, false],
      ['w3', true],
      ['w2', false],
      ['w1', false],
    ]);
    expect(warned()).toEqual([
      {
        level: 'warn',
        message:
          'Could not verify again the captures of the machine marked damaged, after its capture; their marks stay',
        fields: { machineRef: WEB_01, captureId: taken.id },
        error: host.unreadable,
      },
    ]);
    expect(await store.captureFailures([WEB_01])).toEqual(new Map());
  });

  it('answers an entity whose machines all failed on the capture store with a 507, each of kind store', async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const full = new Set(['web-01', 'data-01']);
    const broken = new Set<string>();
    const source = new (class extends FakeCaptureSource {
      async capture(machine: MachineLocator, options: { captureId: string }) {
        if (broken.has(machine.container))
          throw new Error('engine answered HTTP 500');
        if (full.has(machine.container))
          throw new CaptureStoreError(
            `capture of ${machine.machineRef} could not write to the capture store /captures (ENOSPC: no space left on device)`,
            '/captures',
          );
        return super.capture(machine, options);
      }
    })();
    const registry = new ProviderRegistry();
    registry.addCaptureSource(source);
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
    const service = new CaptureService(
      new CaptureStore(knex),
      registry,
      new PlanService(
        new CatalogGraphLoader(
          catalogServiceMock({ entities }),
          mockServices.auth(),
          { rpoSeconds: 86400, rtoSeconds: 3600 },
        ),
      ),
      mockServices.logger.mock(),
      3,
      mockServices.auditor.mock(),
    );
    const failed = await service
      .captureEntity('component:default/web')
      .catch(e => e);
    expect(failed).toMatchObject({
      name: 'CaptureFailedError',
      statusCode: 507,
    });
    expect(
      failed.failed.map((f: { machineRef: string; kind: string }) => [
        f.machineRef,
        f.kind,
      ]),
    ).toEqual([
      [DATA_01, 'store'],
      [WEB_01, 'store'],
    ]);
    expect(failed.message).toMatch(
      /; captured, and kept: resource:default\/infra-01: the capture store could not take any of the 2 captures \(full, over its quota, or not writable\): make room in it \(or mend it\), then capture again$/,
    );
    // One failing otherwise beside it: a 502, as the engines need a look too.
    broken.add('data-01');
    const mixed = await service
      .captureEntity('component:default/web')
      .catch(e => e);
    expect(mixed.statusCode).toBe(502);
  });
});
