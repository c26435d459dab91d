/**
 * The dependency analysis: initialization events of earlier boots in, dependencies, a service
 * order and a machine boot plan out. Its steps live beside it: timeline (1–2), correlate (3),
 * select (4), plan (6); the order (5) and the result are assembled here.
 */
import {
  formatSeconds,
  type InferredMachineWait,
  type InitializationEvent,
} from '@backstage-recovery/plugin-recovery-common';
import {
  correlate,
  Correlation,
  KernelTable,
  tabulateKernel,
} from './correlate';
import {
  breakCycles,
  byName,
  checkBootDurations,
  counted,
  criticalPath,
  CriticalPath,
  Cycle,
  Edge,
  generations,
  listed,
  precedenceOrder,
  roundScore,
  transitiveReduction,
} from './graph';
import {
  createKernel,
  DEFAULT_KERNEL,
  delayText,
  Kernel,
  KernelOptions,
  timeScaleOf,
} from './kernel';
import type { ServiceMap, ServiceMapper } from './mapping';
import {
  MachineCycle,
  MachinePlan,
  MachinePlanInput,
  MachineWait,
  planMachines,
} from './plan';
import { CANDIDATE_FLOOR, Explained, selectDependencies } from './select';
import { buildTimeline, DAY, machinePairs, Timeline } from './timeline';
import { MAX_TIME } from '../events/clock';

export {
  AnalysisInputError,
  clockCorrector,
  NoStartEventsError,
} from './timeline';

/** How far back an initialization weighs half (recovery.analysis.halfLife's default). */
const DEFAULT_HALF_LIFE = 90 * DAY;
export type { MachineWait } from './plan';

/**
 * Options of {@link analyzeDependencies}.
 *
 * @public
 */
export interface AnalysisOptions {
  /** Score a dependency must reach. Default 0.7. */
  threshold?: number;
  /** Point in time of interest (epoch ms, reference clock). Default: the latest event. */
  at?: number;
  /** Half-life (ms) of an initialization's weight with its distance from `at`. Default 90 days; 0 or Infinity disables. */
  halfLife?: number;
  /**
   * The half-life's setting as warnings name it, where the caller's user sets it: `--half-life`
   * for the CLI. Default `recovery.analysis.halfLife`, the backend's.
   */
  halfLifeSetting?: string;
  /**
   * The point in time's setting as warnings name it, where the caller's user sets it: `--at` for
   * the CLI. None by default: the backend analyses at the latest event, which no one sets there.
   */
  atSetting?: string;
  /** The delay kernel; a peak alone up to a minute analyses a site that boots in seconds (`timeScaleOf`). */
  kernel?: KernelOptions;
  /** A failure of the same service on the same machine within this time after a start lowers its weight. Default 2 min (on a slowed clock, `timeScaleOf`, scaled with it). */
  failureWindow?: number;
  /** Weight factor of such a start. Default 0.2. */
  failureFactor?: number;
  /** Below this many samples a dependency has low confidence. Default 5. */
  minSamples?: number;
  /**
   * Name mapping applied to every event's service: a map, compiled here, or one
   * `compileServiceMap` already compiled (the CLI checks each mapped name at its line while
   * reading, then hands on the same mapper).
   */
  map?: ServiceMap | ServiceMapper;
  /**
   * `full` (default): each initialization explained by the latest of its service's dependencies
   * (which resists start-order confounding and finds several dependencies), scored by the kernel
   * over the initializations each explains, with cycle breaking and transitive reduction;
   * `plain`: the kernel score over all initializations of the dependent, nothing more (the
   * baseline of the benchmark).
   */
  method?: 'full' | 'plain';
  /** Malformed input lines skipped by the parser, reported back as is. */
  skipped?: number;
  /**
   * Each machine's boot duration (any one unit, e.g. seconds of its last recovery): the result
   * then holds the plan's `criticalPath`. A machine without one counts 0.
   */
  bootDurations?: Record<string, number>;
}

/**
 * A service seen in the events: the machines it ran on and how often it initialized.
 *
 * @public
 */
export interface ServiceSummary {
  service: string;
  machines: string[];
  initializations: number;
}

/**
 * A dependency the analysis found, with its score and the samples behind it.
 *
 * @public
 */
export interface Dependency {
  service: string;
  dependsOn: string;
  /** In [0, 1], rounded to 4 decimals. */
  score: number;
  /** Initializations of `service` behind the score. */
  samples: number;
  confidence: 'high' | 'low';
}

/**
 * What {@link analyzeDependencies} found: dependencies, service and machine orders, waves and warnings.
 *
 * @public
 */
