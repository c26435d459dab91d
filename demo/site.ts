/*
 * The demo production site: three primary machines (busybox containers) on the `primary`
 * Docker engine, on the `demo-prod` network, whose services really depend on each other.
 * Also the end-to-end test fixture.
 */
import {
  MACHINE_LABEL,
  SERVICE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import {
  createTar,
  type TarEntry,
} from '../plugins/recovery-backend-module-docker/src/lib/tar';
import { busyboxRootfsEntries } from '../plugins/recovery-backend-module-docker/src/lib/busybox';
import {
  demuxDockerStream,
  followProgress,
  isStatus,
} from '../plugins/recovery-backend-module-docker/src/lib/dockerStreams';

export const DEMO_IMAGE = 'recovery-demo/machine:1';
export const DEMO_NETWORK = 'demo-prod';
export const DEMO_SUBNET = '172.29.10.0/24';
export const DEMO_GATEWAY = '172.29.10.1';
export const DEMO_DNS_SERVER = '172.29.10.11';
/** Label on everything the demo creates (containers, network, image). */
export const DEMO_LABEL = 'io.backstage-recovery.demo';

export interface DemoService {
  name: string;
  port: number;
  dependsOn: string[];
  /** Readiness probe in the annotation syntax, e.g. `tcp:53`, `http:80/healthz`. */
  probe: string;
}

export interface DemoMachine {
  /** Machine name = container name = host name. */
  name: string;
  ipv4: string;
  services: DemoService[];
}

/** The site, in production boot order. */
export const DEMO_MACHINES: DemoMachine[] = [
  {
    name: 'infra-01',
    ipv4: '172.29.10.11',
    services: [
      { name: 'dns', port: 53, dependsOn: [], probe: 'tcp:53' },
      { name: 'directory', port: 389, dependsOn: ['dns'], probe: 'tcp:389' },
    ],
  },
  {
    name: 'data-01',
    ipv4: '172.29.10.12',
    services: [
      { name: 'database', port: 5432, dependsOn: ['dns'], probe: 'tcp:5432' },
      { name: 'files', port: 445, dependsOn: ['directory'], probe: 'tcp:445' },
    ],
  },
  {
    name: 'web-01',
    ipv4: '172.29.10.13',
    services: [
      {
        name: 'web',
        port: 80,
        dependsOn: ['database', 'files'],
        probe: 'http:80/healthz',
      },
    ],
  },
];

export interface DemoSiteOptions {
  /** Seconds a service waits for its dependencies before it gives up (default 20). */
  dependencyDeadlineSeconds?: number;
  /** Machine names in the order to boot them (default: production order). */
  order?: string[];
  /** Wait for each machine's services before booting the next (default true). */
  waitForServices?: boolean;
  /** Start each machine at least this long after the one before, as a runbook's pause would (ms, default 0). */
  spacingMs?: number;
  /** Overall time limit for waiting, ms (default 90 s). */
  timeoutMs?: number;
  /** Recreate containers even when they are already running (default false). */
  recreate?: boolean;
  log?: (line: string) => void;
}

export interface DemoServiceStatus {
  name: string;
  state: 'initialized' | 'failed' | 'waiting';
  /** The service's own log line (initialized or failed). */
  line?: string;
  /** From the initialized line, ISO time. */
  initializedAt?: string;
}

export interface DemoMachineStatus {
  name: string;
  ipv4: string;
  exists: boolean;
  running: boolean;
  containerId?: string;
  /** Image the container runs. */
  imageId?: string;
  health?: string;
  services: DemoServiceStatus[];
}

const ROOTFS_DIR = join(__dirname, 'rootfs');

function demoRootfsEntries(busyboxPath: string): TarEntry[] {
  const entries = busyboxRootfsEntries(busyboxPath);
  const have = new Set(entries.map(e => e.path));
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const path = relative(ROOTFS_DIR, full);
      const st = statSync(full);
      if (st.isDirectory()) {
        if (!have.has(path)) entries.push({ type: 'dir', path });
        walk(full);
      } else {
        entries.push({
          type: 'file',
          path,
          content: readFileSync(full),
          mode: st.mode & 0o111 ? 0o755 : 0o644,
        });
      }
    }
  };
  walk(ROOTFS_DIR);
  return entries;
}

/**
 * Builds the demo machine image on the engine with `docker import` of a root file system
 * made here (static busybox + the boot scripts in demo/rootfs). No registry involved.
 */
