/**
 * The large site of `npm run bench:api`: catalog entities, their boot history as initialization
 * events, and the finished runs of its history. Deterministic (a seeded generator).
 *
 * Layout: `systems` systems, the first `platformSystems` of them shared platforms. Each system has
 * `servicesPerSystem` services in `machinesPerSystem` levels, level L on the system's machine L;
 * a service depends on the one before it in its level (a chain), and on one or two of the level
 * below. The first service of a platform depends on the last of the platform before it, that of
 * any other system on the last of a random platform: a product's deepest service reaches its whole
 * system and up to every platform, through a chain of over a hundred services.
 */
import type { Entity } from '@backstage/catalog-model';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import { prng } from './generate';

const P = 'recovery.backstage-recovery.io/';

export interface SiteOptions {
  seed: number;
  systems: number;
  platformSystems: number;
  machinesPerSystem: number;
  servicesPerSystem: number;
}

export interface Site {
  entities: Entity[];
  systemRefs: string[];
  serviceRefs: string[];
  machineRefs: string[];
  /** Declared dependencies between services, by service ref (machines left out). */
  serviceDeps: Map<string, string[]>;
  /** Each service's machine name. */
  machineOf: Map<string, string>;
  /** The service with the longest chain of dependencies under it. */
  deepest: string;
  /** Services in the longest chain under `deepest`, itself included. */
  deepestChain: number;
}

const pad = (n: number) => String(n).padStart(2, '0');
const systemName = (s: number) => `sys-${pad(s)}`;
const machineName = (s: number, level: number) => `m-${pad(s)}-${level}`;
const serviceName = (s: number, k: number) => `svc-${pad(s)}-${pad(k)}`;
const ref = (kind: string, name: string) => `${kind}:default/${name}`;

/** The catalog of the site, with the relations the catalog's processors would add. */
export function generateSite(o: SiteOptions): Site {
  const rnd = prng(o.seed);
  const perLevel = Math.ceil(o.servicesPerSystem / o.machinesPerSystem);
  const serviceDeps = new Map<string, string[]>();
  const machineOf = new Map<string, string>();
  const dependsOn = new Map<string, string[]>(); // every ref, machines included
  const partOf = new Map<string, string>();
  for (let s = 0; s < o.systems; s++) {
    for (let k = 0; k < o.servicesPerSystem; k++) {
      const level = Math.floor(k / perLevel);
      const me = ref('component', serviceName(s, k));
      const deps: string[] = [];
      if (k % perLevel > 0) deps.push(ref('component', serviceName(s, k - 1)));
      if (level > 0) {
        const below = Array.from(
          { length: perLevel },
          (_, i) => (level - 1) * perLevel + i,
        );
        const count = 1 + Math.floor(rnd() * 2);
        for (let i = 0; i < count; i++) {
          const target = ref(
            'component',
            serviceName(s, below[Math.floor(rnd() * below.length)]),
          );
          if (!deps.includes(target)) deps.push(target);
        }
      } else if (k === 0 && s > 0) {
        const platform =
          s < o.platformSystems ? s - 1 : Math.floor(rnd() * o.platformSystems);
        deps.push(
          ref('component', serviceName(platform, o.servicesPerSystem - 1)),
        );
      }
      serviceDeps.set(me, deps);
      machineOf.set(me, machineName(s, level));
      dependsOn.set(me, [ref('resource', machineName(s, level)), ...deps]);
      partOf.set(me, ref('system', systemName(s)));
    }
  }

  // Reverse relations, as the catalog's processors emit them.
  const dependencyOf = new Map<string, string[]>();
  for (const [from, targets] of dependsOn) {
    for (const t of targets)
      dependencyOf.set(t, [...(dependencyOf.get(t) ?? []), from]);
  }
  const hasPart = new Map<string, string[]>();
  for (const [service, system] of partOf)
    hasPart.set(system, [...(hasPart.get(system) ?? []), service]);

  const relations = (me: string) => [
    ...(dependsOn.get(me) ?? []).map(targetRef => ({
      type: 'dependsOn',
      targetRef,
    })),
    ...(dependencyOf.get(me) ?? []).map(targetRef => ({
      type: 'dependencyOf',
      targetRef,
    })),
    ...(partOf.has(me) ? [{ type: 'partOf', targetRef: partOf.get(me)! }] : []),
    ...(hasPart.get(me) ?? []).map(targetRef => ({
      type: 'hasPart',
      targetRef,
    })),
  ];

  const entities: Entity[] = [];
  const systemRefs: string[] = [];
  const machineRefs: string[] = [];
  const serviceRefs: string[] = [];
  for (let s = 0; s < o.systems; s++) {
    const system = ref('system', systemName(s));
    systemRefs.push(system);
    entities.push({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: {
        name: systemName(s),
        namespace: 'default',
        annotations: { [`${P}rto`]: '2h' },
      },
      spec: { owner: `group:default/team-${pad(s % 10)}` },
      relations: relations(system),
    });
    for (let level = 0; level < o.machinesPerSystem; level++) {
      const name = machineName(s, level);
      machineRefs.push(ref('resource', name));
      entities.push({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'Resource',
        metadata: {
          name,
          namespace: 'default',
          annotations: { [`${P}engine`]: 'primary', [`${P}container`]: name },
        },
        spec: {
          type: 'machine',
          owner: `group:default/team-${pad(s % 10)}`,
          system: systemName(s),
        },
        relations: relations(ref('resource', name)),
      });
    }
    for (let k = 0; k < o.servicesPerSystem; k++) {
      const name = serviceName(s, k);
      serviceRefs.push(ref('component', name));
      entities.push({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'Component',
        metadata: {
          name,
          namespace: 'default',
          annotations: {
            [`${P}probes`]: `tcp:${8000 + k}, http:${9000 + k}/healthz`,
            [`${P}rpo`]: '6h',
            [`${P}rto`]: '1h',
          },
        },
        spec: {
          type: 'service',
          lifecycle: 'production',
          owner: `group:default/team-${pad(s % 10)}`,
          system: systemName(s),
        },
        relations: relations(ref('component', name)),
      });
    }
  }

  // The deepest service: the longest chain of declared dependencies under it.
  const depth = new Map<string, number>();
  const depthOf = (service: string): number => {
    if (!depth.has(service))
      depth.set(
        service,
        1 + Math.max(0, ...serviceDeps.get(service)!.map(depthOf)),
      );
    return depth.get(service)!;
  };
  // Platforms first: each chain is then at most one system deeper than what is known.
  let deepest = serviceRefs[0];
  for (const service of serviceRefs)
    if (depthOf(service) > depthOf(deepest)) deepest = service;
  return {
    entities,
    systemRefs,
    serviceRefs,
    machineRefs,
    serviceDeps,
    machineOf,
    deepest,
    deepestChain: depthOf(deepest),
  };
}

