import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { ConflictError, InputError, NotFoundError } from '@backstage/errors';
import { RUN_ID_LABEL, type ProbeSpec } from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedNetwork,
  HostRoom,
  HypervisorHost,
  LabHandle,
  LabResources,
  MachineHandle,
  MachineState,
  ProbeResult,
  RestorableCapture,
  RestoredMachine,
} from '@backstage-recovery/plugin-recovery-node';
import { subnetsOverlap } from '@backstage-recovery/plugin-recovery-node';
import { PRODUCTION_NETWORK_MODE_LABEL, dockerHealthcheck, dockerLimits, dockerName, dockerTag, joinsLabNetwork } from './adapt';
import { firstHost, helperRange, highestFree } from './lib/addresses';
import { onEngine } from './lib/engineErrors';
import { artifactPath } from './DockerCaptureSource';
import { busyboxDigest, busyboxRootfsEntries } from './lib/busybox';
import { demuxDockerStream, followProgress, isStatus, readAll } from './lib/dockerStreams';
import { captureArchiveFiles, corruptLayersOf, readCaptureArchive } from './lib/layerStore';
import { createTar, rewriteTarFiles } from './lib/tar';

/** Catalog ref of the machine a restored container stands for. */
export const MACHINE_REF_LABEL = 'recovery.backstage-recovery.io/machine-ref';
/** Capture a restored container was made from. */
export const CAPTURE_ID_LABEL = 'recovery.backstage-recovery.io/capture-id';
/** Production network name a lab network emulates. */
export const NETWORK_LABEL = 'recovery.backstage-recovery.io/network';
/** Marks a lab's probe container. */
export const PROBE_LABEL = 'recovery.backstage-recovery.io/probe';

export const DEFAULT_PROBE_IMAGE = 'recovery/probe:1';

/**
 * Label of the probe image the backend builds: the digest of the busybox file it was built from.
 * One without it (built before the static-busybox check, perhaps from a dynamic one that fails
 * every probe) or from another file is built again rather than reused.
 */
export const PROBE_BUSYBOX_LABEL = 'recovery.backstage-recovery.io/probe-busybox';

/**
 * Repository of the tags naming the run that loaded a captured image:
 * `recovery-lab/<image digest>:<run id>`. `docker load` cannot label an image, so the tag is how
 * the run's teardown finds it, from any backend and after a restart, also when no machine was
 * created from it (a backend stopped in between). The load itself names the image so.
 */
export const LAB_IMAGE_REPOSITORY = 'recovery-lab';

/** The tag marking image `imageId` as loaded for run `runId`. */
export function labImageRef(runId: string, imageId: string): string {
  return `${LAB_IMAGE_REPOSITORY}/${imageId.replace(/^sha256:/, '')}:${dockerTag(runId)}`;
}

/**
 * The network a lab whose machines captured none gets (all in host network mode): Docker names
 * no user network `host`, so no production network's lab network has its name.
 */
export const HOST_NETWORK = 'host';

export interface DockerHypervisorHostOptions {
  /** Capture store directory, to resolve relative artifacts. */
  storeDirectory: string;
  /** Image of the per-lab probe container; created by `docker import` if missing. */
  probeImage?: string;
  /** Static busybox binary the probe image is built from. */
  busyboxPath?: string;
}

/** Name of the lab network emulating production network `network` in run `runId`. */
export function labNetworkName(runId: string, network: string): string {
  return dockerName('rr', runId, network);
}

/**
 * Name of the container restoring `machineRef` in run `runId`: unique per machine of the run
 * (two machines may share a hostname, e.g. host-network ones, and a hostname may be `probe`),
 * so the ref's name for people plus a digest of the whole ref. The hostname stays the
 * machine's network identity (hostname and alias), not its container name.
 */
export function machineContainerName(runId: string, machineRef: string): string {
  const digest = createHash('sha256').update(machineRef).digest('hex').slice(0, 8);
  const name = (machineRef.split('/').pop() || 'machine').slice(0, 63);
  return dockerName('rr', runId, name, digest);
}

/**
 * A Docker engine as the recovery host: a run's lab is a set of bridge networks (same
 * subnets as production when the engine allows it; `internal` for tests), recovered
 * machines are containers created from the captured images, probes run from a probe
 * container inside the lab. Everything carries the run id label.
 */
export class DockerHypervisorHost implements HypervisorHost {
  private readonly probeImage: string;
  private probeImageReady?: Promise<void>;
  private readonly probeContainers = new Map<string, Promise<Docker.Container>>();

  constructor(
    readonly id: string,
    private readonly docker: Docker,
    private readonly options: DockerHypervisorHostOptions,
  ) {
    this.probeImage = options.probeImage ?? DEFAULT_PROBE_IMAGE;
  }

  createLab(
    runId: string,
    networks: CapturedNetwork[],
    options: { internal: boolean },
  ): Promise<LabHandle> {
    return onEngine(this.id, () => this.createLabOn(runId, networks, options));
  }