export interface AnalysisResult {
  services: ServiceSummary[];
  /** Direct dependencies (transitive reduction of the accepted ones), sorted. */
  dependencies: Dependency[];
  /** Dependencies first. */
  serviceOrder: string[];
  /** The waves in turn; within a wave, as the boots show (the service order's precedences). */
  machineOrder: string[];
  /** Topological generations of machines: a wave's machines can boot in parallel. */
  waves: string[][];
  /**
   * Which machines each machine waits for (after cycle breaking), and why, in the same order
   * (`because` is absent from analyses the backend stored before it was added).
   */
  machineDependencies: Array<{
    machine: string;
    waitsFor: string[];
    because?: MachineWait[];
  }>;
  /**
   * Machine edges of the plan that rest on restarts: the machine's services restarted after
   * `followed` of the `chances` times `waitsFor` rebooted on its own while it was up.
   */
  rebootsFollowed: InferredMachineWait[];
  cycles: Cycle[];
  machineCycles: MachineCycle[];
  /**
   * Step 3's kernel correlation of every pair, signed: `matrix[r][c]` > 0: column service `c`
   * initializes first, and row `r`'s initializations find one of `c` shortly before them by that
   * weighted share; < 0: the other way. Each pair holds the stronger of its two directions, and
   * `matrix[c][r]` is always `-matrix[r][c]` (0 on the diagonal and for pairs never seen within
   * the kernel's window). Where both directions score the same (rounded to 4 decimals, as
   * `dependencies`), the positive cell is in the row of the service listed first in `services`,
   * as if its column started first. Before explaining away, so an ancestor or a look-alike that
   * always starts earlier scores too: `dependencies` hold what the analysis concluded.
   */
  correlation: { services: string[]; matrix: number[][] };
  warnings: string[];
  skipped: number;
  /** The point in time of interest used (epoch ms). */
  at: number;
  /**
   * With `bootDurations` only: the longest chain of machine waits (`machineDependencies`) by those
   * durations, the least a recovery can take however its machines boot in parallel; and `byWaves`,
   * the slowest machine of each wave in turn, what it takes booted wave after wave.
   */
  criticalPath?: CriticalPath & { byWaves: CriticalPath };
}

/**
 * A median delay of the dependencies scored under the threshold outside [FIT_BELOW, FIT_ABOVE] times
 * the kernel's peak moves the peak (when the caller did not choose it). In the benchmarks only
 * fast starters (3–8 min) cross it; slow ones (10–30 min) stay under the threshold too seldom.
 */
const FIT_BELOW = 0.6;
const FIT_ABOVE = 1.6;
/** Share of the dependencies found that must score under the threshold for their delays to move the peak. */
const FIT_SHARE = 0.15;

/** Precedence this consistent (over enough co-boots) constrains the order even without a dependency. */
const ORDER_CONSISTENCY = 0.9;
/**
 * Under this many whole-site boots the plan is uncertain, and the output says so: in the accuracy
 * benchmark's medium site, 12 of 16 histories of 8 boots and 6 of 16 of 12 boots break a must, 1
 * of 16 of 20 boots.
 */
const FEW_SITE_BOOTS = 20;

/**
 * Derives initialization dependencies, a service order and a machine boot plan from
 * initialization events of earlier boots. Pure and deterministic.
 *
 * @public
 */
