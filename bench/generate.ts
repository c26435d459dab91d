/**
 * Generator of initialization histories with known ground truth, for the benchmarks and tests.
 * Not part of the published engine.
 *
 * Model: services on machines form a random DAG whose machine graph is acyclic (a service only
 * depends on services on the same or an earlier machine). Whole-site boots: machines come up
 * within minutes; roots start at random times (independent services in random relative order),
 * every other service some minutes after its last dependency started. Single-machine reboots:
 * the machine's services restart; dependents elsewhere lose the dependency and, with probability
 * `cascade`, fail and restart after it is back. Per-machine clock skew of minutes with clock
 * readings at every machine boot, dropped events, failed first attempts (a start followed by a
 * failure, minutes too early), unit names that need a map (regexes and renamed units). Machine
 * names are shuffled, so that no tie broken by name hands an analysis the truth.
 */
import {
  type InitializationEvent,
  MACHINE_LABEL,
  SERVICE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';

export interface GeneratorOptions {
  seed: number;
  machines: number;
  services: number;
  siteBoots: number;
  /** Single-machine reboots in total. */
  machineReboots: number;
  /** Probability that a dependent elsewhere restarts after its restarted dependency. Default 0.7. */
  cascade?: number;
  /** Max abs clock skew per machine, minutes. Default 5. */
  skewMinutes?: number;
  /** Probability a start event is lost. Default 0.03. */
  dropRate?: number;
  /** Probability a start is preceded by a failed too-early attempt. Default 0.05. */
  failedFirstRate?: number;
  /** Share of services renamed halfway through the history (old name mapped exactly). Default 0.1. */
  renameRate?: number;
  /** Share of services that are roots (no dependencies). Default 0.15. */
  rootRate?: number;
  /** Depth of the service DAG (levels). Default 5. */
  levels?: number;
  /** Max dependencies per service. Default 3. */
  maxDeps?: number;
  /** Delay after the last dependency started, minutes [min, max]. Default [6, 18]. */
  delayMinutes?: [number, number];
  /** Spread of roots' start after machine up, minutes. Default 15. */
  rootSpreadMinutes?: number;
  /**
   * Site boots: the delay applies per dependency (a service starts once each dependency has been up
   * its own delay) instead of once after the last dependency started. Default false.
   */
  perDependencyDelay?: boolean;
  /** Share of services that run on 2-3 machines of the same tier (replicas). Default 0. */
  replicaRate?: number;
  /**
   * What a dependent of a replicated service waits for: its first replica up (a client that
   * connects to any; losing one replica later knocks it out no more), or all of them (losing any
   * knocks it out, as for a single machine). Default 'first'.
   */
  replicaWait?: 'first' | 'all';
  /**
   * Machines host services of every level (a service may depend on one on any earlier machine), so
   * a machine's depth builds up across its services and the machine graph runs deeper than the
   * service DAG. Default false: machines in tiers, every machine edge going down a tier.
   */
  stacked?: boolean;
  /**
   * How a delay after a dependency is drawn: uniform over `delayMinutes`, or lognormal with its
   * median in the middle of that range and this log-spread (a long right tail, cut at 55 min).
   */
  delaySpread?: number;
  /** Whole-site boots: machines power on within this many minutes. Default 3. */
  powerOnMinutes?: number;
  /** Emit clock readings. Default true. */
  clocks?: boolean;
  /** History start (epoch ms). Default 2024-01-01. */
  start?: number;
}

export interface TruthService {
  name: string;
  /** Machines it runs on (more than one: replicas). */
  machines: string[];
  dependsOn: string[];
}

export interface GeneratedHistory {
  events: InitializationEvent[];
  map: { services: Record<string, string> };
  truth: { machines: string[]; services: TruthService[] };
}

/** A seeded generator with the picks tests make of it: an index, a coin, one item, a shuffled copy. */
export function seededRandom(seed: number) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const chance = (p: number) => rnd() < p;
  const pick = <T>(items: readonly T[]) => items[int(items.length)];
  const shuffled = <T>(items: readonly T[]) => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  return { rnd, int, chance, pick, shuffled };
}

