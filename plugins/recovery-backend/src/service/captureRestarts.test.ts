import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type {
  Capture,
  CapturedMachineState,
} from '@backstage-recovery/plugin-recovery-common';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { recordingLogger } from '../testing/logger';
import { CaptureService } from './CaptureService';
import {
  RESTART_GROWTH_WARNING,
  restartsSince,
  restartWarning,
} from './captureRestarts';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';
import { assessReadiness } from './readiness';

const running = (restartCount?: number): CapturedMachineState => ({
  status: 'running',
  since: '2026-12-06T01:00:00Z',
  ...(restartCount !== undefined && { restartCount }),
});

const of = (
  state: CapturedMachineState | undefined,
  more: Partial<Capture> & {
    runtime?: { productionContainerId?: string };
  } = {},
) => ({
  id: 'cap-1',
  createdAt: '2026-12-06T00:00:00.000Z',
  engine: 'primary',
  container: 'web-01',
  ...(state && { machineState: state }),
  ...more,
});

describe('restartsSince', () => {
  it("counts the restarts since the machine's previous capture, from each one's count", () => {
    expect(restartsSince(of(running(2)), of(running(14)))).toBe(12);
    expect(restartsSince(of(running(5)), of(running(5)))).toBe(0);
  });

  it('takes a count lower than before as reset since (started by hand): every restart it counts came after', () => {
    expect(restartsSince(of(running(30)), of(running(4)))).toBe(4);
  });

  it('takes the count of a container made anew under its name (another production container id) as started over, whatever it counts', () => {
    const id = (productionContainerId: string) => ({
      runtime: { productionContainerId },
    });
    expect(
      restartsSince(of(running(2), id('aaa')), of(running(14), id('bbb'))),
    ).toBe(14);
    expect(
      restartsSince(of(running(5), id('aaa')), of(running(5), id('bbb'))),
    ).toBe(5);
    // The same container: its count grew by its restarts.
    expect(
      restartsSince(of(running(2), id('aaa')), of(running(14), id('aaa'))),
    ).toBe(12);
    // Either captured without its id (an older capture): told by the counts alone.
    expect(restartsSince(of(running(2)), of(running(14), id('bbb')))).toBe(12);
  });

  it('cannot tell without both counts, or across containers', () => {
    expect(restartsSince(undefined, of(running(14)))).toBeUndefined();
    // A capture from before counts were recorded with every capture.
    expect(restartsSince(of(running()), of(running(14)))).toBeUndefined();
    expect(restartsSince(of(undefined), of(running(14)))).toBeUndefined();
    expect(
      restartsSince(
        of(running(0), { container: 'web-01-old' }),
        of(running(14)),
      ),
    ).toBeUndefined();
    expect(
      restartsSince(of(running(0), { engine: 'other' }), of(running(14))),
    ).toBeUndefined();
  });
});

