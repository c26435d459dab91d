import { TestDatabases } from '@backstage/backend-test-utils';
import type { NightlyCheckEntityOutcome } from '@backstage-recovery/plugin-recovery-common';
import { NightlyCheckStore } from './NightlyCheckStore';
import { migrate, migrationsDirectory } from './migrations';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const MIGRATION = '20261214000000_nightly_check_outcomes.js';

const web = 'component:default/web';
const shop = 'system:default/shop';
const night = (checkedAt: string, outcomes: NightlyCheckEntityOutcome[]) => ({
  checkedAt,
  outcomes,
});
/** The outcomes known so far of a night under way. */
const soFar = (checkedAt: string, outcomes: NightlyCheckEntityOutcome[]) => ({
  checkedAt,
  outcomes,
  partial: true,
});
const ENDED_MIGRATION = '20261214000200_nightly_check_night_ended.js';
const INTERRUPTED_MIGRATION = '20261217000100_nightly_check_interrupted.js';

describe.each(databases.eachSupportedId())(
  'NightlyCheckStore on %s',
  databaseId => {
    it("keeps the latest night's outcome per entity, each as recorded, and forgets those that night did not check", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      expect(await store.outcomeOf(web)).toBeUndefined();
      expect(await store.outcomes()).toEqual(new Map());

      await store.record(
        night('2026-12-04T02:30:00.000Z', [
          {
            entityRef: shop,
            outcome: 'started',
            runId: 'r1',
            runEntityRef: shop,
            message: 'run r1 succeeded in 42 s',
          },
          {
            entityRef: web,
            outcome: 'covered',
            runId: 'r1',
            runEntityRef: shop,
            message: `run r1 of ${shop} succeeded in 42 s`,
          },
          {
            entityRef: 'component:default/gone',
            outcome: 'excluded',
            message: "left out: its annotation is 'false'",
          },
        ]),
      );
      expect(await store.outcomeOf(web)).toEqual({
        checkedAt: '2026-12-04T02:30:00.000Z',
        outcome: 'covered',
        runId: 'r1',
        runEntityRef: shop,
        message: `run r1 of ${shop} succeeded in 42 s`,
      });

      // The next night, beside a failover kept on the host; the entity gone from the catalog is not checked.
      const refused = {
        outcome: 'refused' as const,
        reason: 'kept-failover' as const,
        runId: 'f1',
        runEntityRef: 'component:default/bank',
        message:
          'refused: failover f1 of component:default/bank keeps 2 containers on recovery; release failover f1',
      };
      await store.record(
        night('2026-12-05T02:30:00.123Z', [
          { entityRef: shop, ...refused },
          {
            entityRef: web,
            outcome: 'refused',
            reason: 'uncaptured',
            message: 'No capture of resource:default/web-01 yet: capture first',
          },
          // Many rows, past a batch: one statement each would hit SQLite's bound-variable cap.
          ...Array.from({ length: 450 }, (_, i) => ({
            entityRef: `component:default/s${i}`,
            outcome: 'excluded' as const,
            message: 'left out',
          })),
        ]),
      );
      const all = await store.outcomes();
      expect(all.size).toBe(452);
      expect(all.has('component:default/gone')).toBe(false);
      expect(all.get(shop)).toEqual({
        checkedAt: '2026-12-05T02:30:00.123Z',
        ...refused,
      });
      expect(all.get(web)).toEqual({
        checkedAt: '2026-12-05T02:30:00.123Z',
        outcome: 'refused',
        reason: 'uncaptured',
        message: 'No capture of resource:default/web-01 yet: capture first',
      });
      expect(await store.outcomeOf(shop)).toEqual(all.get(shop));
    });

    it('keeps the last night whole when recording the next one fails', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const kept = {
        entityRef: web,
        outcome: 'excluded' as const,
        message: 'left out',
      };
      await store.record(night('2026-12-04T02:30:00.000Z', [kept]));
      // The same entity twice breaks the key, halfway through the night.
      await expect(
        store.record(
          night('2026-12-05T02:30:00.000Z', [
            { ...kept, entityRef: shop },
            kept,
            kept,
          ]),
        ),
      ).rejects.toThrow();
      expect([...(await store.outcomes()).keys()]).toEqual([web]);
    });

    it('refuses a night older than the one recorded, which stays whole', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const lastNight = {
        entityRef: web,
        outcome: 'excluded' as const,
        message: 'left out',
      };
      await store.record(night('2026-12-05T02:30:00.000Z', [lastNight]));
      await expect(
        store.record(
          night('2026-12-04T02:30:00.000Z', [
            { entityRef: shop, outcome: 'excluded', message: 'left out' },
          ]),
        ),
      ).rejects.toThrow(
        'The nightly check of 2026-12-05T02:30:00.000Z is recorded: that of 2026-12-04T02:30:00.000Z, older, is not',
      );
      expect(await store.outcomes()).toEqual(
        new Map([
          [
            web,
            {
              checkedAt: '2026-12-05T02:30:00.000Z',
              outcome: 'excluded',
              message: 'left out',
            },
          ],
        ]),
      );
      // The same night again (a retried request) replaces it.
      await store.record(
        night('2026-12-05T02:30:00.000Z', [{ ...lastNight, entityRef: shop }]),
      );
      expect([...(await store.outcomes()).keys()]).toEqual([shop]);
      // A night with no outcomes (nothing recoverable) still dates what is recorded.
      await store.record(night('2026-12-06T02:30:00.000Z', []));
      await expect(
        store.record(night('2026-12-05T02:30:00.000Z', [lastNight])),
      ).rejects.toThrow(
        'The nightly check of 2026-12-06T02:30:00.000Z is recorded: that of 2026-12-05T02:30:00.000Z, older, is not',
      );
      expect(await store.outcomes()).toEqual(new Map());
    });

    it('records two nights sent at once one after the other: the newer stands, and no key is broken', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const of = (checkedAt: string) =>
        night(
          checkedAt,
          [web, shop].map(entityRef => ({
            entityRef,
            outcome: 'excluded' as const,
            message: checkedAt,
          })),
        );
      for (let round = 0; round < 5; round++) {
        const [older, newer] = [
          `2026-12-0${round + 1}T02:30:00.000Z`,
          `2026-12-0${round + 1}T02:31:00.000Z`,
        ];
        const settled = await Promise.allSettled([
          store.record(of(newer)),
          store.record(of(older)),
        ]);
        // The older is refused if the newer went first; else the newer replaced it.
        expect(settled[0].status).toBe('fulfilled');
        if (settled[1].status === 'rejected')
          expect(String(settled[1].reason)).toContain('older, is not');
        expect(
          [...(await store.outcomes()).values()].map(o => o.message),
        ).toEqual([newer, newer]);
      }
    });

    it("records a night under way as it goes: an entity reached says tonight's, the others last night's, until the whole night replaces them", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const gone = 'component:default/gone';
      const lastNight = '2026-12-04T02:30:00.000Z';
      const tonight = '2026-12-05T02:30:00.000Z';
      await store.record(
        night(
          lastNight,
          [web, shop, gone].map(entityRef => ({
            entityRef,
            outcome: 'refused' as const,
            reason: 'host-busy' as const,
            message: 'host busy',
          })),
        ),
      );
      const dated = async () =>
        Object.fromEntries(
          [...(await store.outcomes())].map(([ref, o]) => [
            ref,
            `${o.checkedAt} ${o.outcome}`,
          ]),
        );

      // The shop's run starts: only the shop says tonight's.
      await store.record(
        soFar(tonight, [
          {
            entityRef: shop,
            outcome: 'started',
            runId: 'r1',
            runEntityRef: shop,
            message: 'run r1 started',
          },
        ]),
      );
      expect(await dated()).toEqual({
        [web]: `${lastNight} refused`,
        [shop]: `${tonight} started`,
        [gone]: `${lastNight} refused`,
      });
      // It ends, covering web; the shop's words are its last.
      const shopRun = { runId: 'r1', runEntityRef: shop };
      await store.record(
        soFar(tonight, [
          {
            entityRef: shop,
            outcome: 'started',
            ...shopRun,
            message: 'run r1 succeeded in 42 s',
          },
          {
            entityRef: web,
            outcome: 'covered',
            ...shopRun,
            message: `run r1 of ${shop} succeeded in 42 s`,
          },
        ]),
      );
      // Each of a night under way, which has reached two entities so far.
      const underWay = {
        night: {
          checkedAt: tonight,
          state: 'under-way',
          heardAt: expect.any(String),
          checked: 2,
        },
      };
      expect(await store.outcomeOf(web)).toEqual({
        checkedAt: tonight,
        outcome: 'covered',
        ...shopRun,
        message: `run r1 of ${shop} succeeded in 42 s`,
        ...underWay,
      });
      expect(await store.outcomeOf(shop)).toEqual({
        checkedAt: tonight,
        outcome: 'started',
        ...shopRun,
        message: 'run r1 succeeded in 42 s',
        ...underWay,
      });
      expect((await store.outcomeOf(gone))?.checkedAt).toBe(lastNight);
      // More of it than a batch, each once.
      const many = Array.from({ length: 450 }, (_, i) => ({
        entityRef: `component:default/s${i}`,
        outcome: 'excluded' as const,
        message: 'left out',
      }));
      await store.record(soFar(tonight, many));
      await store.record(
        soFar(
          tonight,
          many.map(o => ({ ...o, message: 'left out again' })),
        ),
      );
      expect((await store.outcomes()).size).toBe(453);
      expect((await store.outcomeOf('component:default/s449'))?.message).toBe(
        'left out again',
      );
      // An entity twice in one record is refused, and changes nothing.
      await expect(
        store.record(
          soFar(tonight, [
            { entityRef: gone, outcome: 'excluded', message: 'a' },
            { entityRef: gone, outcome: 'excluded', message: 'b' },
          ]),
        ),
      ).rejects.toThrow(
        `${gone} has two outcomes in one record of the nightly check of ${tonight}: one an entity`,
      );
      expect((await store.outcomeOf(gone))?.checkedAt).toBe(lastNight);

      // The night ends, whole: the entity it did not check (gone from the catalog) keeps nothing.
      await store.record(
        night(tonight, [
          {
            entityRef: shop,
            outcome: 'started',
            ...shopRun,
            message: 'run r1 succeeded in 42 s',
          },
          { entityRef: web, outcome: 'excluded', message: 'left out' },
        ]),
      );
      expect(await dated()).toEqual({
        [web]: `${tonight} excluded`,
        [shop]: `${tonight} started`,
      });
    });

    it('refuses outcomes so far of a night older than the one recorded, or of a night recorded whole, and keeps what is recorded', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const excluded = (entityRef: string, message: string) => ({
        entityRef,
        outcome: 'excluded' as const,
        message,
      });
      await store.record(
        soFar('2026-12-05T02:30:00.000Z', [excluded(web, 'tonight')]),
      );
      // Last night's check, which outlived tonight's start.
      await expect(
        store.record(
          soFar('2026-12-04T02:30:00.000Z', [
            excluded(web, 'last night'),
            excluded(shop, 'last night'),
          ]),
        ),
      ).rejects.toThrow(
        'The nightly check of 2026-12-05T02:30:00.000Z is recorded: that of 2026-12-04T02:30:00.000Z, older, is not',
      );
      await expect(
        store.record(
          night('2026-12-04T02:30:00.000Z', [excluded(shop, 'last night')]),
        ),
      ).rejects.toThrow('older, is not');
      expect(await store.outcomes()).toEqual(
        new Map([
          [
            web,
            {
              checkedAt: '2026-12-05T02:30:00.000Z',
              outcome: 'excluded',
              message: 'tonight',
              night: expect.objectContaining({ state: 'under-way' }),
            },
          ],
        ]),
      );
      // Tonight's end said each entity's last word: its outcomes so far, sent late, do not undo it.
      await store.record(
        night('2026-12-05T02:30:00.000Z', [excluded(web, 'its last word')]),
      );
      await expect(
        store.record(
          soFar('2026-12-05T02:30:00.000Z', [excluded(web, 'an earlier word')]),
        ),
      ).rejects.toThrow(
        'The nightly check of 2026-12-05T02:30:00.000Z is recorded whole: its outcomes so far, sent late, are not',
      );
      expect((await store.outcomeOf(web))?.message).toBe('its last word');
      // The whole night again (a retried request) still replaces it; the next night's outcomes so far are taken.
      await store.record(
        night('2026-12-05T02:30:00.000Z', [excluded(web, 'retried')]),
      );
      await store.record(
        soFar('2026-12-06T02:30:00.000Z', [excluded(shop, 'the next night')]),
      );
      expect(
        Object.fromEntries(
          [...(await store.outcomes())].map(([ref, o]) => [ref, o.message]),
        ),
      ).toEqual({ [web]: 'retried', [shop]: 'the next night' });
    });

    it('records outcomes so far of two nights sent at once one after the other: no older word lands over a newer one', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      for (let round = 0; round < 5; round++) {
        const [first, older, newer] = [0, 1, 2].map(
          n =>
            `2026-12-${String(round * 3 + n + 1).padStart(2, '0')}T02:30:00.000Z`,
        );
        const of = (checkedAt: string, refs: string[]) =>
          refs.map(entityRef => ({
            entityRef,
            outcome: 'excluded' as const,
            message: checkedAt,
          }));
        await store.record(night(first, of(first, [web, shop])));
        // The newer night has reached web only; the older both.
        const settled = await Promise.allSettled([
          store.record(soFar(newer, of(newer, [web]))),
          store.record(soFar(older, of(older, [web, shop]))),
        ]);
        expect(settled[0].status).toBe('fulfilled');
        if (settled[1].status === 'rejected')
          expect(String(settled[1].reason)).toContain('older, is not');
        const messages = Object.fromEntries(
          [...(await store.outcomes())].map(([ref, o]) => [ref, o.message]),
        );
        expect(messages[web]).toBe(newer);
        // The shop: the first night's where the newer went first, else the older's, not yet replaced.
        expect(messages[shop]).toBe(
          settled[1].status === 'rejected' ? first : older,
        );
      }
    });

    it('takes a night recorded before outcomes came as they go as ended, and drops that column going back down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      await knex.migrate.down({
        directory: migrationsDirectory,
        name: ENDED_MIGRATION,
      });
      expect(
        await knex.schema.hasColumn('recovery_nightly_check_night', 'ended'),
      ).toBe(false);
      // A night recorded whole, as the store did before.
      await knex('recovery_nightly_check_night').insert({
        id: 1,
        checked_at: new Date('2026-12-05T02:30:00.000Z'),
      });
      await knex('recovery_nightly_checks').insert({
        entity_ref: web,
        checked_at: new Date('2026-12-05T02:30:00.000Z'),
        outcome: 'excluded',
        message: 'left out',
      });
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      await expect(
        store.record(
          soFar('2026-12-05T02:30:00.000Z', [
            { entityRef: web, outcome: 'excluded', message: 'late' },
          ]),
        ),
      ).rejects.toThrow('recorded whole');
      await store.record(
        soFar('2026-12-06T02:30:00.000Z', [
          { entityRef: shop, outcome: 'excluded', message: 'the next night' },
        ]),
      );
      expect(
        Object.fromEntries(
          [...(await store.outcomes())].map(([ref, o]) => [ref, o.message]),
        ),
      ).toEqual({ [web]: 'left out', [shop]: 'the next night' });
    });

    it('takes a night under way gone silent as interrupted, at when it was last heard from, and as under way again once it is heard', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      let now = Date.parse('2026-12-05T02:30:05.000Z');
      const store = new NightlyCheckStore(knex, {
        now: () => now,
        silenceMs: 10 * 60_000,
      });
      const lastNight = '2026-12-04T02:30:00.000Z';
      const tonight = '2026-12-05T02:30:00.000Z';
      await store.record(
        night(
          lastNight,
          [web, shop].map(entityRef => ({
            entityRef,
            outcome: 'excluded' as const,
            message: 'left out',
          })),
        ),
      );
      // Opened with how many it checks, nothing reached yet: web's page says the night under way has not reached it.
      await store.record({ ...soFar(tonight, []), entities: 40 });
      const underWay = {
        checkedAt: tonight,
        state: 'under-way',
        heardAt: '2026-12-05T02:30:05.000Z',
        checked: 0,
        entities: 40,
      };
      expect(await store.outcomeOf(web)).toEqual({
        checkedAt: lastNight,
        outcome: 'excluded',
        message: 'left out',
        newer: underWay,
      });
      now += 60_000;
      await store.record(
        soFar(tonight, [
          {
            entityRef: shop,
            outcome: 'started',
            runId: 'r1',
            runEntityRef: shop,
            message: 'run r1 started',
          },
        ]),
      );
      const reached = {
        checkedAt: tonight,
        state: 'under-way',
        heardAt: '2026-12-05T02:31:05.000Z',
        checked: 1,
        entities: 40,
      };
      expect((await store.outcomeOf(shop))?.night).toEqual(reached);
      expect((await store.outcomes()).get(shop)?.night).toEqual(reached);
      expect((await store.outcomes()).get(web)?.newer).toEqual(reached);
      // Ten minutes heard from no more: as it stands, interrupted then.
      now += 10 * 60_000;
      expect((await store.outcomeOf(shop))?.night?.state).toBe('under-way');
      now += 1;
      const interrupted = { ...reached, state: 'interrupted' };
      expect((await store.outcomeOf(shop))?.night).toEqual(interrupted);
      expect((await store.outcomes()).get(web)).toEqual({
        checkedAt: lastNight,
        outcome: 'excluded',
        message: 'left out',
        newer: interrupted,
      });
      // Only slow: it says it is still there (a record of nothing), and is under way again, how many it checks kept.
      await store.record(soFar(tonight, []));
      expect((await store.outcomeOf(shop))?.night).toEqual({
        ...reached,
        heardAt: new Date(now).toISOString(),
      });
      // Its end: the night whole, no progress left to say.
      await store.record(
        night(
          tonight,
          [web, shop].map(entityRef => ({
            entityRef,
            outcome: 'excluded' as const,
            message: 'whole',
          })),
        ),
      );
      for (const o of (await store.outcomes()).values())
        expect(o).toEqual({
          checkedAt: tonight,
          outcome: 'excluded',
          message: 'whole',
        });
    });

    it('closes a night never ended when the next begins: the entities it reached keep its outcomes, saying it was interrupted, how far it got, and when', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      let now = Date.parse('2026-12-05T02:30:01.000Z');
      const store = new NightlyCheckStore(knex, { now: () => now });
      const [db, gone] = ['component:default/db', 'component:default/gone'];
      const [lastNight, killed, next] = [
        '2026-12-04T02:30:00.000Z',
        '2026-12-05T02:30:00.000Z',
        '2026-12-06T02:30:00.000Z',
      ];
      const excluded = (entityRef: string, message: string) => ({
        entityRef,
        outcome: 'excluded' as const,
        message,
      });
      await store.record(
        night(
          lastNight,
          [web, shop, db, gone].map(ref => excluded(ref, 'last night')),
        ),
      );
      await store.record({
        ...soFar(killed, [
          excluded(web, 'killed night'),
          excluded(shop, 'killed night'),
        ]),
        entities: 4,
      });
      now = Date.parse('2026-12-05T03:12:00.000Z');
      await store.record({
        ...soFar(killed, [excluded(gone, 'killed night')]),
        entities: 4,
      });
      // Killed there (SIGKILL: no end recorded). The next night reaches web first.
      now = Date.parse('2026-12-06T02:30:02.000Z');
      await store.record({
        ...soFar(next, [excluded(web, 'next night')]),
        entities: 3,
      });
      const closed = {
        checkedAt: killed,
        state: 'interrupted',
        heardAt: '2026-12-05T03:12:00.000Z',
        checked: 3,
        entities: 4,
      };
      const underWay = {
        checkedAt: next,
        state: 'under-way',
        heardAt: '2026-12-06T02:30:02.000Z',
        checked: 1,
        entities: 3,
      };
      const pages = Object.fromEntries(
        [...(await store.outcomes())].map(([ref, o]) => [ref, o]),
      );
      expect(pages).toEqual({
        [web]: {
          checkedAt: next,
          outcome: 'excluded',
          message: 'next night',
          night: underWay,
        },
        [shop]: {
          checkedAt: killed,
          outcome: 'excluded',
          message: 'killed night',
          night: closed,
          newer: underWay,
        },
        [gone]: {
          checkedAt: killed,
          outcome: 'excluded',
          message: 'killed night',
          night: closed,
          newer: underWay,
        },
        // Not reached by the killed night: the last whole night's, dated then.
        [db]: {
          checkedAt: lastNight,
          outcome: 'excluded',
          message: 'last night',
          newer: underWay,
        },
      });
      expect(await store.outcomeOf(shop)).toEqual(pages[shop]);
      // web's row, which the killed night had reached, is tonight's now, no longer marked interrupted.
      expect(
        await knex('recovery_nightly_checks')
          .where('entity_ref', web)
          .first(['interrupted_at', 'night_checked', 'night_entities']),
      ).toEqual({
        interrupted_at: null,
        night_checked: null,
        night_entities: null,
      });
      // The next night killed too, before reaching the shop: the shop's page keeps what the first said, and when.
      now = Date.parse('2026-12-07T02:30:00.000Z');
      await store.record(
        soFar('2026-12-07T02:30:00.000Z', [excluded(db, 'third night')]),
      );
      expect((await store.outcomeOf(shop))?.night).toEqual(closed);
      expect((await store.outcomeOf(web))?.night).toEqual({
        ...underWay,
        state: 'interrupted',
        checked: 1,
      });
      // A whole night leaves no interrupted one behind.
      await store.record(
        night('2026-12-07T02:30:00.000Z', [excluded(shop, 'whole')]),
      );
      expect(await store.outcomes()).toEqual(
        new Map([
          [
            shop,
            {
              checkedAt: '2026-12-07T02:30:00.000Z',
              outcome: 'excluded',
              message: 'whole',
            },
          ],
        ]),
      );
    });

    it('dates the last word of a night under way before heartbeats came from its start, and drops those columns going back down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      await knex.migrate.down({
        directory: migrationsDirectory,
        name: INTERRUPTED_MIGRATION,
      });
      expect(
        await knex.schema.hasColumn('recovery_nightly_check_night', 'heard_at'),
      ).toBe(false);
      expect(
        await knex.schema.hasColumn(
          'recovery_nightly_checks',
          'interrupted_at',
        ),
      ).toBe(false);
      // A night under way as the store recorded it before: killed by the upgrade's restart, say.
      const tonight = new Date('2026-12-05T02:30:00.000Z');
      await knex('recovery_nightly_check_night').insert({
        id: 1,
        checked_at: tonight,
        ended: false,
      });
      await knex('recovery_nightly_checks').insert({
        entity_ref: web,
        checked_at: tonight,
        outcome: 'excluded',
        message: 'left out',
      });
      await migrate(knex);
      const store = new NightlyCheckStore(knex, {
        now: () => Date.parse('2026-12-05T12:00:00.000Z'),
      });
      expect((await store.outcomeOf(web))?.night).toEqual({
        checkedAt: tonight.toISOString(),
        state: 'interrupted',
        heardAt: tonight.toISOString(),
        checked: 1,
      });
    });

    it('has its table made by its migration, and dropped going back down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      expect(await knex.schema.hasTable('recovery_nightly_checks')).toBe(true);
      await knex.migrate.down({
        directory: migrationsDirectory,
        name: MIGRATION,
      });
      expect(await knex.schema.hasTable('recovery_nightly_checks')).toBe(false);
      await migrate(knex);
      await new NightlyCheckStore(knex).record(
        night('2026-12-05T02:30:00.000Z', [
          { entityRef: web, outcome: 'excluded', message: 'left out' },
        ]),
      );
      expect((await new NightlyCheckStore(knex).outcomeOf(web))?.outcome).toBe(
        'excluded',
      );
    });
  },
);