export function analyzeDependencies(
  events: Iterable<InitializationEvent>,
  options: AnalysisOptions = {},
): AnalysisResult {
  checkOptions(options);
  const threshold = options.threshold ?? 0.7;
  // A site that boots in seconds runs on a slowed clock, under the default kernel (timeScaleOf).
  const timeScale = timeScaleOf(options.kernel);
  const exactKernel = createKernel(
    timeScale === 1
      ? options.kernel
      : { ...options.kernel, peakDelay: DEFAULT_KERNEL.peakDelay },
  );

  // 1–2. Filter, map, compensate clock skew, weigh, index.
  const tl = buildTimeline(events, {
    map: options.map,
    at: options.at,
    atSetting: options.atSetting,
    halfLife: options.halfLife ?? DEFAULT_HALF_LIFE,
    failureWindow: options.failureWindow ?? 120_000,
    failureFactor: options.failureFactor ?? 0.2,
    maxDelay: exactKernel.maxDelay,
    timeScale,
  });
  const first = analyzeTimeline(tl, exactKernel, threshold, options);
  // The kernel's default peak (10 min) misfits a site whose services start much sooner or later
  // after what they wait for: many of the dependencies the boots show then score under the
  // threshold. Unless the caller chose the peak, it moves to the delay the boots show, once.
  const delay = first.underDelay;
  const peak = exactKernel.peakDelay / 60_000;
  if (
    options.kernel?.peakDelay !== undefined ||
    delay === undefined ||
    (delay >= FIT_BELOW * peak && delay <= FIT_ABOVE * peak)
  ) {
    return first.result;
  }
  // Strictly inside the kernel's bounds, which a kernel needs around its peak.
  const { minDelay, maxDelay } = exactKernel;
  const fitted = Math.min(
    Math.max(delay * 60_000, minDelay + 0.01 * (maxDelay - minDelay)),
    maxDelay - 0.1 * (maxDelay - minDelay),
  );
  const refit = analyzeTimeline(
    tl,
    createKernel({ ...options.kernel, peakDelay: fitted }),
    threshold,
    options,
    false,
  );
  // Kept only where it fits better: the median of the dependencies under the threshold lies in a
  // tail of their delays, and where those spread wide, a peak there leaves more of them under.
  if (refit.under * first.explained >= first.under * refit.explained)
    return first.result;
  refit.result.warnings.unshift(
    `the delay kernel's peak moved from ${peak.toFixed(0)} to ${(fitted / 60_000).toFixed(1)} min: ${first.under} of ${first.explained} dependencies the boots show scored under the threshold at ${peak.toFixed(0)} min, their services starting a median ${delay.toFixed(1)} min after them, and ${refit.under} of ${refit.explained} do at the new peak; a peak given (--kernel-peak, recovery.analysis.kernelPeak) stays where it is`,
  );
  return refit.result;
}

/**
 * Refuses options the analysis cannot honour, naming the option and the value: a NaN or negative
 * one would otherwise weigh every initialization NaN, or turn a setting off, without a word.
 */
function checkOptions(o: AnalysisOptions): void {
  const problem = (name: string, value: unknown, must: string) =>
    new Error(`analysis option ${name} must be ${must} (got ${String(value)})`);
  const {
    threshold,
    at,
    halfLife,
    failureWindow,
    failureFactor,
    minSamples,
    method,
  } = o;
  if (threshold !== undefined && !(threshold > 0 && threshold <= 1))
    throw problem('threshold', threshold, 'in (0, 1]');
  if (at !== undefined && !(Math.abs(at) <= MAX_TIME))
    throw problem('at', at, 'a time in epoch milliseconds that a date holds');
  if (halfLife !== undefined && !(halfLife >= 0))
    throw problem(
      'halfLife',
      halfLife,
      '0 or more milliseconds (0 or Infinity: no decay)',
    );
  if (
    failureWindow !== undefined &&
    !(failureWindow >= 0 && Number.isFinite(failureWindow))
  )
    throw problem(
      'failureWindow',
      failureWindow,
      'a finite number of milliseconds, 0 or more',
    );
  if (
    failureFactor !== undefined &&
    !(failureFactor >= 0 && failureFactor <= 1)
  )
    throw problem('failureFactor', failureFactor, 'in [0, 1]');
  if (
    minSamples !== undefined &&
    !(minSamples >= 0 && Number.isFinite(minSamples))
  )
    throw problem('minSamples', minSamples, 'a finite number, 0 or more');
  if (method !== undefined && method !== 'full' && method !== 'plain')
    throw problem('method', method, "'full' or 'plain'");
  if (
    o.bootDurations !== undefined &&
    (typeof o.bootDurations !== 'object' ||
      o.bootDurations === null ||
      Array.isArray(o.bootDurations))
  ) {
    throw problem(
      'bootDurations',
      JSON.stringify(o.bootDurations),
      'an object of machine names to durations',
    );
  }
  if (o.bootDurations) checkBootDurations(o.bootDurations);
}

/**
 * An analysis of a timeline, and what its kernel made of the dependencies it found: how many,
 * how many of them score under the threshold, and their median delay where enough do.
 */
interface TimelineAnalysis {
  result: AnalysisResult;
  underDelay?: number;
  under: number;
  explained: number;
}

