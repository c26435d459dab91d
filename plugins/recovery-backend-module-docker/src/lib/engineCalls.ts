import type Docker from 'dockerode';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';

// Engine calls as a capture makes them: stopped by its signal where dockerode would not pass one on.

/**
 * `docker save` of an image, asked as dockerode's `image.get()` asks it but stopped by `signal`
 * even before the engine answers: older engines answer only once the whole image is exported, and
 * would hold a shutdown, or a capture's timeout, that long.
 */
export function saveImage(
  docker: Docker,
  ref: string,
  signal: AbortSignal,
): Promise<Readable> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/images/${ref}/get`,
        method: 'GET',
        isStream: true,
        abortSignal: signal,
        statusCodes: { 200: true, 500: 'server error' },
      },
      // Aborted, the abort's reason is the error, as where the stream that follows is cut.
      (err, data) =>
        err
          ? reject(signal.aborted ? signal.reason : err)
          : resolve(data as Readable),
    );
  });
}

/** `work`, or the reason of `signal` where it aborts first; `work` itself goes on. */
export function unlessAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    work
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * `docker image inspect`, asked as dockerode's `image.inspect()` asks it but stopped by `signal`,
 * which dockerode does not pass on for it.
 */
export function inspectImage(
  docker: Docker,
  name: string,
  signal: AbortSignal,
): Promise<Docker.ImageInspectInfo> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/images/${name}/json`,
        method: 'GET',
        options: {},
        abortSignal: signal,
        statusCodes: { 200: true, 404: 'no such image', 500: 'server error' },
      },
      (err, data) =>
        err ? reject(err) : resolve(data as Docker.ImageInspectInfo),
    );
  });
}

/**
 * `docker network inspect`, asked as dockerode's `network.inspect()` asks it but stopped by
 * `signal`, which dockerode does not pass on for networks.
 */
export function inspectNetwork(
  docker: Docker,
  name: string,
  signal?: AbortSignal,
): Promise<Docker.NetworkInspectInfo> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/networks/${name}?`,
        method: 'GET',
        options: {},
        abortSignal: signal,
        statusCodes: { 200: true, 404: 'no such network', 500: 'server error' },
      },
      (err, data) =>
        err ? reject(err) : resolve(data as Docker.NetworkInspectInfo),
    );
  });
}

/**
 * `docker ping` (`GET /_ping`), answering its headers where dockerode's `ping()` gives only the
 * body ("OK"): the cheapest call an engine answers, its `Date` the engine's clock.
 */
export function pingHeaders(
  docker: Docker,
  signal: AbortSignal,
): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: '/_ping',
        method: 'GET',
        isStream: true,
        abortSignal: signal,
        statusCodes: { 200: true, 500: 'server error' },
      },
      (err, data) => {
        if (err) {
          reject(err);
          return;
        }
        const answer = data as IncomingMessage;
        // Its body ("OK") read to the end, so its connection is free again.
        answer.resume();
        resolve(answer.headers);
      },
    );
  });
}
