/**
 * A second generator of boot histories with known ground truth, for `bench:independent`.
 *
 * Written by an independent tester from the spec's description of the benchmark, without reading
 * the engine, and kept as they wrote it (ported from JavaScript to TypeScript: types added, the
 * same parameters and defaults, the same PRNG and the same sequence of random draws, so the same
 * params and seed give the same text, map and truth), so that the engine is measured on data it
 * was not tuned on. Do not adjust it to the engine; the comments below are the tester's.
 */

// Independent generator of boot histories with known ground truth.
// generate(params, seed) -> { text (jsonl), map (object), truth }
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MIN = 60000;

/** `[min, max]`, both included. */
export type Range = [number, number];

export interface IndependentParams {
  placement: 'tiered' | 'mixed';
  /** A count, or a range to draw it from. */
  services: number | Range;
  machines: number | Range;
  boots: number | Range;
  delay: Range;
  rootWindow: Range;
  skew: number;
  drift: number;
  clockEvery: number;
  drop: number;
  failFirst: number;
  reboots: number;
  cascade: number;
  maxDeps: number;
  rootFrac: number;
  shuffle: boolean;
  renameFrac: number;
}

export const DEFAULTS: IndependentParams = {
  placement: 'tiered', // 'tiered' | 'mixed'
  services: [50, 150],
  machines: [8, 30],
  boots: [20, 60],
  delay: [5, 15], // minutes, triangular with mode at middle
  rootWindow: [0, 4], // minutes after boot start at which roots start
  skew: 5, // max |clock offset| minutes
  drift: 0, // max additional drift in minutes over the whole history
  clockEvery: 1, // emit clock lines on every k-th boot per machine (probabilistic 1/k)
  drop: 0.03,
  failFirst: 0.08,
  reboots: 0.5, // single-machine reboots per site boot
  cascade: 0.7, // prob a dependent of a restarted service fails and restarts
  maxDeps: 3,
  rootFrac: 0.15,
  shuffle: false,
  renameFrac: 0.5,
};

/** The name map written beside the history (`--map`): log name or `/regex/` → service. */
export interface IndependentMap {
  services: Record<string, string>;
}

export interface IndependentTruth {
  nS: number;
  nM: number;
  nB: number;
  services: string[];
  serviceMachine: Record<string, string>;
  /** `"service>dependsOn"` → [share of site boots where it was the binding (latest) dependency, median gap min, min gap min]. */
  edgeStats: Record<string, [number, number, number]>;
  /** [service, dependsOn]. */
  directEdges: Array<[string, string]>;
  reduction: Array<[string, string]>;
  closureEdges: Array<[string, string]>;
  /** [machine, waitsFor]. */
  machineEdges: Array<[string, string]>;
  machines: string[];
  machineDepth: number;
  nEvents: number;
}

export interface IndependentHistory {
  text: string;
  map: IndependentMap;
  truth: IndependentTruth;
}

interface PlacedService {
  name: string;
  machine: number;
  rank: number;
  rnd: number;
}

interface LogLine {
  time: number | string | null;
  machine: string;
  service?: string;
  event?: string;
  reference?: number | string | null;
}

interface PendingEvent {
  t: number;
  m: number;
  o: LogLine;
  clock?: boolean;
}

type Episode =
  { kind: 'site'; t: number } | { kind: 'reboot'; t: number; m: number };