/**
 * Whole-site boots, `days` apart: every service starts 5–15 min after the last of its
 * dependencies (roots 1–3 min after their machine), as JSON lines for `POST /events`.
 */
export function bootHistory(
  site: Site,
  o: { seed: number; boots: number; start: number; days: number },
): string[] {
  const rnd = prng(o.seed);
  const lines: string[] = [];
  for (let b = 0; b < o.boots; b++) {
    const at = o.start + b * o.days * 86_400_000;
    const started = new Map<string, number>();
    const startOf = (service: string): number => {
      const known = started.get(service);
      if (known !== undefined) return known;
      const deps = site.serviceDeps.get(service)!;
      const time =
        deps.length === 0
          ? at + 60_000 + rnd() * 120_000
          : Math.max(...deps.map(startOf)) + 300_000 + rnd() * 600_000;
      started.set(service, Math.round(time));
      return started.get(service)!;
    };
    for (const service of site.serviceRefs) {
      lines.push(
        JSON.stringify({
          time: startOf(service),
          machine: site.machineOf.get(service),
          service: service.split('/')[1],
        }),
      );
    }
  }
  return lines;
}

/** A finished run's rows as RunService writes them, for a plan of `plan.machines.length` machines. */
export function finishedRun(
  plan: BootPlan,
  o: {
    id: string;
    createdAt: number;
    rnd: () => number;
    trigger: 'schedule' | 'user';
  },
): {
  run: {
    id: string;
    entityRef: string;
    mode: 'test';
    trigger: 'schedule' | 'user';
    createdBy: string;
    hypervisorHost: string;
    plan: BootPlan;
    options: object;
    machines: Array<{ machineRef: string; wave: number }>;
  };
  status: 'succeeded' | 'failed';
  startedAt: string;
  finishedAt: string;
  rtoSeconds?: number;
  error?: { message: string; machineRef?: string; probe?: string };
  machines: Array<{
    machineRef: string;
    phase: 'ready' | 'failed' | 'skipped';
    restoreStartedAt?: string;
    restoredAt?: string;
    startedAt?: string;
    readyAt?: string;
    finishedAt?: string;
    message?: string;
    probe?: string;
    logTail?: string;
  }>;
  steps: Array<{
    at: string;
    machineRef?: string;
    level: 'info' | 'warning' | 'error';
    message: string;
  }>;
} {
  const { rnd } = o;
  const iso = (ms: number) => new Date(ms).toISOString();
  const roll = rnd();
  // 90% succeed, 8% fail on a machine, 2% are interrupted (they never count for readiness).
  const failAt =
    roll < 0.9
      ? undefined
      : roll < 0.98
        ? Math.floor(rnd() * plan.machines.length)
        : -1;
  let t = o.createdAt + 500;
  const steps: ReturnType<typeof finishedRun>['steps'] = [];
  const machines: ReturnType<typeof finishedRun>['machines'] = [];
  steps.push({
    at: iso(t),
    level: 'info',
    message: `Test recovery of ${plan.entityRef} on fake: ${plan.waves.length} waves, ${plan.machines.length} machines`,
  });
  steps.push({
    at: iso((t += 300)),
    level: 'info',
    message: `Created isolated network lab-${o.id}-prod`,
  });
  const labAt = t;
  let index = 0;
  let failed:
    { machineRef: string; message: string; probe: string } | undefined;
  for (const [wave, refs] of plan.waves.entries()) {
    if (!failed)
      steps.push({
        at: iso(t),
        level: 'info',
        message: `Wave ${wave + 1}: booting ${refs.join(', ')}`,
      });
    let waveEnd = t;
    for (const machineRef of refs) {
      const k = index++;
      if (failed || (failAt === -1 && k > plan.machines.length / 2)) {
        machines.push({ machineRef, phase: 'skipped' });
        continue;
      }
      const restoreStartedAt = t;
      const restoredAt = restoreStartedAt + 300 + rnd() * 400;
      const startedAt = restoredAt + 700 + rnd() * 300;
      const readyAt = startedAt + 2500 + rnd() * 1500;
      waveEnd = Math.max(waveEnd, readyAt);
      if (k === failAt) {
        const probe = `tcp:${8000 + (k % 20)}`;
        failed = {
          machineRef,
          probe,
          message: `${machineRef} failed: probe ${probe} did not pass within 120 s: connection refused`,
        };
        machines.push({
          machineRef,
          phase: 'failed',
          restoreStartedAt: iso(restoreStartedAt),
          restoredAt: iso(restoredAt),
          startedAt: iso(startedAt),
          finishedAt: iso(readyAt),
          message: failed.message,
          probe,
          logTail: `console of ${machineRef}\n`.repeat(30),
        });
        steps.push({
          at: iso(readyAt),
          machineRef,
          level: 'error',
          message: failed.message,
        });
        continue;
      }
      machines.push({
        machineRef,
        phase: 'ready',
        restoreStartedAt: iso(restoreStartedAt),
        restoredAt: iso(restoredAt),
        startedAt: iso(startedAt),
        readyAt: iso(readyAt),
        finishedAt: iso(readyAt),
      });
      steps.push({
        at: iso(readyAt),
        machineRef,
        level: 'info',
        message: `Ready: restored in ${((restoredAt - restoreStartedAt) / 1000).toFixed(1)} s, verified ${((readyAt - startedAt) / 1000).toFixed(1)} s after start`,
      });
    }
    t = waveEnd;
  }
  const interrupted = failAt === -1;
  const finishedAt = t + 1500;
  steps.push({
    at: iso(finishedAt - 500),
    level: 'info',
    message: `Lab torn down: removed ${plan.machines.length} machines, 1 network`,
  });
  const error = interrupted
    ? { message: 'Interrupted: the backend is shutting down' }
    : failed && {
        machineRef: failed.machineRef,
        probe: failed.probe,
        message: failed.message,
      };
  if (!error)
    steps.splice(steps.length - 1, 0, {
      at: iso(t + 200),
      level: 'info',
      message: `All ${plan.machines.length} machines verified in ${Math.round((t - labAt) / 1000)} s; the final check found them all still running and answering`,
    });
  return {
    run: {
      id: o.id,
      entityRef: plan.entityRef,
      mode: 'test',
      trigger: o.trigger,
      createdBy:
        o.trigger === 'user' ? 'user:default/engineer' : 'plugin:recovery',
      hypervisorHost: 'fake',
      plan,
      options: {},
      machines: plan.waves.flatMap((refs, wave) =>
        refs.map(machineRef => ({ machineRef, wave })),
      ),
    },
    status: error ? 'failed' : 'succeeded',
    startedAt: iso(o.createdAt + 100),
    finishedAt: iso(finishedAt),
    rtoSeconds: error ? undefined : Math.round((t - labAt) / 100) / 10,
    error,
    machines,
    steps,
  };
}
