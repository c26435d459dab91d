import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import {
  analyzeDependencies,
  clockCorrector,
  compileServiceMap,
  type KernelOptions,
} from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import {
  GeneratedHistory,
  generateHistory,
  rebootFollowerHistory,
} from '../../../../bench/generate';
import { EventStore } from '../database/EventStore';
import { migrate } from '../database/migrations';
import { storedEvents } from '../testing/events';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { catalogHidingFromUsers } from '../testing/catalog';
import { componentEntity, machineEntity } from '../testing/entities';
import {
  AnalysisService,
  AnalysisServiceOptions,
  refsIn,
  SystemAnalysis,
  withoutHidden,
} from './AnalysisService';

// Counted, not changed: an analysis whose latest event is ahead of the clock runs once.
vi.mock('@backstage-recovery/plugin-recovery-node', async importOriginal => {
  const actual =
    await importOriginal<
      typeof import('@backstage-recovery/plugin-recovery-node')
    >();
  return { ...actual, analyzeDependencies: vi.fn(actual.analyzeDependencies) };
});

const DAY = 86_400_000;
const generated = generateHistory({
  seed: 5,
  machines: 5,
  services: 14,
  siteBoots: 25,
  machineReboots: 20,
});
const rebooted = rebootFollowerHistory();
const serviceMap = generated.map;

/** A System of a generated history's machines and services, nothing declared between them. */
function system(h: GeneratedHistory, name: string): Entity[] {
  const machines = h.truth.machines.map<Entity>(machine => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: { name: machine, namespace: 'default' },
    spec: { type: 'machine', system: name },
  }));
  const services = h.truth.services.map<Entity>(s => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: s.name, namespace: 'default' },
    spec: { type: 'service', system: name },
    relations: s.machines.map(m => ({
      type: 'dependsOn',
      targetRef: `resource:default/${m}`,
    })),
  }));
  const root: Entity = {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name, namespace: 'default' },
    spec: {},
    relations: h.truth.services.map(s => ({
      type: 'hasPart',
      targetRef: `component:default/${s.name}`,
    })),
  };
  return [root, ...machines, ...services];
}

/** A crash-looping container outside every system: a start and a failure every minute, and clock readings. */
function crashLoop(from: number, count: number): InitializationEvent[] {
  return Array.from({ length: count }, (_, i) => [
    {
      time: from + i * 60_000,
      machine: 'crashy',
      service: 'crashloop',
      type: 'start' as const,
    },
    {
      time: from + i * 60_000 + 5_000,
      machine: 'crashy',
      service: 'crashloop',
      type: 'failure' as const,
    },
    ...(i % 10 === 0
      ? [
          {
            time: from + i * 60_000 + 1,
            machine: 'crashy',
            service: '',
            type: 'clock' as const,
            reference: from + i * 60_000 + 90_001,
          },
        ]
      : []),
  ]).flat();
}

/** The analysis as it was before streaming: the whole table in memory, filtered per system. */
function wholeTableAnalysis(
  all: InitializationEvent[],
  h: GeneratedHistory,
  options: { threshold: number; kernel?: KernelOptions },
) {
  const mapName = compileServiceMap(serviceMap);
  const names = new Set(h.truth.services.map(s => s.name));
  const mapped: InitializationEvent[] = [];
  const seen = new Set<string>();
  const clocks: InitializationEvent[] = [];
  for (const e of all) {
    if (e.type === 'clock') {
      clocks.push(e);
      continue;
    }
    const service = mapName(e.service);
    if (!names.has(service)) continue;
    mapped.push({ ...e, service });
    seen.add(e.machine);
  }
  const events = [...mapped, ...clocks.filter(c => seen.has(c.machine))];
  return {
    events: events.length,
    result: analyzeDependencies(events, options),
  };
}

