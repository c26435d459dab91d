import type Docker from 'dockerode';
import { CapturePause } from './capturePause';
import { engineError } from './testing/fakePrimaryEngine';

/** What an engine's inspect of the container answers: its state, or an error (thrown). */
type Look = Docker.ContainerInspectInfo['State'] | Error | 'hangs';

/**
 * A container as CapturePause uses it (pause, unpause, inspect), whose unpause the engine refuses
 * or leaves unanswered as a test says, and whose inspect answers as the engine then has it.
 */
function fakeContainer(unpause: Error | 'hangs', look: Look) {
  const calls = { pause: 0, unpause: 0, inspect: 0 };
  const never = (abortSignal: AbortSignal) =>
    new Promise<never>((_, reject) =>
      abortSignal.addEventListener('abort', () =>
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
      ),
    );
  const container = {
    pause: async () => {
      calls.pause++;
    },
    unpause: async ({ abortSignal }: { abortSignal: AbortSignal }) => {
      calls.unpause++;
      if (unpause === 'hangs') return never(abortSignal);
      throw unpause;
    },
    inspect: async ({ abortSignal }: { abortSignal: AbortSignal }) => {
      calls.inspect++;
      if (look === 'hangs') return never(abortSignal);
      if (look instanceof Error) throw look;
      return { Id: 'c'.repeat(64), State: look };
    },
  };
  return { container: container as unknown as Docker.Container, calls };
}

const state = (
  s: Partial<Docker.ContainerInspectInfo['State']>,
): Docker.ContainerInspectInfo['State'] =>
  ({
    Status: 'paused',
    Running: true,
    Paused: true,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 4242,
    ExitCode: 0,
    Error: '',
    StartedAt: '2026-12-07T12:00:00Z',
    FinishedAt: '0001-01-01T00:00:00Z',
    ...s,
  }) as Docker.ContainerInspectInfo['State'];

// What dockerode throws for the engine's refusals (its message, then the engine's own words).
const notPaused = () =>
  engineError(409, '(HTTP code 409) unexpected - Container 4f1c is not paused');
const stoppedRefused = () =>
  engineError(
    500,
    '(HTTP code 500) server error - cannot resume a stopped container: unknown',
  );
const noSuchContainer = () =>
  engineError(
    404,
    '(HTTP code 404) no such container - No such container: 4f1c',
  );

/** A capture's pause of a container paused by it, then unpaused: what it left. */
async function pausedThenUnpaused(unpause: Error | 'hangs', look: Look) {
  const { container, calls } = fakeContainer(unpause, look);
  const pause = new CapturePause(
    'primary',
    container,
    'resource:default/db-01',
    60_000,
    100,
  );
  await pause.pause();
  expect(pause.leftPaused).toBe(true);
  const outcome = await pause.unpause().then(
    () => 'unpaused' as const,
    (e: Error) => e,
  );
  // Once: a later call (the limit's, the shutdown's) gets the first one's outcome, no new unpause.
  const again = await pause.unpause().then(
    () => 'unpaused' as const,
    (e: Error) => e,
  );
  expect(again).toBe(outcome);
  return { pause, calls, outcome };
}

describe('CapturePause.unpause refused by the engine', () => {
  it('takes a container gone (404) for nothing paused, without looking at it', async () => {
    const { pause, calls, outcome } = await pausedThenUnpaused(
      noSuchContainer(),
      // Were it looked at, it would seem still paused.
      state({}),
    );
    expect(outcome).toBe('unpaused');
    expect(pause.leftPaused).toBe(false);
    expect(pause.removed).toBe(true);
    expect(pause.unpauseFailed.aborted).toBe(false);
    expect(calls).toEqual({ pause: 1, unpause: 1, inspect: 0 });
  });

  it.each([
    [
      'on its way out (docker rm -f waits for the copy to let go of its volumes)',
      notPaused(),
      // Its Paused flag as it was: the removal alone says nothing of it is paused.
      state({ Status: 'removing', Running: false }),
      'removed',
    ],
    [
      'dead',
      stoppedRefused(),
      state({ Status: 'dead', Running: false, Dead: true }),
      'stopped',
    ],
    [
      'stopped by someone else',
      stoppedRefused(),
      state({ Status: 'exited', Running: false, Paused: false, Pid: 0 }),
      'stopped',
    ],
    [
      'unpaused by someone else',
      notPaused(),
      state({ Status: 'running', Paused: false }),
      'unpaused',
    ],
    [
      'removed meanwhile (its look 404)',
      notPaused(),
      noSuchContainer(),
      'removed',
    ],
  ])(
    'takes a container %s for nothing paused: no failure, nothing left paused',
    async (_how, refused, look, why) => {
      const { pause, calls, outcome } = await pausedThenUnpaused(refused, look);
      expect(outcome).toBe('unpaused');
      expect(pause.leftPaused).toBe(false);
      // Only a container gone is said removed: one stopped (dead too) or unpaused by someone else
      // is there, and the capture says what changed under it.
      expect({
        removed: pause.removed,
        changedUnder: pause.changedUnder,
      }).toEqual(
        why === 'removed'
          ? { removed: true, changedUnder: undefined }
          : { removed: false, changedUnder: why },
      );
      expect(pause.unpauseFailed.aborted).toBe(false);
      expect(calls).toEqual({ pause: 1, unpause: 1, inspect: 1 });
    },
  );

  it.each([
    ['still paused', notPaused(), state({})],
    [
      'whose look the engine fails otherwise',
      notPaused(),
      engineError(
        500,
        '(HTTP code 500) server error - context deadline exceeded',
      ),
    ],
    [
      'whose look the engine does not answer',
      notPaused(),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    ],
    ['whose look the engine leaves unanswered', notPaused(), 'hangs' as const],
  ])(
    'fails the unpause of a container %s: its error thrown, production left paused',
    async (_how, refused, look) => {
      const { pause, calls, outcome } = await pausedThenUnpaused(refused, look);
      expect(outcome).toBe(refused);
      expect(pause.leftPaused).toBe(true);
      expect(pause.removed).toBe(false);
      expect(pause.unpauseFailed.aborted).toBe(true);
      expect(calls).toEqual({ pause: 1, unpause: 1, inspect: 1 });
    },
  );

  it.each([
    [
      'its answer was lost (a connection reset)',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    ],
    ['it never answered', 'hangs' as const],
  ])(
    'fails an unpause the engine did not answer (%s), without looking at the container',
    async (_how, unpause) => {
      const { pause, calls, outcome } = await pausedThenUnpaused(
        unpause,
        // Were it looked at, it would seem unpaused: the unpause's own failure is what counts.
        state({ Status: 'running', Paused: false }),
      );
      expect(outcome).toBeInstanceOf(Error);
      if (unpause === 'hangs')
        expect((outcome as Error).message).toBe(
          "Docker engine 'primary' did not answer the unpause within 0.1 s",
        );
      else expect(outcome).toBe(unpause);
      expect(pause.leftPaused).toBe(true);
      expect(pause.removed).toBe(false);
      expect(pause.unpauseFailed.aborted).toBe(true);
      expect(calls).toEqual({ pause: 1, unpause: 1, inspect: 0 });
    },
  );
});
