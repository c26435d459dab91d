import { createHash } from 'node:crypto';
import { dockerName, dockerTag } from './adapt';

// Labels and names of what the hypervisor host creates on the engine: how a run, its teardown
// and the event source tell a lab's machines, networks, images and helpers apart.

/**
 * Catalog ref of the machine a restored container stands for.
 *
 * @public
 */
export const MACHINE_REF_LABEL = 'recovery.backstage-recovery.io/machine-ref';
/** Capture a restored container was made from. */
export const CAPTURE_ID_LABEL = 'recovery.backstage-recovery.io/capture-id';
/** Production network name a lab network emulates. */
export const NETWORK_LABEL = 'recovery.backstage-recovery.io/network';
/** Marks a lab's probe container. */
export const PROBE_LABEL = 'recovery.backstage-recovery.io/probe';

/**
 * Repository of the tags naming the run that loaded a captured image:
 * `recovery-lab/<image digest>:<run id>`. `docker load` cannot label an image, so the tag is how
 * the run's teardown finds it, from any backend and after a restart, also when no machine was
 * created from it (a backend stopped in between). The load itself names the image so.
 */
export const LAB_IMAGE_REPOSITORY = 'recovery-lab';

/** The tag marking image `imageId` as loaded for run `runId`. */
export function labImageRef(runId: string, imageId: string): string {
  return `${LAB_IMAGE_REPOSITORY}/${imageId.replace(/^sha256:/, '')}:${dockerTag(runId)}`;
}

/**
 * The network a lab whose machines captured none gets (all in host network mode): Docker names
 * no user network `host`, so no production network's lab network has its name.
 */
export const HOST_NETWORK = 'host';

/** Name of the lab network emulating production network `network` in run `runId`. */
export function labNetworkName(runId: string, network: string): string {
  return dockerName('rr', runId, network);
}

/** Name of the lab volume of run `runId` its machines share, as they shared `name` on `engine`. */
export function labVolumeName(
  runId: string,
  volume: { engine: string; name: string },
): string {
  return dockerName('rr', runId, 'volume', volume.engine, volume.name);
}

/**
 * Name of the container restoring `machineRef` in run `runId`: unique per machine of the run
 * (two machines may share a hostname, e.g. host-network ones, and a hostname may be `probe`),
 * so the ref's name for people plus a digest of the whole ref. The hostname stays the
 * machine's network identity (hostname and alias), not its container name.
 */
export function machineContainerName(
  runId: string,
  machineRef: string,
): string {
  const digest = createHash('sha256')
    .update(machineRef)
    .digest('hex')
    .slice(0, 8);
  const name = (machineRef.split('/').pop() || 'machine').slice(0, 63);
  return dockerName('rr', runId, name, digest);
}

/**
 * Labels by which an orchestrator finds its containers: `docker compose` (project, service,
 * number), swarm and stacks. On an engine that also runs production, or runs a project of the
 * same name, a lab container keeping them is one of production's to it: `down` removes it, `up`
 * recreates it on production's networks and ports, or scales production's own away.
 */
const ORCHESTRATOR_LABEL_PREFIXES = [
  'com.docker.compose.',
  'com.docker.swarm.',
  'com.docker.stack.',
];

/**
 * The labels a lab container gets from its capture: the orchestrator's emptied, not left out, as
 * the captured image carries them too (`docker commit` keeps the container's labels) and a
 * container gets its image's labels unless it sets them itself.
 */
export function withoutOrchestratorLabels(labels: Record<string, string>): {
  labels: Record<string, string>;
  blanked: string[];
} {
  const out: Record<string, string> = {};
  const blanked: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const orchestratorsOwn = ORCHESTRATOR_LABEL_PREFIXES.some(prefix =>
      key.startsWith(prefix),
    );
    if (orchestratorsOwn) blanked.push(key);
    out[key] = orchestratorsOwn ? '' : value;
  }
  return { labels: out, blanked: blanked.sort() };
}

/** An image reference as repository and tag (none where it names none). */
export function splitRef(ref: string): [string, string | undefined] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash
    ? [ref.slice(0, colon), ref.slice(colon + 1)]
    : [ref, undefined];
}