/** mulberry32: small deterministic PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MIN = 60_000;
const pad = (i: number, w: number) => String(i).padStart(w, '0');

export function generateHistory(o: GeneratorOptions): GeneratedHistory {
  const rnd = prng(o.seed);
  const uni = (a: number, b: number) => a + (b - a) * rnd();
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const cascade = o.cascade ?? 0.7;
  const skew = (o.skewMinutes ?? 5) * MIN;
  const dropRate = o.dropRate ?? 0.03;
  const failedFirstRate = o.failedFirstRate ?? 0.05;
  const renameRate = o.renameRate ?? 0.1;
  const rootRate = o.rootRate ?? 0.15;
  const maxDeps = o.maxDeps ?? 3;
  const [dmin, dmax] = (o.delayMinutes ?? [6, 18]).map(x => x * MIN);
  const rootSpread = (o.rootSpreadMinutes ?? 15) * MIN;
  const clocks = o.clocks ?? true;
  const perDependencyDelay = o.perDependencyDelay ?? false;
  const replicaRate = o.replicaRate ?? 0;
  const waitAll = o.replicaWait === 'all';
  // A replicated service is ready for its dependents when its first replica is up, or its last.
  const notReady = waitAll ? -Infinity : Infinity;
  const readyWith = (ready: number, replicaUp: number) =>
    waitAll ? Math.max(ready, replicaUp) : Math.min(ready, replicaUp);
  const t0 = o.start ?? Date.UTC(2024, 0, 1);
  const delay = () => {
    if (o.delaySpread === undefined) return uni(dmin, dmax);
    // Box-Muller: one standard normal from two uniforms.
    const z =
      Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    return Math.min(
      55 * MIN,
      ((dmin + dmax) / 2) * Math.exp(o.delaySpread * z),
    );
  };

  const mw = String(o.machines).length;
  const sw = String(o.services).length;
  const machines = Array.from(
    { length: o.machines },
    (_, i) => `host-${pad(i, mw)}`,
  );
  // Names that say nothing of the tiers (an analysis that breaks ties by name would otherwise
  // be handed the truth), shuffled by a generator of their own.
  const shuffle = prng(o.seed ^ 0x5bd1e995);
  for (let i = machines.length - 1; i > 0; i--) {
    const j = Math.floor(shuffle() * (i + 1));
    [machines[i], machines[j]] = [machines[j], machines[i]];
  }
  // Levels 0..levels-1; machines in tiers (stacked: each machine a tier of its own). A service
  // depends only on lower-level services on machines of a lower tier or its own machine, so the
  // truth's machine graph is acyclic (and, in tiers, at most `levels` deep).
  const levels = o.levels ?? 5;
  const tierOf = (m: number) =>
    o.stacked ? m : Math.floor((m * levels) / o.machines);
  // Replicas go on other machines of their first machine's tier; only single-machine services
  // depend on each other within a machine, so every machine edge goes down a tier.
  const level: number[] = [];
  const svcMachines: number[][] = [];
  for (let i = 0; i < o.services; i++) {
    const l = rnd() < rootRate ? 0 : 1 + Math.floor(rnd() * (levels - 1));
    const cands = machines
      .map((_, m) => m)
      .filter(m => o.stacked || tierOf(m) <= l);
    level.push(l);
    const ms = [pick(cands)];
    if (replicaRate > 0 && rnd() < replicaRate) {
      const same = cands.filter(
        m => m !== ms[0] && tierOf(m) === tierOf(ms[0]),
      );
      for (let k = 1 + Math.floor(rnd() * 2); k > 0 && same.length; k--)
        ms.push(same.splice(Math.floor(rnd() * same.length), 1)[0]);
    }
    svcMachines.push(ms);
  }
  const svcMachine = svcMachines.map(ms => ms[0]);
  const order = level
    .map((_, i) => i)
    .sort(
      (a, b) => level[a] - level[b] || svcMachine[a] - svcMachine[b] || a - b,
    );
  const single = (i: number) => svcMachines[i].length === 1;
  const allowed = (a: number, b: number) =>
    level[b] < level[a] &&
    ((single(a) && single(b) && svcMachine[a] === svcMachine[b]) ||
      tierOf(svcMachine[b]) < tierOf(svcMachine[a]));
  const depsByOld: number[][] = [];
  for (let i = 0; i < o.services; i++) {
    const l = level[i];
    const d = new Set<number>();
    if (l > 0) {
      const prev = order.filter(b => level[b] === l - 1 && allowed(i, b));
      const lower = order.filter(b => allowed(i, b));
      if (prev.length) d.add(pick(prev));
      const k = Math.floor(rnd() * maxDeps);
      for (let j = 0; j < k && lower.length; j++) d.add(pick(lower));
    }
    depsByOld.push([...d]);
  }
  // Renumber services in topological order (the simulation below relies on it).
  const newIndex = new Map(order.map((old, i) => [old, i]));
  const deps: number[][] = order.map(old =>
    depsByOld[old].map(d => newIndex.get(d)!).sort((a, b) => a - b),
  );
  const machinesOfNew = order.map(old => svcMachines[old]);
  svcMachines.splice(0, svcMachines.length, ...machinesOfNew);
  const names = Array.from(
    { length: o.services },
    (_, i) => `svc-${pad(order[i], sw)}`,
  );
  const dependents: number[][] = names.map(() => []);
  deps.forEach((ds, i) => ds.forEach(d => dependents[d].push(i)));
  const onMachine: number[][] = machines.map(() => []);
  svcMachines.forEach((ms, i) => ms.forEach(m => onMachine[m].push(i)));

  // Unit names: most `svc-NNN.service` (mapped by regex); some renamed mid-history (exact entry);
  // some `app@svc-NNN.service` (second regex).
  const renamed = names.map(() => rnd() < renameRate);
  const templated = names.map(() => rnd() < 0.2);
  const map: Record<string, string> = {};
  names.forEach((n, i) => {
    if (renamed[i]) map[`legacy-${n.slice(4)}-daemon.service`] = n;
  });
  map['/^(svc-\\d+)\\.service$/'] = '$1';
  map['/^app@(svc-\\d+)\\.service$/'] = '$1';
  const totalSpan = (o.siteBoots + 1) * 86_400_000;
  const unitName = (i: number, t: number) =>
    renamed[i] && t < t0 + totalSpan / 2
      ? `legacy-${names[i].slice(4)}-daemon.service`
      : templated[i]
        ? `app@${names[i]}.service`
        : `${names[i]}.service`;

  const baseSkew = machines.map(() => uni(-skew, skew));
  const events: InitializationEvent[] = [];
  const emitStart = (i: number, m: number, t: number) => {
    const off = curSkew[m];
    if (rnd() < failedFirstRate) {
      const early = t - uni(2, 5) * MIN;
      events.push({
        time: Math.round(early + off),
        machine: machines[m],
        service: unitName(i, t),
        type: 'start',
      });
      events.push({
        time: Math.round(early + uni(5_000, 60_000) + off),
        machine: machines[m],
        service: unitName(i, t),
        type: 'failure',
      });
    }
    if (rnd() < dropRate) return;
    events.push({
      time: Math.round(t + off),
      machine: machines[m],
      service: unitName(i, t),
      type: 'start',
    });
  };
  const curSkew = baseSkew.slice();
  const clock = (m: number, t: number) => {
    if (clocks)
      events.push({
        time: Math.round(t + curSkew[m]),
        machine: machines[m],
        service: '',
        type: 'clock',
        reference: Math.round(t),
      });
  };

  // Boot schedule: site boots about a day apart, machine reboots in between.
  const bootTimes: Array<{ t: number; machine?: number }> = [];
  for (let b = 0; b < o.siteBoots; b++)
    bootTimes.push({ t: t0 + b * 86_400_000 + uni(0, 6) * 3_600_000 });
  for (let r = 0; r < o.machineReboots; r++) {
    const day = Math.floor(rnd() * Math.max(1, o.siteBoots));
    bootTimes.push({
      t: t0 + day * 86_400_000 + uni(10, 22) * 3_600_000,
      machine: Math.floor(rnd() * o.machines),
    });
  }
  bootTimes.sort((a, b) => a.t - b.t);

  for (const boot of bootTimes) {
    if (boot.machine === undefined) {
      machines.forEach(
        (_, m) => (curSkew[m] = baseSkew[m] + uni(-20_000, 20_000)),
      );
      const up = machines.map(
        () => boot.t + uni(0, o.powerOnMinutes ?? 3) * MIN,
      );
      up.forEach((t, m) => clock(m, t));
      const ready = new Float64Array(o.services);
      for (let i = 0; i < o.services; i++) {
        ready[i] = notReady;
        for (const m of svcMachines[i]) {
          let start: number;
          if (!deps[i].length) start = up[m] + MIN + rnd() * rootSpread;
          else {
            let last = up[m] + MIN;
            if (perDependencyDelay) {
              // Each dependency is ready its own delay after it started; the service starts once all are.
              for (const d of deps[i])
                last = Math.max(last, ready[d] + delay());
              start = last;
            } else {
              for (const d of deps[i]) last = Math.max(last, ready[d]);
              start = last + delay();
            }
          }
          ready[i] = readyWith(ready[i], start);
          emitStart(i, m, start);
        }
      }
    } else {
      const m = boot.machine;
      const up = boot.t + uni(0.5, 2) * MIN;
      clock(m, up);
      const restarted = new Map<number, number>();
      // Services whose every replica restarted: one replica restarting knocks out no dependent
      // that needs only one of them up.
      const down = new Set<number>();
      const first = onMachine[m].length
        ? Math.min(...onMachine[m])
        : o.services;
      for (let i = first; i < o.services; i++) {
        const lost = deps[i].filter(
          d => restarted.has(d) && (waitAll || down.has(d)),
        );
        if (svcMachines[i].includes(m)) {
          let t = up + uni(0.5, 3) * MIN;
          for (const d of lost) t = Math.max(t, restarted.get(d)! + delay());
          restarted.set(i, t);
          if (svcMachines[i].length === 1) down.add(i);
          emitStart(i, m, t);
        } else if (lost.length && rnd() < cascade) {
          let last = 0;
          for (const d of lost) last = Math.max(last, restarted.get(d)!);
          let ready = notReady;
          for (const r of svcMachines[i]) {
            const lostAt = boot.t + uni(0, 1) * MIN;
            events.push({
              time: Math.round(lostAt + curSkew[r]),
              machine: machines[r],
              service: unitName(i, lostAt),
              type: 'failure',
            });
            const t = last + delay();
            ready = readyWith(ready, t);
            emitStart(i, r, t);
          }
          restarted.set(i, ready);
          down.add(i);
        }
      }
    }
  }
  events.sort(
    (a, b) =>
      a.time - b.time ||
      (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0) ||
      (a.service < b.service ? -1 : a.service > b.service ? 1 : 0),
  );
  return {
    events,
    map: { services: map },
    truth: {
      machines,
      services: names.map((n, i) => ({
        name: n,
        machines: svcMachines[i].map(m => machines[m]),
        dependsOn: deps[i].map(d => names[d]),
      })),
    },
  };
}

/**
 * A history where one machine wait shows only in reboots. queue (k) waits for db (d); api (a)
 * waits for queue and for cache (d), which starts 0-3 min after queue, so cache is always the
 * latest and explains api's starts as well as queue would. Every fifth day k reboots on its own
 * and api, knocked out, comes back 15-50 min later: a must wait for k. Six unrelated services on
 * x-0..x-2 start at random in every boot.
 */