/** Steps 3–7 of the analysis on a built timeline, with the kernel given. */
function analyzeTimeline(
  tl: Timeline,
  exactKernel: Kernel,
  threshold: number,
  options: AnalysisOptions,
  /** Whether to advise another kernel peak (not after the peak was moved: that warning says it). */
  adviseKernel = true,
): TimelineAnalysis {
  const minSamples = options.minSamples ?? 5;
  const method = options.method ?? 'full';
  const kernel = tabulateKernel(exactKernel);
  const { serviceNames } = tl;
  const warnings = [...tl.warnings];

  // 3. Pair statistics, in one sweep over the time-sorted initializations.
  const corr = correlate(tl, kernel);

  // 4. Scores.
  // `full`: each initialization explained by the latest of its service's dependencies (select.ts);
  // `plain`: the kernel score over all initializations of the dependent.
  const explained =
    method === 'full' ? selectDependencies(tl, corr, kernel) : undefined;
  const scored = acceptedDependencies(tl, corr, explained, threshold);

  // 5. Order: break cycles (weakest evidence first; the plain method too, it needs an order),
  //    reduce, generations.
  const how = { method, minSamples };
  const { edges, cycles, constraints, offset, serviceOrder } = orderServices(
    tl,
    { corr, kernel, ...scored },
    how,
    warnings,
    {
      halfLife: options.halfLife ?? DEFAULT_HALF_LIFE,
      setting: options.halfLifeSetting ?? 'recovery.analysis.halfLife',
      atSetting: options.atSetting,
    },
  );
  const dependencies = reportedDependencies(tl, edges, scored.samplesOf, how);
  const fit = kernelFit(tl, exactKernel, explained, threshold);
  // Said where many are under it, and where all the boots show is: a small site reports nothing.
  if (
    adviseKernel &&
    fit.advice &&
    (fit.underDelay !== undefined || !dependencies.length)
  )
    warnings.push(fit.advice);
  if (method === 'full' && explained!.size === 0)
    warnings.push(...nothingFound(tl, kernel));
  warnings.push(...lowConfidence(dependencies, minSamples));

  // 6. Machines.
  const { plan, machineOrder } = planAndOrderMachines(
    tl,
    kernel,
    { method, edges, explained, threshold, offset },
    { constraints, dependencies },
    warnings,
  );

  const result: AnalysisResult = {
    services: serviceSummaries(tl),
    dependencies,
    serviceOrder,
    machineOrder,
    waves: plan.waves,
    machineDependencies: machineDependenciesOf(tl, plan),
    rebootsFollowed: plan.rebootsFollowed,
    cycles,
    machineCycles: plan.machineCycles,
    // 7. The signed correlation matrix.
    correlation: signedMatrix(corr, serviceNames),
    warnings,
    skipped: options.skipped ?? 0,
    at: tl.at,
  };
  if (options.bootDurations) addCriticalPath(result, tl, options.bootDurations);
  return {
    result,
    underDelay: fit.underDelay,
    under: fit.under,
    explained: explained?.size ?? 0,
  };
}

/**
 * Step 6: the machine plan, its warnings with the reported dependencies its waves leave out
 * (`full`), and the machine order.
 */
function planAndOrderMachines(
  tl: Timeline,
  kernel: KernelTable,
  input: MachinePlanInput,
  {
    constraints,
    dependencies,
  }: {
    constraints: Array<[number, number, number]>;
    dependencies: Dependency[];
  },
  warnings: string[],
): { plan: MachinePlan; machineOrder: string[] } {
  const plan = planMachines(tl, kernel, input);
  warnings.push(...plan.warnings);
  if (input.method === 'full')
    warnings.push(...leftOutOfWaves(tl, plan, dependencies));
  // Machine order: wave by wave; within a wave, by the precedences the service order respects,
  // mapped to machines, so two machines of one wave are still ordered as the boots show (a
  // missed dependency between them costs a wave, not the order too).
  const machineOrder =
    input.method === 'full'
      ? orderWithinWaves(plan.waves, constraints, (a, b) =>
          machinePairs(tl, a, b),
        )
      : plan.waves.flat();
  return { plan, machineOrder };
}

/** Each service's machines and how often it initialized. */
function serviceSummaries(tl: Timeline): ServiceSummary[] {
  return tl.serviceNames.map((s, i) => ({
    service: s,
    machines: [...tl.machinesOf[i]].sort(byName),
    initializations: tl.initCount[i],
  }));
}

/** Which machines each machine waits for in the plan, and why. */
function machineDependenciesOf(
  tl: Timeline,
  plan: MachinePlan,
): AnalysisResult['machineDependencies'] {
  return tl.machineNames.map(m => ({
    machine: m,
    waitsFor: plan.waitsFor.get(m)!,
    because: plan.because.get(m)!,
  }));
}

/**
 * The service order: cycles broken, constraints from dependencies and consistent precedences,
 * and (`full`) the dependencies the order had to overrule dropped; with their warnings.
 */
