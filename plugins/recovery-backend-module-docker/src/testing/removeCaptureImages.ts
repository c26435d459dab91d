import type Docker from 'dockerode';

/** Removes the capture images a test file tagged (their tags carry its `suffix`) from each engine. */
export async function removeCaptureImages(
  engines: Docker[],
  suffix: string,
): Promise<void> {
  for (const docker of engines) {
    for (const image of await docker.listImages({
      filters: { reference: ['recovery-capture/*'] },
    })) {
      for (const tag of image.RepoTags ?? [])
        if (tag.includes(suffix))
          await docker
            .getImage(tag)
            .remove()
            .catch(() => {});
    }
  }
}
