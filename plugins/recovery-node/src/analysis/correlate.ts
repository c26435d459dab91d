/**
 * Step 3 of the dependency analysis: pair statistics of the initializations (kernel
 * correlation, co-occurrence, precedence), in one sweep over the timeline.
 */
import type { Kernel } from './kernel';
import type { Timeline } from './timeline';

/**
 * Per-pair accumulators, dense for up to a few thousand services, sparse beyond.
 */
export interface PairStore {
  add(a: number, b: number, v: number): void;
  get(a: number, b: number): number;
  forEach(fn: (a: number, b: number, v: number) => void): void;
}

/** The sweep's accumulators, by their place in a dense cell. */
const BACK = 0;
const N_BACK = 1;
const REV = 2;
const KER = 3;
const PRE = 4;
const FIELDS = 5;

/**
 * The dense accumulators of all pairs, interleaved: cell (a, b) holds its FIELDS sums side by side
 * (row-major, n × n cells), so that an update of a pair touches one cache line, not one per
 * statistic.
 */
function denseCells(n: number): Float64Array {
  return new Float64Array(n * n * FIELDS);
}

/** One statistic of the dense cells. */
function denseField(cells: Float64Array, n: number, field: number): PairStore {
  return {
    add: (a, b, v) => {
      cells[(a * n + b) * FIELDS + field] += v;
    },
    get: (a, b) => cells[(a * n + b) * FIELDS + field],
    forEach: fn => {
      for (let a = 0, at = field; a < n; a++) {
        for (let b = 0; b < n; b++, at += FIELDS) {
          const v = cells[at];
          if (v !== 0) fn(a, b, v);
        }
      }
    },
  };
}

/** Slots of the sparse cells per chunk: chunks are added, never copied, as pairs appear. */
const CHUNK = 1 << 16;

/**
 * The accumulators of the pairs seen, for sites past MAX_DENSE: a slot per pair, holding its
 * FIELDS sums side by side as a dense cell does, in chunks. Each row has its own Map of slots:
 * one Map would outgrow the 2^24 entries a Map holds (5,000 services in two boots in opposite
 * orders make 25 million pairs), and one Map per statistic took five lookups a pair and 4 GB.
 */
class SparseCells {
  private readonly rows: Array<Map<number, number>>;
  private readonly chunks: Float64Array[] = [];
  private size = 0;
  constructor(private readonly n: number) {
    this.rows = Array.from({ length: n }, () => new Map());
  }
  /** The pair's cell: its chunk and the index of its first field there; created where absent. */
  cell(a: number, b: number): [Float64Array, number] {
    const row = this.rows[a];
    let slot = row.get(b);
    if (slot === undefined) {
      slot = this.size++;
      row.set(b, slot);
      if (slot % CHUNK === 0)
        this.chunks.push(new Float64Array(CHUNK * FIELDS));
    }
    return [this.chunks[Math.floor(slot / CHUNK)], (slot % CHUNK) * FIELDS];
  }
  field(field: number): PairStore {
    return {
      add: (a, b, v) => {
        const [chunk, at] = this.cell(a, b);
        chunk[at + field] += v;
      },
      get: (a, b) => {
        const slot = this.rows[a].get(b);
        return slot === undefined
          ? 0
          : this.chunks[Math.floor(slot / CHUNK)][
              (slot % CHUNK) * FIELDS + field
            ];
      },
      // In the dense cells' order, and as they do, without the pairs whose sum is 0.
      forEach: fn => {
        for (let a = 0; a < this.n; a++) {
          const row = this.rows[a];
          for (const b of [...row.keys()].sort((x, y) => x - y)) {
            const slot = row.get(b)!;
            const v =
              this.chunks[Math.floor(slot / CHUNK)][
                (slot % CHUNK) * FIELDS + field
              ];
            if (v !== 0) fn(a, b, v);
          }
        }
      },
    };
  }
}

/** Dense for up to this many services (FIELDS × 8 bytes a pair: 360 MB at 3000). */
const MAX_DENSE = 3000;
/**
 * Past it too where the window holds this share of all pairs or more: a slot and its Map entry
 * cost more than twice a dense cell, and every lookup hashes (5,000 services in one boot took 89 s
 * and 2.3 GB sparse).
 */