function orderServices(
  tl: Timeline,
  {
    corr,
    kernel,
    accepted,
    samplesOf,
  }: {
    corr: Correlation;
    kernel: KernelTable;
    accepted: Edge[];
    samplesOf: Map<string, number>;
  },
  { method, minSamples }: { method: 'full' | 'plain'; minSamples: number },
  warnings: string[],
  /** The half-life the timeline's weights decay with (real ms) and its setting, for what is said of them. */
  decay: HalfLife,
) {
  const { serviceNames } = tl;
  const broken = breakCycles(serviceNames, accepted);
  let edges = broken.edges;
  const cycles: Cycle[] = broken.cycles;
  for (const c of cycles) {
    warnings.push(
      `dependency cycle ${[...c.services, c.services[0]].join(' → ')}: dropped ${c.dropped.service} → ${c.dropped.dependsOn} (score ${c.dropped.score})`,
    );
  }
  const constraints = orderConstraints(tl, corr, edges, samplesOf, {
    method,
    minSamples,
  });
  const offset = typicalOffsets(tl);
  warnings.push(...fewSiteBoots(tl, kernel, method, decay));
  const serviceOrder =
    method === 'full'
      ? precedenceOrder(serviceNames.length, constraints, offset).map(
          i => serviceNames[i],
        )
      : generations(serviceNames, edges).flat();
  if (method === 'full')
    edges = dropOverruled(edges, serviceOrder, samplesOf, cycles, warnings);
  return { edges, cycles, constraints, offset, serviceOrder };
}

/** The dependencies reported: direct ones only (`full`: the transitive reduction), with their samples and confidence. */
function reportedDependencies(
  tl: Timeline,
  edges: Edge[],
  samplesOf: Map<string, number>,
  { method, minSamples }: { method: 'full' | 'plain'; minSamples: number },
): Dependency[] {
  const direct =
    method === 'full' ? transitiveReduction(tl.serviceNames, edges) : edges;
  return direct.map(e => {
    const samples = samplesOf.get(`${e.service}\u0000${e.dependsOn}`)!;
    return {
      service: e.service,
      dependsOn: e.dependsOn,
      score: e.score,
      samples,
      confidence: samples >= minSamples ? 'high' : 'low',
    };
  });
}

/** The dependencies with fewer than minSamples samples, said aloud. */
function lowConfidence(
  dependencies: Dependency[],
  minSamples: number,
): string[] {
  const low = dependencies.filter(d => d.confidence === 'low');
  if (!low.length) return [];
  return [
    `${low.length} dependenc${low.length === 1 ? 'y has' : 'ies have'} fewer than ${minSamples} samples (low confidence): ${listed(low.map(d => `${d.service} → ${d.dependsOn} (${d.samples})`))}`,
  ];
}

/**
 * The dependencies scoring at least the threshold, by name, with their samples (by service \0
 * dependsOn); `explained` for the full method, the kernel correlation for the plain one.
 */
function acceptedDependencies(
  tl: Timeline,
  corr: Correlation,
  explained: Map<number, Explained> | undefined,
  threshold: number,
): { accepted: Edge[]; samplesOf: Map<string, number> } {
  const { serviceNames } = tl;
  const n = serviceNames.length;
  const score = (a: number, b: number): number =>
    !explained
      ? corr.correlation(a, b)
      : (explained.get(a * n + b)?.score ?? 0);
  const samples = (a: number, b: number): number =>
    !explained ? corr.count(a, b) : (explained.get(a * n + b)?.samples ?? 0);
  const accepted: Edge[] = [];
  const samplesOf = new Map<string, number>();
  corr.ker.forEach((a, b) => {
    const s = roundScore(score(a, b));
    if (s >= threshold) {
      const e = {
        service: serviceNames[a],
        dependsOn: serviceNames[b],
        score: s,
      };
      accepted.push(e);
      samplesOf.set(`${e.service}\u0000${e.dependsOn}`, samples(a, b));
    }
  });
  accepted.sort(
    (x, y) => byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn),
  );
  return { accepted, samplesOf };
}

/**
 * Service order constraints `[a, after b, weight]`: accepted dependencies plus any strongly
 * consistent precedence (which a missed dependency would show), so an order never contradicts
 * what every boot showed. Each constraint weighs as many boots as back it, so a dependency seen
 * a few times gives way to a precedence seen in every boot when the two disagree.
 */
function orderConstraints(
  tl: Timeline,
  corr: Correlation,
  edges: Edge[],
  samplesOf: Map<string, number>,
  { method, minSamples }: { method: 'full' | 'plain'; minSamples: number },
): Array<[number, number, number]> {
  const { sid } = tl;
  const constraints: Array<[number, number, number]> = edges.map(e => {
    const a = sid.get(e.service)!;
    const b = sid.get(e.dependsOn)!;
    return [
      a,
      b,
      2 * e.score * samplesOf.get(`${e.service}\u0000${e.dependsOn}`)!,
    ];
  });
  if (method === 'full') {
    corr.pre.forEach((a, b) => {
      const c = corr.count(a, b);
      const p = corr.consistency(a, b);
      if (c >= minSamples && p >= ORDER_CONSISTENCY)
        constraints.push([a, b, p * c]);
    });
  }
  return constraints;
}

