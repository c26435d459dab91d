import {
  DependencyList,
  useCallback,
  useEffect,
  useRef,
  useState,
} from 'react';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { answerTimeoutMs, answerWithin } from '../utils/answerWithin';

/**
 * `useAsyncRetry` that keeps the last value loaded for `key` when a reload fails: react-use
 * drops the value on error, which would blank a view that was showing good data because one
 * reload did not get through. A value kept for another key (another entity) is not returned.
 * `error` with a `value` means the value is stale. A `retry` asked for while a load is under way
 * loads again once it ends (react-use ignores it): what changed meanwhile, a run that finished
 * during a reload, is not missed. A load left unanswered for `timeoutMs` (a minute unless told,
 * {@link answerTimeoutMs}) fails as a refused one does, so it is reported and retried rather
 * than loading for good; its late answer is dropped.
 */
export function useKeptAsyncRetry<T>(
  fn: () => Promise<T>,
  deps: DependencyList,
  key: string,
  timeoutMs: number = answerTimeoutMs(),
) {
  // Each value carries the key it was loaded for: while a new key loads, react-use still
  // holds the old key's value, which must not be kept (nor shown) as the new key's.
  const state = useAsyncRetry(
    async () => ({ key, value: await answerWithin(fn(), timeoutMs) }),
    [...deps, key, timeoutMs],
  );
  const [last, setLast] = useState<{ key: string; value: T }>();
  useEffect(() => {
    if (state.value !== undefined) setLast(state.value);
  }, [state.value]);
  const retryWanted = useRef(false);
  const { loading, retry: reload } = state;
  useEffect(() => {
    if (!loading && retryWanted.current) {
      retryWanted.current = false;
      reload();
    }
  }, [loading, reload]);
  const retry = useCallback(() => {
    if (loading) retryWanted.current = true;
    else reload();
  }, [loading, reload]);
  const loaded = state.value ?? last;
  const value = loaded?.key === key ? loaded.value : undefined;
  return { ...state, value, retry };
}
