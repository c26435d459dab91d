/** Single-peak delay kernels, all normalised to a peak of 1 and 0 outside [minDelay, maxDelay]. */

/**
 * Shape and bounds of the delay kernel. Delays in milliseconds.
 *
 * @public
 */
export interface KernelOptions {
  /** Default `piecewise`. */
  shape?: 'piecewise' | 'gamma' | 'lognormal';
  /** Below this delay the kernel is 0 (too soon to have noticed). Default 60 s. */
  minDelay?: number;
  /** Where the kernel peaks at 1. Default 600 s. */
  peakDelay?: number;
  /** Past this delay the kernel is 0. Default 3600 s. */
  maxDelay?: number;
  /** Gamma shape parameter k (> 1); the scale follows from the peak. Default 3. */
  gammaShape?: number;
  /** Lognormal sigma; mu follows from the peak. Default 0.8. */
  lognormalSigma?: number;
}

/** A kernel: delay (ms) → weight in [0, 1]. */
export type Kernel = ((delay: number) => number) & {
  readonly minDelay: number;
  readonly peakDelay: number;
  readonly maxDelay: number;
};

export const DEFAULT_KERNEL: Required<KernelOptions> = {
  shape: 'piecewise',
  minDelay: 60_000,
  peakDelay: 600_000,
  maxDelay: 3_600_000,
  gammaShape: 3,
  lognormalSigma: 0.8,
};

/**
 * A plain decimal (digits, at most one point, a digit last: `3`, `0.5`, `.5`), else NaN. Number()
 * alone would also take `0x10`, ` 2`, `1e3` or `` (as 0); a sign is no part of it.
 *
 * @public
 */
export function parsePlainDecimal(value: string): number {
  return /^\d*\.?\d+$/.test(value) ? Number(value) : NaN;
}

/**
 * A kernel shape as the CLI's `--kernel-shape` and `recovery.analysis.kernelShape` write it:
 * `piecewise`, `gamma[:k]` or `lognormal[:sigma]`. Throws why it is not one, without the value
 * (the caller names where it came from).
 *
 * @public
 */
export function parseKernelShape(
  value: string,
): Pick<KernelOptions, 'shape' | 'gammaShape' | 'lognormalSigma'> {
  const [shape, parameter, ...rest] = value.split(':');
  const number =
    parameter === undefined ? undefined : parsePlainDecimal(parameter);
  if (rest.length > 0 || Number.isNaN(number))
    throw new Error(
      'expected piecewise, gamma[:k] or lognormal[:sigma], k and sigma plain decimals',
    );
  if (shape === 'piecewise') {
    if (number !== undefined) throw new Error('piecewise takes no parameter');
    return { shape };
  }
  if (shape !== 'gamma' && shape !== 'lognormal')
    throw new Error('expected piecewise, gamma[:k] or lognormal[:sigma]');
  const options: KernelOptions =
    shape === 'gamma'
      ? { shape, gammaShape: number }
      : { shape, lognormalSigma: number };
  createKernel(options); // its range check, with its message
  return options;
}

/** The shortest kernel peak taken: a site of containers that start within a second of what they need. */
export const MIN_KERNEL_PEAK = 1000;

/**
 * How much slower than the real clock the analysis runs (real ms per analysis ms): 1, except for a
 * peak given alone, up to the default kernel's minimum delay (from MIN_KERNEL_PEAK). Such a site
 * boots in seconds (containers); its analysis runs on a clock slowed to the default peak, so that
 * the kernel and every window of the analysis (whole-site boots, failures, knocked-out services)
 * keep their proportions to how fast it boots.
 */
export function timeScaleOf(options: KernelOptions = {}): number {
  const { peakDelay, minDelay, maxDelay } = options;
  if (
    peakDelay === undefined ||
    minDelay !== undefined ||
    maxDelay !== undefined
  )
    return 1;
  return peakDelay >= MIN_KERNEL_PEAK && peakDelay <= DEFAULT_KERNEL.minDelay
    ? peakDelay / DEFAULT_KERNEL.peakDelay
    : 1;
}

/**
 * What is wrong with a kernel peak (ms) given on its own, in words, else undefined: it must lie from
 * MIN_KERNEL_PEAK up to, not including, the default kernel's longest delay.
 *
 * @public
 */
export function kernelPeakProblem(peakDelay: number): string | undefined {
  if (peakDelay >= MIN_KERNEL_PEAK && peakDelay < DEFAULT_KERNEL.maxDelay)
    return undefined;
  return `must be from ${MIN_KERNEL_PEAK / 1000} s up to (not including) ${DEFAULT_KERNEL.maxDelay / 60_000} min`;
}

/**
 * Text of a delay (ms): seconds under a minute, else minutes, with one decimal.
 *
 * @public
 */
export const delayText = (ms: number) =>
  ms < 60_000
    ? `${(ms / 1000).toFixed(1)} s`
    : `${(ms / 60_000).toFixed(1)} min`;

/** Builds a kernel function from options; throws on inconsistent bounds. */
export function createKernel(options: KernelOptions = {}): Kernel {
  const o = { ...DEFAULT_KERNEL, ...stripUndefined(options) };
  const { minDelay: min, peakDelay: peak, maxDelay: max } = o;
  if (!(min >= 0 && min < peak && peak < max && Number.isFinite(max))) {
    throw new Error(
      `kernel bounds must satisfy 0 <= minDelay < peakDelay < maxDelay (got ${min}, ${peak}, ${max})`,
    );
  }
  let shapeFn: (d: number) => number;
  switch (o.shape) {
    case 'piecewise':
      shapeFn = d =>
        d <= peak ? (d - min) / (peak - min) : (max - d) / (max - peak);
      break;
    case 'gamma': {
      const k = o.gammaShape;
      if (!(k > 1 && Number.isFinite(k)))
        throw new Error(
          `kernel gammaShape must be a finite number over 1 (got ${k})`,
        );
      // (d/peak)^(k-1) · e^(-(d-peak)/θ) with θ = peak/(k-1), in logs: the product of the two
      // factors overflows to NaN (0 · ∞) at a large k.
      shapeFn = d => {
        const x = d / peak;
        return Math.exp((k - 1) * (Math.log(x) - x + 1));
      };
      break;
    }
    case 'lognormal': {
      const s = o.lognormalSigma;
      if (!(s > 0 && Number.isFinite(s)))
        throw new Error(
          `kernel lognormalSigma must be a finite number over 0 (got ${s})`,
        );
      // The lognormal density with its mode at the peak (mu = ln peak + s²), divided by its value
      // there, is e^(-(ln(d/peak))² / 2s²); so written, a small sigma gives no 0/0 at the peak.
      shapeFn = d => {
        const z = Math.log(d / peak) / s;
        return Math.exp(-0.5 * z * z);
      };
      break;
    }
    default:
      throw new Error(
        `unknown kernel shape '${String(o.shape)}': piecewise, gamma or lognormal`,
      );
  }
  const fn = ((d: number) => {
    if (!(d >= min && d <= max) || d <= 0) return 0;
    const v = shapeFn(d);
    return v > 1 ? 1 : v > 0 ? v : 0;
  }) as Kernel;
  Object.assign(fn, { minDelay: min, peakDelay: peak, maxDelay: max });
  return fn;
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o))
    if (v !== undefined) (out as any)[k] = v;
  return out;
}