/**
 * How long after the start of its boot (its episode) each service typically initializes: orders
 * services the window never saw together (more than maxDelay apart). Failed attempts left out: a
 * service crash-looping until its dependencies are up would seem to start before them.
 */
function typicalOffsets(tl: Timeline): Float64Array {
  const { T, S, initCount } = tl;
  const n = tl.serviceNames.length;
  const N = T.length;
  const offset = new Float64Array(n);
  const attempts = new Int32Array(n);
  for (let i = 0; i < N; i++) attempts[S[i]] += tl.failedAttempt[i];
  for (let i = 0; i < N; i++) {
    if (!tl.failedAttempt[i])
      offset[S[i]] +=
        (T[i] - T[tl.episodeStart[i]]) / (initCount[S[i]] - attempts[S[i]]);
  }
  return offset;
}

/**
 * The half-life weights decay with (real ms), and as warnings name them its setting and, where the
 * user sets one, the point in time's.
 */
interface HalfLife {
  halfLife: number;
  setting: string;
  atSetting?: string;
}

/**
 * The warning of a history with fewer than FEW_SITE_BOOTS whole-site boots: runs of
 * initializations around which most services initialize (restarts of a few in between, however
 * busy, neither join nor split them). Said as what is counted: boots of at least half the
 * services (restarts of one machine at a time never make one; a boot of half the site does).
 * Where there are enough but the half-life leaves fewer than that many boots' worth of weight
 * (a history spanning years), that is said instead: each boot weighs as its weightiest
 * initialization that is no failed attempt, and the boots count as their effective number,
 * (Σw)² / Σw² (Kish's), rounded to whole boots: as many as there are where all weigh alike,
 * about two where the latest boot outweighs the rest.
 */
function fewSiteBoots(
  tl: Timeline,
  kernel: KernelTable,
  method: 'full' | 'plain',
  { halfLife, setting, atSetting }: HalfLife,
): string[] {
  const { T, Wt } = tl;
  let siteBoots = 0;
  let sum = 0;
  let sumOfSquares = 0;
  let bootWeight = 0;
  const addBoot = () => {
    sum += bootWeight;
    sumOfSquares += bootWeight * bootWeight;
    bootWeight = 0;
  };
  for (let i = 0, last = -Infinity; i < T.length; i++) {
    if (tl.isRestart[i]) continue;
    if (T[i] - last > 2 * kernel.maxDelay) {
      if (siteBoots) addBoot();
      siteBoots++;
    }
    if (!tl.failedAttempt[i]) bootWeight = Math.max(bootWeight, Wt[i]);
    last = T[i];
  }
  if (siteBoots) addBoot();
  const weighted =
    sumOfSquares > 0 ? Math.round((sum * sum) / sumOfSquares) : siteBoots;
  // A single service has no dependencies to miss or mistake.
  if (method !== 'full' || tl.serviceNames.length <= 1) return [];
  const consequence =
    'services that merely start earlier pass for dependencies and dependencies that are seldom the last to start go unseen, so the waves may miss or add machine waits';
  if (siteBoots < FEW_SITE_BOOTS) {
    return [
      `only ${counted(siteBoots, 'boot')} of at least half the services in the history (fewer than ${FEW_SITE_BOOTS}): with so few, ${consequence}; declare the critical dependencies in the catalog until more boots are seen`,
    ];
  }
  // With no decay (0 or Infinity), boots weigh apart only by their failed attempts: not said here.
  if (halfLife > 0 && Number.isFinite(halfLife) && weighted < FEW_SITE_BOOTS) {
    return [
      `the ${siteBoots} boots of at least half the services in the history count as about ${weighted} at the half-life of ${formatSeconds(halfLife / 1000)} (fewer than ${FEW_SITE_BOOTS}): those more than a half-life from the point in time of interest ${new Date(tl.at).toISOString()} weigh little, and with so few, ${consequence}; give a longer half-life (${setting})${atSetting ? ` or a point in time of interest among the boots (${atSetting})` : ''}`,
    ];
  }
  return [];
}

/**
 * A dependency the order had to overrule is contradicted by more boots than back it: dropped,
 * into `cycles`, with a warning.
 */
