import { DependencyList, useEffect, useState } from 'react';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';

/**
 * `useAsyncRetry` that keeps the last value loaded for `key` when a reload fails: react-use
 * drops the value on error, which would blank a view that was showing good data because one
 * reload did not get through. A value kept for another key (another entity) is not returned.
 * `error` with a `value` means the value is stale.
 */
export function useKeptAsyncRetry<T>(
  fn: () => Promise<T>,
  deps: DependencyList,
  key: string,
) {
  const state = useAsyncRetry(fn, deps);
  const [last, setLast] = useState<{ key: string; value: T }>();
  useEffect(() => {
    if (state.value !== undefined) setLast({ key, value: state.value });
  }, [state.value, key]);
  const value = state.value ?? (last?.key === key ? last.value : undefined);
  return { ...state, value };
}