export function rebootFollowerHistory(seed = 9): GeneratedHistory {
  const rnd = prng(seed);
  const t0 = Date.UTC(2024, 0, 1);
  const events: InitializationEvent[] = [];
  const start = (time: number, service: string, machine: string) =>
    events.push({ time: Math.round(time), machine, service, type: 'start' });
  for (let b = 0; b < 30; b++) {
    const t = t0 + b * 86_400_000;
    const db = t + 2 * rnd() * MIN;
    const queue = db + (8 + 4 * rnd()) * MIN;
    const cache = queue + 3 * rnd() * MIN;
    start(db, 'db', 'd');
    start(queue, 'queue', 'k');
    start(cache, 'cache', 'd');
    start(cache + (8 + 4 * rnd()) * MIN, 'api', 'a');
    for (let i = 0; i < 6; i++)
      start(t + 40 * rnd() * MIN, `x-${i}`, `x-${i % 3}`);
    if (b % 5 === 2) {
      const again = t + 10 * 3_600_000 + (1 + rnd()) * MIN;
      start(again, 'queue', 'k');
      events.push({
        time: Math.round(again - 0.5 * MIN),
        machine: 'a',
        service: 'api',
        type: 'failure',
      });
      start(again + (15 + 35 * rnd()) * MIN, 'api', 'a');
    }
  }
  const services: TruthService[] = [
    { name: 'db', machines: ['d'], dependsOn: [] },
    { name: 'queue', machines: ['k'], dependsOn: ['db'] },
    { name: 'cache', machines: ['d'], dependsOn: [] },
    { name: 'api', machines: ['a'], dependsOn: ['cache', 'queue'] },
    ...Array.from({ length: 6 }, (_, i) => ({
      name: `x-${i}`,
      machines: [`x-${i % 3}`],
      dependsOn: [],
    })),
  ];
  return {
    events,
    map: { services: {} },
    truth: { machines: ['a', 'd', 'k', 'x-0', 'x-1', 'x-2'], services },
  };
}

