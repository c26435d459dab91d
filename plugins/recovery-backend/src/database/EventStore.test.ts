import { TestDatabases } from '@backstage/backend-test-utils';
import { EventStore } from './EventStore';
import { RecoveryStore } from './RecoveryStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())('EventStore on %p', databaseId => {
  let store: EventStore;

  beforeAll(async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    store = new EventStore(knex);
  });

  it('keeps each event once, in time order, with clock readings', async () => {
    const events = [
      { time: 1_700_000_600_000, machine: 'web-01', service: 'web', type: 'start' as const },
      { time: 1_700_000_000_000, machine: 'db-01', service: 'db', type: 'start' as const },
      { time: 1_700_000_000_500, machine: 'db-01', service: 'db', type: 'clock' as const, reference: 1_700_000_090_500 },
    ];
    expect(await store.insertEvents(events, 'api')).toBe(3);
    // A stream that resumes re-sends what it already delivered.
    expect(await store.insertEvents([...events, { ...events[0], time: 1_700_000_700_000 }], 'docker:primary')).toBe(1);
    const listed = await store.listEvents();
    expect(listed).toEqual([events[1], events[2], events[0], { ...events[0], time: 1_700_000_700_000 }]);
    expect(await store.listEvents({ since: 1_700_000_600_000 })).toHaveLength(2);
  });

  it('keeps event times to the whole millisecond', async () => {
    // journald (µs / 1000) and docker (ns / 1e6) give fractions of a ms; a bigint column refuses them on PostgreSQL.
    const fractional = [
      { time: 1_650_000_000_123.457, machine: 'frac-01', service: 'web', type: 'start' as const },
      { time: 1_650_000_000_200.5, machine: 'frac-01', service: 'web', type: 'clock' as const, reference: 1_650_000_090_200.499 },
    ];
    expect(await store.insertEvents(fractional, 'api')).toBe(2);
    // The same events sent again round to the same identity and are kept once.
    expect(await store.insertEvents([{ ...fractional[0], time: 1_650_000_000_122.9 }], 'api')).toBe(0);
    const listed = (await store.listEvents()).filter(e => e.machine === 'frac-01');
    expect(listed).toEqual([
      { time: 1_650_000_000_123, machine: 'frac-01', service: 'web', type: 'start' },
      { time: 1_650_000_000_201, machine: 'frac-01', service: 'web', type: 'clock', reference: 1_650_000_090_200 },
    ]);
  });

  it('stores many events in batches', async () => {
    const many = Array.from({ length: 1_234 }, (_, i) => ({
      time: 1_600_000_000_000 + i,
      machine: `m${i % 7}`,
      service: `s${i % 13}`,
      type: 'start' as const,
    }));
    expect(await store.insertEvents(many, 'api')).toBe(1_234);
  });

  it('serves the latest analysis of a scope', async () => {
    const result = { services: [], dependencies: [], serviceOrder: ['a'] } as any;
    await store.insertAnalysis({ id: 'a1', scope: 'system:default/shop', events: 10, createdAt: '2026-11-20T00:00:00.000Z', result });
    await store.insertAnalysis({ id: 'a2', scope: 'system:default/shop', events: 12, createdAt: '2026-11-21T00:00:00.000Z', result: { ...result, serviceOrder: ['b'] } });
    const latest = await store.latestAnalysis('system:default/shop');
    expect(latest).toMatchObject({ id: 'a2', events: 12, createdAt: '2026-11-21T00:00:00.000Z' });
    expect(latest!.result.serviceOrder).toEqual(['b']);
    expect(await store.latestAnalysis('system:default/none')).toBeUndefined();
  });
});
