/**
 * Step 4 of the dependency analysis, per dependent: the stepwise search for the candidates under
 * which its delays after the latest of them are most likely (select.ts).
 */
import type { CandidateEntries, Candidates, Entries } from './candidates';
import type { KernelTable } from './correlate';
import type { Explained } from './select';
import { awaitedMachines, Timeline } from './timeline';

/** Steps of the dependency search refit the model for this many of the best-screened changes. */
export const SCREENED = 3;
/**
 * What a dependency must add to the log-likelihood of its dependent's delays to be selected, in
 * nats per log of the initializations behind it (as in BIC): on another machine, and on the same
 * machine (which cannot lengthen the plan).
 */
const SELECT_GAIN = 1.75;
const LOCAL_GAIN = 0.85;
/** Prior and floor of the dependent's delay sd, and prior weight (in initializations), minutes. */
const PRIOR_SD = 6;
const MIN_SD = 0.5;
const PRIOR_WEIGHT = 1;
/** Share and density (per minute, uniform over an hour) of initializations no dependency explains. */
const BACKGROUND_SHARE = 0.05;
const BACKGROUND_DENSITY = 1 / 60;
const LOG_BACKGROUND = Math.log(BACKGROUND_DENSITY);
/**
 * Shape of the dependent's delay model: a generalized normal with exponent 3, flatter on top and
 * steeper at the edges than a normal (start delays are bounded), with its scale and norm per unit
 * of standard deviation (GAMMA_THIRD is Γ(1/3); Γ(3/3) = 1).
 */
const DELAY_SHAPE = 3;
const GAMMA_THIRD = 2.6789385347077476;
const ALPHA_PER_SD = Math.sqrt(GAMMA_THIRD);
const NORM_PER_SD = DELAY_SHAPE / (2 * ALPHA_PER_SD * GAMMA_THIRD);
/**
 * The delay model's factors that depend on its sd alone (densityScale, densityWidth), worked out
 * once for a loop over many delays under one model.
 */
const densityScale = (sd: number) =>
  ((1 - BACKGROUND_SHARE) * NORM_PER_SD) / sd;
const densityWidth = (sd: number) => sd * ALPHA_PER_SD;
/**
 * Density of the delay model (mean mu, with the factors of its sd) at v (minutes), weighted by the
 * share not in the background.
 */
function densityWith(
  v: number,
  mu: number,
  scale: number,
  width: number,
): number {
  const u = Math.abs(v - mu) / width;
  return scale * Math.exp(-u * u * u);
}
/** What the search for every dependent shares: the candidates, their entries, scratch and the result. */
export interface Selection {
  tl: Timeline;
  kernel: KernelTable;
  cands: Candidates;
  entries: Entries;
  byCand: CandidateEntries;
  mu0: number;
  selected: Uint8Array;
  excluded: Uint8Array;
  screened: Int32Array;
  screenedDelta: Float64Array;
  result: Map<number, Explained>;
}

const BG_DENSITY = BACKGROUND_SHARE * BACKGROUND_DENSITY;

/** A step of the stepwise search: the candidate whose addition or removal pays best, and the model after it. */
interface SearchStep {
  c: number;
  objective: number;
  mu: number;
  sd: number;
  /** Whether it moves any initialization's latest dependency (else the model stays). */
  changed: boolean;
}

/**
 * The search for one dependent A: its initializations with a candidate before them (in local
 * indices x), the delay after the latest selected dependency of each, and the model of that delay.
 */
export class DependentSearch {
  readonly c0: number;
  readonly c1: number;
  readonly inits: Int32Array;
  readonly m: number;
  readonly w: Float64Array;
  /** The delay after the latest selected dependency of each initialization, and which one that is. */
  readonly binding: Float64Array;
  readonly bindBy: Int32Array;
  /** The delay after the latest selected dependency but the binding one: x's delay if that one went. */
  readonly runnerUp: Float64Array;
  readonly removal: Float64Array;
  readonly trial: Float64Array;
  /** What each candidate pays to be selected (nats). */
  readonly cost: Float64Array;
  lpBinding: Float64Array;
  // densityWith at each binding delay under the current model, for fit()'s unchanged delays.
  fBinding: Float64Array;
  fBindingValid = false;
  // `fit()` leaves the density and log-likelihood of each delay under the model it fitted in the
  // arrays it is given: the binding delays' in fBinding/lpBinding, a trial's in trialF/trialLp,
  // the best trial's so far in bestF/bestLp. The trial taken hands its arrays on to the binding
  // delays, which are its delays: each step's screening finds them scored under its model.
  trialF: Float64Array;
  trialLp: Float64Array;
  bestF: Float64Array;
  bestLp: Float64Array;
  // The model of A's delay after its latest selected dependency: densityWith (minutes) mixed with
  // a uniform background over the window. fit() refits it to delays `d`, weighting each by how
  // likely it is not background under the current model, and returns the log-likelihood.
  mu: number;
  sd = PRIOR_SD;
  fitMu: number;
  fitSd: number;