const DENSE_SHARE = 0.45;

/**
 * Whether the window pairs so many initializations that dense cells cost less: the pairs it
 * holds, counted with repeats (no fewer than the distinct pairs, so this leans to dense), reach
 * DENSE_SHARE of all.
 */
function pairsFillCells(T: Float64Array, n: number, maxDelay: number): boolean {
  const enough = DENSE_SHARE * n * n;
  let pairs = 0;
  for (let i = 0, lo = 0; i < T.length && pairs < enough; i++) {
    while (T[i] - T[lo] > maxDelay) lo++;
    pairs += i - lo;
  }
  return pairs >= enough;
}

/**
 * The tabulated kernel at delay d (ms, non-negative): the nearest entry of a table with one entry
 * every 1 / perStep ms. Multiplying and truncating is markedly faster than Math.round(d / step)
 * in the correlation sweep.
 */
const kernelAt = (table: Float64Array, perStep: number, d: number) =>
  table[(d * perStep + 0.5) | 0];

/** The kernel tabulated every `step` ms, for the hot loops. */
export interface KernelTable {
  table: Float64Array;
  step: number;
  minDelay: number;
  peakDelay: number;
  maxDelay: number;
  /** The kernel at delay d (ms, non-negative), from the table. */
  at(d: number): number;
}

/** Tabulates at 100 ms resolution (deterministic, error < 2e-4 for the default kernel). */
export function tabulateKernel(kernel: Kernel): KernelTable {
  const step = 100;
  const table = new Float64Array(Math.floor(kernel.maxDelay / step) + 2);
  for (let q = 0; q < table.length; q++) table[q] = kernel(q * step);
  const { minDelay, peakDelay, maxDelay } = kernel;
  return {
    table,
    step,
    minDelay,
    peakDelay,
    maxDelay,
    at: d => kernelAt(table, 1 / step, d),
  };
}

/**
 * Pair statistics of the time-sorted initializations. Every update goes to the row of the later
 * initialization's service (A), about the service B that initialized before it:
 * - ker[A,B]: Σ over A's inits of w · best kernel(B before A)
 * - back[A,B]: Σ over A's inits of w where B initialized within [0, max] before
 * - pre[A,B]: Σ over A's inits of w where B initialized within [min, max] before (precedence)
 * - nBack: back as a count
 * - rev[B,A]: Σ over A's inits of the weight of the latest B init before it (in the window): B's
 *   initializations with A after them, seen from A's side; only where A's previous init is more
 *   than the window before that B init (else A was there already, and this A init is a later
 *   boot's, e.g. a machine rebooted again within the hour)
 * - Wsum[A]: Σ of the weights of A's inits.
 */
export interface Correlation {
  ker: PairStore;
  pre: PairStore;
  /**
   * Step 3's sequential correlation: the weighted share of A's initializations that find one of
   * B shortly before them, each weighed by the kernel of the delay (the plain method's score).
   */
  correlation(a: number, b: number): number;
  /** Co-occurrence of A with B around it (either side), with the weights of A's initializations. */
  co(a: number, b: number): number;
  /** Initializations of either with the other shortly before. */
  count(a: number, b: number): number;
  /**
   * Kernel correlation over A's initializations where B initialized around it (an A restarting
   * alone, e.g. its own machine rebooting, says nothing about B).
   */
  cond(a: number, b: number): number;
  /**
   * Precedence consistency: share of A's initializations with B around where B came first (by at
   * least the minimum delay). Independent services start in either order.
   */
  consistency(a: number, b: number): number;
}