export function generate(
  p0: Partial<IndependentParams>,
  seed: number,
): IndependentHistory {
  const p: IndependentParams = { ...DEFAULTS, ...p0 };
  const R = rng(seed);
  const ri = (a: number, b: number) => a + Math.floor(R() * (b - a + 1));
  const ru = (a: number, b: number) => a + R() * (b - a);
  const tri = ([a, b]: Range) => {
    const c = (a + b) / 2;
    const u = R();
    const f = (c - a) / (b - a);
    return u < f
      ? a + Math.sqrt(u * (b - a) * (c - a))
      : b - Math.sqrt((1 - u) * (b - a) * (b - c));
  };
  const pick = <T>(arr: readonly T[]): T => arr[Math.floor(R() * arr.length)];

  const nS = typeof p.services === 'number' ? p.services : ri(...p.services);
  const nM = typeof p.machines === 'number' ? p.machines : ri(...p.machines);
  const nB = typeof p.boots === 'number' ? p.boots : ri(...p.boots);
  const machines = Array.from(
    { length: nM },
    (_, i) =>
      `host-${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26) || ''}${ri(10, 99)}`,
  );
  // ensure unique names
  for (let i = 0; i < nM; i++) machines[i] = `${machines[i]}-${i}`;

  // Service placement and order key
  const svc: PlacedService[] = []; // {name, machine (idx), key}
  if (p.placement === 'tiered') {
    const nT = ri(3, Math.min(6, nM));
    // machines into tiers (each tier non-empty)
    const mtier = machines.map((_, i) => (i < nT ? i : ri(0, nT - 1)));
    const tiered: Array<{ machine: number; tier: number; rnd: number }> = [];
    for (let i = 0; i < nS; i++) {
      const m = i < nM ? i : ri(0, nM - 1);
      tiered.push({ machine: m, tier: mtier[m], rnd: R() });
    }
    tiered.sort((a, b) => a.tier - b.tier || a.rnd - b.rnd);
    tiered.forEach(s =>
      svc.push({ name: '', machine: s.machine, rank: s.tier, rnd: s.rnd }),
    );
  } else {
    const order = machines.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(R() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const mrank = new Array<number>(nM);
    order.forEach((m, r) => (mrank[m] = r));
    for (let i = 0; i < nS; i++) {
      const m = i < nM ? i : ri(0, nM - 1);
      svc.push({ name: '', machine: m, rank: mrank[m], rnd: R() });
    }
    svc.sort((a, b) => a.rank - b.rank || a.rnd - b.rnd);
  }
  // names
  const words = [
    'db',
    'cache',
    'auth',
    'api',
    'queue',
    'web',
    'search',
    'mail',
    'ldap',
    'dns',
    'proxy',
    'store',
    'metrics',
    'log',
    'sched',
    'billing',
    'report',
    'backup',
    'cfg',
    'gw',
  ];
  svc.forEach((s, i) => (s.name = `${words[i % words.length]}-${i}`));

  // Dependencies: each service depends only on earlier services with allowed placement
  const deps: number[][] = svc.map(() => []);
  for (let i = 0; i < nS; i++) {
    const s = svc[i];
    const allowed: number[] = [];
    for (let j = 0; j < i; j++) {
      const t = svc[j];
      if (t.machine === s.machine || t.rank < s.rank) allowed.push(j);
    }
    if (!allowed.length || R() < p.rootFrac) continue;
    const k = ri(1, Math.min(p.maxDeps, allowed.length));
    const set = new Set<number>();
    // bias towards recent services to get depth
    while (set.size < k) {
      const j =
        R() < 0.6
          ? allowed[
              Math.max(
                0,
                allowed.length -
                  1 -
                  Math.floor(R() * Math.min(allowed.length, 12)),
              )
            ]
          : pick(allowed);
      set.add(j);
    }
    deps[i] = [...set];
  }
  const dependents: number[][] = svc.map(() => []);
  deps.forEach((ds, i) => ds.forEach(j => dependents[j].push(i)));

  // Truth: closure, reduction, machine graph
  const closure = svc.map(() => new Set<number>());
  for (let i = 0; i < nS; i++)
    for (const j of deps[i]) {
      closure[i].add(j);
      for (const k of closure[j]) closure[i].add(k);
    }
  const reduction: Array<[string, string]> = [];
  for (let i = 0; i < nS; i++)
    for (const j of deps[i]) {
      // j is redundant if some other direct dep d has j in closure
      if (!deps[i].some(d => d !== j && closure[d].has(j)))
        reduction.push([svc[i].name, svc[j].name]);
    }
  const closureEdges: Array<[string, string]> = [];
  for (let i = 0; i < nS; i++)
    for (const j of closure[i]) closureEdges.push([svc[i].name, svc[j].name]);
  const directEdges: Array<[string, string]> = [];
  for (let i = 0; i < nS; i++)
    for (const j of deps[i]) directEdges.push([svc[i].name, svc[j].name]);
  const medge = new Set<string>();
  for (let i = 0; i < nS; i++)
    for (const j of deps[i])
      if (svc[i].machine !== svc[j].machine)
        medge.add(
          `${machines[svc[i].machine]}\u0000${machines[svc[j].machine]}`,
        );
  const machineEdges = [...medge].map(
    e => e.split('\u0000') as [string, string],
  );
  const usedMachines = [...new Set(svc.map(s => s.machine))].map(
    m => machines[m],
  );

  // Renames (log name -> canonical), map file
  const logName = svc.map(s => [s.name]);
  const map: IndependentMap = { services: {} };
  svc.forEach((s, i) => {
    if (R() < p.renameFrac) {
      const style = ri(0, 2);
      if (style === 0)
        logName[i] = [`${s.name}.service`]; // regex /^(.*)\.service$/
      else if (style === 1)
        logName[i] = [`docker-${s.name}-1`, `${s.name}.service`]; // two spellings
      else {
        const legacy = `legacy_${s.name.replace('-', '_')}_d`;
        logName[i] = [legacy];
        map.services[legacy] = s.name;
      }
    }
  });
  map.services['/^(.+)\\.service$/'] = '$1';
  map.services['/^docker-(.+)-1$/'] = '$1';

  // Clock offsets per machine: offset(t) = base + drift * frac
  const base = machines.map(() => ru(-p.skew, p.skew) * MIN);
  const drift = machines.map(() => ru(-p.drift, p.drift) * MIN);
  const zones = machines.map(() => pick([0, 0, 60, 120, -300, 330, -480]));
  const T0 = Date.UTC(2024, 2, 1, 6, 0, 0) + ri(0, 1e6) * 1000;
  const span = nB * 2 * 86400000;
  const offsetAt = (m: number, t: number) =>
    base[m] + drift[m] * Math.min(1, Math.max(0, (t - T0) / span));
  const fmt = (m: number, instant: number): number | string => {
    const local = instant + offsetAt(m, instant);
    if (R() < 0.3) return Math.round(local);
    const z = zones[m];
    const iso = new Date(local + z * MIN).toISOString().replace('Z', '');
    if (z === 0 && R() < 0.5) return `${iso}Z`;
    const sg = z < 0 ? '-' : '+';
    const a = Math.abs(z);
    return `${iso}${sg}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
  };

  const events: PendingEvent[] = []; // {t (ref instant), m, obj}
  const emit = (i: number, t: number, event: string) => {
    if (R() < p.drop) return;
    const m = svc[i].machine;
    const o: LogLine = {
      time: null,
      machine: machines[m],
      service: pick(logName[i]),
    };
    if (event !== 'start' || R() < 0.5) o.event = event;
    events.push({ t, m, o });
  };
  const clockLine = (m: number, t: number) => {
    const o: LogLine = {
      time: null,
      machine: machines[m],
      event: 'clock',
      reference: null,
    };
    events.push({ t, m, o, clock: true });
  };

  const delay = () => tri(p.delay) * MIN;
  let t = T0;
  const plan: Episode[] = [];
  for (let b = 0; b < nB; b++) {
    plan.push({ kind: 'site', t });
    const nr = Math.floor(p.reboots) + (R() < p.reboots % 1 ? 1 : 0);
    for (let r = 0; r < nr; r++)
      plan.push({
        kind: 'reboot',
        t: t + ru(0.4, 1.1) * 86400000 + r * 4 * 3600000,
        m: svc[ri(0, nS - 1)].machine,
      });
    t += ru(1.6, 2.4) * 86400000;
  }
  plan.sort((a, b) => a.t - b.t);
  const lastStart = new Array<number>(nS).fill(0);
  const eBind = new Map<string, number>();
  const eGap = new Map<string, number[]>();
  let nSite = 0;
  for (const ep of plan) {
    if (ep.kind === 'site') {
      const st = new Array<number>(nS);
      for (let i = 0; i < nS; i++) {
        st[i] = deps[i].length
          ? Math.max(...deps[i].map(j => st[j])) + delay()
          : ep.t + ru(...p.rootWindow) * MIN;
        if (R() < p.failFirst) {
          const fs = ep.t + ru(0.2, 0.8) * (st[i] - ep.t);
          emit(i, fs, 'start');
          emit(i, fs + ru(0.1, 1.5) * MIN, 'failure');
        }
        emit(i, st[i], 'start');
        lastStart[i] = st[i];
      }
      nSite++;
      for (let i = 0; i < nS; i++)
        if (deps[i].length) {
          let jm = deps[i][0];
          for (const j of deps[i]) if (st[j] > st[jm]) jm = j;
          for (const j of deps[i]) {
            const k = `${svc[i].name}>${svc[j].name}`;
            if (j === jm) eBind.set(k, (eBind.get(k) || 0) + 1);
            let gaps = eGap.get(k);
            if (!gaps) eGap.set(k, (gaps = []));
            gaps.push((st[i] - st[j]) / MIN);
          }
        }
      for (let m = 0; m < nM; m++)
        if (R() < 1 / p.clockEvery) clockLine(m, ep.t + ru(0, 30) * MIN);
    } else {
      const m = ep.m;
      const restarted = new Map<number, number>(); // i -> new start
      for (let i = 0; i < nS; i++) {
        // i in topological order already
        const onM = svc[i].machine === m;
        const rdeps = deps[i].filter(j => restarted.has(j));
        let go = onM;
        if (!onM && rdeps.length && R() < p.cascade) go = true;
        if (!go) continue;
        let st: number;
        if (rdeps.length)
          st =
            Math.max(...rdeps.map(j => restarted.get(j) as number)) + delay();
        else st = ep.t + ru(...p.rootWindow) * MIN + (onM ? 0 : delay());
        if (!onM) emit(i, ep.t + ru(0.2, 3) * MIN, 'failure');
        else if (R() < p.failFirst) {
          const fs = ep.t + ru(0.2, 0.8) * (st - ep.t);
          emit(i, fs, 'start');
          emit(i, fs + ru(0.1, 1.5) * MIN, 'failure');
        }
        emit(i, st, 'start');
        restarted.set(i, st);
      }
      clockLine(m, ep.t + ru(0, 20) * MIN);
    }
  }
  events.sort((a, b) => a.t - b.t);
  const lines = events.map(e => {
    e.o.time = fmt(e.m, e.t);
    if (e.clock)
      e.o.reference = R() < 0.5 ? Math.round(e.t) : new Date(e.t).toISOString();
    return JSON.stringify(e.o);
  });
  if (p.shuffle)
    for (let i = lines.length - 1; i > 0; i--) {
      const j = Math.floor(R() * (i + 1));
      [lines[i], lines[j]] = [lines[j], lines[i]];
    }

  // machine depth (generations)
  const gen = new Map<string, number>();
  const madj = new Map<string, string[]>(); // X -> [Y] X waits for Y
  for (const [x, y] of machineEdges) {
    let ys = madj.get(x);
    if (!ys) madj.set(x, (ys = []));
    ys.push(y);
  }
  const depth = (x: string, seen = new Set<string>()): number => {
    const known = gen.get(x);
    if (known !== undefined) return known;
    if (seen.has(x)) throw new Error('machine cycle in truth');
    seen.add(x);
    const d = 1 + Math.max(0, ...(madj.get(x) || []).map(y => depth(y, seen)));
    seen.delete(x);
    gen.set(x, d);
    return d;
  };
  let mdepth = 0;
  for (const x of usedMachines) mdepth = Math.max(mdepth, depth(x));

  return {
    text: `${lines.join('\n')}\n`,
    map,
    truth: {
      nS,
      nM,
      nB,
      services: svc.map(s => s.name),
      serviceMachine: Object.fromEntries(
        svc.map(s => [s.name, machines[s.machine]]),
      ),
      edgeStats: Object.fromEntries(
        [...eGap].map(([k, g]): [string, [number, number, number]] => {
          g.sort((a, b) => a - b);
          return [
            k,
            [
              +((eBind.get(k) || 0) / nSite).toFixed(3),
              +g[g.length >> 1].toFixed(1),
              +g[0].toFixed(1),
            ],
          ];
        }),
      ),
      directEdges,
      reduction,
      closureEdges,
      machineEdges,
      machines: usedMachines,
      machineDepth: mdepth,
      nEvents: lines.length,
    },
  };
}
