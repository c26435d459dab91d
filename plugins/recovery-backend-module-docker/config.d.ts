import { HumanDuration } from '@backstage/types';

export interface Config {
  recovery?: {
    captureStore?: {
      /**
       * Directory where captures are written (`<captureId>.tar`, each volume as
       * `<captureId>.volume-<n>.tar`, image layers shared by captures in `layers/`, notes of
       * captures under way in `.paused/`); the same for every backend replica. Required.
       */
      directory: string;
    };
    docker?: {
      /** Docker engines: primary sites (capture, events) and/or hypervisor hosts. */
      engines?: Array<{
        /**
         * Engine id, matched against machines' `recovery.backstage-recovery.io/engine` annotation: a simple
         * name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 63 characters).
         */
        id: string;
        /** Local socket, e.g. /run/recovery-docker/primary.sock (DOCKER_HOST's unix:///… form is read too). */
        socketPath?: string;
        /** Remote engine host name (or an http(s):// URL; not tcp://: give port and protocol apart); give either socketPath or host. */
        host?: string;
        /** TCP port, an integer from 1 to 65535. Default 2376 with https, 2375 with http. */
        port?: number;
        /**
         * Default https when ca, cert or key is given, else http; http with any of them is refused.
         * Plain http to a host other than this machine (localhost, 127.0.0.0/8, ::1) is refused
         * unless set here explicitly: Docker's API is unauthenticated there, root on that host to
         * anyone who reaches its port, and carries captures (their secrets) unencrypted.
         */
        protocol?: 'http' | 'https';
        /** TLS CA, client certificate and key: PEM text or file paths. */
        ca?: string;
        cert?: string;
        /** @visibility secret */
        key?: string;
        /** primary: capture source + event source; hypervisor: recovery host; both. Default both. */
        role?: 'primary' | 'hypervisor' | 'both';
        /**
         * Capture only containers labelled `recovery.backstage-recovery.io/machine` with the
         * machine's entity ref (or its name, in the default namespace). The label is set by whoever
         * runs the engine; without this check, a machine entity any catalog author registers can
         * point its container annotation at another team's container and have it paused, copied
         * and booted in a lab. Default true; false captures any container a machine names (for
         * containers that cannot be labelled yet: the catalog's authors then decide).
         */
        requireMachineLabel?: boolean;
      }>;
      /**
       * Image of the per-lab probe container, created by `docker import` if missing: a name and tag
       * Docker takes (lowercase path, no digest). Default recovery/probe:1.
       */
      probeImage?: string;
      /**
       * Static busybox binary on the backend's host the probe image is built from (run there to
       * list its applets), when the hypervisor engine lacks the image. Default /bin/busybox.
       */
      busyboxPath?: string;
      /** Pause the container while committing a capture (consistency). Default true. */
      pauseOnCapture?: boolean;
      /**
       * Longest a capture may keep production paused (e.g. `30s`, `5m`, `PT5M` or
       * `{ minutes: 5 }`): past it the capture stops, unpauses the machine and fails, naming the
       * limit. Default 5m.
       */
      maxCapturePause?: string | HumanDuration;
      /**
       * Longest a machine's quiesce command (its label `recovery.backstage-recovery.io/quiesce`,
       * run before its capture pauses it) may run: past it the capture goes on without it, noted.
       * Default 30s.
       */
      quiesceTimeout?: string | HumanDuration;
    };
  };
}
