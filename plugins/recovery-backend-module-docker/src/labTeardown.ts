import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import type { LabResources } from '@backstage-recovery/plugin-recovery-node';
import { dockerTag } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { removeImage, removeUnusedImages } from './lib/engineImages';
import { CAPTURE_ID_LABEL, LAB_IMAGE_REPOSITORY } from './labNames';

/**
 * Removes everything labelled with run `runId` from the engine: its machine containers (with
 * their volumes), its lab networks, and the captured images it loaded that nothing else uses.
 */
export async function removeLab(docker: Docker, runId: string): Promise<LabResources> {
  const label = `${RUN_ID_LABEL}=${runId}`;
  const removed: LabResources = { machines: [], networks: [] };
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  // Captured images restored by this run: those tagged as loaded for it, and those of its
  // machines (loaded for another run, or by a backend from before the tags).
  const runTag = `:${dockerTag(runId)}`;
  const tagged = await docker.listImages({ filters: { reference: [`${LAB_IMAGE_REPOSITORY}/*${runTag}`] } });
  const images = imagesToRemove(tagged.map(i => i.Id), containers);
  await Promise.all(
    containers.map(async c => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
        removed.machines.push((c.Names?.[0] ?? c.Id).replace(/^\//, ''));
      } catch (e) {
        if (!isStatus(e, 404, 409)) throw e;
      }
    }),
  );
  const networks = await docker.listNetworks({ filters: { label: [label] } });
  for (const n of networks) {
    await disconnectOthers(docker, n.Id, new Set(containers.map(c => c.Id)));
    if (await removeNetwork(docker, n.Id)) removed.networks.push(n.Name);
  }
  // The run's tags first: an image with tags of two repositories (the run's, and the capture's
  // where an older backend's load kept the archive's name) is not removed by id. Untagged, one
  // no container uses is gone.
  for (const ref of tagged.flatMap(i => i.RepoTags ?? [])) {
    if (ref.startsWith(`${LAB_IMAGE_REPOSITORY}/`) && ref.endsWith(runTag)) await removeImage(docker, ref);
  }
  await removeUnusedImages(docker, images);
  removed.machines.sort();
  removed.networks.sort();
  return removed;
}

/**
 * The images a run restored its machines from: the ids tagged as loaded for it, plus the image of
 * each restored machine container (capture-id label; the probe image is shared, so not it).
 */
export function imagesToRemove(
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
 * False if it was gone already. A container removal still under way (a teardown racing
 * another) keeps an endpoint on the network for a moment (403/409): tried again, for 10 s.
 */
async function removeNetwork(docker: Docker, id: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await docker.getNetwork(id).remove();
      return true;
    } catch (e) {
      if (isStatus(e, 404)) return false;
      if (!isStatus(e, 403, 409) || attempt === 20) throw e;
    }
    await new Promise(resolve => setTimeout(resolve, 500));
  }
}

/**
 * Disconnects what is still on a lab network once the run's containers are gone: one that is
 * not the run's (someone's debugging container, connected by hand) would keep the network, and
 * so the lab, on the host for good, and every later run there would fail on it.
 */
async function disconnectOthers(docker: Docker, networkId: string, runContainers: Set<string>): Promise<void> {
  let attached: string[];
  try {
    attached = Object.keys((await docker.getNetwork(networkId).inspect()).Containers ?? {});
  } catch (e) {
    if (isStatus(e, 404)) return;
    throw e;
  }
  for (const container of attached) {
    if (runContainers.has(container)) continue; // its removal (maybe another teardown's) frees it
    // Failing (gone meanwhile), the removal below still waits for its endpoint to go.
    await docker
      .getNetwork(networkId)
      .disconnect({ Container: container, Force: true })
      .catch(() => {});
  }
}
