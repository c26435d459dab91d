import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import request from 'supertest';
import {
  GeneratedHistory,
  generateHistory,
  rebootFollowerHistory,
  toDocker,
  toJournaldRecord,
  toJsonl,
} from '../../../bench/generate';
import { recoveryPlugin } from './plugin';

const P = 'recovery.backstage-recovery.io/';
// A small generated history: services on machines with ground-truth dependencies, boots,
// reboots, clock skew, dropped events, failed first attempts and renamed units.
const history = generateHistory({
  seed: 5,
  machines: 5,
  services: 14,
  siteBoots: 25,
  machineReboots: 20,
});

/**
 * The catalog of a generated history's system: it knows the machines and services, but
 * declares none of their dependencies beyond `declared` (service name → service names).
 */
function catalog(
  h: GeneratedHistory = history,
  name = 'generated',
  declared: Record<string, string[]> = {},
): Entity[] {
  const system: Entity = {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name, namespace: 'default' },
    spec: {},
    relations: h.truth.services.map(s => ({
      type: 'hasPart',
      targetRef: `component:default/${s.name}`,
    })),
  };
  const machines = h.truth.machines.map<Entity>(machine => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name: machine,
      namespace: 'default',
      annotations: { [`${P}engine`]: 'primary', [`${P}container`]: machine },
    },
    spec: { type: 'machine', system: name },
    // The catalog adds the reverse of each service's dependsOn.
    relations: h.truth.services
      .filter(s => s.machines.includes(machine))
      .map(s => ({
        type: 'dependencyOf',
        targetRef: `component:default/${s.name}`,
      })),
  }));
  const services = h.truth.services.map<Entity>(s => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: s.name, namespace: 'default' },
    spec: { type: 'service', system: name },
    relations: [
      ...s.machines.map(m => ({
        type: 'dependsOn',
        targetRef: `resource:default/${m}`,
      })),
      ...(declared[s.name] ?? []).map(d => ({
        type: 'dependsOn',
        targetRef: `component:default/${d}`,
      })),
      { type: 'partOf', targetRef: `system:default/${name}` },
    ],
  }));
  return [system, ...machines, ...services];
}

async function start(
  analysis: Record<string, unknown> = {},
  entities = catalog(),
) {
  const { server } = await startTestBackend({
    features: [
      recoveryPlugin,
      catalogServiceMock.factory({ entities }),
      mockServices.rootConfig.factory({
        data: {
          recovery: {
            analysis: { serviceMap: history.map.services, ...analysis },
            events: { maxRequestSize: '2mb' },
          },
        },
      }),
    ],
  });
  return server;
}

/** Pushes events as JSON lines and analyses a system; returns the analysis response. */
async function pushAndAnalyse(
  server: Awaited<ReturnType<typeof start>>,
  events: GeneratedHistory['events'],
  system: string,
) {
  const pushed = await request(server)
    .post('/api/recovery/events')
    .set('Content-Type', 'application/x-ndjson')
    .send(toJsonl(events).join('\n'));
  expect(pushed.status).toBe(201);
  return request(server)
    .post('/api/recovery/analysis')
    .send({ entityRef: `system:default/${system}` });
}

/** The wave of a machine (by name) in a boot plan response, which must have it. */
function waveOf(plan: { waves: string[][] }, machine: string): number {
  const wave = plan.waves.findIndex(w =>
    w.includes(`resource:default/${machine}`),
  );
  expect(wave, `${machine} in the plan`).toBeGreaterThanOrEqual(0);
  return wave;
}