function dropOverruled(
  edges: Edge[],
  serviceOrder: string[],
  samplesOf: Map<string, number>,
  cycles: Cycle[],
  warnings: string[],
): Edge[] {
  const pos = new Map(serviceOrder.map((x, i) => [x, i]));
  const kept: Edge[] = [];
  for (const e of edges) {
    if (pos.get(e.dependsOn)! < pos.get(e.service)!) {
      kept.push(e);
      continue;
    }
    cycles.push({ services: [e.service, e.dependsOn], dropped: e });
    warnings.push(
      `dropped ${e.service} → ${e.dependsOn} (score ${e.score}, ${samplesOf.get(`${e.service}\u0000${e.dependsOn}`)} samples): ${e.dependsOn} waits for ${e.service} by the precedence seen in more boots`,
    );
  }
  return kept;
}

/**
 * Dependencies the boots show that the kernel scores under the threshold: most often a kernel
 * whose peak does not fit how soon these services start after what they wait for. Their median
 * delay where enough are under it (underDelay), how many, and the advice to say where many are.
 */
function kernelFit(
  tl: Timeline,
  exactKernel: Kernel,
  explained: Map<number, Explained> | undefined,
  threshold: number,
): { underDelay?: number; under: number; advice?: string } {
  let underDelay: number | undefined;
  const under = explained
    ? [...explained.values()].filter(x => roundScore(x.score) < threshold)
    : [];
  const medianUnder = () =>
    under.map(x => x.delay).sort((x, y) => x - y)[under.length >> 1];
  if (
    explained &&
    under.length >= 3 &&
    under.length >= FIT_SHARE * explained.size
  )
    underDelay = medianUnder();
  // Said where many are under it (see the caller).
  const advice =
    under.length && under.length >= 0.25 * explained!.size
      ? `${under.length} of ${explained!.size} dependencies the boots show score under the threshold ${threshold}: their services start a median ${delayText(medianUnder() * 60_000 * tl.timeScale)} after them, where the delay kernel (peak ${delayText(exactKernel.peakDelay * tl.timeScale)}) gives them little weight; a kernel that peaks nearer that delay would count them`
      : undefined;
  return { underDelay, under: under.length, advice };
}

/**
 * Nothing found at all: where services start sooner after the one before them than the kernel
 * weighs, or later than its window, an empty result would not say why.
 */
function nothingFound(tl: Timeline, kernel: KernelTable): string[] {
  const { gap, together } = startGaps(tl);
  const real = (ms: number) => delayText(ms * tl.timeScale);
  if (gap === undefined && together) {
    return [
      `no dependency found: the services of each boot start at the same moment, so no delay shows which waits for which`,
    ];
  }
  if (
    gap !== undefined &&
    kernel.at(Math.min(gap, kernel.maxDelay + kernel.step)) < CANDIDATE_FLOOR
  ) {
    const { minDelay, maxDelay } = kernel;
    const where =
      gap <= minDelay
        ? `at or under the minimum delay (${real(minDelay)})`
        : gap >= maxDelay
          ? `at or past the window (${real(maxDelay)})`
          : 'far from the peak';
    return [
      `no dependency found: services start a median ${real(gap)} after the latest other service before them in their boot, ${where} of the delay kernel (peak ${real(kernel.peakDelay)}), which gives that delay little or no weight; if they wait about that long for what they need, give a kernel peak near it (--kernel-peak, recovery.analysis.kernelPeak)`,
    ];
  }
  return [];
}

/**
 * Reported dependencies the waves leave out, said aloud: the backend's boot plan follows every
 * dependency over the threshold, so there the two differ.
 */
function leftOutOfWaves(
  tl: Timeline,
  plan: MachinePlan,
  dependencies: Dependency[],
): string[] {
  const waveOf = new Map(
    plan.waves.flatMap((w, k) => w.map(m => [m, k] as const)),
  );
  const inWaves = (d: Dependency) =>
    machinePairs(tl, tl.sid.get(d.service)!, tl.sid.get(d.dependsOn)!).every(
      ([ma, mb]) => waveOf.get(ma)! > waveOf.get(mb)!,
    );
  const leftOut = dependencies.filter(d => !inWaves(d));
  if (!leftOut.length) return [];
  return [
    `${leftOut.length} reported ${leftOut.length === 1 ? 'dependency' : 'dependencies'} on other machines not in the waves (each would deepen the plan past the longest chain of dependencies, where the plan's surer edges show no machine gathering depth across its services, or close a machine cycle): ${listed(leftOut.map(d => `${d.service} → ${d.dependsOn} (score ${d.score}, ${d.samples} samples)`))}`,
  ];
}

/**
 * 7. Signed correlation matrix: the pair statistic of step 3 (the plain method's score). Each
 * pair once, from its earlier-listed service (r < c), whichever of (r, c) and (c, r) the sweep
 * found: the two cells are each other's negation, ties included (see `correlation`).
 */
