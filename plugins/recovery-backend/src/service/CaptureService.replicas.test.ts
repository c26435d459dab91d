import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type {
  CapturedMachine,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import { CaptureStore } from '../database/CaptureStore';
import { migrate, migrationsDirectory } from '../database/migrations';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { componentEntity, machineEntity } from '../testing/entities';
import { GatedCaptureSource } from '../testing/FakeCaptureSource';
import { CaptureService, type CaptureRequestEnd } from './CaptureService';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';

/*
 * Backend replicas on one database, capturing through one capture source: a capture claims its
 * machine in the database first, so a second replica's request waits for it and counts it rather
 * than reaching the source (whose own lock would refuse it with a 409).
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const DB = 'component:default/db';
const DATA = 'resource:default/data-01';
const DATA_01: MachineLocator = {
  machineRef: DATA,
  engine: 'primary',
  container: 'data-01',
};
const MIGRATION = '20261229000000_capture_claims.js';

/** A capture source whose capture of data-01 fails once let through its gate. */
class FailingSource extends GatedCaptureSource {
  override async capture(machine: MachineLocator): Promise<CapturedMachine> {
    await new Promise<void>(resolve => this.waiting.set('data-01', resolve));
    this.captured.push(machine.container);
    throw new Error('engine: no space left saving data-01');
  }
}

describe.each(databases.eachSupportedId())(
  'captures claimed across backend replicas, on %s',
  databaseId => {
    let knex: Knex;

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
    });

    /**
     * One backend replica over the shared database and capture source: db runs on data-01. Its
     * captures' deadline is `timeoutMs` (the default where undefined).
     */
    function replica(source: GatedCaptureSource, timeoutMs?: number) {
      const providers = new ProviderRegistry();
      providers.addCaptureSource(source);
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({
          entities: [
            machineEntity('data-01'),
            {
              ...componentEntity('db', []),
              relations: [{ type: 'dependsOn', targetRef: DATA }],
            },
          ],
        }),
        mockServices.auth(),
        { rpoSeconds: 86400, rtoSeconds: 3600 },
      );
      const store = new CaptureStore(knex);
      const captures = new CaptureService(
        store,
        providers,
        new PlanService(graphs),
        mockServices.logger.mock(),
        3,
        mockServices.auditor.mock(),
        timeoutMs,
      );
      const ends: CaptureRequestEnd[] = [];
      const request = () =>
        captures.requestCapture(DB, undefined, async end => {
          ends.push(end);
        });
      return { store, captures, ends, request };
    }
    const claimOf = () =>
      knex('recovery_capture_claims')
        .where({ engine: 'primary', container: 'data-01' })
        .first();
    const waitingLine = (by: string) =>
      `Waiting for ${by}, which is capturing ${DATA}: its capture counts for this request`;
    const slow = { timeout: 5_000 };

    it("has a second replica's request wait for the first's capture of the machine and count it, the source called once", async () => {
      const source = new GatedCaptureSource();
      source.gated.add('data-01');
      const a = replica(source);
      const b = replica(source);

      const first = await a.request();
      await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
      const claim = await claimOf();
      expect(claim).toMatchObject({
        machine_ref: DATA,
        request_id: first.requestId,
      });
      const second = await b.request();
      await vi.waitFor(
        async () =>
          expect(
            (await b.captures.captureRequest(second.requestId))?.progress
              ?.message,
          ).toBe(waitingLine(`capture request ${first.requestId}`)),
        slow,
      );
      // A capture that does not wait (the scheduled one, an entity's) is refused, naming it.
      await expect(b.captures.captureMachine(DATA_01)).rejects.toMatchObject({
        name: 'ConflictError',
        message: expect.stringMatching(
          new RegExp(
            `^capture of ${DATA} refused: it is being captured since .* \\(capture ${claim.capture_id}, by another backend\\); one capture of a machine at a time`,
          ),
        ),
      });

      source.letThrough();
      await vi.waitFor(() => expect(a.ends).toHaveLength(1));
      await vi.waitFor(() => expect(b.ends).toHaveLength(1), slow);

      const taken = await a.captures.captureRequest(first.requestId);
      expect(taken).toMatchObject({ status: 'succeeded' });
      const counted = await b.captures.captureRequest(second.requestId);
      expect(counted).toMatchObject({
        status: 'succeeded',
        captures: taken!.captures,
      });
      expect(counted!.captures[0].id).toBe(claim.capture_id);
      expect(counted!.progress).toBeUndefined();
      expect(source.captured).toEqual(['data-01']);
      // Let go at its end.
      expect(await claimOf()).toBeUndefined();
      // Neither refusal is a failure of the machine.
      expect((await a.store.captureFailures([DATA])).size).toBe(0);
    });

    it("has every request of a second replica count the first's capture, those waiting there for its own capture too", async () => {
      const source = new GatedCaptureSource();
      source.gated.add('data-01');
      const a = replica(source);
      const b = replica(source);

      const first = await a.request();
      await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
      // The second, found holding data-01 by the third (or refused by the claim before it).
      const [second, third] = await Promise.all([b.request(), b.request()]);
      await vi.waitFor(
        async () =>
          expect(
            (await b.captures.captureRequest(third.requestId))?.progress
              ?.message,
          ).toBe(waitingLine(`capture request ${first.requestId}`)),
        slow,
      );
      source.letThrough();
      await vi.waitFor(() => expect(b.ends).toHaveLength(2), slow);

      const [taken] = (await a.captures.captureRequest(first.requestId))!
        .captures;
      for (const { requestId } of [second, third])
        expect(await b.captures.captureRequest(requestId)).toMatchObject({
          status: 'succeeded',
          captures: [taken],
        });
      expect(source.captured).toEqual(['data-01']);
    });

    it("fails a second replica's request as the first's capture of the machine failed, saying why", async () => {
      const source = new FailingSource();
      const a = replica(source);
      const b = replica(source);

      const first = await a.request();
      await vi.waitFor(() => expect(source.waiting.has('data-01')).toBe(true));
      const second = await b.request();
      await vi.waitFor(
        async () =>
          expect(
            (await b.captures.captureRequest(second.requestId))?.progress
              ?.message,
          ).toBe(waitingLine(`capture request ${first.requestId}`)),
        slow,
      );
      source.letThrough();
      await vi.waitFor(() => expect(b.ends).toHaveLength(1), slow);

      expect(await b.captures.captureRequest(second.requestId)).toMatchObject({
        status: 'failed',
        captures: [],
        error: {
          message: `capture of ${DATA} failed; caused by Error: capture request ${first.requestId} failed to capture it; caused by Error: engine: no space left saving data-01`,
        },
      });
      expect(source.captured).toEqual(['data-01']);
    });

    it('takes over the claim of a replica that died mid-capture once it expires, the waiting request capturing the machine itself', async () => {
      const source = new GatedCaptureSource();
      const b = replica(source);
      // A replica claimed data-01 for its capture, then died: its claim is never renewed.
      expect(
        await b.store.claims.claim(
          {
            ...DATA_01,
            captureId: 'dead-capture',
            requestId: 'dead-request',
            since: new Date().toISOString(),
          },
          60_000,
        ),
      ).toBeUndefined();

      const request = await b.request();
      await vi.waitFor(
        async () =>
          expect(
            (await b.captures.captureRequest(request.requestId))?.progress
              ?.message,
          ).toBe(waitingLine('capture request dead-request')),
        slow,
      );
      expect(source.captured).toEqual([]);

      // Not renewed past its lease.
      await knex('recovery_capture_claims')
        .where({ capture_id: 'dead-capture' })
        .update({ heard_at: new Date(Date.now() - 120_000) });
      await vi.waitFor(() => expect(b.ends).toHaveLength(1), slow);

      const taken = await b.captures.captureRequest(request.requestId);
      expect(taken).toMatchObject({
        status: 'succeeded',
        captures: [{ machineRef: DATA }],
      });
      expect(taken!.captures[0].id).not.toBe('dead-capture');
      expect(source.captured).toEqual(['data-01']);
      expect(await claimOf()).toBeUndefined();

      // A capture that finds an expired claim takes it over at once, without waiting.
      await b.store.claims.claim(
        {
          ...DATA_01,
          captureId: 'dead-again',
          since: new Date().toISOString(),
        },
        60_000,
      );
      await knex('recovery_capture_claims')
        .where({ capture_id: 'dead-again' })
        .update({ heard_at: new Date(Date.now() - 120_000) });
      const scheduled = await b.captures.captureMachine(DATA_01);
      expect(source.captured).toEqual(['data-01', 'data-01']);
      expect(await b.store.getCapture(scheduled.id)).toBeDefined();
      expect(await claimOf()).toBeUndefined();
    });

    it('keeps the claim, renewed, of a capture given up at its deadline while its source still captures, until the source is done', async () => {
      // The source ignores the deadline: it may still pause and commit data-01 after it.
      const source = new GatedCaptureSource();
      source.gated.add('data-01');
      const a = replica(source, 1_000);
      const b = replica(source);
      let failure: Error;
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const capturing = a.captures.captureMachine(DATA_01).catch(e => e);
        await vi.waitFor(() =>
          expect(source.waiting.has('data-01')).toBe(true),
        );
        // The deadline, then the grace a source has to stop at it.
        await vi.advanceTimersByTimeAsync(61_000);
        failure = await capturing;
      } finally {
        vi.useRealTimers();
      }
      expect(failure.message).toContain(
        'and its capture source did not stop within 60 s of it',
      );
      const given = (await claimOf())?.capture_id;
      expect(given).toBeDefined();
      await expect(b.captures.captureMachine(DATA_01)).rejects.toMatchObject({
        name: 'ConflictError',
        message: expect.stringContaining(
          `(capture ${given}, by another backend)`,
        ),
      });
      // Still renewed: a claim heard from 50 s ago is heard from again within the renewal period.
      const renewedAfter = new Date(Date.now() - 50_000);
      await knex('recovery_capture_claims')
        .where({ capture_id: given })
        .update({ heard_at: renewedAfter });
      await vi.waitFor(
        async () =>
          expect(
            new Date((await claimOf())!.heard_at).getTime(),
          ).toBeGreaterThan(renewedAfter.getTime() + 40_000),
        { timeout: 7_000 },
      );

      // The source done at last: what it returns is discarded, and the claim let go.
      source.letThrough('data-01');
      await vi.waitFor(
        async () => expect(await claimOf()).toBeUndefined(),
        slow,
      );
      expect(source.discarded).toHaveLength(1);
      const taken = await b.captures.captureMachine(DATA_01);
      expect(await b.store.getCapture(taken.id)).toBeDefined();
    }, 15_000);

    it("reads a claim's holder and whether it expired, by the database's clock, in one query", async () => {
      const claims = new CaptureStore(knex).claims;
      const since = new Date().toISOString();
      await claims.claim({ ...DATA_01, captureId: 'c1', since }, 60_000);
      const queries: string[] = [];
      const heard = (query: { sql: string }) => queries.push(query.sql);
      knex.on('query', heard);
      try {
        expect(await claims.holder(DATA_01, 60_000)).toEqual({
          ...DATA_01,
          captureId: 'c1',
          since,
          expired: false,
        });
      } finally {
        knex.removeListener('query', heard);
      }
      expect(queries).toHaveLength(1);

      await knex('recovery_capture_claims')
        .where({ capture_id: 'c1' })
        .update({ heard_at: new Date(Date.now() - 120_000) });
      expect(await claims.holder(DATA_01, 60_000)).toMatchObject({
        captureId: 'c1',
        expired: true,
      });
      expect(await claims.holder(DATA_01, 180_000)).toMatchObject({
        expired: false,
      });
      expect(
        await claims.holder({ ...DATA_01, container: 'web-01' }, 60_000),
      ).toBeUndefined();
    });

    it('migrates the claims table down and up again', async () => {
      const store = new CaptureStore(knex);
      const claim = {
        ...DATA_01,
        captureId: 'c1',
        since: new Date().toISOString(),
      };
      await store.claims.claim(claim, 60_000);
      const directory = migrationsDirectory;

      await knex.migrate.down({ directory, name: MIGRATION });
      expect(await knex.schema.hasTable('recovery_capture_claims')).toBe(false);
      expect(await knex.schema.hasTable('recovery_captures')).toBe(true);

      await knex.migrate.up({ directory, name: MIGRATION });
      expect(await claimOf()).toBeUndefined();
      expect(await store.claims.claim(claim, 60_000)).toBeUndefined();
      expect(
        await store.claims.claim({ ...claim, captureId: 'c2' }, 60_000),
      ).toMatchObject({ captureId: 'c1', expired: false });
    });
  },
);
