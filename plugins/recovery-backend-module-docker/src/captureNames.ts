import { createHash } from 'node:crypto';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { dockerTag } from './adapt';

// Names of what a capture makes: its image's tag on the primary engine and the comment it is
// committed with, by which the sweeps find it again; where its files are in the capture store.

/**
 * Repository of the images a capture commits: `recovery-capture/<container>:<captureId>`.
 *
 * @public
 */
export const CAPTURE_REPOSITORY = 'recovery-capture';

/** Where the machine's captured images are tagged, one tag per capture. */
export function captureRepository(machine: MachineLocator) {
  return `${CAPTURE_REPOSITORY}/${imagePathComponent(machine.container)}`;
}

/** An image path component: lowercase alphanumerics joined by `.`, `_`, `__` or dashes. */
const IMAGE_PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * A container's name as an image path component. Container names allow what image references
 * do not (`web-`, `a..b`, `UPPER_-x`): such a name is lowercased, each run of other characters
 * made one dash, the ends trimmed, and a short hash of the name added so two names alike once
 * so changed (`Web`, `web-`) keep apart. A name valid already stays as it is, so the images of
 * captures taken before keep their repository. The container's own name stays in the capture.
 */
export function imagePathComponent(container: string): string {
  if (IMAGE_PATH_COMPONENT.test(container) && container.length <= 100)
    return container;
  const readable = container
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 90)
    .replace(/^-+|-+$/g, '');
  const hash = createHash('sha256').update(container).digest('hex').slice(0, 8);
  return readable ? `${readable}-${hash}` : hash;
}

export function captureImageRef(machine: MachineLocator, captureId: string) {
  return `${captureRepository(machine)}:${dockerTag(captureId)}`;
}

/** The comment a capture's image is committed with: whose capture it is (read back by removeUnrecorded). */
export const captureComment = (captureId: string, machineRef: string) =>
  `recovery capture ${captureId} of ${machineRef}`;
export const CAPTURE_COMMENT = /^recovery capture (\S+) of (\S+)$/;

/**
 * Resolves a capture artifact, a file of the capture store (captures record it relative to the
 * store). One that resolves outside it (`/etc/passwd`, `../x`), as a changed record could name, is
 * refused: the restore would read it, and discard remove it.
 */
export function artifactPath(storeDirectory: string, artifact: string): string {
  const file = resolve(storeDirectory, artifact);
  const inStore = relative(resolve(storeDirectory), file);
  if (!inStore || inStore.split(sep)[0] === '..' || isAbsolute(inStore))
    throw new Error(
      `artifact ${JSON.stringify(artifact)} is not a file of the capture store ${storeDirectory}: refused (a capture keeps its files there; a record naming another was not written by one)`,
    );
  return file;
}