function signedMatrix(
  corr: Correlation,
  services: string[],
): AnalysisResult['correlation'] {
  const { ker } = corr;
  const n = services.length;
  const matrix: number[][] = Array.from({ length: n }, () =>
    new Array<number>(n).fill(0),
  );
  ker.forEach((a, b) => {
    // Row by row: a pair the sweep found both ways was set at its first cell (b, a).
    if (a > b && ker.get(b, a) !== 0) return;
    const r = Math.min(a, b);
    const c = Math.max(a, b);
    const rc = roundScore(corr.correlation(r, c));
    const cr = roundScore(corr.correlation(c, r));
    const v = rc >= cr ? rc : -cr;
    matrix[r][c] = v;
    // Not -0, which would print as 0 yet compare apart from it.
    matrix[c][r] = v === 0 ? 0 : -v;
  });
  return { services, matrix };
}

/**
 * The critical path of the waves and of the machine waits, from the machines' boot durations;
 * warns of durations for machines the analysis does not know, and of machines without one.
 */
function addCriticalPath(
  result: AnalysisResult,
  tl: Timeline,
  durations: Record<string, number>,
) {
  const byWaves = criticalPath({ waves: result.waves }, durations);
  result.criticalPath = {
    ...criticalPath(
      { waves: result.waves, edges: result.machineDependencies },
      durations,
    ),
    byWaves,
  };
  // A duration under another name than the logs' (a catalog name, a typo) would count as 0.
  const known = new Set(tl.machineNames);
  const unknown = Object.keys(durations)
    .filter(m => !known.has(m))
    .sort(byName);
  const missing = tl.machineNames.filter(
    m => !Object.prototype.hasOwnProperty.call(durations, m),
  );
  if (unknown.length)
    result.warnings.push(
      `boot durations given for ${counted(unknown.length, 'machine')} the analysis does not know: ${listed(unknown)}`,
    );
  if (missing.length)
    result.warnings.push(
      `no boot duration for ${counted(missing.length, 'machine')}, counted as 0 in the critical path: ${listed(missing)}`,
    );
}

/**
 * The median delay (timeline ms) of initializations after the latest initialization of another
 * service before them (strictly) in their episode, failed attempts left out; and whether any
 * started at the same moment as another of their episode with none before them.
 */
function startGaps(tl: Timeline): { gap?: number; together: boolean } {
  const { T, S, failedAttempt, episodeStart } = tl;
  const gaps: number[] = [];
  let together = false;
  // The latest initialization before the current moment, and the latest of another service than its.
  let last = -1;
  let lastOther = -1;
  for (let g = 0; g < T.length;) {
    let h = g;
    while (h < T.length && T[h] === T[g]) h++;
    for (let i = g; i < h; i++) {
      if (failedAttempt[i]) continue;
      const before = last >= 0 && S[last] !== S[i] ? last : lastOther;
      if (before >= 0 && episodeStart[before] === episodeStart[i])
        gaps.push(T[i] - T[before]);
      else if (!together)
        for (let j = g; j < h; j++)
          if (S[j] !== S[i] && !failedAttempt[j]) together = true;
    }
    for (let i = g; i < h; i++) {
      if (failedAttempt[i]) continue;
      if (last >= 0 && S[last] !== S[i]) lastOther = last;
      last = i;
    }
    g = h;
  }
  return {
    gap: gaps.length ? gaps.sort((x, y) => x - y)[gaps.length >> 1] : undefined,
    together,
  };
}

/**
 * The waves in turn, the machines of each in the order that respects most of the service
 * constraints `[a, after b, weight]` between them (by `pairs`: which machine of a waits for which
 * of b); as listed where none applies.
 */
function orderWithinWaves(
  waves: string[][],
  constraints: Array<[number, number, number]>,
  pairs: (a: number, b: number) => Array<[string, string]>,
): string[] {
  const place = new Map<string, { wave: number; index: number }>();
  waves.forEach((w, wave) =>
    w.forEach((m, index) => place.set(m, { wave, index })),
  );
  const between = waves.map((): Array<[number, number, number]> => []);
  for (const [a, b, w] of constraints) {
    for (const [ma, mb] of pairs(a, b)) {
      const x = place.get(ma)!;
      const y = place.get(mb)!;
      if (x.wave === y.wave) between[x.wave].push([x.index, y.index, w]);
    }
  }
  return waves.flatMap((w, k) =>
    precedenceOrder(
      w.length,
      between[k],
      Int32Array.from(w, (_, i) => i),
    ).map(i => w[i]),
  );
}