  constructor(
    readonly sel: Selection,
    readonly a: number,
    evidence?: Float64Array,
  ) {
    const { candStart } = sel.cands;
    const { initStart, initsWithEntries } = sel.byCand;
    this.c0 = candStart[a];
    this.c1 = candStart[a + 1];
    this.inits = initsWithEntries.subarray(initStart[a], initStart[a + 1]);
    const m = (this.m = this.inits.length);
    const Wt = sel.tl.Wt;
    this.w = Float64Array.from(this.inits, i => Wt[i]);
    this.binding = new Float64Array(m);
    this.bindBy = new Int32Array(m);
    this.runnerUp = new Float64Array(m);
    this.removal = new Float64Array(this.c1 - this.c0);
    this.trial = new Float64Array(m);
    this.lpBinding = new Float64Array(m);
    this.fBinding = new Float64Array(m);
    this.trialF = new Float64Array(m);
    this.trialLp = new Float64Array(m);
    this.bestF = new Float64Array(m);
    this.bestLp = new Float64Array(m);
    this.mu = sel.mu0;
    this.fitMu = this.mu;
    this.fitSd = this.sd;
    this.cost = this.costs(evidence);
  }

  /**
   * A dependency on another machine constrains the plan (a false one lengthens it), so it
   * must pay more than one on the same machines as its dependent. A replica elsewhere pays the
   * full price too: it may be the first up, so it times like a dependency on another machine.
   */
  costs(evidence?: Float64Array): Float64Array {
    const { tl } = this.sel;
    const { candB } = this.sel.cands;
    const { machinesOf } = tl;
    const { a, c0, c1, m } = this;
    const cost = new Float64Array(c1 - c0);
    for (let c = c0; c < c1; c++) {
      const b = candB[c];
      const local =
        machinesOf[a].size === machinesOf[b].size &&
        awaitedMachines(tl, a, b).size === 0;
      // A replicated candidate is two hypotheses (first replica or all): it pays for the choice.
      const choice = machinesOf[b].size > 1 ? Math.LN2 : 0;
      cost[c - c0] =
        (local ? LOCAL_GAIN : SELECT_GAIN) * Math.log(Math.max(2, m)) +
        choice -
        (evidence ? evidence[c] : 0);
    }
    return cost;
  }

  /** Refits the delay model to delays `d` (fitMu, fitSd) and returns their log-likelihood. */
  fit(d: Float64Array, outF: Float64Array, outLp: Float64Array): number {
    const { m, w, binding, fBinding, fBindingValid, mu, sd } = this;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    const scale = densityScale(sd);
    const width = densityWidth(sd);
    for (let x = 0; x < m; x++) {
      const v = d[x];
      if (v === Infinity) continue;
      const f =
        fBindingValid && v === binding[x]
          ? fBinding[x]
          : densityWith(v, mu, scale, width);
      const r = (w[x] * f) / (f + BG_DENSITY);
      s0 += r;
      s1 += r * v;
      s2 += r * v * v;
    }
    // The prior pulls the mean towards the kernel's peak and keeps the spread from collapsing
    // on few initializations; the spread is measured around the mean, so a delay far from the
    // peak but steady keeps its small spread (and its best explanation).
    const mu0 = this.sel.mu0;
    const fitMu = (this.fitMu =
      (s1 + PRIOR_WEIGHT * mu0) / (s0 + PRIOR_WEIGHT));
    const squares = Math.max(0, s2 - 2 * fitMu * s1 + fitMu * fitMu * s0);
    const fitSd = (this.fitSd = Math.max(
      MIN_SD,
      Math.sqrt(
        (squares + PRIOR_WEIGHT * PRIOR_SD * PRIOR_SD) / (s0 + PRIOR_WEIGHT),
      ),
    ));
    let ll = 0;
    const fitScale = densityScale(fitSd);
    const fitWidth = densityWidth(fitSd);
    for (let x = 0; x < m; x++) {
      const v = d[x];
      if (v === Infinity) {
        outLp[x] = LOG_BACKGROUND;
        ll += w[x] * LOG_BACKGROUND;
      } else {
        outF[x] = densityWith(v, fitMu, fitScale, fitWidth);
        outLp[x] = Math.log(outF[x] + BG_DENSITY);
        ll += w[x] * outLp[x];
      }
    }
    return ll;
  }

