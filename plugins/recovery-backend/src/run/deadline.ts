import { MAX_TIMER_MS } from '@backstage-recovery/plugin-recovery-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { MachineFailure } from './errors';

/** Marks the failure withDeadline throws because its step never settled: how long it was given (ms). */
const UNSETTLED = Symbol('the step did not settle by its deadline');

/**
 * How long the step whose failure `error` is went unanswered, where withDeadline failed it because
 * it had not settled by its deadline (marked, whatever its wording); undefined for a failure of
 * the step's own. A step given little time (what was left of a machine's budget, a probe in flight
 * at its end) says nothing of its engine: the caller judges by how long.
 */
export const unansweredForMs = (error: unknown): number | undefined =>
  typeof error === 'object' && error !== null
    ? (error as { [UNSETTLED]?: number })[UNSETTLED]
    : undefined;

/** For a step that must still run while the backend shuts down (a teardown), under its own deadline only. */
export const NEVER_ABORTED = new AbortController().signal;

/**
 * Waits for one step of the engine, at most `ms`, and no longer than the run is driven.
 * What the step still creates after that is debris of a failed run whose lab may already be
 * gone: `removeLate` removes it when the step finally settles.
 */
export async function withDeadline<T>(
  /**
   * The step, called here: a host that throws instead of returning a rejected promise (one not
   * written as async functions) fails the step as one that rejects, under the run's handling.
   */
  call: () => Promise<T>,
  ms: number,
  /** The step named in the failure, or the failure itself when the step words it. */
  step: string | (() => MachineFailure),
  signal: AbortSignal,
  removeLate: () => Promise<unknown>,
): Promise<T> {
  const done = new AbortController();
  let settled = false;
  let work: Promise<T> | undefined;
  try {
    signal.throwIfAborted();
    work = new Promise<T>(resolve => resolve(call()));
    return await Promise.race([
      work.finally(() => {
        settled = true;
      }),
      // Node fires a longer timer after 1 ms: a deadline of weeks (a timeout set to "never") is as good as this one.
      sleep(Math.min(ms, MAX_TIMER_MS), undefined, {
        signal: AbortSignal.any([signal, done.signal]),
      }).then(() => {
        const failure: Error =
          typeof step === 'string'
            ? new MachineFailure(`${step} did not finish within ${ms / 1000} s`)
            : step();
        throw Object.assign(failure, { [UNSETTLED]: ms });
      }),
    ]);
  } finally {
    done.abort();
    // A late step that fails may have created something first (a loaded image, a container).
    if (work && !settled) work.then(removeLate, removeLate).catch(() => {});
  }
}

/**
 * What a run's steps create after their deadline (withDeadline's `removeLate`). While the run is
 * still driven (its lab still in use, its failure still being recorded) its removal waits for
 * `settle`, at the run's end; after that it goes as each late step settles.
 */
export class LateDebris {
  private driven = true;
  private left = false;

  /** `remove`: removes everything the run created late (nothing, for what must stay). */
  constructor(private readonly remove: () => Promise<unknown>) {}

  readonly removeLate = (): Promise<unknown> => {
    if (this.driven) this.left = true;
    return this.driven ? Promise.resolve() : this.remove();
  };

  /** The run is driven no more: what steps left late so far goes now. */
  async settle(): Promise<void> {
    this.driven = false;
    if (this.left) await this.remove();
  }
}