  private async createLabOn(
    runId: string,
    networks: CapturedNetwork[],
    options: { internal: boolean },
  ): Promise<LabHandle> {
    const names: string[] = [];
    const seen = new Set<string>();
    // A failover's networks hold production's subnets for as long as it keeps its machines (they
    // serve production there now). Another lab there would get other subnets from Docker, and its
    // machines other addresses: a test would not emulate production (and fail at the ready
    // timeout where a machine needs its address), a second failover would boot apart from the
    // first. Refused before anything is made.
    const engineNetworks = networks.some(n => n.subnet) ? await this.docker.listNetworks() : [];
    for (const network of networks) {
      const holder = network.subnet ? subnetHolder(engineNetworks, network.subnet, runId) : undefined;
      if (!holder?.failover) continue;
      const [why, elsewhere] = options.internal
        ? ["a test lab cannot have it beside them, so its machines would not get production's addresses", 'Run the test on another hypervisor host']
        : ["this failover's machines would boot on other addresses, apart from them", 'Fail over onto another hypervisor host'];
      throw new ConflictError(
        `production network ${network.name} (${network.subnet}) is held on engine ${this.id} by ${describeHolder(holder)}: ${why}. ` +
          `${elsewhere} or, once production no longer needs what failover ${holder.runId} kept, ${releaseFirst(holder.runId!)}`,
      );
    }
    // Made after those that get production's subnet: a subnet Docker picks could be one of theirs.
    const chosenByDocker: Array<Parameters<Docker['createNetwork']>[0]> = [];
    // Every production address the lab is told of, per network: its own range avoids them.
    const reserved = new Map<string, string[]>();
    for (const network of networks) {
      if (network.ipv4Address) reserved.set(network.name, [...(reserved.get(network.name) ?? []), network.ipv4Address]);
    }
    // Host-network machines go on the lab network: a lab of only them needs one too.
    const wanted = networks.length > 0 ? networks : [{ name: HOST_NETWORK, aliases: [] }];
    for (const network of wanted) {
      if (seen.has(network.name)) continue;
      seen.add(network.name);
      const name = labNetworkName(runId, network.name);
      names.push(name);
      try {
        await this.docker.getNetwork(name).inspect();
        continue; // idempotent: a resumed run finds its network
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
      const base = {
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Internal: options.internal,
        Labels: { [RUN_ID_LABEL]: runId, [NETWORK_LABEL]: network.name },
        Options: {
          // A lab needs no NAT; a masquerade rule on a production subnet would also rewrite
          // bridged traffic of other engines' networks with that subnet on the same host.
          'com.docker.network.bridge.enable_ip_masquerade': 'false',
          // `internal` only stops forwarding: with the gateway address on its bridge, the host
          // itself answers the lab (on every address it has, whatever it serves there) and
          // holds production's gateway address. An isolated lab's bridge gets none.
          ...(options.internal ? { 'com.docker.network.bridge.inhibit_ipv4': 'true' } : {}),
        },
      };
      if (network.subnet) {
        // Docker picks addresses (probe container, host-network machines) from a range holding
        // no production address, at the top of the subnet: from .2 up, as it does by default,
        // it handed a later wave's address to the probe container. Explicit gateway: with a
        // range, Docker would otherwise make the range's first address the gateway.
        const gateway = network.gateway ?? firstHost(network.subnet);
        const range = helperRange(network.subnet, [...(reserved.get(network.name) ?? []), gateway]);
        try {
          await this.docker.createNetwork({
            ...base,
            IPAM: {
              Driver: 'default',
              Config: [
                {
                  Subnet: network.subnet,
                  ...(gateway ? { Gateway: gateway } : {}),
                  ...(range ? { IPRange: range } : {}),
                },
              ],
            },
          });
          continue;
        } catch (e) {
          // The subnet is in use on this engine (production's own network where it is also the
          // primary engine, a failover's network): Docker chooses; restoreMachine reports it.
          if (!/overlap|in use|conflict/i.test(String((e as Error).message))) throw e;
        }
      }
      chosenByDocker.push(base);
    }
    for (const base of chosenByDocker) await this.docker.createNetwork(base);
    return { runId, networks: names };
  }

  private async labNetworkSubnet(name: string): Promise<{ subnet?: string; gateway?: string }> {
    const net = await this.docker.getNetwork(name).inspect();
    const cfg = net.IPAM?.Config?.find((c: any) => c.Subnet && !c.Subnet.includes(':'));
    return { subnet: cfg?.Subnet, gateway: cfg?.Gateway };
  }

  private async hasImage(imageId: string): Promise<boolean> {
    try {
      await this.docker.getImage(imageId).inspect();
      return true;
    } catch (e) {
      if (isStatus(e, 404)) return false;
      throw e;
    }
  }

  room(runId: string, waves: RestorableCapture[][]): Promise<HostRoom> {
    return onEngine(this.id, () => this.roomOn(runId, waves));
  }

  /**
   * What the captures' archives hold, each file by its path once (an image archive names a layer
   * by its id, which the images sharing it share), plus their volumes, plus the archives of the
   * largest wave whole: `docker load` unpacks an archive in the data root (its `tmp`) before it
   * takes in the layers, and a wave's machines are loaded at once, beside what earlier waves left.
   * Against the space free in the engine's data root, as `df` inside a helper container reads it
   * (the engine may be remote). Beside it, the memory the machines held when captured, all at once
   * (every wave stays up), against the host's MemAvailable, read in the same container.
   */
  private async roomOn(runId: string, waves: RestorableCapture[][]): Promise<HostRoom> {
    const files = new Map<string, number>();
    let neededBytes = 0;
    let largestWave = 0;
    let neededMemoryBytes = 0;
    let memoryKnownFor = 0;
    for (const wave of waves) {
      let waveBytes = 0;
      for (const capture of wave) {
        if (capture.runtime.memoryBytes !== undefined) {
          neededMemoryBytes += capture.runtime.memoryBytes;
          memoryKnownFor += 1;
        }
        const archive = artifactPath(this.options.storeDirectory, capture.artifact);
        for (const [path, size] of await captureArchiveFiles(archive)) {
          files.set(path, size);
          waveBytes += size;
        }
        for (const volume of capture.runtime.volumes ?? []) neededBytes += volume.sizeBytes;
      }
      largestWave = Math.max(largestWave, waveBytes);
    }
    neededBytes += largestWave;
    for (const size of files.values()) neededBytes += size;
    const { DockerRootDir: root } = await this.docker.info();
    const where = `${this.id}:${root}`;
    const memory = memoryKnownFor > 0 ? { neededMemoryBytes, memoryKnownFor } : {};
    try {
      return { neededBytes, where, ...memory, ...(await this.freeRoomIn(runId, root)) };
    } catch (e) {
      return { neededBytes, where, ...memory, unknown: (e as Error).message };
    }
  }

  /** Free bytes in `directory` of the engine's host and the memory it has available, read there. */
  private async freeRoomIn(runId: string, directory: string): Promise<{ freeBytes: number; availableMemoryBytes?: number }> {
    await this.ensureProbeImage();
    const name = dockerName('rr', runId, 'room');
    await this.removeLeftHelper(runId, name);
    const container = await this.docker.createContainer({
      name,
      Image: this.probeImage,
      // A container's /proc/meminfo is its host's (the VM's, where the engine runs in one).
      // The status is df's: a kernel without MemAvailable (before 3.14) leaves the memory unknown.
      Cmd: ['sh', '-c', 'df -k -P /data-root; s=$?; grep "^MemAvailable:" /proc/meminfo; exit $s'],
      Labels: { [RUN_ID_LABEL]: runId, [PROBE_LABEL]: 'true' },
      HostConfig: { Binds: [`${directory}:/data-root:ro`], NetworkMode: 'none', RestartPolicy: { Name: 'no' } },
    });
    try {
      await container.start();
      const { StatusCode } = await container.wait();
      const { stdout, stderr } = demuxDockerStream(
        (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer,
      );
      // `Filesystem 1024-blocks Used Available Capacity Mounted-on`, one line per filesystem, then
      // `MemAvailable: <n> kB`.
      const lines = stdout.trim().split('\n');
      const memory = /^MemAvailable:\s+(\d+) kB$/.exec(lines.at(-1)?.trim() ?? '');
      if (memory) lines.pop();
      const available = Number(lines.at(-1)?.trim().split(/\s+/)[3]);
      if (StatusCode !== 0 || !Number.isFinite(available)) {
        throw new Error(`df in ${directory} said: ${(stderr || stdout).trim() || `exit ${StatusCode}`}`);
      }
      return { freeBytes: available * 1024, ...(memory && { availableMemoryBytes: Number(memory[1]) * 1024 }) };
    } finally {
      await container.remove({ force: true }).catch(() => {});
    }
  }

  /**
   * Removes the run's helper container `name` that a backend stopped mid-check left: its fixed
   * name would fail every later check of the run. Left alone if it is not the run's.
   */
  private async removeLeftHelper(runId: string, name: string): Promise<void> {
    let labels: Record<string, string>;
    try {
      labels = (await this.docker.getContainer(name).inspect()).Config.Labels ?? {};
    } catch (e) {
      if (isStatus(e, 404)) return;
      throw e;
    }
    if (labels[RUN_ID_LABEL] !== runId || labels[PROBE_LABEL] !== 'true') return;
    try {
      await this.docker.getContainer(name).remove({ force: true });
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
  }

  /** Verifies the artifact's checksum, then `docker load`s it. */
  loadCapture(capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'checksum' | 'imageId'>): Promise<void> {
    return onEngine(this.id, async () => {
      await this.verifyArtifact(capture);
      await this.loadArtifact(capture);
    });
  }

  /** Streams the capture file through sha256 and fails unless it matches the recorded checksum. */
  private async verifyArtifact(capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'checksum'>): Promise<void> {
    await this.verifyFile(capture.captureId, '', capture.artifact, capture.checksum);
  }

  /** The same for each volume archive of the capture (none in captures older than volumes). */
  private async verifyVolumes(capture: Pick<RestorableCapture, 'captureId' | 'runtime'>): Promise<void> {
    for (const volume of capture.runtime.volumes ?? []) {
      await this.verifyFile(capture.captureId, `volume ${volume.destination} `, volume.artifact, volume.checksum);
    }
  }

  /** `what` names the file for people (`volume /data `), empty for the image archive. */
  private async verifyFile(captureId: string, what: string, artifact: string, checksum: string): Promise<void> {
    const file = artifactPath(this.options.storeDirectory, artifact);
    try {
      await access(file);
    } catch {
      throw new NotFoundError(`capture ${captureId}: ${what}artifact ${file} not found`);
    }
    const hash = createHash('sha256');
    try {
      for await (const chunk of readCaptureArchive(this.options.storeDirectory, file)) hash.update(chunk);
    } catch (e) {
      throw new NotFoundError(`capture ${captureId}: ${what}artifact ${file}: ${(e as Error).message}`);
    }
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== checksum) {
      // A layer the store keeps once may be what changed: named, as every capture sharing it is broken too.
      const layers = what ? [] : await corruptLayersOf(this.options.storeDirectory, file).catch(() => []);
      const where = layers.length > 0 ? ` (layer file${layers.length === 1 ? '' : 's'} ${layers.join(', ')} no longer holding ${layers.length === 1 ? 'its' : 'their'} content: the machine's next capture writes ${layers.length === 1 ? 'it' : 'them'} anew)` : '';
      throw new InputError(
        `capture ${captureId}: checksum mismatch for ${what ? `${what}(${file})` : file}${where}: expected ${checksum}, got ${actual}; refusing to restore it`,
      );
    }
  }

  /**
   * Puts each volume's captured content back at its destination in the created (not started)
   * container: the archive's entries are under the destination's last element (`data/…` for
   * `/data`), so it is extracted in the destination's parent directory.
   */
  private async restoreVolumes(container: Docker.Container, capture: RestorableCapture): Promise<void> {
    for (const volume of capture.runtime.volumes ?? []) {
      const file = artifactPath(this.options.storeDirectory, volume.artifact);
      const parent = posix.dirname(posix.normalize(volume.destination));
      const archive = createReadStream(file);
      try {
        await container.putArchive(archive, { path: parent });
      } catch (e) {
        archive.destroy();
        throw new Error(
          `capture ${capture.captureId}: volume ${volume.destination} could not be restored into machine ${capture.machineRef}: ${(e as Error).message}`,
        );
      }
    }
  }

  /**
   * `docker load`s the capture file; named `as` where given, in place of the archive's own name
   * (the capture's tag on the primary engine).
   */
  private async loadArtifact(capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'imageId'>, as?: string): Promise<void> {
    const file = artifactPath(this.options.storeDirectory, capture.artifact);
    const archive = Readable.from(readCaptureArchive(this.options.storeDirectory, file));
    const body = as ? Readable.from(rewriteTarFiles(archive, { 'manifest.json': manifest => namedIn(manifest, as) })) : archive;
    let messages: string[];
    try {
      const response = await this.docker.loadImage(body as any, { quiet: true } as any);
      messages = await followProgress(response as unknown as Readable);
    } finally {
      body.destroy();
      archive.destroy();
    }
    if (await this.hasImage(capture.imageId)) return;
    // The file held another image: removed, so a failed restore leaves nothing on the host.
    await this.removeUnusedImages(await this.imagesLoaded(messages));
    throw new Error(`capture ${capture.captureId}: ${file} loaded but image ${capture.imageId} is missing`);
  }

  /** The image ids `docker load` reported ("Loaded image ID: …", or "Loaded image: <tag>"). */
  private async imagesLoaded(messages: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const m of messages) {
      const id = /^Loaded image ID: (\S+)/.exec(m)?.[1];
      const tag = /^Loaded image: (\S+)/.exec(m)?.[1];
      if (id) ids.push(id);
      else if (tag) {
        try {
          ids.push((await this.docker.getImage(tag).inspect()).Id);
        } catch (e) {
          if (!isStatus(e, 404)) throw e;
        }
      }
    }
    return ids;
  }

  restoreMachine(
    lab: LabHandle,
    capture: RestorableCapture,
  ): Promise<RestoredMachine> {
    return onEngine(this.id, () => this.restoreMachineOn(lab, capture));
  }

  private async restoreMachineOn(
    lab: LabHandle,
    capture: RestorableCapture,
  ): Promise<RestoredMachine> {
    const adaptations: string[] = [];
    const addressesLost: string[] = [];
    const test = await this.isolated(lab);
    if (!test) await this.refuseKeptElsewhere(lab.runId, capture.machineRef);
    // Always: a test run is what proves the capture store can restore production, so it must
    // read the archive even when the image is still on this engine (always so with role both).
    await this.verifyArtifact(capture);
    await this.verifyVolumes(capture);
    // Not loaded again when present: the image id is a digest of the image's content, and a
    // matching checksum means the archive is byte for byte what `docker save` wrote of it.
    let loaded = false;
    if (!(await this.hasImage(capture.imageId))) {
      await this.loadFor(lab.runId, capture);
      loaded = true;
    }
    const runtime = capture.runtime;
    const name = machineContainerName(lab.runId, capture.machineRef);
    const endpoints: Array<{ network: string; config: Docker.EndpointSettings }> = [];
    if (joinsLabNetwork(runtime)) {
      // Host network (or another container's) in production, so no network captured: as the
      // capture's adaptation says, it gets an address on the lab network, one Docker picks from
      // the lab's range, which holds none of the machines' production addresses. Its hostname
      // (the production host's) is an alias, so the lab's DNS answers it rather than pass it on.
      const mode = runtime.labels[PRODUCTION_NETWORK_MODE_LABEL];
      for (const labNet of lab.networks) {
        endpoints.push({ network: labNet, config: { Aliases: [runtime.hostname].filter(Boolean) } });
      }
      addressesLost.push(
        lab.networks.length > 0
          ? `network mode ${mode} in production: on lab network ${lab.networks.join(', ')} with an address Docker picks, not the addresses it had in production`
          : `network mode ${mode} in production: the lab has no network to put it on`,
      );
    }
    for (const net of runtime.networks) {
      const labNet = labNetworkName(lab.runId, net.name);
      if (!lab.networks.includes(labNet)) {
        addressesLost.push(`network ${net.name} is not part of the lab; not attached`);
        continue;
      }
      const aliases = [...new Set([...net.aliases, runtime.hostname].filter(Boolean))];
      const config: Docker.EndpointSettings = { Aliases: aliases };
      if (net.ipv4Address) {
        const labSubnet = await this.labNetworkSubnet(labNet);
        if (!net.subnet || labSubnet.subnet === net.subnet) {
          config.IPAMConfig = { IPv4Address: net.ipv4Address };
        } else {
          const holder = net.subnet ? subnetHolder(await this.docker.listNetworks(), net.subnet, lab.runId) : undefined;
          addressesLost.push(
            `network ${net.name}: production subnet ${net.subnet} is in use on engine ${this.id}${holder ? ` by ${describeHolder(holder)}` : ''}; the lab uses ${labSubnet.subnet} and the machine gets a dynamic address instead of ${net.ipv4Address}`,
          );
        }
      }
      endpoints.push({ network: labNet, config });
    }
    const { labels: captured, blanked } = withoutOrchestratorLabels(runtime.labels);
    if (blanked.length > 0) {
      adaptations.push(`labels of production's orchestrator emptied (${blanked.join(', ')}): it would take the lab's container for one of its own`);
    }
    const labels = {
      ...captured,
      [RUN_ID_LABEL]: lab.runId,
      [MACHINE_REF_LABEL]: capture.machineRef,
      [CAPTURE_ID_LABEL]: capture.captureId,
    };
    const { hostConfig: confined, stopSignal, stopTimeout } = await this.limitsInLab(test, runtime, adaptations);
    const [first, ...rest] = endpoints;
    const create = () =>
      this.docker.createContainer({
        name,
        Hostname: runtime.hostname,
        Image: capture.imageId,
        Env: runtime.env,
        Cmd: runtime.cmd,
        Entrypoint: runtime.entrypoint,
        WorkingDir: runtime.workingDir,
        User: runtime.user,
        ExposedPorts: Object.fromEntries(runtime.exposedPorts.map(p => [p, {}])),
        Healthcheck: dockerHealthcheck(runtime.healthcheck),
        Labels: labels,
        ...(stopTimeout !== undefined ? { StopTimeout: stopTimeout } : {}),
        ...(stopSignal ? { StopSignal: stopSignal } : {}),
        HostConfig: {
          ...confined,
          NetworkMode: first ? first.network : 'none',
        },
        NetworkingConfig: first ? { EndpointsConfig: { [first.network]: first.config } } : undefined,
      });
    const createOnce = () =>
      create().catch(async e => {
        // The image went after it was found: the teardown of another lab that held it (a left
        // lab, torn down by this run and the cleanup task at once) removed it as unused.
        if (loaded || !isStatus(e, 404) || (await this.hasImage(capture.imageId))) throw e;
        await this.loadFor(lab.runId, capture);
        return create();
      });
    let container: Docker.Container;
    try {
      container = await createOnce();
    } catch (e) {
      if (!isStatus(e, 409)) throw e;
      // Already there (resumed run): this machine of this run, or not touched.
      const existing = this.docker.getContainer(name);
      const info = await existing.inspect();
      const owner = info.Config.Labels ?? {};
      if (owner[RUN_ID_LABEL] !== lab.runId || owner[MACHINE_REF_LABEL] !== capture.machineRef) {
        throw new ConflictError(
          `machine ${capture.machineRef}: container ${name} on engine ${this.id} belongs to ${owner[MACHINE_REF_LABEL] ?? 'no machine'} of run ${owner[RUN_ID_LABEL] ?? 'none'}`,
        );
      }
      if (info.State?.Status !== 'created') {
        // Started, so its restore finished: only a network it lacks is joined.
        await this.joinMissing(info, endpoints);
        return { machine: this.handle(lab.runId, capture.machineRef, info.Id, runtime), adaptations, addressesLost };
      }
      // Never started: a backend stopped between its creation and its last network or volume may
      // have left it, and nothing on it says which it got. Made again from the capture.
      await existing.remove({ force: true, v: true });
      container = await createOnce();
    }
    try {
      // Before the first start: the machine boots on its captured data.
      await this.restoreVolumes(container, capture);
      for (const ep of rest) {
        await this.docker.getNetwork(ep.network).connect({ Container: container.id, EndpointConfig: ep.config });
      }
    } catch (e) {
      // Not left for a resumed run to find and start without its data or some of its networks.
      await container.remove({ force: true, v: true }).catch(() => {});
      throw e;
    }
    return { machine: this.handle(lab.runId, capture.machineRef, container.id, runtime), adaptations, addressesLost };
  }

  /** Connects a started machine to those of `endpoints` it is not on. */
  private async joinMissing(
    info: Docker.ContainerInspectInfo,
    endpoints: Array<{ network: string; config: Docker.EndpointSettings }>,
  ): Promise<void> {
    for (const ep of endpoints) {
      if (info.NetworkSettings?.Networks?.[ep.network]) continue;
      await this.docker.getNetwork(ep.network).connect({ Container: info.Id, EndpointConfig: ep.config });
    }
  }

  /**
   * Production's limits and restart policy as the machine's create options, with what the host
   * changes of them recorded in `adaptations`. A capture without them (older ones) gets the
   * engine's defaults and no restart policy, as before.
   */
  private async limitsInLab(
    /** The lab is a test's (see isolated). */
    test: boolean,
    runtime: RestorableCapture['runtime'],
    adaptations: string[],
  ): Promise<{ hostConfig: Docker.HostConfig; stopSignal?: string; stopTimeout?: number }> {
    const { hostConfig, stopSignal, stopTimeout: production } = dockerLimits(runtime.limits ?? {});
    hostConfig.RestartPolicy = { Name: 'no' };
    // A test lab's machines are removed, not stopped, and need no grace. A failover's serve
    // production: stopped with the recovery engine, they get the time to shut down cleanly that
    // production gave them (the engine's default where it set none), not 5 s and a kill.
    const stopTimeout = test ? 5 : production;
    if (hostConfig.ReadonlyRootfs && runtime.volumes?.length) {
      // Captures from before read-only volumes were weighed: Docker refuses to put their content
      // into a read-only root filesystem, so the restore would fail on every such machine.
      adaptations.push(
        `read-only root filesystem not kept: the restore puts the content of volume ${runtime.volumes.map(v => v.destination).join(', ')} into it, which Docker refuses while it is read-only`,
      );
      delete hostConfig.ReadonlyRootfs;
    }
    const policy = runtime.restartPolicy;
    if (policy) {
      const named = `${policy.name}${policy.maximumRetryCount ? `:${policy.maximumRetryCount}` : ''}`;
      // Only a failover's lab is not internal: what it boots serves production, and comes back
      // with the host as it did there. In a test lab the run decides what runs, and when it stops.
      if (test) adaptations.push(`restart policy ${named} not applied in a test lab: the run starts and stops its machines`);
      else hostConfig.RestartPolicy = { Name: policy.name, ...(policy.maximumRetryCount ? { MaximumRetryCount: policy.maximumRetryCount } : {}) };
    }
    if (hostConfig.NanoCpus) {
      // Docker refuses a CPU limit above the CPUs the host has.
      const { NCPU } = await this.docker.info();
      if (NCPU && hostConfig.NanoCpus > NCPU * 1e9) {
        adaptations.push(`CPU limit ${hostConfig.NanoCpus / 1e9} lowered to the ${NCPU} CPUs engine ${this.id} has`);
        hostConfig.NanoCpus = NCPU * 1e9;
      }
    }
    return { hostConfig, stopSignal, stopTimeout };
  }

  /**
   * Refuses a failover's restore of a machine that another failover kept on the engine (one whose
   * networks are not all internal, as a test lab's are): its copy would serve production beside
   * that one. The subnet check at createLab misses machines of no captured subnet (host network).
   */
  private async refuseKeptElsewhere(runId: string, machineRef: string): Promise<void> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${MACHINE_REF_LABEL}=${machineRef}`] } });
    for (const c of containers) {
      const owner = c.Labels?.[RUN_ID_LABEL];
      if (!owner || owner === runId) continue;
      const networks = Object.keys(c.NetworkSettings?.Networks ?? {});
      let testLab = networks.length > 0;
      for (const network of networks) {
        if (!testLab) break;
        try {
          testLab = (await this.docker.getNetwork(network).inspect()).Internal === true;
        } catch (e) {
          if (!isStatus(e, 404)) throw e;
        }
      }
      if (testLab) continue;
      const name = (c.Names?.[0] ?? c.Id).replace(/^\//, '');
      throw new ConflictError(
        `machine ${machineRef} is already on engine ${this.id}: failover ${owner} kept it as container ${name} (${c.State}), and this failover's copy would serve production beside it. ` +
          `Fail over onto another hypervisor host or, once production no longer needs what failover ${owner} kept, ${releaseFirst(owner)}`,
      );
    }
  }

  /** Whether the lab is a test's: its networks are internal (a failover's are not). */
  private async isolated(lab: LabHandle): Promise<boolean> {
    const [network] = lab.networks;
    if (!network) return true;
    return (await this.docker.getNetwork(network).inspect()).Internal !== false;
  }

  /**
   * Loads the capture's image for the run, tagged so that its teardown removes it: by the load
   * itself, its archive naming it so, as a tag of its own after the load would leave the image to
   * no one were the backend stopped in between. Tagged again after, for an engine that does not
   * name loaded images as their archive says.
   */
  private async loadFor(runId: string, capture: RestorableCapture): Promise<void> {
    const ref = labImageRef(runId, capture.imageId);
    await this.loadArtifact(capture, ref);
    const [repo, tag] = splitRef(ref);
    await this.docker.getImage(capture.imageId).tag({ repo, tag });
  }

  private handle(runId: string, machineRef: string, id: string, runtime: RestorableCapture['runtime']): MachineHandle {
    const hostnames = [
      ...new Set([runtime.hostname, ...runtime.networks.flatMap(n => n.aliases)].filter(Boolean)),
    ];
    return { runId, machineRef, id, hostnames };
  }

  startMachine(machine: MachineHandle): Promise<void> {
    return onEngine(this.id, () => this.startMachineOn(machine));
  }

  private async startMachineOn(machine: MachineHandle): Promise<void> {
    for (let probeMoved = false; ; probeMoved = true) {
      try {
        await this.docker.getContainer(machine.id).start();
        return;
      } catch (e) {
        if (isStatus(e, 304)) return; // already started
        if (!/address already in use/i.test(String((e as Error).message))) throw e;
        const { wanted, clashes } = await this.addressClashes(machine);
        // The probe container can move: it got its address before this machine was restored,
        // from a lab not told this machine's address (a run tells every machine's; another
        // caller of the host may not).
        if (!probeMoved && clashes.length > 0 && clashes.every(c => c.probe)) {
          for (const c of clashes) await this.moveProbe(machine.runId, c.holderId, c.network);
          continue;
        }
        const clash = clashes.find(c => !c.probe) ?? clashes[0];
        if (!clash) {
          throw new ConflictError(
            `machine ${machine.machineRef} cannot get its production address ${wanted.join(', ') || '(none set)'} (${(e as Error).message}); no container on the lab network holds it now`,
          );
        }
        throw new ConflictError(
          `machine ${machine.machineRef} cannot get its production address ${clash.address} on lab network ${clash.network}: ${clash.holder} holds it`,
        );
      }
    }
  }

  /** Who holds, on the lab networks, the addresses the machine is to have there. */
  private async addressClashes(
    machine: MachineHandle,
  ): Promise<{
    wanted: string[];
    clashes: Array<{ network: string; address: string; holderId: string; holder: string; probe: boolean }>;
  }> {
    const info = await this.docker.getContainer(machine.id).inspect();
    const wanted: string[] = [];
    const clashes = [];
    for (const [network, endpoint] of Object.entries(info.NetworkSettings.Networks ?? {})) {
      const address = endpoint.IPAMConfig?.IPv4Address;
      if (!address) continue;
      wanted.push(`${address} on lab network ${network}`);
      const net = await this.docker.getNetwork(network).inspect();
      const held = Object.entries((net.Containers ?? {}) as Record<string, { Name?: string; IPv4Address?: string }>).find(
        ([id, c]) => id !== info.Id && c.IPv4Address?.split('/')[0] === address,
      );
      if (!held) continue;
      const [holderId, { Name: holderName = holderId }] = held;
      const labels = (await this.docker.getContainer(holderId).inspect()).Config.Labels ?? {};
      const probe = labels[PROBE_LABEL] === 'true' && labels[RUN_ID_LABEL] === machine.runId;
      const holder = probe
        ? `the lab's probe container ${holderName}`
        : labels[MACHINE_REF_LABEL]
          ? `machine ${labels[MACHINE_REF_LABEL]} (container ${holderName}${labels[RUN_ID_LABEL] === machine.runId ? '' : ` of run ${labels[RUN_ID_LABEL]}`})`
          : `container ${holderName}, not restored by this run`;
      clashes.push({ network, address, holderId, holder, probe });
    }
    return { wanted, clashes };
  }

  /** Gives the probe container another address on `network`: a machine needs the one it has. */
  private async moveProbe(runId: string, probeId: string, network: string): Promise<void> {
    const net = this.docker.getNetwork(network);
    // A probe running meanwhile fails, and its verification tries it again.
    await net.disconnect({ Container: probeId, Force: true });
    await net.connect({ Container: probeId, EndpointConfig: await this.helperEndpoint(runId, network) });
  }

  /**
   * The endpoint of a container the host adds to a lab network itself (the probe container):
   * the highest free address of the lab's range, which holds no production address the lab was
   * told of, and none a restored machine is to have. Where Docker chose the subnet (production's
   * is in use on this engine) every address there is dynamic: Docker picks.
   */
  private async helperEndpoint(runId: string, network: string): Promise<Docker.EndpointSettings> {
    const info = await this.docker.getNetwork(network).inspect();
    const cfg = info.IPAM?.Config?.find((c: any) => c.Subnet && !c.Subnet.includes(':'));
    if (!cfg?.Subnet || !cfg.IPRange) return {};
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${RUN_ID_LABEL}=${runId}`] } });
    const address = highestFree(cfg.Subnet, cfg.IPRange, [
      cfg.Gateway,
      ...Object.values((info.Containers ?? {}) as Record<string, { IPv4Address?: string }>).map(c => c.IPv4Address),
      ...containers.map(c => c.NetworkSettings?.Networks?.[network]?.IPAMConfig?.IPv4Address),
    ]);
    return address ? { IPAMConfig: { IPv4Address: address } } : {};
  }

  inspectMachine(machine: MachineHandle): Promise<MachineState> {
    return onEngine(this.id, () => this.inspectMachineOn(machine));
  }

  private async inspectMachineOn(machine: MachineHandle): Promise<MachineState> {
    const info = await this.docker.getContainer(machine.id).inspect();
    const health = info.State.Health?.Status;
    return {
      running: info.State.Running,
      exitCode: info.State.Running ? undefined : info.State.ExitCode,
      health: health === 'starting' || health === 'healthy' || health === 'unhealthy' ? health : undefined,
    };
  }

  logTail(machine: MachineHandle, lines: number): Promise<string> {
    return onEngine(this.id, () => this.logTailOn(machine, lines));
  }

  private async logTailOn(machine: MachineHandle, lines: number): Promise<string> {
    const raw = (await this.docker
      .getContainer(machine.id)
      .logs({ stdout: true, stderr: true, follow: false, tail: lines })) as unknown as Buffer;
    const { stdout, stderr } = demuxDockerStream(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
    return stderr ? `${stdout}${stdout.endsWith('\n') || !stdout ? '' : '\n'}${stderr}` : stdout;
  }

  /**
   * Creates the probe image on the engine (`docker import` of a static busybox) unless it is there,
   * built from the busybox file the backend has. Where the backend has none, one it built from
   * another (or that someone put there) is used as it is: nothing else could be built.
   */
  ensureProbeImage(): Promise<void> {
    return onEngine(this.id, () => this.ensureProbeImageOn());
  }

  private ensureProbeImageOn(): Promise<void> {
    // Looked for every time (the image may be pruned between runs); one import at a time.
    this.probeImageReady ??= (async () => {
      const busyboxPath = this.options.busyboxPath ?? '/bin/busybox';
      const digest = busyboxDigest(busyboxPath);
      const present = await this.docker
        .getImage(this.probeImage)
        .inspect()
        .catch(e => {
          if (isStatus(e, 404)) return undefined;
          throw e;
        });
      if (present && (digest === undefined || present.Config?.Labels?.[PROBE_BUSYBOX_LABEL] === digest)) return;
      // Refuses a busybox that cannot run alone, naming it and the setting.
      const tar = createTar(busyboxRootfsEntries(busyboxPath));
      const [repo, tag = 'latest'] = splitRef(this.probeImage);
      const stream = await this.docker.importImage(
        Readable.from([tar]) as any,
        { repo, tag, changes: [`LABEL ${PROBE_BUSYBOX_LABEL}=${digest}`] } as any,
      );
      await followProgress(stream as unknown as Readable);
      // The one it replaces lost its tag: removed unless a probe container uses it.
      if (present && (await this.docker.getImage(this.probeImage).inspect()).Id !== present.Id) await this.removeImage(present.Id);
    })().finally(() => {
      this.probeImageReady = undefined;
    });
    return this.probeImageReady;
  }

  private probeContainer(lab: LabHandle): Promise<Docker.Container> {
    const key = probeContainerKey(lab);
    let pending = this.probeContainers.get(key);
    if (!pending) {
      pending = this.createProbeContainer(lab).catch(e => {
        this.probeContainers.delete(key);
        throw e;
      });
      this.probeContainers.set(key, pending);
    }
    return pending;
  }

  private async createProbeContainer(lab: LabHandle): Promise<Docker.Container> {
    const name = dockerName('rr', lab.runId, 'probe');
    const existing = this.docker.getContainer(name);
    try {
      const info = await existing.inspect();
      if (!info.State.Running) await existing.start();
      return existing;
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
    await this.ensureProbeImage();
    const [first, ...rest] = lab.networks;
    // An address of its own, not Docker's next one: that is a later wave's production address
    // when production's were dynamic too.
    const container = await this.docker.createContainer({
      name,
      Image: this.probeImage,
      Cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'],
      Labels: { [RUN_ID_LABEL]: lab.runId, [PROBE_LABEL]: 'true' },
      HostConfig: { NetworkMode: first ?? 'none', RestartPolicy: { Name: 'no' } },
      NetworkingConfig: first
        ? { EndpointsConfig: { [first]: await this.helperEndpoint(lab.runId, first) } }
        : undefined,
    });
    for (const net of rest) {
      await this.docker
        .getNetwork(net)
        .connect({ Container: container.id, EndpointConfig: await this.helperEndpoint(lab.runId, net) });
    }
    await container.start();
    return container;
  }

  /**
   * Where the probe reaches the machine: its lab address; before it has one (not running), its
   * container name, which only the lab's DNS answers. Never a production name (its hostname,
   * e.g. the production host's for a host-network machine): the lab's DNS passes names it does
   * not know on, and outside an isolated lab that may reach production itself.
   */
  private async probeTarget(lab: LabHandle, machine: MachineHandle): Promise<string | undefined> {
    const info = await this.docker.getContainer(machine.id).inspect();
    const endpoints = lab.networks.map(net => info.NetworkSettings.Networks?.[net]).filter(Boolean);
    if (endpoints.length === 0) return undefined;
    return endpoints.find(ep => ep!.IPAddress)?.IPAddress || info.Name.replace(/^\//, '');
  }

  probe(lab: LabHandle, machine: MachineHandle, probe: ProbeSpec): Promise<ProbeResult> {
    return onEngine(this.id, () => this.probeOn(lab, machine, probe));
  }

  private async probeOn(lab: LabHandle, machine: MachineHandle, probe: ProbeSpec): Promise<ProbeResult> {
    const target = await this.probeTarget(lab, machine);
    if (!target) {
      return { ok: false, message: `machine ${machine.machineRef} is on no lab network: nothing in the lab reaches it` };
    }
    const pending = this.probeContainer(lab);
    const container = await pending;
    let cmd: string[];
    let what: string;
    if (probe.kind === 'http') {
      const path = `/${(probe.path ?? '/').replace(/^\/+/, '')}`;
      const url = `http://${target}:${probe.port}${path}`;
      // busybox wget's own -T option crashes in Debian's static build: bound it with timeout.
      cmd = ['timeout', '5', 'wget', '-q', '-O', '/dev/null', url];
      what = `HTTP GET ${url}`;
    } else {
      // busybox nc has no -z: connect, then run `true` (closes at once).
      cmd = ['nc', '-w', '2', target, String(probe.port), '-e', 'true'];
      what = `TCP connect to ${target}:${probe.port}`;
    }
    const where = `from the lab (probe container, network ${lab.networks.join(', ')})`;
    const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true }).catch(async e => {
      // The probe container stopped or went (killed, out of memory): made again, else every
      // later probe of the run would fail on it rather than on the machine.
      if (!isStatus(e, 404, 409)) throw e;
      // Only the one that failed: a probe beside this one (a wave's machines are verified at
      // once) may already be making it again, and a second would clash with it on its name.
      const key = probeContainerKey(lab);
      if (this.probeContainers.get(key) === pending) this.probeContainers.delete(key);
      return (await this.probeContainer(lab)).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    });
    const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as Readable;
    // A broken output stream is not a probe that took too long: its exit code still tells.
    let readFailed: Error | undefined;
    const read = readAll(stream).catch(e => {
      readFailed = e as Error;
      return Buffer.alloc(0);
    });
    const raw = await withTimeout(read, 15_000, () => stream.destroy());
    const { stdout, stderr } = demuxDockerStream(raw ?? Buffer.alloc(0));
    const { ExitCode } = await exec.inspect();
    const output = `${stdout}${stderr}`.trim().replace(/\s+/g, ' ');
    if (raw === undefined) return { ok: false, message: `${what} ${where}: no result within 15 s` };
    if (ExitCode === 0) return { ok: true, message: `${what} ${where}: ok` };
    const reason =
      output ||
      (readFailed && `its output could not be read: ${readFailed.message}`) ||
      (ExitCode === 143 || ExitCode === 124 ? 'timed out' : `exit code ${ExitCode}`);
    return { ok: false, message: `${what} ${where}: failed (${reason})` };
  }

  listLabResources(runId?: string): Promise<LabResources> {
    return onEngine(this.id, () => this.listLabResourcesOn(runId));
  }

  private async listLabResourcesOn(runId?: string): Promise<LabResources> {
    const label = runId === undefined ? RUN_ID_LABEL : `${RUN_ID_LABEL}=${runId}`;
    const containers = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    const networks = await this.docker.listNetworks({ filters: { label: [label] } });
    return {
      machines: containers.map(c => (c.Names?.[0] ?? c.Id).replace(/^\//, '')).sort(),
      networks: networks.map(n => n.Name).sort(),
    };
  }

  teardown(runId: string): Promise<LabResources> {
    return onEngine(this.id, () => this.teardownOn(runId));
  }

  /** Removes those of `imageIds` no container on the engine uses any more (another run's, production's). */
  private async removeUnusedImages(imageIds: string[]): Promise<void> {
    if (imageIds.length === 0) return;
    const inUse = new Set((await this.docker.listContainers({ all: true })).map(c => c.ImageID));
    for (const id of imageIds) {
      if (!inUse.has(id)) await this.removeImage(id);
    }
  }

  /**
   * Removes an image by id, or one tag of it (the image too with its last tag). Not forced:
   * Docker refuses (409) while a container uses it, also one created in the meantime.
   */
  private async removeImage(idOrRef: string): Promise<void> {
    try {
      await this.docker.getImage(idOrRef).remove();
    } catch (e) {
      if (!isStatus(e, 404, 409)) throw e;
    }
  }

  /**
   * False if it was gone already. A container removal still under way (a teardown racing
   * another) keeps an endpoint on the network for a moment (403/409): tried again, for 10 s.
   */
  private async removeNetwork(id: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.docker.getNetwork(id).remove();
        return true;
      } catch (e) {
        if (isStatus(e, 404)) return false;
        if (!isStatus(e, 403, 409) || attempt === 20) throw e;
      }
      await new Promise(resolve => setTimeout(resolve, 500));
    }
  }

  /**
   * Disconnects what is still on a lab network once the run's containers are gone: one that is
   * not the run's (someone's debugging container, connected by hand) would keep the network, and
   * so the lab, on the host for good, and every later run there would fail on it.
   */
  private async disconnectOthers(networkId: string, runContainers: Set<string>): Promise<void> {
    let attached: string[];
    try {
      attached = Object.keys((await this.docker.getNetwork(networkId).inspect()).Containers ?? {});
    } catch (e) {
      if (isStatus(e, 404)) return;
      throw e;
    }
    for (const container of attached) {
      if (runContainers.has(container)) continue; // its removal (maybe another teardown's) frees it
      // Failing (gone meanwhile), the removal below still waits for its endpoint to go.
      await this.docker
        .getNetwork(networkId)
        .disconnect({ Container: container, Force: true })
        .catch(() => {});
    }
  }

  private async teardownOn(runId: string): Promise<LabResources> {
    const label = `${RUN_ID_LABEL}=${runId}`;
    const removed: LabResources = { machines: [], networks: [] };
    const containers = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    // Captured images restored by this run: those tagged as loaded for it, and those of its
    // machines (loaded for another run, or by a backend from before the tags).
    const runTag = `:${dockerTag(runId)}`;
    const tagged = await this.docker.listImages({ filters: { reference: [`${LAB_IMAGE_REPOSITORY}/*${runTag}`] } });
    const images = imagesToRemove(tagged.map(i => i.Id), containers);
    await Promise.all(
      containers.map(async c => {
        try {
          await this.docker.getContainer(c.Id).remove({ force: true, v: true });
          removed.machines.push((c.Names?.[0] ?? c.Id).replace(/^\//, ''));
        } catch (e) {
          if (!isStatus(e, 404, 409)) throw e;
        }
      }),
    );
    const networks = await this.docker.listNetworks({ filters: { label: [label] } });
    for (const n of networks) {
      await this.disconnectOthers(n.Id, new Set(containers.map(c => c.Id)));
      if (await this.removeNetwork(n.Id)) removed.networks.push(n.Name);
    }
    // The run's tags first: an image with tags of two repositories (the run's, and the capture's
    // where an older backend's load kept the archive's name) is not removed by id. Untagged, one
    // no container uses is gone.
    for (const ref of tagged.flatMap(i => i.RepoTags ?? [])) {
      if (ref.startsWith(`${LAB_IMAGE_REPOSITORY}/`) && ref.endsWith(runTag)) await this.removeImage(ref);
    }
    await this.removeUnusedImages(images);
    for (const key of this.probeContainers.keys()) {
      if (key.startsWith(`${runId}\n`)) this.probeContainers.delete(key);
    }
    removed.machines.sort();
    removed.networks.sort();
    return removed;
  }
}

/**
 * The images a run restored its machines from: the ids tagged as loaded for it, plus the image of
 * each restored machine container (capture-id label; the probe image is shared, so not it).
 */
export function imagesToRemove(
  loaded: Iterable<string> | undefined,
  runContainers: Array<Pick<Docker.ContainerInfo, 'ImageID' | 'Labels'>>,
): string[] {
  const ids = new Set(loaded ?? []);
  for (const c of runContainers) {
    if (c.Labels?.[CAPTURE_ID_LABEL] && c.ImageID) ids.add(c.ImageID);
  }
  return [...ids].sort();
}

/**
 * Labels by which an orchestrator finds its containers: `docker compose` (project, service,
 * number), swarm and stacks. On an engine that also runs production, or runs a project of the
 * same name, a lab container keeping them is one of production's to it: `down` removes it, `up`
 * recreates it on production's networks and ports, or scales production's own away.
 */
const ORCHESTRATOR_LABEL_PREFIXES = ['com.docker.compose.', 'com.docker.swarm.', 'com.docker.stack.'];

/**
 * The labels a lab container gets from its capture: the orchestrator's emptied, not left out, as
 * the captured image carries them too (`docker commit` keeps the container's labels) and a
 * container gets its image's labels unless it sets them itself.
 */
function withoutOrchestratorLabels(labels: Record<string, string>): { labels: Record<string, string>; blanked: string[] } {
  const out: Record<string, string> = {};
  const blanked: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const orchestratorsOwn = ORCHESTRATOR_LABEL_PREFIXES.some(prefix => key.startsWith(prefix));
    if (orchestratorsOwn) blanked.push(key);
    out[key] = orchestratorsOwn ? '' : value;
  }
  return { labels: out, blanked: blanked.sort() };
}

