import { TestDatabases } from '@backstage/backend-test-utils';
import type { NightlyCheckEntityOutcome } from '@backstage-recovery/plugin-recovery-common';
import { NightlyCheckStore } from './NightlyCheckStore';
import { RecoveryStore } from './RecoveryStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const MIGRATION = '20261214000000_nightly_check_outcomes.js';

const web = 'component:default/web';
const shop = 'system:default/shop';
const night = (checkedAt: string, outcomes: NightlyCheckEntityOutcome[]) => ({ checkedAt, outcomes });

describe.each(databases.eachSupportedId())('NightlyCheckStore on %s', databaseId => {
  it("keeps the latest night's outcome per entity, each as recorded, and forgets those that night did not check", async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    const store = new NightlyCheckStore(knex);
    expect(await store.outcomeOf(web)).toBeUndefined();
    expect(await store.outcomes()).toEqual(new Map());

    await store.record(
      night('2026-12-04T02:30:00.000Z', [
        { entityRef: shop, outcome: 'started', runId: 'r1', runEntityRef: shop, message: 'run r1 succeeded in 42 s' },
        { entityRef: web, outcome: 'covered', runId: 'r1', runEntityRef: shop, message: `run r1 of ${shop} succeeded in 42 s` },
        { entityRef: 'component:default/gone', outcome: 'excluded', message: "left out: its annotation is 'false'" },
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
      message: 'refused: failover f1 of component:default/bank keeps 2 containers on recovery; release failover f1',
    };
    await store.record(
      night('2026-12-05T02:30:00.123Z', [
        { entityRef: shop, ...refused },
        { entityRef: web, outcome: 'refused', reason: 'uncaptured', message: 'No capture of resource:default/web-01 yet: capture first' },
        // Many rows, past a batch: one statement each would hit SQLite's bound-variable cap.
        ...Array.from({ length: 450 }, (_, i) => ({ entityRef: `component:default/s${i}`, outcome: 'excluded' as const, message: 'left out' })),
      ]),
    );
    const all = await store.outcomes();
    expect(all.size).toBe(452);
    expect(all.has('component:default/gone')).toBe(false);
    expect(all.get(shop)).toEqual({ checkedAt: '2026-12-05T02:30:00.123Z', ...refused });
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
    await RecoveryStore.migrate(knex);
    const store = new NightlyCheckStore(knex);
    const kept = { entityRef: web, outcome: 'excluded' as const, message: 'left out' };
    await store.record(night('2026-12-04T02:30:00.000Z', [kept]));
    // The same entity twice breaks the key, halfway through the night.
    await expect(store.record(night('2026-12-05T02:30:00.000Z', [{ ...kept, entityRef: shop }, kept, kept]))).rejects.toThrow();
    expect([...(await store.outcomes()).keys()]).toEqual([web]);
  });

  it('refuses a night older than the one recorded, which stays whole', async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    const store = new NightlyCheckStore(knex);
    const lastNight = { entityRef: web, outcome: 'excluded' as const, message: 'left out' };
    await store.record(night('2026-12-05T02:30:00.000Z', [lastNight]));
    await expect(
      store.record(night('2026-12-04T02:30:00.000Z', [{ entityRef: shop, outcome: 'excluded', message: 'left out' }])),
    ).rejects.toThrow(
      'The nightly check of 2026-12-05T02:30:00.000Z is recorded: that of 2026-12-04T02:30:00.000Z, older, is not',
    );
    expect(await store.outcomes()).toEqual(new Map([[web, { checkedAt: '2026-12-05T02:30:00.000Z', outcome: 'excluded', message: 'left out' }]]));
    // The same night again (a retried request) replaces it.
    await store.record(night('2026-12-05T02:30:00.000Z', [{ ...lastNight, entityRef: shop }]));
    expect([...(await store.outcomes()).keys()]).toEqual([shop]);
    // A night with no outcomes (nothing recoverable) still dates what is recorded.
    await store.record(night('2026-12-06T02:30:00.000Z', []));
    await expect(store.record(night('2026-12-05T02:30:00.000Z', [lastNight]))).rejects.toThrow(
      'The nightly check of 2026-12-06T02:30:00.000Z is recorded: that of 2026-12-05T02:30:00.000Z, older, is not',
    );
    expect(await store.outcomes()).toEqual(new Map());
  });

  it('records two nights sent at once one after the other: the newer stands, and no key is broken', async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    const store = new NightlyCheckStore(knex);
    const of = (checkedAt: string) => night(checkedAt, [web, shop].map(entityRef => ({ entityRef, outcome: 'excluded' as const, message: checkedAt })));
    for (let round = 0; round < 5; round++) {
      const [older, newer] = [`2026-12-0${round + 1}T02:30:00.000Z`, `2026-12-0${round + 1}T02:31:00.000Z`];
      const settled = await Promise.allSettled([store.record(of(newer)), store.record(of(older))]);
      // The older is refused if the newer went first; else the newer replaced it.
      expect(settled[0].status).toBe('fulfilled');
      if (settled[1].status === 'rejected') expect(String(settled[1].reason)).toContain('older, is not');
      expect([...(await store.outcomes()).values()].map(o => o.message)).toEqual([newer, newer]);
    }
  });

  it('has its table made by its migration, and dropped going back down', async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    expect(await knex.schema.hasTable('recovery_nightly_checks')).toBe(true);
    await knex.migrate.down({ directory: RecoveryStore.migrationsDirectory, name: MIGRATION });
    expect(await knex.schema.hasTable('recovery_nightly_checks')).toBe(false);
    await RecoveryStore.migrate(knex);
    await new NightlyCheckStore(knex).record(night('2026-12-05T02:30:00.000Z', [{ entityRef: web, outcome: 'excluded', message: 'left out' }]));
    expect((await new NightlyCheckStore(knex).outcomeOf(web))?.outcome).toBe('excluded');
  });
});