/** Step 3 of the analysis: the pair statistics, in one backward sweep over the timeline. */
export function correlate(tl: Timeline, k: KernelTable): Correlation {
  const { ker, back, pre, nBack, rev, Wsum } = sweep(
    tl.T,
    tl.S,
    tl.Wt,
    tl.failedAttempt,
    tl.svcStart,
    tl.svcInits,
    tl.serviceNames.length,
    k.minDelay,
    k.maxDelay,
    k.table,
    k.step,
  );
  const co = (a: number, b: number) => back.get(a, b) + rev.get(b, a);
  return {
    ker,
    pre,
    correlation: (a, b) => {
      const v = ker.get(a, b);
      return v > 0 ? v / Wsum[a] : 0;
    },
    co,
    count: (a, b) => nBack.get(a, b) + nBack.get(b, a),
    cond: (a, b) => {
      const v = ker.get(a, b);
      return v > 0 ? v / co(a, b) : 0;
    },
    consistency: (a, b) => {
      const c = co(a, b);
      return c > 0 ? pre.get(a, b) / c : 0;
    },
  };
}

/**
 * The sweep on its own, so that its hot loop works on locals; only pairs within the window cost
 * anything. Each initialization's updates go to its own service's rows only, so the sweep runs
 * service by service (each through its initializations in time order): the rows stay in the cache
 * while the initializations of one service update them, where going through the timeline in time
 * order fetched another service's rows from memory at every initialization (the matrices of a
 * thousand services outgrow the cache). Each cell still adds its updates in time order: the sums
 * are the same to the bit.
 */
function sweep(
  T: Float64Array,
  S: Int32Array,
  Wt: Float64Array,
  failedAttempt: Uint8Array,
  svcStart: Int32Array,
  svcInits: Int32Array,
  n: number,
  minDelay: number,
  maxDelay: number,
  table: Float64Array,
  step: number,
) {
  const perStep = 1 / step;
  const cells =
    n <= MAX_DENSE || pairsFillCells(T, n, maxDelay)
      ? denseCells(n)
      : undefined;
  const sparse = cells ? undefined : new SparseCells(n);
  const [back, nBack, rev, ker, pre] = [BACK, N_BACK, REV, KER, PRE].map(f =>
    cells ? denseField(cells, n, f) : sparse!.field(f),
  );
  // revW[b]: what the latest b init before the current one adds to rev.
  const revW = new Float64Array(n);
  const Wsum = new Float64Array(n);
  const stamp = new Int32Array(n).fill(-1);
  const best = new Float64Array(n);
  const touched = new Int32Array(n);
  for (let a = 0; a < n; a++) {
    // The time of a's previous initialization (failed attempts aside).
    let prevT = -Infinity;
    for (let p = svcStart[a]; p < svcStart[a + 1]; p++) {
      const i = svcInits[p];
      const t = T[i];
      const w = Wt[i];
      Wsum[a] += w;
      // A failed attempt counts in its service's weight (a start nothing came of), in no pair: it
      // neither follows nor precedes anything as an initialization would.
      if (failedAttempt[i]) continue;
      let nt = 0;
      for (let j = i - 1; j >= 0; j--) {
        const d = t - T[j];
        if (d > maxDelay) break;
        const b = S[j];
        if (b === a || failedAttempt[j]) continue;
        const k = d >= minDelay ? kernelAt(table, perStep, d) : 0;
        if (stamp[b] !== i) {
          stamp[b] = i;
          best[b] = k;
          revW[b] = prevT < T[j] - maxDelay ? Wt[j] : 0;
          touched[nt++] = b;
        } else if (k > best[b]) best[b] = k;
      }
      if (cells) {
        const row = a * n;
        for (let q = 0; q < nt; q++) {
          const b = touched[q];
          const at = (row + b) * FIELDS;
          cells[at + BACK] += w;
          cells[at + N_BACK] += 1;
          cells[at + REV] += revW[b];
          const k = best[b];
          if (k > 0) {
            cells[at + KER] += w * k;
            cells[at + PRE] += w;
          }
        }
      } else {
        for (let q = 0; q < nt; q++) {
          const b = touched[q];
          const [chunk, at] = sparse!.cell(a, b);
          chunk[at + BACK] += w;
          chunk[at + N_BACK] += 1;
          chunk[at + REV] += revW[b];
          const k = best[b];
          if (k > 0) {
            chunk[at + KER] += w * k;
            chunk[at + PRE] += w;
          }
        }
      }
      prevT = t;
    }
  }
  return { ker, back, pre, nBack, rev, Wsum };
}
