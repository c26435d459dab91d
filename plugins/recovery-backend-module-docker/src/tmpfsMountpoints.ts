import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import type { RestorableCapture } from '@backstage-recovery/plugin-recovery-node';
import { isStatus } from './lib/dockerStreams';
import { hasImage } from './lib/engineImages';
import { createTar } from './lib/tar';
import { labImageRef, splitRef } from './labNames';

/** Docker's mode of a tmpfs whose options name none. */
const DEFAULT_TMPFS_MODE = 0o1777;

/** The mode a tmpfs's `--tmpfs` options give it. */
export function tmpfsMode(options: string): number {
  const mode = /(?:^|,)mode=([0-7]+)(?:,|$)/.exec(options)?.[1];
  return mode ? parseInt(mode, 8) : DEFAULT_TMPFS_MODE;
}

/** Go's os.FileMode bits, as the engine's path stat gives them, back to a Unix mode. */
function unixMode(goMode: number): number {
  let mode = goMode & 0o777;
  if (goMode & (1 << 23)) mode |= 0o4000; // setuid
  if (goMode & (1 << 22)) mode |= 0o2000; // setgid
  if (goMode & (1 << 20)) mode |= 0o1000; // sticky
  return mode;
}

/** The mode of `path` in the created container's filesystem; none where it is missing. */
async function modeIn(
  container: Docker.Container,
  path: string,
): Promise<number | undefined> {
  try {
    const res = (await container.infoArchive({ path })) as {
      headers: Record<string, string | undefined>;
      resume?: () => void;
    };
    res.resume?.();
    const stat = res.headers['x-docker-container-path-stat'];
    if (!stat) return undefined;
    return unixMode(
      (
        JSON.parse(Buffer.from(stat, 'base64').toString('utf8')) as {
          mode: number;
        }
      ).mode,
    );
  } catch (e) {
    if (isStatus(e, 404)) return undefined;
    throw e;
  }
}

/**
 * The image the machine is created from, with its tmpfs mountpoints at the tmpfs's mode. The
 * capture's commit holds the mountpoint directory Docker made for a tmpfs at a path the image
 * lacked (root, 755), and Docker gives a tmpfs mounted over a directory that directory's mode: a
 * non-root machine could no longer write to its `--tmpfs /scratch` (1777 by default). Where one
 * differs, a lab image with the modes set is committed from a created (never started) container,
 * tagged for the run so that its teardown removes it; else the captured image as it is.
 */
export async function withTmpfsMountpoints(
  docker: Docker,
  runId: string,
  capture: Pick<RestorableCapture, 'imageId' | 'runtime'>,
  tmpfs: Record<string, string> | undefined,
  adaptations: string[],
): Promise<string> {
  const wanted = Object.entries(tmpfs ?? {}).map(([path, options]) => ({
    path: path.replace(/\/+$/, '') || '/',
    mode: tmpfsMode(options),
  }));
  if (wanted.length === 0) return capture.imageId;
  const ref = labImageRef(runId, `${capture.imageId}-tmpfs`);
  // A resumed run finds the one it made.
  if (await hasImage(docker, ref)) return ref;
  // Its own entrypoint and command: the lab image's config is the created container's.
  const helper = await docker.createContainer({
    Image: capture.imageId,
    Entrypoint: capture.runtime.entrypoint,
    Cmd: capture.runtime.cmd,
    Labels: { [RUN_ID_LABEL]: runId },
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    const off: Array<{ path: string; mode: number; found: number }> = [];
    for (const w of wanted) {
      const found = await modeIn(helper, w.path);
      if (found !== undefined && found !== w.mode) off.push({ ...w, found });
    }
    if (off.length === 0) return capture.imageId;
    await helper.putArchive(
      createTar(off.map(o => ({ type: 'dir', path: o.path, mode: o.mode }))),
      { path: '/' },
    );
    const [repo, tag] = splitRef(ref);
    await helper.commit({ repo, tag });
    for (const o of off)
      adaptations.push(
        `tmpfs at ${o.path} gets mode ${o.mode.toString(8)} as in production: the captured filesystem holds its mountpoint with mode ${o.found.toString(8)}, which Docker would give the tmpfs`,
      );
    return ref;
  } finally {
    await helper.remove({ force: true, v: true }).catch(() => {});
  }
}
