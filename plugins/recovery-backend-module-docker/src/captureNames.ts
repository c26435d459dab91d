import { isAbsolute, join } from 'node:path';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { dockerName, dockerTag } from './adapt';

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
  return `${CAPTURE_REPOSITORY}/${dockerName(machine.container).toLowerCase()}`;
}

export function captureImageRef(machine: MachineLocator, captureId: string) {
  return `${captureRepository(machine)}:${dockerTag(captureId)}`;
}

/** The comment a capture's image is committed with: whose capture it is (read back by removeUnrecorded). */
export const captureComment = (captureId: string, machineRef: string) =>
  `recovery capture ${captureId} of ${machineRef}`;
export const CAPTURE_COMMENT = /^recovery capture (\S+) of (\S+)$/;

/** Resolves a capture artifact (relative to the capture store, or absolute). */
export function artifactPath(storeDirectory: string, artifact: string): string {
  return isAbsolute(artifact) ? artifact : join(storeDirectory, artifact);
}
