import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { createTar } from '../lib/tar';

// A primary engine in memory, for the capture source's unit tests: the real engines are the
// Docker tests' (faults.docker.test.ts).

/** What dockerode throws for an engine's error answer. */
export const engineError = (statusCode: number, message: string) =>
  Object.assign(new Error(message), { statusCode });

/** An engine's answer to `/_ping` as dockerode's modem gives it (a stream), dated `date` (its HTTP Date). */
export const pingAnswer = (date?: string) =>
  Object.assign(Readable.from(['OK']), {
    statusCode: 200,
    headers: date === undefined ? {} : { date },
  });

export interface FakeContainer {
  paused: boolean;
  /** Unpauses the engine carried out. */
  unpauses?: number;
  /** Fails the next calls of that name, one error a call. */
  fails?: { inspect?: Error[]; unpause?: Error[] };
  /** How long a commit takes (none unless said). */
  commitMs?: number;
  /** Fails the pause, the container paused all the same (by it, or by someone else meanwhile). */
  pauseFails?: Error;
  /** Its volumes' mount points (none unless said): each archived as a file `data` of `volume <destination>`. */
  volumes?: string[];
  /** Its labels (none unless said). */
  labels?: Record<string, string>;
  /** Its state as inspected (running, paused as `paused` says, unless said), and its restart count. */
  state?: Record<string, unknown>;
  restartCount?: number;
}

/** `docker save`'s answer: the engine's API as dockerode's modem dials it. */
const saving: Pick<Docker['modem'], 'dial'> = {
  dial: (options, callback) => {
    const ref = /^\/images\/(.+)\/get$/.exec(options.path)![1];
    callback!(
      null,
      Readable.from([
        createTar([
          {
            type: 'file',
            path: 'manifest.json',
            content: `[{"RepoTags":["${ref}"]}]`,
          },
        ]),
      ]) as any,
    );
  },
};

/**
 * A primary engine whose containers pause, commit and unpause as a capture asks; ids are the keys.
 * Its API (`docker save`) is `modem`'s; its pauses and unpauses go to `log()` where it gives a list.
 */
export function fakePrimaryEngine(
  containers: Record<string, FakeContainer>,
  {
    modem = saving,
    log = () => undefined,
    engineNow,
  }: {
    modem?: Pick<Docker['modem'], 'dial'>;
    log?: () => string[] | undefined;
    /** Its clock (epoch ms), asked once a `/_ping` (its Date): where not given, pings fail. */
    engineNow?: () => number;
  } = {},
) {
  const removedTags: string[] = [];
  const nextFailure = (c: FakeContainer, call: 'inspect' | 'unpause') =>
    c.fails?.[call]?.shift();
  const docker = {
    getContainer: (id: string) => {
      const c = containers[id];
      return {
        id,
        inspect: async () => {
          const failure = nextFailure(c, 'inspect');
          if (failure) throw failure;
          return {
            Id: id,
            Name: '/web-01',
            State: c.state ?? { Running: true, Paused: c.paused },
            RestartCount: c.restartCount,
            Config: { Hostname: 'web-01', Env: [], Labels: c.labels ?? {} },
            HostConfig: {},
            Mounts: (c.volumes ?? []).map(destination => ({
              Type: 'volume',
              Name: `v${destination}`,
              Destination: destination,
            })),
            NetworkSettings: { Networks: {} },
          };
        },
        getArchive: async ({ path }: { path: string }) =>
          Readable.from([
            createTar([
              { type: 'file', path: 'data', content: `volume ${path}` },
            ]),
          ]),
        stats: async () => {
          throw engineError(500, 'no stats here');
        },
        pause: async () => {
          log()?.push('pause');
          c.paused = true;
          if (c.pauseFails) throw c.pauseFails;
        },
        unpause: async () => {
          const failure = nextFailure(c, 'unpause');
          if (failure) throw failure;
          log()?.push('unpause');
          c.unpauses = (c.unpauses ?? 0) + 1;
          c.paused = false;
        },
        commit: async () => {
          if (c.commitMs)
            await new Promise(resolve => setTimeout(resolve, c.commitMs));
          return { Id: 'sha256:committed' };
        },
      };
    },
    getImage: (ref: string) => ({
      remove: async () => {
        removedTags.push(ref);
      },
      // `docker save` of the committed image, as dockerode asks it (no abort signal).
      get: () =>
        new Promise((resolve, reject) =>
          modem.dial(
            {
              path: `/images/${ref}/get`,
              method: 'GET',
              isStream: true,
              statusCodes: { 200: true },
            },
            (e, data) => (e ? reject(e) : resolve(data)),
          ),
        ),
    }),
    listImages: async () => [],
    modem: {
      dial: ((options, callback) => {
        if (options.path !== '/_ping') return modem.dial(options, callback);
        return engineNow
          ? callback!(null, pingAnswer(new Date(engineNow()).toUTCString()))
          : callback!(engineError(500, 'no ping here'), null);
      }) as Docker['modem']['dial'],
    },
  } as unknown as Docker;
  return { docker, removedTags };
}