describe('initialization events and dependency analysis through the API', () => {
  it('learns the ground-truth boot order from pushed events', async () => {
    const server = await start();
    const body = toJsonl(history.events).join('\n');
    const pushed = await request(server)
      .post('/api/recovery/events?source=history.jsonl')
      .set('Content-Type', 'application/x-ndjson')
      .send(body);
    expect(pushed.status).toBe(201);
    expect(pushed.body).toMatchObject({
      format: 'jsonl',
      received: history.events.length,
      stored: history.events.length,
      duplicates: 0,
    });

    const again = await request(server)
      .post('/api/recovery/events')
      .set('Content-Type', 'text/plain')
      .send(body);
    expect(again.body).toMatchObject({
      stored: 0,
      duplicates: history.events.length,
    });

    // Two readings of one machine's clock, a day before the history, that contradict each other.
    const machine = history.truth.machines[0];
    const day = 86_400_000;
    const t0 = Math.min(...history.events.map(e => e.time)) - day;
    const clocks = [
      { time: t0, machine, event: 'clock', reference: t0 + 120_000 },
      { time: t0 + 300_000, machine, event: 'clock', reference: t0 + 270_000 },
    ];
    await request(server)
      .post('/api/recovery/events')
      .set('Content-Type', 'text/plain')
      .send(clocks.map(c => JSON.stringify(c)).join('\n'));

    const analysed = await request(server)
      .post('/api/recovery/analysis')
      .send({ entityRef: 'system:default/generated' });
    expect(analysed.status).toBe(201);
    expect(analysed.body.result.dependencies.length).toBeGreaterThan(0);
    const latest = await request(server).get(
      '/api/recovery/analysis/system/default/generated',
    );
    expect(latest.body.id).toBe(analysed.body.id);

    const plan = await request(server).get(
      '/api/recovery/plan/system/default/generated',
    );
    expect(plan.status).toBe(200);
    // The plan names its analysis and passes on what it warned of.
    expect(plan.body.analysis).toEqual({
      id: analysed.body.id,
      createdAt: analysed.body.createdAt,
      warnings: analysed.body.result.warnings,
    });
    expect(plan.body.analysis.warnings).toContainEqual(
      expect.stringMatching(
        new RegExp(`^clock readings of ${machine} contradict each other once`),
      ),
    );
    expect(plan.body.inferred.length).toBeGreaterThan(0);
    // Every true cross-machine dependency is respected by the waves.
    const machinesOf = new Map(
      history.truth.services.map(s => [s.name, s.machines]),
    );
    let checked = 0;
    for (const s of history.truth.services) {
      for (const dep of s.dependsOn) {
        for (const m of s.machines) {
          for (const mb of machinesOf.get(dep)!) {
            if (mb === m) continue;
            checked++;
            expect(waveOf(plan.body, mb)).toBeLessThan(waveOf(plan.body, m));
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(3);
    // Nothing was declared: every learned dependency is a disagreement to show on the page.
    expect(plan.body.disagreements.inferredNotDeclared.length).toBe(
      plan.body.inferred.length,
    );

    // Without an entityRef, every recoverable system is analysed from one read of the store.
    const all = await request(server).post('/api/recovery/analysis').send({});
    expect(all.status).toBe(201);
    expect(all.body.analysed).toContain('system:default/generated');
    const newest = await request(server).get(
      '/api/recovery/analysis/system/default/generated',
    );
    expect(newest.body.id).not.toBe(analysed.body.id);
    expect(newest.body.result.dependencies).toEqual(
      analysed.body.result.dependencies,
    );
  });

  it('boots a machine after one whose own reboots it followed, though no service dependency shows it', async () => {
    // api on a waits for queue on k, but cache on d always starts last before api: only k's
    // reboots, which api followed 6 times out of 6, show that a must wait for k.
    const rebooted = rebootFollowerHistory();
    const server = await start({}, catalog(rebooted, 'rebooted'));
    const analysed = await pushAndAnalyse(server, rebooted.events, 'rebooted');
    expect(analysed.status).toBe(201);
    expect(analysed.body.result.machineRefs).toMatchObject({
      a: 'resource:default/a',
      k: 'resource:default/k',
    });

    const plan = await request(server).get(
      '/api/recovery/plan/system/default/rebooted',
    );
    expect(plan.status).toBe(200);
    const waitA = {
      machine: 'resource:default/a',
      waitsFor: 'resource:default/k',
      followed: 6,
      chances: 6,
    };
    expect(plan.body.inferredMachineWaits).toEqual([waitA]);
    expect(['d', 'k', 'a'].map(m => waveOf(plan.body, m))).toEqual([0, 1, 2]);
    const a = plan.body.machines.find(
      (m: { machineRef: string }) => m.machineRef === 'resource:default/a',
    );
    expect(a.waitsFor).toEqual(['resource:default/d', 'resource:default/k']);

    // Where the catalog declares that queue waits for api, the learned wait closes a cycle
    // between machines: it is dropped, and the plan follows the catalog.
    const declared = await start(
      {},
      catalog(rebooted, 'rebooted', { queue: ['api'] }),
    );
    expect(
      (await pushAndAnalyse(declared, rebooted.events, 'rebooted')).status,
    ).toBe(201);
    const overruled = await request(declared).get(
      '/api/recovery/plan/system/default/rebooted',
    );
    expect(overruled.status).toBe(200);
    expect(overruled.body.inferredMachineWaits).toEqual([]);
    expect(waveOf(overruled.body, 'a')).toBeLessThan(
      waveOf(overruled.body, 'k'),
    );
  });

  it('takes the kernel peak from config', async () => {
    // Services here start 6-18 min after their dependencies; a kernel peaking at 20 min scores
    // most of them under the threshold, and the stored result says why.
    const server = await start({ kernelPeak: '20m' });
    const analysed = await pushAndAnalyse(server, history.events, 'generated');
    expect(analysed.status).toBe(201);
    expect(analysed.body.result.warnings.join('\n')).toMatch(
      /score under the threshold 0\.7: .* the delay kernel \(peak 20\.0 min\)/,
    );
  });

  it('analyses with the kernel shape from config', async () => {
    const matrixWith = async (analysis: Record<string, unknown>) => {
      const analysed = await pushAndAnalyse(
        await start(analysis),
        history.events,
        'generated',
      );
      expect(analysed.status).toBe(201);
      return JSON.stringify(analysed.body.result.correlation.matrix);
    };
    const piecewise = await matrixWith({});
    const gamma = await matrixWith({ kernelShape: 'gamma:6' });
    expect(gamma).not.toBe(piecewise);
    expect(await matrixWith({ kernelShape: 'gamma' })).not.toBe(gamma);
  });

  it('with a kernel peak in seconds, learns the plan of a site that boots in seconds', async () => {
    // The same history 60 times faster, as containers boot: a peak of 10 s gives the plan that
    // 10 min gives the history in minutes.
    const origin = history.events[0].time;
    const fast = (t: number) => Math.round(origin + (t - origin) / 60);
    const fastEvents = history.events.map(e => ({
      ...e,
      time: fast(e.time),
      ...(e.reference === undefined ? {} : { reference: fast(e.reference) }),
    }));
    const planOf = async (
      kernelPeak: string,
      events: GeneratedHistory['events'],
    ) => {
      const server = await start({ kernelPeak, halfLife: '3650d' });
      expect((await pushAndAnalyse(server, events, 'generated')).status).toBe(
        201,
      );
      const plan = await request(server).get(
        '/api/recovery/plan/system/default/generated',
      );
      expect(plan.status).toBe(200);
      return plan.body;
    };
    const seconds = await planOf('10s', fastEvents);
    const minutes = await planOf('10m', history.events);
    expect(seconds.inferred.length).toBeGreaterThan(3);
    // Scores may differ in the fourth decimal: the faster times are whole milliseconds too.
    const edges = (plan: {
      inferred: Array<{ service: string; dependsOn: string }>;
    }) => plan.inferred.map(d => `${d.service} → ${d.dependsOn}`);
    expect(edges(seconds)).toEqual(edges(minutes));
    expect(seconds.waves).toEqual(minutes.waves);
  });

  it('refuses to start on a bad analysis setting, naming it', async () => {
    await expect(start({ kernelPeak: '2h' })).rejects.toThrow(
      'Invalid recovery.analysis.kernelPeak (120.0 min): it must be from 1 s up to (not including) 60 min',
    );
    await expect(start({ threshold: 1.5 })).rejects.toThrow(
      'Invalid recovery.analysis.threshold 1.5: must be in (0, 1]',
    );
    await expect(start({ kernelShape: 'lognormal:0' })).rejects.toThrow(
      "Invalid recovery.analysis.kernelShape 'lognormal:0': kernel lognormalSigma must be a finite number over 0 (got 0)",
    );
    await expect(start({ serviceMap: { '/svc-(/': 'x' } })).rejects.toThrow(
      /recovery\.analysis\.serviceMap: .*svc-\(/,
    );
    // Pushed names are matched on the event loop: a pattern that backtracks for seconds is refused at start.
    await expect(
      start({ serviceMap: { '/^([a-z0-9]+-?)+-prod$/': 'x' } }),
    ).rejects.toThrow(
      "Invalid recovery.analysis.serviceMap: service map entry '/^([a-z0-9]+-?)+-prod$/': the group '([a-z0-9]+-?)+' repeats what repeats within it (nested quantifiers)",
    );
    await expect(start({ eventRetention: 'forever' })).rejects.toThrow(
      'Invalid duration "forever" at recovery.analysis.eventRetention',
    );
    await expect(start({ keepLast: 0 })).rejects.toThrow(
      'Invalid recovery.analysis.keepLast 0: analyses kept per system must be an integer of at least 1',
    );
  });

  it("learns a system's plan from its own machines' boots, not from another system's services of the same names", async () => {
    // A staging copy in its own namespace: the same service names, on machines of its own, with
    // other dependencies, booted more often.
    const staging = generateHistory({
      seed: 9,
      machines: 5,
      services: 14,
      siteBoots: 60,
      machineReboots: 40,
      start: Date.UTC(2024, 0, 1) + 7 * 3_600_000,
    });
    const stagingCatalog: Entity[] = JSON.parse(
      JSON.stringify(catalog(staging, 'generated'))
        .replace(/:default\/host-/g, ':staging/stg-host-')
        .replace(/:default\//g, ':staging/')
        .replace(/"namespace":"default"/g, '"namespace":"staging"')
        .replace(/"host-/g, '"stg-host-'),
    );
    const serviceMap = { ...staging.map.services, ...history.map.services };
    const alone = await pushAndAnalyse(
      await start({ serviceMap }, [...catalog(), ...stagingCatalog]),
      history.events,
      'generated',
    );
    expect(alone.status).toBe(201);

    const server = await start({ serviceMap }, [
      ...catalog(),
      ...stagingCatalog,
    ]);
    const pushed = await request(server)
      .post('/api/recovery/events')
      .send(
        toJsonl(
          staging.events.map(e => ({ ...e, machine: `stg-${e.machine}` })),
        ).join('\n'),
      );
    expect(pushed.status).toBe(201);
    const both = await pushAndAnalyse(server, history.events, 'generated');
    expect(both.status).toBe(201);
    expect(both.body.result.dependencies).toEqual(
      alone.body.result.dependencies,
    );
    expect(both.body.result.waves).toEqual(alone.body.result.waves);
    expect(both.body.result.warnings).toContainEqual(
      expect.stringMatching(
        /initialization events of service names of system:default\/generated left out, as they come from machines the catalog gives to others/,
      ),
    );
    // And the plan follows what prod's own boots show.
    const plan = await request(server).get(
      '/api/recovery/plan/system/default/generated',
    );
    const learned = alone.body.result.dependencies.map(
      (d: { service: string; dependsOn: string }) =>
        `component:default/${d.service} -> component:default/${d.dependsOn}`,
    );
    expect(
      plan.body.inferred
        .map(
          (d: { service: string; dependsOn: string }) =>
            `${d.service} -> ${d.dependsOn}`,
        )
        .every((d: string) => learned.includes(d)),
    ).toBe(true);
  });

  it('takes the event retention from config', async () => {
    // The history spans about 25 days; a 5-day retention leaves its last days to analyse.
    const full = await pushAndAnalyse(
      await start(),
      history.events,
      'generated',
    );
    const recent = await pushAndAnalyse(
      await start({ eventRetention: '5d' }),
      history.events,
      'generated',
    );
    expect(recent.status).toBe(201);
    expect(recent.body.events).toBeGreaterThan(0);
    expect(recent.body.events).toBeLessThan(full.body.events / 3);
  });

  it('accepts journald and docker exports', async () => {
    const server = await start();
    const sample = history.events.filter(e => e.type === 'start').slice(0, 20);
    const journald = await request(server)
      .post('/api/recovery/events')
      .send(sample.map((e, i) => toJournaldRecord(e, i)).join('\n'));
    expect(journald.body).toMatchObject({ format: 'journald', received: 20 });
    const docker = await request(server)
      .post('/api/recovery/events?format=docker')
      .send(toDocker(sample.map(e => ({ ...e, time: e.time + 1 }))).join('\n'));
    expect(docker.body).toMatchObject({
      format: 'docker',
      received: 20,
      stored: 20,
    });
  });

  it('rejects bad input naming the line, and oversized or empty bodies', async () => {
    const server = await start();
    const none = await request(server).get(
      '/api/recovery/analysis/system/default/generated',
    );
    expect(none.status).toBe(404);
    const nothingYet = await request(server)
      .post('/api/recovery/analysis')
      .send({ entityRef: 'system:default/generated' });
    expect(nothingYet.status).toBe(400);
    expect(nothingYet.body.error.message).toContain(
      'No initialization events of the services of system:default/generated',
    );

    const lines = toJsonl(history.events).slice(0, 10);
    lines.splice(3, 0, '{"time": "yesterday", "machine": "m", "service": "s"}');
    const bad = await request(server)
      .post('/api/recovery/events?source=boot.jsonl')
      .send(lines.join('\n'));
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain(
      "boot.jsonl:4: 'time' must be ISO 8601 with a zone",
    );

    const lenient = await request(server)
      .post('/api/recovery/events?lenient=true')
      .send(lines.join('\n'));
    expect(lenient.body).toMatchObject({ skipped: 1, received: 10 });

    const empty = await request(server)
      .post('/api/recovery/events')
      .send('\n\n');
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toContain('no initialization events');

    const format = await request(server)
      .post('/api/recovery/events?format=csv')
      .send('x');
    expect(format.body.error.message).toBe(
      'format must be one of jsonl, journald, docker, got "csv"',
    );

    const huge = await request(server)
      .post('/api/recovery/events')
      .send('x'.repeat(3 * 1024 * 1024));
    expect(huge.status).toBe(413);
  });
});