  /** Finds initialization x's binding delay, which dependency binds it, and the runner-up delay. */
  rebind(x: number) {
    const { offsets, eCand, eD } = this.sel.entries;
    const { selected } = this.sel;
    const i = this.inits[x];
    let best = Infinity;
    let second = Infinity;
    let by = -1;
    for (let e = offsets[i]; e < offsets[i + 1]; e++) {
      const c = eCand[e];
      if (!selected[c]) continue;
      if (eD[e] < best) {
        second = best;
        best = eD[e];
        by = c;
      } else if (eD[e] < second) second = eD[e];
    }
    this.binding[x] = best;
    this.bindBy[x] = by;
    this.runnerUp[x] = second;
  }

  /**
   * Run the stepwise search from no dependency and from all candidates (several dependencies,
   * each the latest only now and then, pay off together, not one by one); the better end wins.
   */
  search(): number {
    const { c0, c1, m } = this;
    const { selected } = this.sel;
    const fromNone = this.stepwise(() => false);
    const kept = selected.slice(c0, c1);
    const fromAll = this.stepwise(() => true);
    if (!(fromAll > fromNone)) {
      selected.set(kept, c0);
      for (let x = 0; x < m; x++) this.rebind(x);
    }
    return Math.max(fromAll, fromNone);
  }

  /**
   * Stepwise search on the penalised log-likelihood from the candidates `start` selects: take
   * the best addition, else the best removal, until neither pays.
   */
  stepwise(start: (c: number) => boolean): number {
    const { c0, c1 } = this;
    const { selected, excluded } = this.sel;
    const { cStart, cX } = this.sel.byCand;
    let penalty = 0;
    for (let c = c0; c < c1; c++) {
      selected[c] = start(c) && !excluded[c] ? 1 : 0;
      if (selected[c]) penalty += this.cost[c - c0];
    }
    for (let x = 0; x < this.m; x++) this.rebind(x);
    this.mu = this.sel.mu0;
    this.sd = PRIOR_SD;
    let objective =
      this.fit(this.binding, this.fBinding, this.lpBinding) - penalty;
    this.mu = this.fitMu;
    this.sd = this.fitSd;
    for (let step = 0; step < 4 * (c1 - c0); step++) {
      // Screen every addition and removal by its effect under the current model, then refit
      // the model for the most promising few only.
      this.screen();
      this.fBindingValid = true;
      const best = this.bestScreened(objective, penalty);
      this.fBindingValid = false;
      if (best.c < 0) break;
      const bestC = best.c;
      // The change taken moves the binding delays to the best trial's (rebind below finds the
      // same delays): its fit scored them under the model taken. A change that moved none keeps
      // the model and the scores.
      if (best.changed) {
        [this.fBinding, this.bestF] = [this.bestF, this.fBinding];
        [this.lpBinding, this.bestLp] = [this.bestLp, this.lpBinding];
      }
      penalty += selected[bestC]
        ? -this.cost[bestC - c0]
        : this.cost[bestC - c0];
      selected[bestC] ^= 1;
      for (let k = cStart[bestC]; k < cStart[bestC + 1]; k++)
        this.rebind(cX[k]);
      objective = best.objective;
      this.mu = best.mu;
      this.sd = best.sd;
    }
    return objective;
  }

  /** Keeps the SCREENED best changes (ties: lower index), in order, by their effect under the current model. */
  screen() {
    const { c0, c1, m, w, bindBy, runnerUp, lpBinding, binding, removal, mu } =
      this;
    const { selected, excluded, screened, screenedDelta } = this.sel;
    const { cStart, cX, cDelay } = this.sel.byCand;
    const scale = densityScale(this.sd);
    const width = densityWidth(this.sd);
    const lp = (v: number) => {
      if (v === Infinity) return LOG_BACKGROUND;
      return Math.log(densityWith(v, mu, scale, width) + BG_DENSITY);
    };
    // What removing each selected dependency changes, over the initializations it binds (added
    // in time order, as a loop over its own entries would).
    removal.fill(0);
    for (let x = 0; x < m; x++) {
      if (bindBy[x] >= 0)
        removal[bindBy[x] - c0] += w[x] * (lp(runnerUp[x]) - lpBinding[x]);
    }
    screened.fill(-1);
    for (let c = c0; c < c1; c++) {
      if (excluded[c]) continue;
      let delta = 0;
      if (selected[c]) {
        delta = removal[c - c0] + this.cost[c - c0];
      } else {
        for (let k = cStart[c]; k < cStart[c + 1]; k++) {
          const x = cX[k];
          if (cDelay[k] < binding[x])
            delta += w[x] * (lp(cDelay[k]) - lpBinding[x]);
        }
        delta -= this.cost[c - c0];
      }
      let j = SCREENED;
      while (j > 0 && (screened[j - 1] < 0 || delta > screenedDelta[j - 1]))
        j--;
      if (j < SCREENED) {
        for (let q = SCREENED - 1; q > j; q--) {
          screened[q] = screened[q - 1];
          screenedDelta[q] = screenedDelta[q - 1];
        }
        screened[j] = c;
        screenedDelta[j] = delta;
      }
    }
  }