/** jsonl lines (ISO times for even, epoch ms for odd lines, plus an unknown field). */
export function toJsonl(events: InitializationEvent[]): string[] {
  return events.map((e, i) => {
    const time = i % 2 ? e.time : new Date(e.time).toISOString();
    if (e.type === 'clock') {
      return JSON.stringify({
        time,
        machine: e.machine,
        event: 'clock',
        reference: new Date(e.reference!).toISOString(),
      });
    }
    return JSON.stringify(
      e.type === 'start' && i % 3
        ? { time, machine: e.machine, service: e.service, note: 'x' }
        : { time, machine: e.machine, service: e.service, event: e.type },
    );
  });
}

export const JOURNALD_STARTED = '39f53479d3a045ac8e11786248231fbf';
export const JOURNALD_FAILED = 'be02cf6855d2428ba40df7e9d022f03d';

/** One journald record (`journalctl -o json`) for an event; clock readings become irrelevant records. */
export function toJournaldRecord(e: InitializationEvent, seq: number): string {
  const us = `${Math.round(e.time)}000`;
  const common = {
    __CURSOR: `s=0;i=${seq.toString(16)}`,
    __REALTIME_TIMESTAMP: us,
    __MONOTONIC_TIMESTAMP: String(seq * 1000),
    _BOOT_ID: 'b0b0',
    PRIORITY: '6',
    SYSLOG_FACILITY: '3',
    _HOSTNAME: e.machine,
    _PID: '1',
    _COMM: 'systemd',
  };
  if (e.type === 'start')
    return JSON.stringify({
      ...common,
      MESSAGE_ID: JOURNALD_STARTED,
      UNIT: e.service,
      MESSAGE: `Started ${e.service}.`,
    });
  if (e.type === 'failure')
    return JSON.stringify({
      ...common,
      MESSAGE_ID: JOURNALD_FAILED,
      UNIT: e.service,
      MESSAGE: `${e.service}: Failed with result 'exit-code'.`,
    });
  return JSON.stringify({
    ...common,
    MESSAGE: 'Time has been changed',
    SYSLOG_IDENTIFIER: 'systemd-timesyncd',
  });
}

