import Docker from 'dockerode';
import { readFileSync } from 'node:fs';
import type { Config } from '@backstage/config';
import { durationToMilliseconds } from '@backstage/types';
import { readDurationSettingMs } from '@backstage-recovery/plugin-recovery-node';
import { isLoopbackHost } from '@backstage-recovery/plugin-recovery-common';
import { QUIESCE_TIMEOUT_MS } from './captureQuiesce';

export type EngineRole = 'primary' | 'hypervisor' | 'both';

export interface DockerEngineConfig {
  id: string;
  role: EngineRole;
  options: Docker.DockerOptions;
  /** Capture only containers labelled as their machine (see DockerCaptureSource). */
  requireMachineLabel: boolean;
}

export interface DockerModuleConfig {
  storeDirectory: string;
  engines: DockerEngineConfig[];
  probeImage?: string;
  busyboxPath?: string;
  pauseOnCapture: boolean;
  /** Longest a capture may keep production paused, in ms. */
  maxCapturePauseMs: number;
  /** Longest a machine's quiesce command may run, in ms. */
  quiesceTimeoutMs: number;
}

/**
 * What an engine id may be: it names files in the capture store (`.paused/<id>.<container id>`)
 * as it is, so that no two ids share them, and within a file name's length.
 */
const ENGINE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** PEM text as is; anything else is a file path, read now so a bad path fails start-up naming its key. */
function pem(key: string, value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new Error(
      `${key}: cannot read file ${value}: ${why} (give PEM text or a readable file path)`,
    );
  }
}

/** Whether a host name (or http(s):// URL) is this machine's own: traffic to it never leaves it. */
function isLoopback(host: string): boolean {
  let name = host;
  try {
    if (/^https?:\/\//.test(host)) name = new URL(host).hostname;
  } catch {
    return false;
  }
  return isLoopbackHost(name);
}

/**
 * A remote engine's connection: over TLS when any of ca, cert and key is given (Docker's port
 * 2376), else plain HTTP (2375). TLS material with `protocol: http` is refused: it would be
 * ignored, and the engine's API, which commands the host, spoken in the clear. So is plain HTTP
 * to another machine unless `protocol: http` asks for it: the API is unauthenticated there, and
 * carries captures (their environment's secrets) unencrypted.
 */
function remoteEngine(
  e: Config,
  id: string,
  host: string,
): Docker.DockerOptions {
  const key = (name: string) => `recovery.docker.engines[${id}].${name}`;
  const tls = {
    ca: pem(key('ca'), e.getOptionalString('ca')),
    cert: pem(key('cert'), e.getOptionalString('cert')),
    key: pem(key('key'), e.getOptionalString('key')),
  };
  const withTls = Boolean(tls.ca || tls.cert || tls.key);
  const explicit = e.getOptionalString('protocol');
  const protocol = explicit ?? (withTls ? 'https' : 'http');
  if (protocol !== 'http' && protocol !== 'https') {
    throw new Error(
      `${key('protocol')} must be http or https, not ${protocol}`,
    );
  }
  if (protocol === 'http' && withTls) {
    throw new Error(
      `${key('protocol')} is http, so its ca, cert and key would be ignored: use https`,
    );
  }
  const port =
    e.getOptionalNumber('port') ?? (protocol === 'https' ? 2376 : 2375);
  // Node would refuse it only at the first call to the engine, naming neither engine nor key.
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(
      `${key('port')} is ${port}: a TCP port is an integer from 1 to 65535`,
    );
  }
  // An https:// URL is spoken over TLS whatever `protocol` says (dockerode takes the URL's).
  if (
    protocol === 'http' &&
    !explicit &&
    !/^https:\/\//.test(host) &&
    !isLoopback(host)
  ) {
    throw new Error(
      `${key('host')} is ${host} with no TLS (ca, cert, key): Docker's API over plain HTTP to another machine is unauthenticated, root on that host to anyone who reaches the port, and carries captures (their secrets) unencrypted. Give ca, cert and key (https), or set ${key('protocol')}: http to accept it (a trusted, isolated network)`,
    );
  }
  return { host, port, protocol, ...tls };
}

