import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import type { EventStore } from '../database/EventStore';

/** Every stored event in time order, gathered from the store's pages (what the analysis reads). */
export async function storedEvents(
  store: EventStore,
): Promise<InitializationEvent[]> {
  const all: InitializationEvent[] = [];
  for await (const page of store.eventPages()) all.push(...page);
  return all;
}
