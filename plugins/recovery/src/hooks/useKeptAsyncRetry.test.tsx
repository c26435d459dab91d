import { act, renderHook, waitFor } from '@testing-library/react';
import { useKeptAsyncRetry } from './useKeptAsyncRetry';

describe('useKeptAsyncRetry', () => {
  function setup(load: (key: string) => Promise<string>) {
    return renderHook(
      ({ entity }: { entity: string }) =>
        useKeptAsyncRetry(() => load(entity), [entity], entity),
      { initialProps: { entity: 'a' } },
    );
  }

  it('keeps the value of the same key when a reload fails', async () => {
    let fail = false;
    const { result } = setup(async key =>
      fail ? Promise.reject(new Error('down')) : `value of ${key}`,
    );
    await waitFor(() => expect(result.current.value).toBe('value of a'));

    fail = true;
    act(() => result.current.retry());
    await waitFor(() => expect(result.current.error?.message).toBe('down'));
    expect(result.current.value).toBe('value of a');
  });

  it('never gives the value of the previous key for a new one, while it loads nor when it fails', async () => {
    let failB: ((e: Error) => void) | undefined;
    const { result, rerender } = setup(key =>
      key === 'a'
        ? Promise.resolve('value of a')
        : new Promise<string>((_resolve, reject) => {
            failB = reject;
          }),
    );
    await waitFor(() => expect(result.current.value).toBe('value of a'));

    // Navigated in place to b's page: while b loads, a's value is not b's.
    rerender({ entity: 'b' });
    await waitFor(() => expect(failB).toBeDefined());
    expect(result.current.loading).toBe(true);
    expect(result.current.value).toBeUndefined();

    act(() => failB!(new Error('b is down')));
    await waitFor(() =>
      expect(result.current.error?.message).toBe('b is down'),
    );
    expect(result.current.value).toBeUndefined();
  });

  it('loads again when a retry came while a load was under way', async () => {
    const pending: Array<(value: string) => void> = [];
    let loads = 0;
    const { result } = setup(
      () =>
        new Promise<string>(resolve => {
          loads++;
          pending.push(resolve);
        }),
    );
    await waitFor(() => expect(loads).toBe(1));
    // Something changed while the first load was on its way: its answer may predate it.
    act(() => result.current.retry());
    act(() => pending[0]('before'));
    await waitFor(() => expect(loads).toBe(2));
    act(() => pending[1]('after'));
    await waitFor(() => expect(result.current.value).toBe('after'));
  });

  it('fails a load left unanswered for a minute, drops its late answer, and loads again on retry', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      // A request whose connection dropped (a VPN, a laptop's sleep) is never answered nor refused.
      let answerLate: ((value: string) => void) | undefined;
      let loads = 0;
      const { result } = setup(key => {
        loads += 1;
        return loads === 1
          ? new Promise<string>(resolve => {
              answerLate = resolve;
            })
          : Promise.resolve(`value of ${key}`);
      });
      await act(() => vi.advanceTimersByTimeAsync(59_000));
      expect(result.current.loading).toBe(true);
      await act(() => vi.advanceTimersByTimeAsync(1_000));
      expect(result.current.loading).toBe(false);
      expect(result.current.error?.message).toBe(
        'No answer from the backend within 1m',
      );

      // Its answer, come at last, is not taken for the value.
      await act(async () => answerLate!('late value'));
      expect(result.current.value).toBeUndefined();
      expect(result.current.error?.message).toBe(
        'No answer from the backend within 1m',
      );

      act(() => result.current.retry());
      await waitFor(() => expect(result.current.value).toBe('value of a'));
      expect(result.current.error).toBeUndefined();
      expect(loads).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('waits as long as told for an answer', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const { result } = renderHook(() =>
        useKeptAsyncRetry(() => new Promise<string>(() => {}), [], 'a', 3_000),
      );
      await act(() => vi.advanceTimersByTimeAsync(3_000));
      expect(result.current.error?.message).toBe(
        'No answer from the backend within 3s',
      );
    } finally {
      vi.useRealTimers();
    }
  });
});