/**
 * An image name the engine takes for `docker import`'s repository and tag (Docker's reference
 * grammar without a digest: a registry host and port, lowercase path components, a tag).
 */
const IMAGE_NAME =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?$/;

/** `recovery.docker.probeImage`, checked now: a name the engine refuses would fail every run's probes. */
function probeImageName(value: string | undefined): string | undefined {
  if (value !== undefined && (value.length > 255 || !IMAGE_NAME.test(value))) {
    throw new Error(
      `recovery.docker.probeImage is ${JSON.stringify(value)}: give an image name and tag Docker takes, such as recovery/probe:1 (lowercase, no digest)`,
    );
  }
  return value;
}

/** Reads `recovery.captureStore` and `recovery.docker` (see config.d.ts). */
export function readDockerModuleConfig(config: Config): DockerModuleConfig {
  const storeDirectory = config.getString('recovery.captureStore.directory');
  const docker = config.getOptionalConfig('recovery.docker');
  const engines = (docker?.getOptionalConfigArray('engines') ?? []).map(
    (e, i) => {
      const id = e.getString('id');
      if (!ENGINE_ID.test(id)) {
        throw new Error(
          `recovery.docker.engines[${i}].id is ${JSON.stringify(id)}: an engine id must be a simple name (letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters)`,
        );
      }
      const role = (e.getOptionalString('role') ?? 'both') as EngineRole;
      if (!['primary', 'hypervisor', 'both'].includes(role)) {
        throw new Error(
          `recovery.docker.engines[${id}].role must be primary, hypervisor or both, not ${role}`,
        );
      }
      // DOCKER_HOST's form (unix:///run/docker.sock) is a path too; dockerode would take the whole
      // URL for one and fail with ENOENT on a socket that exists.
      const socketPath = e
        .getOptionalString('socketPath')
        ?.replace(/^unix:\/\//, '');
      const host = e.getOptionalString('host');
      // dockerode takes http(s):// URLs, but connects to port 80 of any other (DOCKER_HOST's tcp://).
      if (host?.includes('://') && !/^https?:\/\//.test(host)) {
        throw new Error(
          `recovery.docker.engines[${id}].host is a URL (${host}): give the host name alone, and port and protocol (http or https) apart`,
        );
      }
      if (!socketPath && !host) {
        throw new Error(
          `recovery.docker.engines[${id}] needs socketPath or host`,
        );
      }
      if (socketPath && host) {
        throw new Error(
          `recovery.docker.engines[${id}] has both socketPath and host: give one`,
        );
      }
      return {
        id,
        role,
        options: socketPath ? { socketPath } : remoteEngine(e, id, host!),
        // On unless turned off: the catalog alone must not choose which container is paused and copied.
        requireMachineLabel:
          e.getOptionalBoolean('requireMachineLabel') ?? true,
      };
    },
  );
  const ids = new Set<string>();
  for (const e of engines) {
    if (ids.has(e.id))
      throw new Error(`recovery.docker.engines: duplicate id ${e.id}`);
    ids.add(e.id);
  }
  return {
    storeDirectory,
    engines,
    probeImage: probeImageName(docker?.getOptionalString('probeImage')),
    busyboxPath: docker?.getOptionalString('busyboxPath'),
    pauseOnCapture: docker?.getOptionalBoolean('pauseOnCapture') ?? true,
    maxCapturePauseMs:
      readDurationSettingMs(config, 'recovery.docker.maxCapturePause') ??
      durationToMilliseconds({ minutes: 5 }),
    quiesceTimeoutMs:
      readDurationSettingMs(config, 'recovery.docker.quiesceTimeout') ??
      QUIESCE_TIMEOUT_MS,
  };
}