/** An irrelevant journald record. */
export function journaldNoise(
  machine: string,
  timeMs: number,
  seq: number,
): string {
  return JSON.stringify({
    __CURSOR: `s=0;i=${seq.toString(16)}`,
    __REALTIME_TIMESTAMP: `${Math.round(timeMs)}000`,
    __MONOTONIC_TIMESTAMP: String(seq * 1000),
    _BOOT_ID: 'b0b0',
    PRIORITY: '6',
    _HOSTNAME: machine,
    SYSLOG_IDENTIFIER: 'kernel',
    MESSAGE: `eth0: link state changed, packets ${seq}`,
  });
}

/** docker events lines; services become container labels. */
export function toDocker(events: InitializationEvent[]): string[] {
  const out: string[] = [];
  events.forEach((e, i) => {
    if (e.type === 'clock') return;
    const attrs: Record<string, string> = {
      name: `${e.service}-${i}`,
      image: 'img:1',
    };
    attrs[SERVICE_LABEL] = e.service;
    attrs[MACHINE_LABEL] = e.machine;
    const action = e.type === 'start' ? 'start' : 'die';
    if (action === 'die') attrs.exitCode = '1';
    out.push(
      JSON.stringify({
        status: action,
        id: `c${i}`,
        from: 'img:1',
        Type: 'container',
        Action: action,
        Actor: { ID: `c${i}`, Attributes: attrs },
        scope: 'local',
        time: Math.floor(e.time / 1000),
        timeNano: e.time * 1_000_000,
      }),
    );
  });
  return out;
}
