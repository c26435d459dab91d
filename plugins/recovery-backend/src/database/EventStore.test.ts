import { TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import { EventStore, INSERT_SLICE } from './EventStore';
import { migrate } from './migrations';
import { storedEvents } from '../testing/events';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())('EventStore on %s', databaseId => {
  let store: EventStore;

  beforeAll(async () => {
    const knex = await databases.init(databaseId);
    await migrate(knex);
    store = new EventStore(knex);
  });

  /** A store of its own, and the SQL statements it runs. */
  async function freshStore(): Promise<{
    knex: Knex;
    store: EventStore;
    statements: string[];
  }> {
    const knex = await databases.init(databaseId);
    await migrate(knex);
    const statements: string[] = [];
    knex.on('query', (q: { sql: string }) => statements.push(q.sql));
    return { knex, store: new EventStore(knex), statements };
  }

  it('streams events in time order, a bounded page at a time, clock readings apart', async () => {
    const { store: own, statements } = await freshStore();
    // Ties in time across page boundaries: paging must neither skip nor repeat them.
    const events = [5, 1, 3, 3, 3, 2, 3, 8, 8].map((t, i) => ({
      time: 1_700_000_000_000 + t,
      machine: `m${i}`,
      service: 'web',
      type: i % 4 === 0 ? ('clock' as const) : ('start' as const),
      ...(i % 4 === 0 && { reference: 1_700_000_000_000 + t + 7 }),
    }));
    await own.insertEvents(events, 'api');
    // Time order, ties in the order stored (stable sort).
    const all = [...events].sort((x, y) => x.time - y.time);
    statements.length = 0;
    const read = async (clock?: boolean) => {
      const pages: number[] = [];
      const got = [];
      for await (const page of own.eventPages({ clock, pageSize: 2 })) {
        pages.push(page.length);
        got.push(...page);
      }
      return { got, pages };
    };
    const both = await read();
    expect(both.got).toEqual(all);
    expect(both.pages).toEqual([2, 2, 2, 2, 1]);
    expect((await read(false)).got).toEqual(
      all.filter(e => e.type !== 'clock'),
    );
    expect((await read(true)).got).toEqual(all.filter(e => e.type === 'clock'));
    // Every read of the table is bounded.
    expect(statements.length).toBeGreaterThan(0);
    for (const sql of statements) expect(sql).toMatch(/limit/i);
  });

  it("deletes events before a time in bounded batches, of one machine or all, and finds each machine's newest event not after a time", async () => {
    const { knex, store: own, statements } = await freshStore();
    const at = (machine: string) => (t: number) => ({
      time: t,
      machine,
      service: 'loop',
      type: 'start' as const,
    });
    await own.insertEvents(
      [1, 2, 3, 4, 5, 6, 7, 10, 11, 99].map(at('crashy')),
      'api',
    );
    await own.insertEvents([2, 8, 60].map(at('quiet')), 'api');
    expect(await own.newestEventTimes(50)).toEqual(
      new Map([
        ['crashy', 11],
        ['quiet', 8],
      ]),
    );
    expect(await own.newestEventTimes(0)).toEqual(new Map());
    statements.length = 0;
    expect(await own.deleteEventsBefore(10, 3, 'crashy')).toBe(7);
    // 3 + 3 + 1: no statement deletes more than a batch.
    expect(statements.filter(sql => /^delete/i.test(sql))).toHaveLength(3);
    const times = async (machine: string) =>
      (
        await knex('recovery_events')
          .where({ machine })
          .orderBy('time')
          .pluck('time')
      ).map(Number);
    expect(await times('crashy')).toEqual([10, 11, 99]);
    expect(await times('quiet')).toEqual([2, 8, 60]);
    expect(await own.deleteEventsBefore(10, 3, 'crashy')).toBe(0);
    expect(await own.deleteEventsBefore(10, 3)).toBe(2);
    expect(await times('quiet')).toEqual([60]);
  });

  it('keeps the newest analyses of a scope and leaves other scopes alone', async () => {
    const { store: own } = await freshStore();
    const result = { services: [], dependencies: [], serviceOrder: [] } as any;
    const add = (id: string, scope: string, day: number) =>
      own.insertAnalysis({
        id,
        scope,
        events: 1,
        createdAt: `2026-11-${String(day).padStart(2, '0')}T00:00:00.000Z`,
        result,
      });
    for (let day = 1; day <= 5; day++)
      await add(`shop-${day}`, 'system:default/shop', day);
    await add('bank-1', 'system:default/bank', 1);
    expect(await own.pruneAnalyses('system:default/shop', 2)).toBe(3);
    expect(await own.pruneAnalyses('system:default/shop', 2)).toBe(0);
    expect((await own.latestAnalysis('system:default/shop'))!.id).toBe(
      'shop-5',
    );
    await own.pruneAnalyses('system:default/shop', 1);
    expect((await own.latestAnalysis('system:default/shop'))!.id).toBe(
      'shop-5',
    );
    expect((await own.latestAnalysis('system:default/bank'))!.id).toBe(
      'bank-1',
    );
  });

  it('takes as the newest of analyses of one instant the same one when reading, looking it up and pruning', async () => {
    // Two replicas' sweeps (or a sweep and a user's request) can store a system's analyses in one millisecond.
    const { store: own } = await freshStore();
    const result = { services: [], dependencies: [], serviceOrder: [] } as any;
    const scope = 'system:default/shop';
    const at = '2026-11-26T00:00:00.789Z';
    await own.insertAnalysis({
      id: 'tie-old',
      scope,
      events: 1,
      createdAt: '2026-11-25T00:00:00.000Z',
      result,
    });
    for (const id of ['tie-b', 'tie-d', 'tie-a', 'tie-c'])
      await own.insertAnalysis({ id, scope, events: 1, createdAt: at, result });
    expect((await own.latestAnalysis(scope))!.id).toBe('tie-d');
    expect(await own.latestAnalysisId(scope)).toBe('tie-d');
    expect(await own.pruneAnalyses(scope, 2)).toBe(3);
    expect((await own.analysis('tie-c'))?.id).toBe('tie-c');
    expect(await own.pruneAnalyses(scope, 1)).toBe(1);
    expect((await own.latestAnalysis(scope))!.id).toBe('tie-d');
    expect(await own.analysis('tie-c')).toBeUndefined();
  });

  it('keeps each event once, in time order, with clock readings', async () => {
    const events = [
      {
        time: 1_700_000_600_000,
        machine: 'web-01',
        service: 'web',
        type: 'start' as const,
      },
      {
        time: 1_700_000_000_000,
        machine: 'db-01',
        service: 'db',
        type: 'start' as const,
      },
      {
        time: 1_700_000_000_500,
        machine: 'db-01',
        service: 'db',
        type: 'clock' as const,
        reference: 1_700_000_090_500,
      },
    ];
    expect(await store.insertEvents(events, 'api')).toBe(3);
    // A stream that resumes re-sends what it already delivered.
    expect(
      await store.insertEvents(
        [...events, { ...events[0], time: 1_700_000_700_000 }],
        'docker:primary',
      ),
    ).toBe(1);
    const listed = await storedEvents(store);
    expect(listed).toEqual([
      events[1],
      events[2],
      events[0],
      { ...events[0], time: 1_700_000_700_000 },
    ]);
  });

  it('keeps event times to the whole millisecond', async () => {
    // journald (µs / 1000) and docker (ns / 1e6) give fractions of a ms; a bigint column refuses them on PostgreSQL.
    const fractional = [
      {
        time: 1_650_000_000_123.457,
        machine: 'frac-01',
        service: 'web',
        type: 'start' as const,
      },
      {
        time: 1_650_000_000_200.5,
        machine: 'frac-01',
        service: 'web',
        type: 'clock' as const,
        reference: 1_650_000_090_200.499,
      },
    ];
    expect(await store.insertEvents(fractional, 'api')).toBe(2);
    // The same events sent again round to the same identity and are kept once.
    expect(
      await store.insertEvents(
        [{ ...fractional[0], time: 1_650_000_000_122.9 }],
        'api',
      ),
    ).toBe(0);
    const listed = (await storedEvents(store)).filter(
      e => e.machine === 'frac-01',
    );
    expect(listed).toEqual([
      {
        time: 1_650_000_000_123,
        machine: 'frac-01',
        service: 'web',
        type: 'start',
      },
      {
        time: 1_650_000_000_201,
        machine: 'frac-01',
        service: 'web',
        type: 'clock',
        reference: 1_650_000_090_200,
      },
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

  it('stores two pushes of the same events in different orders at once, each event once, without a deadlock', async () => {
    // Overlapping exports pushed together: each push inserts batch by batch in one transaction, and
    // a row the other has inserted but not committed makes it wait for that one.
    const { knex, store: own } = await freshStore();
    const machines = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
    const events = machines.flatMap(machine =>
      Array.from({ length: 500 }, (_, i) => ({
        time: 1_500_000_000_000 + i,
        machine,
        service: 'web',
        type: 'start' as const,
      })),
    );
    const stored = await Promise.all([
      own.insertEvents(events, 'api:a'),
      own.insertEvents([...events].reverse(), 'api:b'),
    ]);
    expect(stored[0] + stored[1]).toBe(events.length);
    expect(
      Number((await knex('recovery_events').count({ n: '*' }).first())!.n),
    ).toBe(events.length);
  });

  it('lets timers run while it stores many events, in one transaction still', async () => {
    // On SQLite each statement runs synchronously: without yields a push held the event loop
    // (health checks, a running recovery's timing) until its last row was stored.
    const { knex, store: own } = await freshStore();
    const many = Array.from({ length: INSERT_SLICE * 5 }, (_, i) => ({
      time: 1_600_000_000_000 + i,
      machine: `m${i % 7}`,
      service: `s${i % 13}`,
      type: 'start' as const,
    }));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      expect(await own.insertEvents(many, 'api')).toBe(many.length);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThanOrEqual(2);
    expect(
      Number((await knex('recovery_events').count({ n: '*' }).first())!.n),
    ).toBe(many.length);
  });

  it('stores nothing of a call that fails in a later batch', async () => {
    const { knex, store: own } = await freshStore();
    const batch = (n: number, machine: string) =>
      Array.from({ length: n }, (_, i) => ({
        time: 1_550_000_000_000 + i,
        machine,
        service: 'web',
        type: 'start' as const,
      }));
    // Batches (and on SQLite a slice, after a yield) that would store, then a row the schema
    // refuses (service is NOT NULL).
    const events = batch(INSERT_SLICE + 700, 'tx-01');
    events[INSERT_SLICE + 650] = {
      ...events[INSERT_SLICE + 650],
      service: null as unknown as string,
    };
    await expect(own.insertEvents(events, 'api')).rejects.toThrow();
    const stored = async () =>
      Number((await knex('recovery_events').count({ n: '*' }).first())!.n);
    expect(await stored()).toBe(0);
    // The store is usable afterwards, and the same events without the bad row store in full.
    expect(
      await own.insertEvents(batch(INSERT_SLICE + 700, 'tx-01'), 'api'),
    ).toBe(INSERT_SLICE + 700);
    expect(await stored()).toBe(INSERT_SLICE + 700);
  });

  it('serves the latest analysis of a scope', async () => {
    const result = {
      services: [],
      dependencies: [],
      serviceOrder: ['a'],
    } as any;
    await store.insertAnalysis({
      id: 'a1',
      scope: 'system:default/shop',
      events: 10,
      createdAt: '2026-11-20T00:00:00.000Z',
      result,
    });
    await store.insertAnalysis({
      id: 'a2',
      scope: 'system:default/shop',
      events: 12,
      createdAt: '2026-11-21T00:00:00.000Z',
      result: { ...result, serviceOrder: ['b'] },
    });
    const latest = await store.latestAnalysis('system:default/shop');
    expect(latest).toMatchObject({
      id: 'a2',
      events: 12,
      createdAt: '2026-11-21T00:00:00.000Z',
    });
    expect(latest!.result.serviceOrder).toEqual(['b']);
    expect(await store.latestAnalysis('system:default/none')).toBeUndefined();
  });
});