/** A `docker save` archive's manifest with each image in it named `ref`, and by nothing else. */
function namedIn(manifest: Buffer, ref: string): Buffer {
  const images = JSON.parse(manifest.toString('utf8')) as Array<Record<string, unknown>>;
  return Buffer.from(JSON.stringify(images.map(image => ({ ...image, RepoTags: [ref] }))));
}

/** Who holds a subnet on the engine: a network of another run, a failover's where one does. */
interface SubnetHolder {
  name: string;
  runId?: string;
  /** A run's network that is not internal: a failover's, whose machines it kept serve production. */
  failover: boolean;
}

/** The network of `networks` (not run `runId`'s) whose IPv4 subnet overlaps `subnet`; a failover's first. */
export function subnetHolder(networks: Docker.NetworkInspectInfo[], subnet: string, runId: string): SubnetHolder | undefined {
  const holders: SubnetHolder[] = networks
    .filter(n => n.Labels?.[RUN_ID_LABEL] !== runId)
    .filter(n => (n.IPAM?.Config ?? []).some((c: { Subnet?: string }) => c.Subnet && subnetsOverlap(c.Subnet, subnet)))
    .map(n => {
      const owner = n.Labels?.[RUN_ID_LABEL];
      return { name: n.Name, ...(owner ? { runId: owner } : {}), failover: !!owner && n.Internal !== true };
    });
  return holders.find(h => h.failover) ?? holders[0];
}

