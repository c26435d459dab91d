import type Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';

/** Longest a capture waits for its machine's memory figure before it goes on without one. */
const STATS_WAIT_MS = 2_000;

/**
 * A container's memory as `docker stats` counts it (the CLI's calculateMemUsageUnixNoCache): its
 * cgroup's usage without the inactive file cache it could drop, that cache where it is less than
 * the usage. Undefined where the engine keeps no figures.
 */
export function memoryInUseOf(
  memory: { usage?: number; stats?: Record<string, number> } | undefined,
): number | undefined {
  const { usage, stats = {} } = memory ?? {};
  if (!usage) return undefined;
  // cgroup v1: total_inactive_file, which counts nested cgroups too (its inactive_file does not).
  const v1 = stats.total_inactive_file;
  if (v1 !== undefined && v1 < usage) return usage - v1;
  // cgroup v2: inactive_file.
  const v2 = stats.inactive_file ?? 0;
  return v2 < usage ? usage - v2 : usage;
}

/**
 * The memory a running machine holds, as `docker stats` counts it (its cgroup's usage without
 * the inactive file cache): the first sample of the stats stream, which comes at the engine's
 * next collection (at once where none runs, else within a second; a single answer, even
 * `one-shot`, waits a second more). A capture does not fail for a figure only a run's admission
 * uses: undefined where the engine does not say.
 */
export async function memoryInUse(
  container: Docker.Container,
  logger?: LoggerService,
): Promise<number | undefined> {
  try {
    const stream = (await container.stats({
      stream: true,
      abortSignal: AbortSignal.timeout(STATS_WAIT_MS),
    } as { stream: true })) as AsyncIterable<Buffer>;
    let text = '';
    // One JSON document a line; leaving the loop ends the stream.
    for await (const chunk of stream) {
      text += chunk.toString('utf8');
      if (text.includes('\n')) break;
    }
    const stats = JSON.parse(
      text.slice(0, text.indexOf('\n') + 1 || undefined),
    ) as Docker.ContainerStats;
    return memoryInUseOf(stats.memory_stats);
  } catch (e) {
    logger?.debug(
      `Could not read the memory of container ${container.id}: ${(e as Error).message}`,
    );
    return undefined;
  }
}
