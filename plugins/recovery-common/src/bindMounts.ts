/**
 * The adaptation a capture records where it drops a bind mount: what the host path holds is the
 * host's, not the machine's, so no capture carries it and every restore has the mount point empty.
 *
 * @public
 */
export function bindMountDropped(hostPath: string, mountPoint: string): string {
  return `bind mount of host path ${hostPath} at ${mountPoint} dropped`;
}

const DROPPED = /^bind mount of host path (.+?) at (.+) dropped$/;

/**
 * The bind mounts a capture dropped, read from its adaptations (bindMountDropped): each host path
 * and where the machine had it mounted.
 *
 * @public
 */
export function droppedBindMounts(
  adaptations: readonly string[],
): Array<{ hostPath: string; mountPoint: string }> {
  return adaptations.flatMap(adaptation => {
    const m = DROPPED.exec(adaptation);
    return m ? [{ hostPath: m[1], mountPoint: m[2] }] : [];
  });
}