function describeHolder(holder: SubnetHolder): string {
  if (holder.failover) return `network ${holder.name} of failover ${holder.runId}, whose machines kept there serve production`;
  return holder.runId ? `network ${holder.name} of run ${holder.runId}` : `network ${holder.name}`;
}

/** What an engineer does first to free the engine of what a failover kept: release it, or remove it by hand. */
function releaseFirst(runId: string): string {
  return `release failover ${runId} first (recovery release ${runId}, or POST /runs/${runId}/release), or else remove it by hand: ${removalCommands(runId)}`;
}

/** How an engineer removes what a failover kept on the engine, once production no longer needs it. */
export function removalCommands(runId: string): string {
  const label = `label=${RUN_ID_LABEL}=${runId}`;
  const images = `reference=${LAB_IMAGE_REPOSITORY}/*:${dockerTag(runId)}`;
  return `docker rm -f $(docker ps -aq --filter ${label}); docker network rm $(docker network ls -q --filter ${label}); docker rmi $(docker images -q --filter '${images}')`;
}

/** One probe container per run and set of lab networks. */
const probeContainerKey = (lab: LabHandle) => `${lab.runId}\n${lab.networks.join(',')}`;

function splitRef(ref: string): [string, string | undefined] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, undefined];
}

async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>(resolve => {
    timer = setTimeout(() => {
      onTimeout();
      resolve(undefined);
    }, ms);
  });
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