describe('restartWarning', () => {
  it(`warns from ${RESTART_GROWTH_WARNING} restarts since the previous capture, naming them, the capture and the state`, () => {
    expect(restartWarning(of(running(2)), of(running(14)))).toBe(
      'restarted 12 times by its restart policy since its previous capture (cap-1 of 2026-12-06T00:00:00.000Z), running when captured: a crash loop, whose capture may hold the machine between two crashes',
    );
    expect(
      restartWarning(of(running(2)), of(running(2 + RESTART_GROWTH_WARNING))),
    ).toMatch(/^restarted 3 times/);
    expect(
      restartWarning(of(running(2)), of(running(1 + RESTART_GROWTH_WARNING))),
    ).toBeUndefined();
  });

  it('leaves it to the state of a machine captured restarting, which says its crash loop already', () => {
    expect(
      restartWarning(
        of(running(2)),
        of({ status: 'restarting', restartCount: 14 }),
      ),
    ).toBeUndefined();
  });
});

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'a capture of a machine restarted over and over since its previous one, on %p',
  databaseId => {
    const locator = {
      machineRef: 'resource:default/web-01',
      engine: 'primary',
      container: 'web-01',
    };

    async function service() {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const source = new FakeCaptureSource();
      const providers = new ProviderRegistry();
      providers.addCaptureSource(source);
      const logger = recordingLogger();
      const store = new CaptureStore(knex);
      const captures = new CaptureService(
        store,
        providers,
        new PlanService({} as CatalogGraphLoader),
        logger,
        3,
        mockServices.auditor.mock(),
      );
      return { source, captures, store, logger };
    }

    it('counts every restart of a container made anew under its name since the previous capture', async () => {
      const { source, captures } = await service();
      source.containerIds.set('web-01', 'a'.repeat(64));
      source.machineStates.set('web-01', running(2));
      const first = await captures.captureMachine(locator);
      // Removed and run again under its name: its count started over, 4 restarts since.
      source.containerIds.set('web-01', 'b'.repeat(64));
      source.machineStates.set('web-01', running(4));
      expect((await captures.captureMachine(locator)).restartWarning).toBe(
        `restarted 4 times by its restart policy since its previous capture (${first.id} of ${first.createdAt}), running when captured: a crash loop, whose capture may hold the machine between two crashes`,
      );
    });

    it('records the restart count with each capture, warns where it grew, and keeps the warning', async () => {
      const { source, captures, store, logger } = await service();
      source.machineStates.set('web-01', running(2));
      const first = await captures.captureMachine(locator);
      expect(first.restartWarning).toBeUndefined();
      // Not within the last minute, so running: only its count says it kept crashing meanwhile.
      source.machineStates.set('web-01', running(14));
      logger.lines.length = 0;
      const second = await captures.captureMachine(locator);
      const warning = `restarted 12 times by its restart policy since its previous capture (${first.id} of ${first.createdAt}), running when captured: a crash loop, whose capture may hold the machine between two crashes`;
      expect(second.restartWarning).toBe(warning);
      expect(logger.lines.filter(l => l.level === 'warn')).toEqual([
        expect.objectContaining({ message: `Capture: ${warning}` }),
      ]);
      const [stored] = await store.listCaptures(locator.machineRef, 1);
      expect(stored).toMatchObject({
        id: second.id,
        machineState: running(14),
        restartWarning: warning,
      });
      // Restarted once more since: under the threshold, no warning.
      source.machineStates.set('web-01', running(15));
      expect(
        (await captures.captureMachine(locator)).restartWarning,
      ).toBeUndefined();
      const [latest] = await store.listCaptures(locator.machineRef, 1);
      expect(latest.restartWarning).toBeUndefined();

      // Readiness names it while that capture is the machine's latest.
      const readiness = (latestCapture: Capture) =>
        assessReadiness({
          entityRef: 'component:default/web',
          ownMachines: [locator.machineRef],
          problems: [],
          objectives: { rpoSeconds: 3600, rtoSeconds: 600 },
          captures: [
            {
              machineRef: locator.machineRef,
              latest: latestCapture,
              ageSeconds: 60,
            },
          ],
          locators: new Map([[locator.machineRef, locator]]),
          lastRun: {
            id: 'run-1',
            entityRef: 'component:default/web',
            mode: 'test',
            status: 'succeeded',
            createdAt: '2026-12-06T00:00:00.000Z',
            rtoSeconds: 60,
          } as any,
          lastRunAgeSeconds: 60,
          maxTestAgeSeconds: 7 * 86_400,
        });
      expect(readiness(second)).toMatchObject({
        status: 'at-risk',
        reasons: [
          `Latest capture of ${locator.machineRef} (capture ${second.id} of ${second.createdAt}): the machine was ${warning}`,
        ],
      });
      expect(readiness(latest)).toMatchObject({
        status: 'ready',
        reasons: [],
      });
    });
  },
);