export async function buildDemoImage(
  docker: Docker,
  options: { force?: boolean; busyboxPath?: string } = {},
): Promise<string> {
  const tar = createTar(
    demoRootfsEntries(options.busyboxPath ?? '/bin/busybox'),
  );
  const digest = createHash('sha256').update(tar).digest('hex');
  let previous: string | undefined;
  try {
    const image = await docker.getImage(DEMO_IMAGE).inspect();
    previous = image.Id;
    // Rebuilt whenever the boot scripts (or busybox) change.
    if (
      !options.force &&
      image.Config?.Labels?.[`${DEMO_LABEL}.rootfs`] === digest
    )
      return DEMO_IMAGE;
  } catch (e) {
    if (!isStatus(e, 404)) throw e;
  }
  const [repo, tag] = DEMO_IMAGE.split(':');
  const stream = await docker.importImage(
    Readable.from([tar]) as any,
    {
      repo,
      tag,
      changes: [
        `LABEL ${DEMO_LABEL}=image ${DEMO_LABEL}.rootfs=${digest}`,
        'CMD ["/sbin/machine-boot"]',
      ],
    } as any,
  );
  await followProgress(stream as unknown as Readable);
  if (previous) {
    // the replaced image, unless containers still use it
    await docker
      .getImage(previous)
      .remove()
      .catch(() => {});
  }
  return DEMO_IMAGE;
}

async function ensureNetwork(docker: Docker): Promise<void> {
  try {
    await docker.getNetwork(DEMO_NETWORK).inspect();
    return;
  } catch (e) {
    if (!isStatus(e, 404)) throw e;
  }
  await docker.createNetwork({
    Name: DEMO_NETWORK,
    Driver: 'bridge',
    CheckDuplicate: true,
    IPAM: {
      Driver: 'default',
      Config: [{ Subnet: DEMO_SUBNET, Gateway: DEMO_GATEWAY }],
    },
    // No NAT: the site needs no way out, and a masquerade rule on this subnet would also
    // rewrite the bridged traffic of a recovery lab that reuses the subnet on another
    // engine of the same host.
    Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    Labels: { [DEMO_LABEL]: 'network' },
  });
}

async function removeContainer(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getContainer(name).remove({ force: true, v: true });
    return true;
  } catch (e) {
    if (isStatus(e, 404)) return false;
    if (isStatus(e, 409)) {
      // removal already in progress
      return true;
    }
    throw e;
  }
}

function machineByName(name: string): DemoMachine {
  const m = DEMO_MACHINES.find(x => x.name === name);
  if (!m) throw new Error(`unknown demo machine ${name}`);
  return m;
}

async function createMachine(
  docker: Docker,
  machine: DemoMachine,
  deadlineSeconds: number,
): Promise<Docker.Container> {
  const services = machine.services.map(s => s.name);
  return docker.createContainer({
    name: machine.name,
    Hostname: machine.name,
    Image: DEMO_IMAGE,
    Cmd: ['/sbin/machine-boot'],
    Env: [
      `DEMO_SERVICES=${services.join(',')}`,
      `DEMO_DNS_SERVER=${DEMO_DNS_SERVER}`,
      `DEMO_DEPENDENCY_DEADLINE=${deadlineSeconds}`,
    ],
    ExposedPorts: Object.fromEntries(
      machine.services.map(s => [`${s.port}/tcp`, {}]),
    ),
    Labels: {
      [DEMO_LABEL]: 'machine',
      [MACHINE_LABEL]: machine.name,
      [SERVICE_LABEL]: services.join(','),
    },
    Healthcheck: {
      Test: ['CMD', '/usr/libexec/demo/healthcheck'],
      Interval: 2e9,
      Timeout: 2e9,
      Retries: 3,
      StartPeriod: (deadlineSeconds + 10) * 1e9,
    },
    StopTimeout: 2,
    HostConfig: { NetworkMode: DEMO_NETWORK, RestartPolicy: { Name: 'no' } },
    NetworkingConfig: {
      EndpointsConfig: {
        [DEMO_NETWORK]: {
          IPAMConfig: { IPv4Address: machine.ipv4 },
          Aliases: services,
        },
      },
    },
  });
}

const LINE = /^(\S+) service=(\S+) (initialized|failed)(.*)$/;

/** Parses a demo machine's log: each service's initialized/failed line. */
export function parseServiceLines(
  log: string,
  services: string[],
): DemoServiceStatus[] {
  const found = new Map<string, DemoServiceStatus>();
  for (const raw of log.split('\n')) {
    const m = LINE.exec(raw.trim());
    if (!m) continue;
    const [, time, name, what] = m;
    found.set(name, {
      name,
      state: what === 'initialized' ? 'initialized' : 'failed',
      line: raw.trim(),
      initializedAt: what === 'initialized' ? time : undefined,
    });
  }
  return services.map(s => found.get(s) ?? { name: s, state: 'waiting' });
}

