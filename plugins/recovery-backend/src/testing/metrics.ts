import type { MetricsService } from '@backstage/backend-plugin-api/alpha';
import { metricsServiceMock } from '@backstage/backend-test-utils/alpha';
import { Mock } from 'vitest';

type Kind = Exclude<keyof MetricsService, 'createUpDownCounter'>;

/**
 * Backstage's MetricsService mock, and what was recorded on each instrument it made, by name: the
 * calls of its `add`, `record` (value, attributes), or the values its observable callbacks observe.
 */
export function recordedMetrics(metrics = metricsServiceMock.mock()): {
  metrics: ReturnType<typeof metricsServiceMock.mock>;
  /** How many instruments of `name` were made (each is to be made once). */
  made(kind: Kind, name: string): number;
  /** What `add` or `record` of the instrument was called with, in order. */
  calls(kind: Kind, name: string): Array<[number, Record<string, unknown>?]>;
  /** What the instrument's callbacks observe at a collection, as [value, attributes]. */
  collect(name: string): Promise<Array<[number, Record<string, unknown>?]>>;
} {
  const instrument = (kind: Kind, name: string) => {
    const create = metrics[kind] as unknown as Mock;
    const index = create.mock.calls.findIndex(([n]) => n === name);
    if (index < 0) throw new Error(`No ${kind}('${name}') was made`);
    return create.mock.results[index].value;
  };
  return {
    metrics,
    made: (kind, name) =>
      (metrics[kind] as unknown as Mock).mock.calls.filter(([n]) => n === name)
        .length,
    calls: (kind, name) => {
      const made = instrument(kind, name);
      return (made.add ?? made.record).mock.calls;
    },
    collect: async name => {
      const observed: Array<[number, Record<string, unknown>?]> = [];
      const result = {
        observe: (value: number, attributes?: Record<string, unknown>) =>
          observed.push([value, attributes]),
      };
      for (const [callback] of instrument('createObservableGauge', name)
        .addCallback.mock.calls)
        await callback(result);
      return observed;
    },
  };
}