  /** Refits the model for each screened change; the one that pays best, else c = -1. */
  bestScreened(objective: number, penalty: number): SearchStep {
    const { c0, trial, binding, bindBy, runnerUp } = this;
    const { selected, screened } = this.sel;
    const { cStart, cX, cDelay } = this.sel.byCand;
    const best: SearchStep = {
      c: -1,
      objective,
      mu: this.mu,
      sd: this.sd,
      changed: false,
    };
    for (let q = 0; q < SCREENED; q++) {
      const c = screened[q];
      if (c < 0) break;
      trial.set(binding);
      let changed = false;
      if (selected[c]) {
        for (let k = cStart[c]; k < cStart[c + 1]; k++) {
          const x = cX[k];
          if (bindBy[x] === c) {
            trial[x] = runnerUp[x];
            changed = true;
          }
        }
      } else {
        for (let k = cStart[c]; k < cStart[c + 1]; k++) {
          const x = cX[k];
          if (cDelay[k] < trial[x]) {
            trial[x] = cDelay[k];
            changed = true;
          }
        }
      }
      // A change that moves no initialization's latest dependency leaves the fit as it is.
      const ll = changed
        ? this.fit(trial, this.trialF, this.trialLp)
        : objective + penalty;
      const o =
        ll - penalty + (selected[c] ? this.cost[c - c0] : -this.cost[c - c0]);
      if (o > best.objective + 1e-9) {
        best.objective = o;
        best.c = c;
        best.mu = changed ? this.fitMu : this.mu;
        best.sd = changed ? this.fitSd : this.sd;
        best.changed = changed;
        if (changed) {
          [this.bestF, this.trialF] = [this.trialF, this.bestF];
          [this.bestLp, this.trialLp] = [this.trialLp, this.bestLp];
        }
      }
    }
    return best;
  }

  /**
   * For the plan: how much worse the explanation is without the candidates on each machine the
   * plan would await for a selected dependency (a look-alike there costs a longer recovery),
   * searched from the selection without them. Leaves the selection as it found it.
   */
  machineMargins(objective: number): Map<string, number> {
    const { a, c0, c1, m } = this;
    const { tl, selected, excluded } = this.sel;
    const { candB } = this.sel.cands;
    const margins = new Map<string, number>();
    const chosen = selected.slice(c0, c1);
    for (let c = c0; c < c1; c++) {
      if (!chosen[c - c0]) continue;
      for (const mb of awaitedMachines(tl, a, candB[c])) {
        if (margins.has(mb)) continue;
        for (let c2 = c0; c2 < c1; c2++)
          excluded[c2] = tl.machinesOf[candB[c2]].has(mb) ? 1 : 0;
        margins.set(mb, objective - this.stepwise(c2 => chosen[c2 - c0] === 1));
        excluded.fill(0, c0, c1);
      }
    }
    selected.set(chosen, c0);
    for (let x = 0; x < m; x++) this.rebind(x);
    return margins;
  }

  /**
   * Records each selected dependency in the result, scored by the kernel correlation over the
   * initializations it explains, and clears the selection.
   */
  record(margins: Map<string, number>) {
    const { a, c0, c1, w, bindBy } = this;
    const { tl, kernel, selected, result } = this.sel;
    const { candB } = this.sel.cands;
    const { cStart, cX, cDelay, cInit, imputed } = this.sel.byCand;
    const n = tl.serviceNames.length;
    let sw = 0;
    let swk = 0;
    let swd = 0;
    let count = 0;
    let restarts = 0;
    for (let c = c0; c < c1; c++) {
      if (selected[c]) {
        for (let k = cStart[c]; k < cStart[c + 1]; k++) {
          const x = cX[k];
          // An imputed delay explains, but is no sample of the dependency's timing.
          if (bindBy[x] !== c || imputed[k]) continue;
          sw += w[x];
          swk += w[x] * kernel.at(cDelay[k] * 60_000);
          swd += w[x] * cDelay[k];
          count++;
          restarts += tl.isRestart[cInit[k]];
        }
        selected[c] = 0;
      }
      // A replicated service's two candidates (first replica up, all) are adjacent: one dependency.
      if (c + 1 < c1 && candB[c + 1] === candB[c]) continue;
      if (sw > 0) {
        let margin = Infinity;
        for (const mb of awaitedMachines(tl, a, candB[c]))
          margin = Math.min(margin, margins.get(mb) ?? Infinity);
        result.set(a * n + candB[c], {
          score: swk / sw,
          samples: count,
          restarts,
          delay: swd / sw,
          margin,
        });
      }
      sw = swk = swd = count = restarts = 0;
    }
  }
}