async function machineStatus(
  docker: Docker,
  machine: DemoMachine,
): Promise<DemoMachineStatus> {
  const services = machine.services.map(s => s.name);
  const container = docker.getContainer(machine.name);
  let info: Docker.ContainerInspectInfo;
  try {
    info = await container.inspect();
  } catch (e) {
    if (!isStatus(e, 404)) throw e;
    return {
      name: machine.name,
      ipv4: machine.ipv4,
      exists: false,
      running: false,
      services: services.map(name => ({ name, state: 'waiting' })),
    };
  }
  const raw = (await container.logs({
    stdout: true,
    stderr: true,
    follow: false,
  })) as unknown as Buffer;
  const { stdout } = demuxDockerStream(raw);
  return {
    name: machine.name,
    ipv4: machine.ipv4,
    exists: true,
    running: info.State.Running,
    containerId: info.Id,
    imageId: info.Image,
    health: info.State.Health?.Status,
    services: parseServiceLines(stdout, services),
  };
}

/** The demo machines' state on the engine: running, health, each service's log line. */
export async function demoSiteStatus(
  docker: Docker,
): Promise<DemoMachineStatus[]> {
  return Promise.all(DEMO_MACHINES.map(m => machineStatus(docker, m)));
}

async function waitForMachine(
  docker: Docker,
  machine: DemoMachine,
  deadline: number,
): Promise<DemoMachineStatus> {
  for (;;) {
    const status = await machineStatus(docker, machine);
    const failed = status.services.find(s => s.state === 'failed');
    if (failed) {
      throw new Error(`demo machine ${machine.name}: ${failed.line}`);
    }
    if (status.exists && !status.running) {
      throw new Error(`demo machine ${machine.name} stopped`);
    }
    if (status.services.every(s => s.state === 'initialized')) return status;
    if (Date.now() > deadline) {
      throw new Error(
        `demo machine ${machine.name}: services not initialized in time: ${status.services
          .filter(s => s.state !== 'initialized')
          .map(s => s.name)
          .join(', ')}`,
      );
    }
    await new Promise(r => setTimeout(r, 250));
  }
}

/**
 * Starts the demo site on the (primary) engine: image, `demo-prod` network, then the
 * machines in production order, each one's services initialized before the next boots.
 * Machines already running are kept unless `recreate`.
 */
export async function startDemoSite(
  docker: Docker,
  options: DemoSiteOptions = {},
): Promise<DemoMachineStatus[]> {
  const log = options.log ?? (() => {});
  const deadlineSeconds = options.dependencyDeadlineSeconds ?? 20;
  const order = (options.order ?? DEMO_MACHINES.map(m => m.name)).map(
    machineByName,
  );
  const waitDeadline = Date.now() + (options.timeoutMs ?? 90_000);
  const started = Date.now();
  await buildDemoImage(docker);
  const imageId = (await docker.getImage(DEMO_IMAGE).inspect()).Id;
  await ensureNetwork(docker);
  const result: DemoMachineStatus[] = [];
  let previousStart = -Infinity;
  for (const machine of order) {
    const current = await machineStatus(docker, machine);
    const healthy =
      current.running &&
      current.imageId === imageId &&
      current.services.every(s => s.state !== 'failed');
    if (current.exists && (options.recreate || !healthy)) {
      await removeContainer(docker, machine.name);
    }
    if (!current.exists || options.recreate || !healthy) {
      const container = await createMachine(docker, machine, deadlineSeconds);
      const wait = previousStart + (options.spacingMs ?? 0) - Date.now();
      if (wait > 0) await new Promise(r => setTimeout(r, wait));
      previousStart = Date.now();
      await container.start();
      log(
        `${machine.name}: started (${machine.ipv4}, ${machine.services.map(s => s.name).join(', ')})`,
      );
    } else {
      log(`${machine.name}: already running`);
    }
    if (options.waitForServices ?? true) {
      const status = await waitForMachine(docker, machine, waitDeadline);
      log(
        `${machine.name}: ${status.services.map(s => `${s.name} initialized ${s.initializedAt}`).join(', ')} (${Date.now() - started} ms)`,
      );
      result.push(status);
    } else {
      result.push(await machineStatus(docker, machine));
    }
  }
  return result;
}

/** Removes the demo machines (and, with `all`, the network and the image). */
export async function stopDemoSite(
  docker: Docker,
  options: { all?: boolean } = {},
): Promise<string[]> {
  const removed: string[] = [];
  for (const machine of [...DEMO_MACHINES].reverse()) {
    if (await removeContainer(docker, machine.name))
      removed.push(`container ${machine.name}`);
  }
  if (options.all) {
    try {
      await docker.getNetwork(DEMO_NETWORK).remove();
      removed.push(`network ${DEMO_NETWORK}`);
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
    try {
      await docker.getImage(DEMO_IMAGE).remove();
      removed.push(`image ${DEMO_IMAGE}`);
    } catch (e) {
      if (!isStatus(e, 404, 409)) throw e;
    }
  }
  return removed;
}

/** A dockerode client for a `unix://`/`tcp://` DOCKER_HOST-style address. */
export function dockerFromHost(host: string): Docker {
  if (host.startsWith('unix://'))
    return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({
    host: url.hostname,
    port: Number(url.port || 2375),
    protocol: 'http',
  });
}