/** The entities with the relations the catalog adds in reverse (partOf, dependencyOf), which a sweep finds systems by. */
function withReverseRelations(entities: Entity[]): Entity[] {
  for (const e of entities) {
    if (e.kind !== 'Component') continue;
    e.relations!.push({
      type: 'partOf',
      targetRef: `system:default/${e.spec!.system}`,
    });
    for (const { targetRef } of e.relations!.filter(
      r => r.type === 'dependsOn',
    )) {
      const machine = entities.find(
        m => `resource:default/${m.metadata.name}` === targetRef,
      )!;
      (machine.relations ??= []).push({
        type: 'dependencyOf',
        targetRef: `component:default/${e.metadata.name}`,
      });
    }
  }
  return entities;
}

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'AnalysisService on %p',
  databaseId => {
    let knex: Knex;
    let store: EventStore;
    /** SQL run against the events table since the last reset. */
    let eventQueries: string[];

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      store = new EventStore(knex);
      eventQueries = [];
      knex.on('query', (q: { sql: string }) => {
        if (q.sql.includes('recovery_events')) eventQueries.push(q.sql);
      });
    });

    function service(options: Partial<AnalysisServiceOptions> = {}) {
      const entities = [
        ...system(generated, 'generated'),
        ...system(rebooted, 'rebooted'),
      ];
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({ entities }),
        mockServices.auth(),
        {
          rpoSeconds: 86400,
          rtoSeconds: 3600,
        },
      );
      return new AnalysisService(store, graphs, mockServices.logger.mock(), {
        threshold: 0.7,
        serviceMap,
        eventRetentionMs: 180 * DAY,
        keepAnalyses: 20,
        ...options,
      });
    }

    const withoutRefs = ({ entityRefs, machineRefs, ...rest }: any) => rest;

    it('analyses with the kernel shape configured, and refuses at start one that is none', async () => {
      await store.insertEvents(generated.events, 'api');
      const correlation = async (kernelShape?: string) =>
        JSON.stringify(
          (
            await service({ kernelShape }).analyzeSystem(
              'system:default/generated',
            )
          ).result.correlation.matrix,
        );
      const piecewise = await correlation();
      expect(await correlation('piecewise')).toBe(piecewise);
      const gamma = await correlation('gamma:5');
      const lognormal = await correlation('lognormal');
      expect(new Set([piecewise, gamma, lognormal]).size).toBe(3);
      // As the engine scores with that kernel itself.
      const direct = wholeTableAnalysis(await storedEvents(store), generated, {
        threshold: 0.7,
        kernel: { shape: 'gamma', gammaShape: 5 },
      });
      expect(gamma).toBe(JSON.stringify(direct.result.correlation.matrix));
      expect(() => service({ kernelShape: 'gamma:1' })).toThrow(
        "Invalid recovery.analysis.kernelShape 'gamma:1': kernel gammaShape must be a finite number over 1 (got 1)",
      );
      expect(() => service({ kernelShape: 'triangle' })).toThrow(
        "Invalid recovery.analysis.kernelShape 'triangle': expected piecewise, gamma[:k] or lognormal[:sigma]",
      );
    });

    it('reads the store in pages and gives each system what reading the whole table gave', async () => {
      const t0 = Math.min(...generated.events.map(e => e.time));
      await store.insertEvents(
        [...generated.events, ...rebooted.events, ...crashLoop(t0, 3_000)],
        'api',
      );
      const all = await storedEvents(store);
      eventQueries = [];

      const analyses = service({ pageSize: 500 });
      const { analysed, failed } = await analyses.analyzeSystems([
        'system:default/generated',
        'system:default/missing',
        'system:default/rebooted',
      ]);
      expect(analysed).toEqual([
        'system:default/generated',
        'system:default/rebooted',
      ]);
      expect(failed).toEqual([
        {
          entityRef: 'system:default/missing',
          message: expect.stringContaining('not found'),
        },
      ]);
      for (const [name, h] of [
        ['generated', generated],
        ['rebooted', rebooted],
      ] as const) {
        const stored = await analyses.latest(`system:default/${name}`);
        const expected = wholeTableAnalysis(all, h, { threshold: 0.7 });
        expect(stored!.events).toBe(expected.events);
        expect(withoutRefs(stored!.result)).toEqual(expected.result);
      }
      // No read of the events table is unbounded: the 9,000 events of the crash loop and the
      // histories come in pages of 500.
      const reads = eventQueries.filter(
        sql => /^select/i.test(sql) && !/max\(/i.test(sql),
      );
      expect(reads.length).toBeGreaterThan(all.length / 500);
      for (const sql of reads) expect(sql).toMatch(/limit/i);

      // One system alone, on demand: the same result.
      const alone = await analyses.analyzeSystem('system:default/generated');
      expect(withoutRefs(alone.result)).toEqual(
        wholeTableAnalysis(all, generated, { threshold: 0.7 }).result,
      );
    });

    it("deletes each machine's events older than the retention before its newest one when it analyses", async () => {
      const times = generated.events.map(e => e.time);
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(20 * DAY);
      const newestOf = new Map<string, number>();
      for (const e of generated.events)
        newestOf.set(
          e.machine,
          Math.max(newestOf.get(e.machine) ?? -Infinity, e.time),
        );
      // A machine whose clock is decades ahead: not the newest event, or all its history would go.
      const ahead = {
        time: Date.UTC(2099, 0, 1),
        machine: 'crashy',
        service: 'crashloop',
        type: 'start' as const,
      };
      // A machine that has not booted since long before the others' latest boots: its boots stay.
      const quiet = [0, 1, 2].map(k => ({
        time: Math.min(...times) - (100 - k) * DAY,
        machine: 'quiet',
        service: generated.truth.services[0].name,
        type: 'start' as const,
      }));
      // One-off containers, as silent, of names no catalog entity has (a `docker run` without a
      // name, a clock-only host): measured from their own newest event they would never go.
      const oneOff = [
        {
          time: Math.min(...times) - 100 * DAY,
          machine: 'jolly_turing',
          service: 'jolly_turing',
          type: 'start' as const,
        },
        {
          time: Math.min(...times) - 99 * DAY,
          machine: 'jolly_turing',
          service: 'jolly_turing',
          type: 'failure' as const,
        },
        {
          time: Math.min(...times) - 98 * DAY,
          machine: 'clock-only',
          service: '',
          type: 'clock' as const,
          reference: Math.min(...times) - 98 * DAY,
        },
      ];
      await store.insertEvents(
        [...generated.events, ahead, ...quiet, ...oneOff],
        'api',
      );
      eventQueries = [];

      // The history is years before now: a retention measured from now would leave nothing.
      const analysis = await service({
        eventRetentionMs: 10 * DAY,
        deleteBatchSize: 100,
      }).analyzeSystem('system:default/generated');
      const left = await storedEvents(store);
      expect(left).toContainEqual(ahead);
      expect(left.filter(e => e.machine === 'quiet')).toEqual(quiet);
      expect(
        left.filter(
          e => e.machine === 'jolly_turing' || e.machine === 'clock-only',
        ),
      ).toEqual([]);
      expect(
        left
          .filter(e => e.machine !== 'crashy' && e.machine !== 'quiet')
          .map(e => e.time),
      ).toEqual(
        generated.events
          .filter(e => e.time >= newestOf.get(e.machine)! - 10 * DAY)
          .map(e => e.time)
          .sort((a, b) => a - b),
      );
      expect(left.length).toBeLessThan(generated.events.length / 2);
      // Deleted in batches, and analysed from what is left.
      expect(
        eventQueries.filter(sql => /^delete/i.test(sql)).length,
      ).toBeGreaterThan(2);
      expect(analysis.events).toBe(
        wholeTableAnalysis(left, generated, { threshold: 0.7 }).events,
      );
    });

    it("parses a system's latest analysis once for all plans, and again only when a newer one is stored", async () => {
      await store.insertEvents(generated.events, 'api');
      const analyses = service();
      const root = system(generated, 'generated')[0];
      const first = await analyses.analyzeSystem('system:default/generated');
      const resultReads: string[] = [];
      knex.on('query', (q: { sql: string }) => {
        if (
          q.sql.includes('recovery_analyses') &&
          !/^select [`"]?id[`"]? from/i.test(q.sql)
        )
          resultReads.push(q.sql);
      });
      const inference = await analyses.inferenceFor(root);
      expect(inference!.id).toBe(first.id);
      expect(await analyses.inferenceFor(root)).toBe(inference);
      expect(resultReads).toHaveLength(1);
      const second = await analyses.analyzeSystem('system:default/generated');
      resultReads.length = 0;
      expect((await analyses.inferenceFor(root))!.id).toBe(second.id);
      expect(resultReads).toHaveLength(1);
    });

    it("looks up a system's latest analysis once for all the plans of one request (withMemo), and again for the next", async () => {
      await store.insertEvents(generated.events, 'api');
      const analyses = service();
      const [root, ...parts] = system(generated, 'generated');
      const first = await analyses.analyzeSystem('system:default/generated');
      const lookups: string[] = [];
      knex.on('query', (q: { sql: string }) => {
        if (/^select [`"]?id[`"]? from [`"]?recovery_analyses/i.test(q.sql))
          lookups.push(q.sql);
      });
      const overview = analyses.withMemo();
      for (const entity of [root, ...parts.slice(0, 3), root])
        expect((await overview.inferenceFor(entity))!.id).toBe(first.id);
      expect(lookups).toHaveLength(1);
      // The next request sees an analysis stored since.
      const second = await analyses.analyzeSystem('system:default/generated');
      lookups.length = 0;
      expect((await analyses.withMemo().inferenceFor(root))!.id).toBe(
        second.id,
      );
      expect(lookups).toHaveLength(1);
    });

    it("gives a run's earlier analysis by id while it is kept, reading it once, and nothing once it is pruned", async () => {
      await store.insertEvents(generated.events, 'api');
      const analyses = service({ keepAnalyses: 1 });
      const first = await analyses.analyzeSystem('system:default/generated');
      const resultReads: string[] = [];
      knex.on('query', (q: { sql: string }) => {
        if (q.sql.includes('recovery_analyses')) resultReads.push(q.sql);
      });
      // Runs of one page ask at once.
      const [inference, same] = await Promise.all([
        analyses.inferenceOf(first.id),
        analyses.inferenceOf(first.id),
      ]);
      expect(inference!.id).toBe(first.id);
      expect(same).toBe(inference);
      // Log names to entity refs, for the warnings of a run's plan to be read by each caller.
      expect(inference!.names.get(generated.truth.machines[0])).toBe(
        `resource:default/${generated.truth.machines[0]}`,
      );
      expect(await analyses.inferenceOf(first.id)).toBe(inference);
      expect(resultReads).toHaveLength(1);

      // Pruned by the next analysis (one kept): gone for good, asked about once.
      const second = await analyses.analyzeSystem('system:default/generated');
      const pruned = service({ keepAnalyses: 1 });
      resultReads.length = 0;
      expect(await pruned.inferenceOf(first.id)).toBeUndefined();
      expect(await pruned.inferenceOf(first.id)).toBeUndefined();
      expect(resultReads).toHaveLength(1);
      expect((await pruned.inferenceOf(second.id))!.id).toBe(second.id);
    });

    it('deletes the analyses of a system renamed or removed in the catalog once not analysed for the event retention, and no other', async () => {
      await store.insertEvents(
        [...generated.events, ...rebooted.events],
        'api',
      );
      /** The catalog of these systems, with the relations it adds in reverse, which the sweep finds systems by. */
      const catalogOf = (...systems: Array<[GeneratedHistory, string]>) => {
        const entities = withReverseRelations(
          systems.flatMap(([h, name]) => system(h, name)),
        );
        const graphs = new CatalogGraphLoader(
          catalogServiceMock({ entities }),
          mockServices.auth(),
          { rpoSeconds: 86400, rtoSeconds: 3600 },
        );
        return new AnalysisService(store, graphs, mockServices.logger.mock(), {
          threshold: 0.7,
          serviceMap,
          eventRetentionMs: 180 * DAY,
          keepAnalyses: 20,
        });
      };
      const all = async (refs: string[]) => refs;
      const before = catalogOf([generated, 'shop'], [rebooted, 'rebooted']);
      await before.sweep(mockCredentials.service(), all);
      await before.sweep(mockCredentials.service(), all);
      const scopes = async () =>
        [
          ...new Set(
            (await knex('recovery_analyses').pluck('scope')) as string[],
          ),
        ].sort();
      expect(await scopes()).toEqual([
        'system:default/rebooted',
        'system:default/shop',
      ]);

      // shop renamed store; rebooted removed. Just missed (a catalog refresh, say), they keep
      // their learned plans.
      const after = catalogOf([generated, 'store']);
      await after.sweep(mockCredentials.service(), async () => []);
      expect(await scopes()).toEqual([
        'system:default/rebooted',
        'system:default/shop',
      ]);
      // Not analysed for the event retention: a sweep by a caller who may analyse none of them
      // still leaves no analysis of a system the catalog no longer holds.
      await knex('recovery_analyses')
        .where({ scope: 'system:default/shop' })
        .update({ created_at: new Date(Date.now() - 181 * DAY) });
      await after.sweep(mockCredentials.service(), async () => []);
      expect(await scopes()).toEqual(['system:default/rebooted']);
      await knex('recovery_analyses').update({
        created_at: new Date(Date.now() - 181 * DAY),
      });
      await after.sweep(mockCredentials.service(), async () => []);
      expect(await scopes()).toEqual([]);
      await after.sweep(mockCredentials.service(), all);
      expect(await scopes()).toEqual(['system:default/store']);
      expect(
        Number((await knex('recovery_analyses').count({ n: '*' }).first())!.n),
      ).toBe(1);
    });

    it('sweeps every system, and names to a caller only the systems the catalog shows them', async () => {
      await store.insertEvents(
        [...generated.events, ...rebooted.events],
        'api',
      );
      // With the relations the catalog adds in reverse, which the sweep finds systems by.
      const entities = withReverseRelations([
        ...system(generated, 'generated'),
        ...system(rebooted, 'rebooted'),
      ]);
      // Users do not see the rebooted system; the plugin itself sees everything.
      const catalog = catalogHidingFromUsers(entities, [
        'system:default/rebooted',
      ]);
      const graphs = new CatalogGraphLoader(catalog, mockServices.auth(), {
        rpoSeconds: 86400,
        rtoSeconds: 3600,
      });
      const analyses = new AnalysisService(
        store,
        graphs,
        mockServices.logger.mock(),
        {
          threshold: 0.7,
          serviceMap,
          eventRetentionMs: 180 * DAY,
          keepAnalyses: 20,
        },
      );

      const all = async (refs: string[]) => refs;
      expect(await analyses.sweep(mockCredentials.user(), all)).toEqual({
        analysed: ['system:default/generated'],
        skipped: [],
        failed: [],
        hidden: 1,
      });
      // Both were analysed all the same.
      expect((await analyses.latest('system:default/rebooted'))?.scope).toBe(
        'system:default/rebooted',
      );
      expect(await analyses.sweep(mockCredentials.service(), all)).toEqual({
        analysed: ['system:default/generated', 'system:default/rebooted'],
        skipped: [],
        failed: [],
        hidden: 0,
      });
      // Only the systems the permission policy allows the caller to analyse are analysed.
      const before = (await analyses.latest('system:default/rebooted'))!.id;
      expect(
        await analyses.sweep(mockCredentials.service(), async refs =>
          refs.filter(r => r !== 'system:default/rebooted'),
        ),
      ).toEqual({
        analysed: ['system:default/generated'],
        skipped: [],
        failed: [],
        hidden: 0,
      });
      expect((await analyses.latest('system:default/rebooted'))!.id).toBe(
        before,
      );
    });

    it("leaves out, with a warning naming it, a stored start that its machine's clock reading (pushed later) moves past the last date, and analyses the rest", async () => {
      const first = generated.events.find(e => e.type === 'start')!;
      const newest = Math.max(...generated.events.map(e => e.time));
      // A start stamped near the last date there is, stored with one push; its machine's latest
      // clock reading (a minute ahead), with another, moves it past that date.
      const last = { ...first, time: 8.64e15 - 1000 };
      const clock = {
        time: newest + DAY,
        machine: first.machine,
        service: '',
        type: 'clock' as const,
        reference: newest + DAY + 60_000,
      };
      await store.insertEvents([...generated.events, last], 'api:first');
      await store.insertEvents([clock], 'api:later');
      const analyses = service();
      expect(
        await analyses.analyzeSystems(['system:default/generated']),
      ).toEqual({
        analysed: ['system:default/generated'],
        skipped: [],
        failed: [],
      });
      const { result } = (await analyses.latest('system:default/generated'))!;
      const mapped = compileServiceMap(serviceMap)(first.service);
      expect(result.warnings).toContain(
        `start of ${mapped} on ${first.machine} left out: its time +275760-09-12T23:59:59.000Z (machine time) is past the last date there is (+275760-09-13T00:00:00.000Z) once moved by +60.0 s, ` +
          `the offset of ${first.machine}'s clock from its reading (taken at ${new Date(newest + DAY).toISOString()}, machine time): is the event's time, or that reading's 'reference', in the wrong unit?`,
      );
      // What the history gives without it.
      const expected = analyzeDependencies(
        [
          ...generated.events.map(e =>
            e.type === 'clock'
              ? e
              : { ...e, service: compileServiceMap(serviceMap)(e.service) },
          ),
          clock,
        ],
        { threshold: 0.7 },
      );
      expect(withoutRefs(result).dependencies).toEqual(expected.dependencies);
      expect(withoutRefs(result).waves).toEqual(expected.waves);
      expect(result.at).toBe(expected.at);
    });

    it('leaves out, with a warning naming it, a clock reading stored before the parsers refused it, and analyses the rest', async () => {
      const first = generated.events.find(e => e.type === 'start')!;
      // The nearest readings to the machine's first start: a reference at the last date there is
      // (it moved the machine's events past what a date holds), and one in microseconds.
      const bad = [
        {
          time: first.time - 1,
          machine: first.machine,
          service: '',
          type: 'clock' as const,
          reference: 8.64e15,
        },
        {
          time: first.time + 1,
          machine: first.machine,
          service: '',
          type: 'clock' as const,
          reference: first.time * 1000,
        },
      ];
      await store.insertEvents([...generated.events, ...bad], 'api');
      const analyses = service();
      expect(
        await analyses.analyzeSystems(['system:default/generated']),
      ).toEqual({
        analysed: ['system:default/generated'],
        skipped: [],
        failed: [],
      });
      const { result } = (await analyses.latest('system:default/generated'))!;
      expect(result.warnings).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^2 clock readings of ${first.machine} left out, the first at ${new Date(first.time - 1).toISOString()} \\(machine time\\): its 'reference' is \\d+ years ahead of its 'time': no clock is more than 100 years off`,
          ),
        ),
      );
      // What the readings that hold give.
      const expected = analyzeDependencies(
        generated.events.map(e =>
          e.type === 'clock'
            ? e
            : { ...e, service: compileServiceMap(serviceMap)(e.service) },
        ),
        { threshold: 0.7 },
      );
      expect(withoutRefs(result).dependencies).toEqual(expected.dependencies);
      expect(withoutRefs(result).waves).toEqual(expected.waves);
    });

    it("takes this backend's clock for the point in time, not a latest event from a clock ahead, and says which machine's", async () => {
      const now = Date.parse('2026-12-06T12:00:00.000Z');
      vi.spyOn(Date, 'now').mockReturnValue(now);
      try {
        // Two starts of a machine whose clock runs 20 h ahead, pushed without a reading of it.
        const first = generated.events.find(
          e => e.type === 'start' && e.machine === 'host-4',
        )!;
        const ahead = [0, 60_000].map(d => ({
          ...first,
          time: now + 20 * 3_600_000 + d,
        }));
        await store.insertEvents([...generated.events, ...ahead], 'api');
        vi.mocked(analyzeDependencies).mockClear();
        const { result } = await service().analyzeSystem(
          'system:default/generated',
        );
        expect(result.at).toBe(now);
        // Once, at this backend's clock: not first at its latest event, then again.
        expect(analyzeDependencies).toHaveBeenCalledTimes(1);
        expect(vi.mocked(analyzeDependencies).mock.calls[0][1]).toMatchObject({
          at: now,
        });
        // The readings of host-4 the history holds move its events by their offset.
        const correct = clockCorrector([...generated.events, ...ahead]);
        const furthest = correct('host-4', now + 20 * 3_600_000 + 60_000) - now;
        expect(result.warnings).toContain(
          `the analysis's point in time is this backend's clock (2026-12-06T12:00:00.000Z), not its latest event, ${(furthest / 3_600_000).toFixed(1)} h ahead of it: ` +
            `2 events of host-4 dated up to ${(furthest / 3_600_000).toFixed(1)} h ahead of this backend's clock: is host-4's clock ahead? Push a reading of it (a clock line) with its events, and they are moved by its offset`,
        );
      } finally {
        vi.restoreAllMocks();
      }
    });

    it('skips a system none of whose services has initialization events yet, which the sweep does not count as failed', async () => {
      await store.insertEvents(generated.events, 'api');
      const logger = mockServices.logger.mock();
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({
          entities: [
            ...system(generated, 'generated'),
            ...system(rebooted, 'rebooted'),
          ],
        }),
        mockServices.auth(),
        {
          rpoSeconds: 86400,
          rtoSeconds: 3600,
        },
      );
      const analyses = new AnalysisService(store, graphs, logger, {
        threshold: 0.7,
        serviceMap,
        eventRetentionMs: 180 * DAY,
        keepAnalyses: 20,
      });
      expect(
        await analyses.analyzeSystems([
          'system:default/generated',
          'system:default/missing',
          'system:default/rebooted',
        ]),
      ).toEqual({
        analysed: ['system:default/generated'],
        skipped: ['system:default/rebooted'],
        failed: [
          {
            entityRef: 'system:default/missing',
            message: expect.stringContaining('not found'),
          },
        ],
      });
      // Named once, by the caller (the scheduled task's summary, the API's answer), not here too.
      const logged: string[] = [logger.info, logger.warn, logger.error].flatMap(
        f => f.mock.calls.map((c: unknown[]) => String(c[0])),
      );
      expect(
        logged.filter(line => line.includes('system:default/rebooted')),
      ).toEqual([]);
      // Asked for on its own, it is the caller's 400, as before.
      await expect(
        analyses.analyzeSystem('system:default/rebooted'),
      ).rejects.toMatchObject({
        name: 'InputError',
        message: expect.stringMatching(
          /^No initialization events of the services of system:default\/rebooted yet/,
        ),
      });
    });

    it('keeps the last analyses of each system', async () => {
      await store.insertEvents(
        [...generated.events, ...rebooted.events],
        'api',
      );
      const analyses = service({ keepAnalyses: 2 });
      await analyses.analyzeSystem('system:default/rebooted');
      const ids: string[] = [];
      for (let i = 0; i < 3; i++)
        ids.push((await analyses.analyzeSystem('system:default/generated')).id);
      const kept = await knex('recovery_analyses')
        .orderBy('created_at')
        .select('scope', 'id');
      expect(
        kept
          .filter(r => r.scope === 'system:default/generated')
          .map(r => r.id)
          .sort(),
      ).toEqual(ids.slice(1).sort());
      expect(
        kept.filter(r => r.scope === 'system:default/rebooted'),
      ).toHaveLength(1);
      expect((await analyses.latest('system:default/generated'))!.id).toBe(
        ids[2],
      );
    });

    it('leaves out the starts of its service names on machines the catalog gives to another system (a staging copy of the same names)', async () => {
      // Two systems of the same service names in two namespaces, each on its own machines, with
      // different dependencies and boots; staging reboots more often.
      const prod = generateHistory({
        seed: 5,
        machines: 5,
        services: 14,
        siteBoots: 25,
        machineReboots: 20,
        renameRate: 0,
      });
      const staging = generateHistory({
        seed: 9,
        machines: 5,
        services: 14,
        siteBoots: 60,
        machineReboots: 40,
        renameRate: 0,
        start: Date.UTC(2024, 0, 1) + 7 * 3_600_000,
      });
      const inNamespace = (
        h: GeneratedHistory,
        namespace: string,
        prefix: string,
      ): Entity[] =>
        system(h, 'shop').map(e => {
          const renamed = JSON.parse(
            JSON.stringify(e)
              .replace(/:default\/(host-)/g, `:${namespace}/${prefix}$1`)
              .replace(/:default\//g, `:${namespace}/`),
          );
          return {
            ...renamed,
            metadata: {
              ...renamed.metadata,
              namespace,
              name:
                e.kind === 'Resource'
                  ? prefix + e.metadata.name
                  : e.metadata.name,
            },
          };
        });
      const entities = [
        ...inNamespace(prod, 'prod', ''),
        ...inNamespace(staging, 'staging', 'stg-'),
      ];
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({ entities }),
        mockServices.auth(),
        { rpoSeconds: 86400, rtoSeconds: 3600 },
      );
      const analyses = new AnalysisService(
        store,
        graphs,
        mockServices.logger.mock(),
        {
          threshold: 0.7,
          serviceMap: {
            services: { ...staging.map.services, ...prod.map.services },
          },
          eventRetentionMs: 180 * DAY,
          keepAnalyses: 20,
        },
      );
      await store.insertEvents(
        staging.events.map(e => ({ ...e, machine: `stg-${e.machine}` })),
        'staging',
      );
      // Staging's boots are no history of prod's: prod has none yet, and is told where they went.
      await expect(analyses.analyzeSystem('system:prod/shop')).rejects.toThrow(
        /^No initialization events of the services of system:prod\/shop yet: .*; \d+ initialization events of service names of system:prod\/shop left out, as they come from machines the catalog gives to others/,
      );
      await knex('recovery_events').delete();
      await store.insertEvents(prod.events, 'prod');
      const alone = await analyses.analyzeSystem('system:prod/shop');
      await store.insertEvents(
        staging.events.map(e => ({ ...e, machine: `stg-${e.machine}` })),
        'staging',
      );
      expect(
        await analyses.analyzeSystems([
          'system:prod/shop',
          'system:staging/shop',
        ]),
      ).toEqual({
        analysed: ['system:prod/shop', 'system:staging/shop'],
        skipped: [],
        failed: [],
      });
      const withStaging = (await analyses.latest('system:prod/shop'))!;
      // Prod learns from its own boots only, as before staging's were stored.
      const { warnings: before, ...learned } = withoutRefs(alone.result);
      const { warnings: after, ...relearned } = withoutRefs(withStaging.result);
      expect(relearned).toEqual(learned);
      expect(
        withStaging.result.machineOrder.some(m => m.startsWith('stg-')),
      ).toBe(false);
      expect(after.filter((w: string) => !before.includes(w))).toEqual([
        expect.stringMatching(
          /^\d+ initialization events of service names of system:prod\/shop left out, as they come from machines the catalog gives to others, not to system:prod\/shop \(if a service of it runs there, add a dependsOn on that machine\): stg-host-0 \(resource:staging\/stg-host-0\): \d+, /,
        ),
      ]);
      // And staging from its own.
      expect(
        (await analyses.latest(
          'system:staging/shop',
        ))!.result.machineOrder.every(m => m.startsWith('stg-')),
      ).toBe(true);
    });

    it('matches log names to entities by name, container or full ref, and leaves out a name two entities share', async () => {
      // web depends on its system's db; it also declares team-b's db, another entity named db.
      const machine = (
        namespace: string,
        name: string,
        container: string,
      ): Entity => ({
        ...machineEntity(name),
        metadata: {
          ...machineEntity(name).metadata,
          namespace,
          annotations: {
            ...machineEntity(name).metadata.annotations,
            'recovery.backstage-recovery.io/container': container,
          },
        },
      });
      const dbOf = (namespace: string, host: string): Entity => ({
        ...componentEntity('db', [`resource:${namespace}/${host}`]),
        metadata: { name: 'db', namespace },
      });
      const entities: Entity[] = [
        {
          apiVersion: 'backstage.io/v1alpha1',
          kind: 'System',
          metadata: { name: 'shop', namespace: 'default' },
          spec: {},
          relations: [
            { type: 'hasPart', targetRef: 'component:default/web' },
            { type: 'hasPart', targetRef: 'component:default/db' },
          ],
        },
        machine('default', 'web-host', 'web-ctr'),
        machine('default', 'db-host', 'db-ctr'),
        machine('team-b', 'b-host', 'b-ctr'),
        componentEntity('web', [
          'resource:default/web-host',
          'component:team-b/db',
        ]),
        dbOf('default', 'db-host'),
        dbOf('team-b', 'b-host'),
      ];
      const events: InitializationEvent[] = [];
      for (let boot = 0; boot < 25; boot++) {
        const t = Date.UTC(2024, 0, 1) + boot * 2 * DAY;
        // The logs call the system's db "pg" (mapped to its full ref); "db" could be either.
        events.push({
          time: t,
          machine: 'db-ctr',
          service: 'pg',
          type: 'start',
        });
        events.push({
          time: t + 60_000,
          machine: 'b-ctr',
          service: 'db',
          type: 'start',
        });
        events.push({
          time: t + (9 + (boot % 3)) * 60_000,
          machine: 'web-ctr',
          service: 'web',
          type: 'start',
        });
      }
      await store.insertEvents(events, 'api');
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({ entities }),
        mockServices.auth(),
        { rpoSeconds: 86400, rtoSeconds: 3600 },
      );
      const analyses = new AnalysisService(
        store,
        graphs,
        mockServices.logger.mock(),
        {
          threshold: 0.7,
          serviceMap: { services: { pg: 'component:default/db' } },
          eventRetentionMs: 180 * DAY,
          keepAnalyses: 2,
        },
      );
      const { result } = await analyses.analyzeSystem('system:default/shop');
      expect(result.entityRefs).toEqual({
        'component:default/db': 'component:default/db',
        web: 'component:default/web',
      });
      expect(result.machineRefs).toEqual({
        'db-ctr': 'resource:default/db-host',
        'web-ctr': 'resource:default/web-host',
      });
      expect(result.dependencies.map(d => [d.service, d.dependsOn])).toEqual([
        ['web', 'component:default/db'],
      ]);
      expect(result.warnings[0]).toContain(
        'db (component:default/db, component:team-b/db)',
      );
      const inference = await analyses.inferenceFor(entities[0]);
      expect(inference!.dependencies).toEqual([
        {
          service: 'component:default/web',
          dependsOn: 'component:default/db',
          score: result.dependencies[0].score,
          // The evidence behind it, for the plan to carry.
          samples: result.dependencies[0].samples,
          confidence: result.dependencies[0].confidence,
        },
      ]);
      // What its warnings may name, for a plan to tell which are about it.
      expect(inference!.names).toEqual(
        new Map([
          ['component:default/db', 'component:default/db'],
          ['web', 'component:default/web'],
          ['db-ctr', 'resource:default/db-host'],
          ['web-ctr', 'resource:default/web-host'],
        ]),
      );
    });
  },
);

describe('withoutHidden', () => {
  // db is hidden; so is machine api-01, though it runs api; db-01 runs only db.
  const analysis = {
    id: 'a1',
    scope: 'system:default/shop',
    events: 42,
    createdAt: '2024-01-01T00:00:00.000Z',
    result: {
      services: [
        {
          service: 'api',
          machines: ['api-01', 'shared-01'],
          initializations: 3,
        },
        { service: 'db', machines: ['db-01', 'shared-01'], initializations: 3 },
        { service: 'web', machines: ['web-01'], initializations: 3 },
      ],
      dependencies: [
        {
          service: 'api',
          dependsOn: 'db',
          score: 0.9,
          samples: 3,
          confidence: 'low',
        },
        {
          service: 'web',
          dependsOn: 'api',
          score: 0.8,
          samples: 3,
          confidence: 'low',
        },
        {
          service: 'web',
          dependsOn: 'db',
          score: 0.75,
          samples: 3,
          confidence: 'low',
        },
      ],
      serviceOrder: ['db', 'api', 'web'],
      machineOrder: ['db-01', 'shared-01', 'api-01', 'web-01'],
      waves: [['db-01'], ['shared-01', 'api-01'], ['web-01']],
      machineDependencies: [
        { machine: 'db-01', waitsFor: [] },
        { machine: 'shared-01', waitsFor: ['db-01'] },
        { machine: 'api-01', waitsFor: ['shared-01'] },
        { machine: 'web-01', waitsFor: ['api-01', 'shared-01'] },
      ],
      rebootsFollowed: [
        { machine: 'web-01', waitsFor: 'api-01', followed: 3, chances: 3 },
        { machine: 'web-01', waitsFor: 'shared-01', followed: 2, chances: 3 },
      ],
      cycles: [
        {
          services: ['web', 'db'],
          dropped: { service: 'db', dependsOn: 'web', score: 0.71 },
        },
        {
          services: ['web', 'api'],
          dropped: { service: 'api', dependsOn: 'web', score: 0.72 },
        },
      ],
      machineCycles: [
        {
          machines: ['web-01', 'db-01'],
          dropped: { machine: 'db-01', waitsFor: 'web-01', score: 0.7 },
        },
      ],
      correlation: {
        services: ['api', 'db', 'web'],
        matrix: [
          [0, 0.9, -0.8],
          [-0.9, 0, -0.75],
          [0.8, 0.75, 0],
        ],
      },
      warnings: [
        'log names left out as several entities of system:default/shop answer to them: x (component:default/db, component:team-b/db)',
        'web-01 waits for db-01',
        'db-01-spare and shared-01 are slow',
        'dependency cycle web → db → web: dropped db → web (score 0.71)',
        'only 3 boots of at least half the services in the history',
        'component:default/ghost is gone.',
      ],
      skipped: 0,
      at: 1_700_000_000_000,
      entityRefs: {
        api: 'component:default/api',
        db: 'component:default/db',
        web: 'component:default/web',
      },
      machineRefs: {
        'api-01': 'resource:default/api-01',
        'db-01': 'resource:default/db-01',
        'shared-01': 'resource:default/shared-01',
        'web-01': 'resource:default/web-01',
      },
    },
  } as SystemAnalysis;

  it('names every entity ref of the analysis, those in its warnings too', () => {
    expect(refsIn(analysis)).toEqual([
      'component:default/api',
      'component:default/db',
      'component:default/ghost',
      'component:default/web',
      'component:team-b/db',
      'resource:default/api-01',
      'resource:default/db-01',
      'resource:default/shared-01',
      'resource:default/web-01',
      'system:default/shop',
    ]);
  });

  it('leaves out hidden services, hidden machines and machines running only hidden services, wherever they are named', () => {
    const hidden = new Set([
      'component:default/db',
      'component:default/ghost',
      'resource:default/api-01',
    ]);
    const seen = withoutHidden(analysis, ref => !hidden.has(ref));
    expect(seen).toEqual({
      ...analysis,
      result: {
        ...analysis.result,
        services: [
          { service: 'api', machines: ['shared-01'], initializations: 3 },
          { service: 'web', machines: ['web-01'], initializations: 3 },
        ],
        dependencies: [
          {
            service: 'web',
            dependsOn: 'api',
            score: 0.8,
            samples: 3,
            confidence: 'low',
          },
        ],
        serviceOrder: ['api', 'web'],
        machineOrder: ['shared-01', 'web-01'],
        waves: [['shared-01'], ['web-01']],
        machineDependencies: [
          { machine: 'shared-01', waitsFor: [] },
          { machine: 'web-01', waitsFor: ['shared-01'] },
        ],
        rebootsFollowed: [
          { machine: 'web-01', waitsFor: 'shared-01', followed: 2, chances: 3 },
        ],
        cycles: [
          {
            services: ['web', 'api'],
            dropped: { service: 'api', dependsOn: 'web', score: 0.72 },
          },
        ],
        machineCycles: [],
        correlation: {
          services: ['api', 'web'],
          matrix: [
            [0, -0.8],
            [0.8, 0],
          ],
        },
        // Whole names only: "db-01-spare" is not db-01.
        warnings: [
          'db-01-spare and shared-01 are slow',
          'only 3 boots of at least half the services in the history',
          'left out as the catalog does not show them to you: 1 service, 2 machines and 4 warnings about them',
        ],
        entityRefs: {
          api: 'component:default/api',
          web: 'component:default/web',
        },
        machineRefs: {
          'shared-01': 'resource:default/shared-01',
          'web-01': 'resource:default/web-01',
        },
      },
    });
    // The stored analysis is not changed.
    expect(analysis.result.services).toHaveLength(3);
  });

  it('gives a caller who sees everything the analysis as stored', () => {
    expect(withoutHidden(analysis, () => true)).toBe(analysis);
  });
});
