import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import type { LabResources } from '@backstage-recovery/plugin-recovery-node';
import { dockerTag } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { removeImage, removeUnusedImages } from './lib/engineImages';
import { CAPTURE_ID_LABEL, LAB_IMAGE_REPOSITORY } from './labNames';

/**
 * Removes everything labelled with run `runId` from the engine: its machine containers (with
 * their volumes, those they shared too), its lab networks, and the captured images it loaded that
 * nothing else uses.
 */
export async function removeLab(
  docker: Docker,
  runId: string,
): Promise<LabResources> {
  const label = `${RUN_ID_LABEL}=${runId}`;
  const removed: LabResources = { machines: [], networks: [] };
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [label] },
  });
  // Captured images restored by this run: those tagged as loaded for it, and those of its
  // machines (loaded for another run, or by a backend from before the tags).
  const runTag = `:${dockerTag(runId)}`;
  const tagged = await docker.listImages({
    filters: { reference: [`${LAB_IMAGE_REPOSITORY}/*${runTag}`] },
  });
  const images = imagesToRemove(
    tagged.map(i => i.Id),
    containers,
  );
  // One at a time: concurrent removals from one network are where Docker's count of its
  // endpoints has been seen to drift (ENGINE_ENDPOINT_COUNT_DEFECT), for a teardown not on the RTO.
  for (const c of containers) {
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      removed.machines.push((c.Names?.[0] ?? c.Id).replace(/^\//, ''));
    } catch (e) {
      if (!isStatus(e, 404, 409)) throw e;
    }
  }
  const networks = await docker.listNetworks({ filters: { label: [label] } });
  for (const n of networks) {
    await disconnectOthers(docker, n.Id, new Set(containers.map(c => c.Id)));
    if (await removeNetwork(docker, n.Id, n.Name))
      removed.networks.push(n.Name);
  }
  // The run's tags first: an image with tags of two repositories (the run's, and the capture's
  // where an older backend's load kept the archive's name) is not removed by id. Untagged, one
  // no container uses is gone.
  for (const ref of tagged.flatMap(i => i.RepoTags ?? [])) {
    if (ref.startsWith(`${LAB_IMAGE_REPOSITORY}/`) && ref.endsWith(runTag))
      await removeImage(docker, ref);
  }
  await removeUnusedImages(docker, images);
  // Volumes its machines shared (sharedVolumes.ts), once no container of the run holds them.
  for (const v of (await docker.listVolumes({ filters: { label: [label] } }))
    .Volumes ?? []) {
    try {
      await docker.getVolume(v.Name).remove();
      (removed.volumes ??= []).push(v.Name);
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
  }
  removed.volumes?.sort();
  removed.machines.sort();
  removed.networks.sort();
  return removed;
}

/**
 * The images a run restored its machines from: the ids tagged as loaded for it, plus the image of
 * each restored machine container (capture-id label; the probe image is shared, so not it).
 */
function imagesToRemove(
  loaded: Iterable<string> | undefined,
  runContainers: Array<Pick<Docker.ContainerInfo, 'ImageID' | 'Labels'>>,
): string[] {
  const ids = new Set(loaded ?? []);
  for (const c of runContainers) {
    if (c.Labels?.[CAPTURE_ID_LABEL] && c.ImageID) ids.add(c.ImageID);
  }
  return [...ids].sort();
}

/**
 * Said of a network the engine refuses to remove for endpoints it does not list: its stored
 * count of them is off (moby/moby#42119), nothing on the API frees it, a restart of the engine
 * does (it recounts on start).
 */
export const ENGINE_ENDPOINT_COUNT_DEFECT =
  'is held by an endpoint count of the engine that lists no endpoint (a Docker defect, moby/moby#42119; a restart of the engine frees it)';

/** How long a lab network's removal waits for endpoints to leave it, and how often it looks. */
export const NETWORK_REMOVAL = {
  timeoutMs: 30_000,
  firstDelayMs: 250,
  maxDelayMs: 2_000,
};

/**
 * False if it was gone already. A container removal still under way (a teardown racing
 * another) keeps an endpoint on the network for a moment (403/409), and a loaded engine can keep
 * one after its container is gone; a network left so fails every later run that needs its subnet.
 * From the second refusal on, what Docker still lists on it is forced off (the run's containers
 * are removed by then), tried again for up to 30 s.
 */
async function removeNetwork(
  docker: Docker,
  id: string,
  name: string,
): Promise<boolean> {
  const deadline = Date.now() + NETWORK_REMOVAL.timeoutMs;
  let delay = NETWORK_REMOVAL.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await docker.getNetwork(id).remove();
      return true;
    } catch (e) {
      if (isStatus(e, 404)) return false;
      if (!isStatus(e, 403, 409)) throw e;
      if (Date.now() + delay > deadline) {
        const left = (await endpointsOn(docker, id)).map(ep => ep.name);
        throw new Error(
          left.length
            ? `network ${name} still has endpoints ${left.join(', ')} after ${NETWORK_REMOVAL.timeoutMs / 1000} s: ${(e as Error).message}`
            : `network ${name} ${ENGINE_ENDPOINT_COUNT_DEFECT} after ${NETWORK_REMOVAL.timeoutMs / 1000} s: ${(e as Error).message}`,
        );
      }
      if (attempt > 1)
        await disconnect(docker, id, await endpointsOn(docker, id));
    }
    await wait(delay);
    delay = Math.min(delay * 2, NETWORK_REMOVAL.maxDelayMs);
  }
}

const wait = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * The endpoints Docker lists on a network: `id` is the container's, `name` reaches the endpoint
 * also where its container is gone (Docker then keys it by endpoint, and disconnects it by name).
 */
async function endpointsOn(
  docker: Docker,
  networkId: string,
): Promise<Array<{ id: string; name: string }>> {
  try {
    const attached =
      (await docker.getNetwork(networkId).inspect()).Containers ?? {};
    return Object.entries(attached).map(([id, c]) => ({
      id,
      name: (c as { Name?: string }).Name || id,
    }));
  } catch (e) {
    if (isStatus(e, 404)) return [];
    throw e;
  }
}

/** Forces endpoints off a network; failing (gone meanwhile), the removal's next try tells. */
async function disconnect(
  docker: Docker,
  networkId: string,
  endpoints: Array<{ name: string }>,
): Promise<void> {
  for (const { name } of endpoints) {
    await docker
      .getNetwork(networkId)
      .disconnect({ Container: name, Force: true })
      .catch(() => {});
  }
}

/**
 * Disconnects what is still on a lab network once the run's containers are gone: one that is
 * not the run's (someone's debugging container, connected by hand) would keep the network, and
 * so the lab, on the host for good, and every later run there would fail on it. A run
 * container's endpoint is left to its removal (maybe another teardown's) for a first try.
 */
async function disconnectOthers(
  docker: Docker,
  networkId: string,
  runContainers: Set<string>,
): Promise<void> {
  const endpoints = await endpointsOn(docker, networkId);
  await disconnect(
    docker,
    networkId,
    endpoints.filter(e => !runContainers.has(e.id)),
  );
}
