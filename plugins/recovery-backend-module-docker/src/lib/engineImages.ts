import type Docker from 'dockerode';
import { isStatus } from './dockerStreams';

// Images on an engine: whether one is there, and removing one, or those a lab no longer needs.

export async function hasImage(
  docker: Docker,
  imageId: string,
): Promise<boolean> {
  try {
    await docker.getImage(imageId).inspect();
    return true;
  } catch (e) {
    if (isStatus(e, 404)) return false;
    throw e;
  }
}

/** Removes those of `imageIds` no container on the engine uses any more (another run's, production's). */
export async function removeUnusedImages(
  docker: Docker,
  imageIds: string[],
): Promise<void> {
  if (imageIds.length === 0) return;
  const inUse = new Set(
    (await docker.listContainers({ all: true })).map(c => c.ImageID),
  );
  for (const id of imageIds) {
    if (!inUse.has(id)) await removeImage(docker, id);
  }
}

/**
 * Removes an image by id, or one tag of it (the image too with its last tag). Not forced:
 * Docker refuses (409) while a container uses it, also one created in the meantime.
 */
export async function removeImage(
  docker: Docker,
  idOrRef: string,
  abortSignal?: AbortSignal,
): Promise<void> {
  try {
    await docker.getImage(idOrRef).remove(abortSignal ? { abortSignal } : {});
  } catch (e) {
    if (!isStatus(e, 404, 409)) throw e;
  }
}
