import type Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError, NotFoundError } from '@backstage/errors';
import {
  RUN_ID_LABEL,
  type ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import { dockerTime, lastFailedCheckOutput } from './machineState';
import { followKeptMachineStops } from './keptMachineStops';
import {
  describePortBinding,
  engineError,
  failoverPorts,
  sameIp,
  sameSubnet,
  TransferProgressLines,
} from '@backstage-recovery/plugin-recovery-node';
import type {
  HostPortInUse,
  HostRoom,
  HypervisorHost,
  LabHandle,
  LabNetwork,
  LabResources,
  MachineHandle,
  MachineLimits,
  MachineState,
  ProbeResult,
  RestorableCapture,
  RestoredMachine,
  TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import {
  PRODUCTION_IPC_MODE_LABEL,
  PRODUCTION_NETWORK_MODE_LABEL,
  PRODUCTION_PID_MODE_LABEL,
  confinedLimits,
  dnsInLab,
  dockerHealthcheck,
  dockerLimits,
  joinsLabNetwork,
  networkIdentity,
  sysctlsInLab,
  type NetworkIdentity,
} from './adapt';
import { firstHost, helperRange } from './lib/addresses';
import { engineWords, isEngineUnreachable, onEngine } from './lib/engineErrors';
import { artifactPath } from './captureNames';
import { demuxDockerStream, isStatus } from './lib/dockerStreams';
import { hasImage } from './lib/engineImages';
import { captureArchiveContent } from './lib/layerStore';
import {
  loadArtifact,
  restoreVolumes,
  verifyArtifact,
  verifyVolumes,
} from './captureArtifacts';
import {
  describeHolder,
  refuseKeptElsewhere,
  releaseFirst,
  subnetHolder,
} from './keptByFailovers';
import { LabProbe } from './LabProbe';
import { foreignSubnetHolder, labSubnetHeld, subnetsInLab } from './labSubnets';
import { removeLab } from './labTeardown';
import { withTmpfsMountpoints } from './tmpfsMountpoints';
import {
  describeSharedVolume,
  fillSharedVolume,
  type SharedVolume,
  sharedVolumesOf,
  withoutVolumes,
} from './sharedVolumes';
import {
  CAPTURE_ID_LABEL,
  HOST_NETWORK,
  MACHINE_REF_LABEL,
  NETWORK_LABEL,
  PROBE_LABEL,
  labImageRef,
  labNetworkName,
  machineContainerName,
  splitRef,
  withoutOrchestratorLabels,
} from './labNames';

export interface DockerHypervisorHostOptions {
  /** Capture store directory, to resolve relative artifacts. */
  storeDirectory: string;
  /** Image of the per-lab probe container; created by `docker import` if missing. */
  probeImage?: string;
  /** Static busybox binary the probe image is built from. */
  busyboxPath?: string;
  /** How often a machine's progress lines may come (PROGRESS_LINE_INTERVAL_MS unless said). */
  progressIntervalMs?: number;
  /** Where following kept machines' stops says it lost the engine. */
  logger?: LoggerService;
}

/**
 * A Docker engine as the recovery host: a run's lab is a set of bridge networks (same
 * subnets as production when the engine allows it; `internal` for tests), recovered
 * machines are containers created from the captured images, probes run from a probe
 * container inside the lab. Everything carries the run id label.
 */
export class DockerHypervisorHost implements HypervisorHost {
  private readonly labProbe: LabProbe;
  /** The engine's answer to fixesMacPerNetwork, once asked. */
  private macPerNetwork?: Promise<boolean>;
  /** The fills of the runs' shared volumes, by lab volume (sharedVolumes.ts). */
  private readonly volumeFills = new Map<
    string,
    { runId: string; fill: Promise<void> }
  >();

  constructor(
    readonly id: string,
    private readonly docker: Docker,
    private readonly options: DockerHypervisorHostOptions,
  ) {
    this.labProbe = new LabProbe(id, docker, options);
  }

  createLab(
    runId: string,
    networks: LabNetwork[],
    options: { internal: boolean },
  ): Promise<LabHandle> {
    return onEngine(
      this.id,
      () => this.createLabOn(runId, networks, options),
      `creating the lab of run ${runId} failed`,
    );
  }

  private async createLabOn(
    runId: string,
    networks: LabNetwork[],
    options: { internal: boolean },
  ): Promise<LabHandle> {
    const names: string[] = [];
    const seen = new Set<string>();
    // A failover's networks hold production's subnets for as long as it keeps its machines (they
    // serve production there now). Another lab there would get other subnets from Docker, and its
    // machines other addresses: a test would not emulate production (and fail at the ready
    // timeout where a machine needs its address), a second failover would boot apart from the
    // first. Refused before anything is made.
    const engineNetworks = networks.some(
      n => subnetsInLab(n, options).length > 0,
    )
      ? await this.docker.listNetworks()
      : [];
    for (const network of networks) {
      for (const subnet of subnetsInLab(network, options)) {
        const holder = subnetHolder(engineNetworks, subnet, runId);
        if (!holder?.failover) continue;
        const [why, elsewhere] = options.internal
          ? [
              "a test lab cannot have it beside them, so its machines would not get production's addresses",
              'Run the test on another hypervisor host',
            ]
          : [
              "this failover's machines would boot on other addresses, apart from them",
              'Fail over onto another hypervisor host',
            ];
        throw new ConflictError(
          `production network ${network.name} (${subnet}) is held on engine ${this.id} by ${describeHolder(holder)}: ${why}. ` +
            `${elsewhere} or, once production no longer needs what failover ${holder.runId} kept, ${releaseFirst(holder.runId!)}`,
        );
      }
    }
    // A network no run made (the host's own, one left by hand) on a production subnet: Docker
    // would give the lab another subnet, and a machine that reaches another by its address would
    // fail only at its ready timeout. Refused before anything is made, naming it.
    const foreign = foreignSubnetHolder(engineNetworks, networks, {
      engine: this.id,
      internal: options.internal,
    });
    if (foreign) throw labSubnetHeld(this.id, foreign, options);
    // Made after those that get production's subnet: a subnet Docker picks could be one of theirs.
    const chosenByDocker: Array<Parameters<Docker['createNetwork']>[0]> = [];
    // Every production address the lab is told of, per network: its own range avoids them.
    const reserved = new Map<string, string[]>();
    for (const network of networks) {
      reserved.set(network.name, [
        ...(reserved.get(network.name) ?? []),
        ...[network.ipv4Address, network.ipv6Address].filter(
          (a): a is string => !!a,
        ),
      ]);
    }
    // Host-network machines go on the lab network: a lab of only them needs one too.
    const wanted =
      networks.length > 0 ? networks : [{ name: HOST_NETWORK, aliases: [] }];
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
          ...(options.internal
            ? { 'com.docker.network.bridge.inhibit_ipv4': 'true' }
            : {}),
        },
      };
      if (network.subnet) {
        // Docker picks addresses (probe container, host-network machines) from a range holding
        // no production address, at the top of the subnet: from .2 up, as it does by default,
        // it handed a later wave's address to the probe container. Explicit gateway: with a
        // range, Docker would otherwise make the range's first address the gateway.
        const gateway = network.gateway ?? firstHost(network.subnet);
        const range = helperRange(network.subnet, [
          ...(reserved.get(network.name) ?? []),
          gateway,
        ]);
        const ipv4 = {
          Subnet: network.subnet,
          ...(gateway ? { Gateway: gateway } : {}),
          ...(range ? { IPRange: range } : {}),
        };
        try {
          // A test lab is IPv4-only: Docker puts the IPv6 gateway on the host's bridge, which
          // inhibit_ipv4 does not keep off, and the isolated lab would reach the host (and, on a
          // role both engine, production's ports docker-proxy publishes on [::]) through it.
          // restoreMachine says whose IPv6 address that costs.
          if (network.ipv6Subnet && !options.internal) {
            // The same for IPv6: Docker hands out IPv6 addresses from the bottom of the subnet too.
            const gateway6 =
              network.ipv6Gateway ?? firstHost(network.ipv6Subnet);
            const range6 = helperRange(network.ipv6Subnet, [
              ...(reserved.get(network.name) ?? []),
              gateway6,
            ]);
            const ipv6 = {
              Subnet: network.ipv6Subnet,
              ...(gateway6 ? { Gateway: gateway6 } : {}),
              ...(range6 ? { IPRange: range6 } : {}),
            };
            try {
              await this.docker.createNetwork({
                ...base,
                EnableIPv6: true,
                IPAM: { Driver: 'default', Config: [ipv4, ipv6] },
              });
              continue;
            } catch (e) {
              // A subnet in use (of either family) is tried again IPv4-only, whose checks below
              // tell which. Any other refusal (IPv6 off on the engine) is IPv6's: a failover
              // without it would fail only at its first IPv6 machine, after earlier waves booted.
              if (isEngineUnreachable(this.id, e)) throw e;
              // `overlaps`: Docker's `Pool overlaps with other one`, not its `non-overlapping`.
              if (
                !/overlaps|in use|conflict/i.test(String((e as Error).message))
              )
                throw new ConflictError(
                  `failover ${runId} cannot give the lab production network ${network.name}'s IPv6 subnet ${network.ipv6Subnet}: ` +
                    `engine ${this.id} refused lab network ${name} with it (${engineWords(this.id, e)}), so its machines would not get their production IPv6 addresses. ` +
                    `Enable IPv6 on that engine's host, or fail over onto another hypervisor host`,
                );
            }
          }
          await this.docker.createNetwork({
            ...base,
            IPAM: { Driver: 'default', Config: [ipv4] },
          });
          continue;
        } catch (e) {
          // The subnet is in use on this engine (production's own network where it is also the
          // primary engine, another run's): Docker chooses; restoreMachine reports it.
          if (
            e instanceof ConflictError ||
            !/overlap|in use|conflict/i.test(String((e as Error).message))
          )
            throw e;
          // One made since the look above: refused as that would have (the run removes what
          // this lab made so far).
          const since = foreignSubnetHolder(
            await this.docker.listNetworks(),
            [network],
            { engine: this.id, internal: options.internal },
          );
          if (since) throw labSubnetHeld(this.id, since, options);
        }
      }
      chosenByDocker.push(base);
    }
    for (const base of chosenByDocker) await this.docker.createNetwork(base);
    return { runId, networks: names };
  }

  /**
   * Whether the engine fixes a MAC per network (API 1.44 on), not only container-wide. Asked once
   * per host, not per machine; a failed ask is asked again.
   */
  private fixesMacPerNetwork(): Promise<boolean> {
    if (!this.macPerNetwork) {
      const asked = this.docker.version().then(({ ApiVersion }) => {
        const [major, minor] = (ApiVersion ?? '').split('.').map(Number);
        return major > 1 || (major === 1 && minor >= 44);
      });
      this.macPerNetwork = asked;
      asked.catch(() => {
        if (this.macPerNetwork === asked) this.macPerNetwork = undefined;
      });
    }
    return this.macPerNetwork;
  }

  private async labNetworkSubnet(name: string): Promise<NetworkIdentity> {
    return networkIdentity(await this.docker.getNetwork(name).inspect());
  }

  room(runId: string, waves: RestorableCapture[][]): Promise<HostRoom> {
    return onEngine(
      this.id,
      () => this.roomOn(runId, waves),
      `checking the room for run ${runId} (disk space and memory) failed`,
    );
  }

  /**
   * What the captures' archives hold, each layer once by its content's sha256 (the images sharing
   * it share it, whatever directory id each archive gives it) and each other file by its path once,
   * plus their volumes, plus the archives of the largest wave whole: `docker load` unpacks an
   * archive in the data root (its `tmp`) before it takes in the layers, and a wave's machines are
   * loaded at once, beside what earlier waves left. A capture whose image the engine has is not
   * loaded (restoreMachine), and takes only its volumes. Layers the engine has under other images
   * are counted all the same: only inspecting every image there would tell. Against the space free
   * in the engine's data root, as `df` inside a helper container reads it (the engine may be
   * remote). Beside it, the memory the machines held when captured, all at once (every wave stays
   * up), against the host's MemAvailable, read in the same container.
   */
  private async roomOn(
    runId: string,
    waves: RestorableCapture[][],
  ): Promise<HostRoom> {
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
        for (const volume of capture.runtime.volumes ?? [])
          neededBytes += volume.sizeBytes;
        if (await hasImage(this.docker, capture.imageId)) continue;
        const archive = artifactPath(
          this.options.storeDirectory,
          capture.artifact,
        );
        for (const [key, size] of await captureArchiveContent(archive)) {
          files.set(key, size);
          waveBytes += size;
        }
      }
      largestWave = Math.max(largestWave, waveBytes);
    }
    neededBytes += largestWave;
    for (const size of files.values()) neededBytes += size;
    const { DockerRootDir: root } = await this.docker.info();
    const where = `${this.id}:${root}`;
    const memory =
      memoryKnownFor > 0 ? { neededMemoryBytes, memoryKnownFor } : {};
    try {
      return {
        neededBytes,
        where,
        ...memory,
        ...(await this.labProbe.freeRoomIn(runId, root)),
      };
    } catch (e) {
      return { neededBytes, where, ...memory, unknown: (e as Error).message };
    }
  }

  /**
   * Reads the capture's image archive (its layers from the store) and its volumes' archives
   * through sha256 against the checksums recorded, a chunk at a time, and loads nothing: what a
   * run asks of every capture before it builds its lab. A damaged capture fails with a
   * CaptureDamagedError naming the file (and the layer files that no longer hold their content).
   * Its restore verifies it again (restoreMachine): the store may change in between.
   */
  async verifyCapture(
    capture: RestorableCapture,
    options: { signal?: AbortSignal; progress?: TransferProgressListener } = {},
  ): Promise<void> {
    const progress = this.progressLines(options.progress);
    await verifyArtifact(
      this.options.storeDirectory,
      capture,
      options.signal,
      progress,
    );
    await verifyVolumes(
      this.options.storeDirectory,
      capture,
      options.signal,
      progress,
    );
  }

  /** A machine's progress lines, paced as configured. */
  private progressLines(
    listener: TransferProgressListener | undefined,
  ): TransferProgressLines {
    return new TransferProgressLines(listener, {
      intervalMs: this.options.progressIntervalMs,
    });
  }

  /** Verifies the artifact's checksum, then `docker load`s it. */
  loadCapture(
    capture: Pick<
      RestorableCapture,
      'captureId' | 'artifact' | 'checksum' | 'imageId'
    >,
  ): Promise<void> {
    return onEngine(
      this.id,
      async () => {
        await verifyArtifact(this.options.storeDirectory, capture);
        await loadArtifact(this.docker, this.options.storeDirectory, capture);
      },
      `loading capture ${capture.captureId} failed`,
    );
  }

  restoreMachine(
    lab: LabHandle,
    capture: RestorableCapture,
    options: {
      progress?: TransferProgressListener;
      runCaptures?: RestorableCapture[];
      booted?: MachineHandle[];
    } = {},
  ): Promise<RestoredMachine> {
    return onEngine(
      this.id,
      () =>
        this.restoreMachineOn(
          lab,
          capture,
          this.progressLines(options.progress),
          options.runCaptures ?? [],
          options.booted ?? [],
        ),
      `restoring ${capture.machineRef} (capture ${capture.captureId}) in the lab of run ${lab.runId} failed`,
    );
  }

  private async restoreMachineOn(
    lab: LabHandle,
    capture: RestorableCapture,
    progress: TransferProgressLines,
    runCaptures: RestorableCapture[],
    booted: MachineHandle[],
  ): Promise<RestoredMachine> {
    const adaptations: string[] = [];
    const addressesLost: string[] = [];
    const test = await this.isolated(lab);
    if (!test)
      await refuseKeptElsewhere(
        this.docker,
        this.id,
        lab.runId,
        capture.machineRef,
      );
    // Always: a test run is what proves the capture store can restore production, so it must
    // read the archive even when the image is still on this engine (always so with role both).
    await verifyArtifact(
      this.options.storeDirectory,
      capture,
      undefined,
      progress,
    );
    await verifyVolumes(
      this.options.storeDirectory,
      capture,
      undefined,
      progress,
    );
    // Not loaded again when present: the image id is a digest of the image's content, and a
    // matching checksum means the archive is byte for byte what `docker save` wrote of it.
    let loaded = false;
    if (!(await hasImage(this.docker, capture.imageId))) {
      await this.loadFor(lab.runId, capture, progress);
      loaded = true;
    }
    const runtime = capture.runtime;
    // Volumes other machines of the run mounted too: one lab volume each, filled once.
    const shared = sharedVolumesOf(lab.runId, capture, runCaptures);
    for (const s of shared) {
      await this.fillOnce(lab.runId, s, capture.imageId);
      adaptations.push(describeSharedVolume(s));
    }
    const sharedMounts = shared.map(s => ({
      Type: 'volume' as const,
      Source: s.labVolume,
      Target: s.own.destination,
    }));
    const name = machineContainerName(lab.runId, capture.machineRef);
    const endpoints: Array<{
      network: string;
      config: Docker.EndpointSettings;
    }> = [];
    const mode = runtime.labels[PRODUCTION_NETWORK_MODE_LABEL];
    const sharedOwner = namespaceOwner(mode, runCaptures, booted);
    // The lab container whose network namespace it shares, as it shared its machine's in production.
    const sharedWith = sharedOwner?.booted?.id;
    if (sharedOwner?.booted) {
      adaptations.push(
        `shares the network namespace of ${sharedOwner.machineRef} in the lab, as it shared that machine's container's in production (network mode ${mode})`,
      );
    } else if (joinsLabNetwork(runtime)) {
      // Host network (or another container's) in production, so no network captured: as the
      // capture's adaptation says, it gets an address on the lab network, one Docker picks from
      // the lab's range, which holds none of the machines' production addresses. Its hostname
      // (the production host's) is an alias, so the lab's DNS answers it rather than pass it on.
      // Sharing a machine of a later wave (or this one) would need it up first: the plan's order.
      const why = !mode.startsWith('container:')
        ? `network mode ${mode} in production`
        : sharedOwner
          ? `shared the network namespace of ${sharedOwner.machineRef} in production (network mode ${mode}), which does not boot in an earlier wave, so it cannot share it in the lab`
          : `shared the network namespace of container ${mode.slice('container:'.length)} in production, no machine of this run${
              // Older captures recorded no production container id to find it by.
              runCaptures.some(
                c =>
                  c.machineRef !== capture.machineRef &&
                  !c.runtime.productionContainerId,
              )
                ? ' (or one whose capture is too old to tell: capture it again)'
                : ''
            }`;
      for (const labNet of lab.networks) {
        endpoints.push({
          network: labNet,
          config: { Aliases: [runtime.hostname].filter(Boolean) },
        });
      }
      addressesLost.push(
        lab.networks.length > 0
          ? `${why}: on lab network ${lab.networks.join(', ')} with an address Docker picks, not the addresses it had in production`
          : `${why}: the lab has no network to put it on`,
      );
    }
    const namespaces = sharedNamespaces(
      capture,
      runCaptures,
      booted,
      adaptations,
    );
    // Production addresses a failover's copy would not get: createLab refuses the subnets it can
    // tell are held; whatever it could not (a test lab on them, no IPv6 on the engine) fails here.
    const offProduction: string[] = [];
    for (const net of runtime.networks) {
      const labNet = labNetworkName(lab.runId, net.name);
      if (!lab.networks.includes(labNet)) {
        addressesLost.push(
          `network ${net.name} is not part of the lab; not attached`,
        );
        continue;
      }
      const aliases = [
        ...new Set([...net.aliases, runtime.hostname].filter(Boolean)),
      ];
      const config: Docker.EndpointSettings = { Aliases: aliases };
      // Production's fixed MAC: the lab is isolated, and a failover's production is gone.
      if (net.macAddress) config.MacAddress = net.macAddress;
      const labSubnet =
        net.ipv4Address || net.ipv6Address
          ? await this.labNetworkSubnet(labNet)
          : {};
      if (net.ipv6Address) {
        if (
          net.ipv6Subnet &&
          labSubnet.ipv6Subnet &&
          sameSubnet(labSubnet.ipv6Subnet, net.ipv6Subnet)
        ) {
          config.IPAMConfig = { IPv6Address: net.ipv6Address };
        } else {
          // A test lab has no IPv6 (createLab says why); a failover's lacks it where the engine refused it.
          const inLab = labSubnet.ipv6Subnet
            ? `the lab network's IPv6 subnet is ${labSubnet.ipv6Subnet}`
            : test
              ? `the test lab is IPv4-only (engine ${this.id} would put its IPv6 gateway on the host's bridge, through which the lab would reach the host)`
              : `the lab network has no IPv6${net.ipv6Subnet ? ` (engine ${this.id} refused production's IPv6 subnet ${net.ipv6Subnet})` : ''}`;
          const lost = `network ${net.name}: ${inLab}; the machine does not get its production IPv6 address ${net.ipv6Address}`;
          addressesLost.push(lost);
          offProduction.push(lost);
        }
      }
      if (net.ipv4Address) {
        if (!net.subnet || labSubnet.subnet === net.subnet) {
          config.IPAMConfig = {
            ...config.IPAMConfig,
            IPv4Address: net.ipv4Address,
          };
        } else {
          const holder = net.subnet
            ? subnetHolder(
                await this.docker.listNetworks(),
                net.subnet,
                lab.runId,
              )
            : undefined;
          const lost = `network ${net.name}: production subnet ${net.subnet} is in use on engine ${this.id}${holder ? ` by ${describeHolder(holder)}` : ''}; the lab uses ${labSubnet.subnet} and the machine gets a dynamic address instead of ${net.ipv4Address}`;
          addressesLost.push(lost);
          offProduction.push(lost);
        }
      }
      endpoints.push({ network: labNet, config });
    }
    // A failover serves production: a copy its clients cannot reach at its address has not
    // recovered it, so the run fails naming it rather than succeed off production's subnet.
    if (!test && offProduction.length > 0)
      throw new ConflictError(
        `failover ${lab.runId} cannot give machine ${capture.machineRef} its production address on engine ${this.id}: ${offProduction.join('; ')}. ` +
          `Clients that reach it by address would not find it. Free production's subnet on that engine, or fail over onto another hypervisor host`,
      );
    const { labels: captured, blanked } = withoutOrchestratorLabels(
      runtime.labels,
    );
    if (blanked.length > 0) {
      adaptations.push(
        `labels of production's orchestrator emptied (${blanked.join(', ')}): it would take the lab's container for one of its own`,
      );
    }
    const labels = {
      ...captured,
      [RUN_ID_LABEL]: lab.runId,
      [MACHINE_REF_LABEL]: capture.machineRef,
      [CAPTURE_ID_LABEL]: capture.captureId,
    };
    const {
      hostConfig: confined,
      stopSignal,
      stopTimeout,
    } = await this.limitsInLab(test, runtime, adaptations);
    // Its tmpfs mounts get production's mode, not the mountpoint's the capture holds.
    const image = await withTmpfsMountpoints(
      this.docker,
      lab.runId,
      capture,
      confined.Tmpfs,
      adaptations,
    );
    // A failover publishes production's host ports (failoverPorts says which), so clients that
    // reached production by them reach it here; a test lab publishes none. What is not published,
    // and why, the capture's adaptations say.
    const publish = test ? [] : failoverPorts(runtime.portBindings).publish;
    const portBindings: Record<
      string,
      Array<{ HostIp: string; HostPort: string }>
    > = {};
    for (const p of publish)
      (portBindings[p.containerPort] ??= []).push({
        HostIp: p.hostIp ?? '',
        HostPort: String(p.hostPort),
      });
    const published = publish.map(describePortBinding);
    // Production's --dns servers: all in a failover, in a test lab those it reaches (dnsInLab).
    const { dns, note: dnsNote } = dnsInLab(runtime, test);
    if (dnsNote) adaptations.push(dnsNote);
    // Before API 1.44 an engine fixes a MAC container-wide only: the first network's.
    const containerWideMac =
      endpoints.some(ep => ep.config.MacAddress) &&
      !(await this.fixesMacPerNetwork());
    if (containerWideMac) {
      for (const ep of endpoints.slice(1).filter(e => e.config.MacAddress)) {
        adaptations.push(
          `MAC address ${ep.config.MacAddress} not fixed on lab network ${ep.network}: engine ${this.id} (Docker API before 1.44) fixes one only on a machine's first network, so Docker picks one there`,
        );
        delete ep.config.MacAddress;
      }
    }
    const [first, ...rest] = endpoints;
    const create = () =>
      this.docker.createContainer({
        name,
        // Docker refuses a hostname and exposed ports of one sharing another's namespace: that one's apply.
        ...(sharedWith ? {} : { Hostname: runtime.hostname }),
        Image: image,
        Env: runtime.env,
        Cmd: runtime.cmd,
        Entrypoint: runtime.entrypoint,
        WorkingDir: runtime.workingDir,
        User: runtime.user,
        ExposedPorts: sharedWith
          ? undefined
          : Object.fromEntries(
              [...runtime.exposedPorts, ...Object.keys(portBindings)].map(p => [
                p,
                {},
              ]),
            ),
        Healthcheck: dockerHealthcheck(runtime.healthcheck),
        Labels: labels,
        ...(containerWideMac && first?.config.MacAddress
          ? { MacAddress: first.config.MacAddress }
          : {}),
        ...(stopTimeout !== undefined ? { StopTimeout: stopTimeout } : {}),
        ...(stopSignal ? { StopSignal: stopSignal } : {}),
        HostConfig: {
          ...confined,
          ...namespaces,
          ...(sharedMounts.length > 0 && {
            Mounts: [...(confined.Mounts ?? []), ...sharedMounts],
          }),
          NetworkMode: sharedWith
            ? `container:${sharedWith}`
            : first
              ? first.network
              : 'none',
          ...(publish.length > 0 && !sharedWith
            ? { PortBindings: portBindings }
            : {}),
          // Docker refuses both with another's network namespace: that one's apply.
          ...(runtime.extraHosts?.length && !sharedWith
            ? { ExtraHosts: runtime.extraHosts }
            : {}),
          ...(dns.length > 0 && !sharedWith ? { Dns: dns } : {}),
        },
        NetworkingConfig:
          first && !sharedWith
            ? { EndpointsConfig: { [first.network]: first.config } }
            : undefined,
      });
    const createImage = () =>
      create().catch(async e => {
        // The image went after it was found: the teardown of another lab that held it (a left
        // lab, torn down by this run and the cleanup task at once) removed it as unused.
        if (
          loaded ||
          !isStatus(e, 404) ||
          (await hasImage(this.docker, capture.imageId))
        )
          throw e;
        await this.loadFor(lab.runId, capture);
        return create();
      });
    // A MAC the engine refuses (one it cannot give, say) costs the machine that MAC, not its run.
    const createOnce = () =>
      createImage().catch(async e => {
        // Created on its first network alone: the others' are asked as it joins them.
        if (!first?.config.MacAddress || !refusesMac(e)) throw e;
        adaptations.push(macRefused(this.id, first, e));
        delete first.config.MacAddress;
        return createImage();
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
      if (
        owner[RUN_ID_LABEL] !== lab.runId ||
        owner[MACHINE_REF_LABEL] !== capture.machineRef
      ) {
        throw new ConflictError(
          `machine ${capture.machineRef}: container ${name} on engine ${this.id} belongs to ${owner[MACHINE_REF_LABEL] ?? 'no machine'} of run ${owner[RUN_ID_LABEL] ?? 'none'}`,
        );
      }
      if (info.State?.Status !== 'created') {
        // Started, so its restore finished: only a network it lacks is joined.
        await this.joinMissing(info, endpoints);
        return {
          machine: this.handle(lab.runId, capture.machineRef, info.Id, runtime),
          adaptations,
          addressesLost,
          ...(published.length > 0 ? { published } : {}),
        };
      }
      // Never started: a backend stopped between its creation and its last network or volume may
      // have left it, and nothing on it says which it got. Made again from the capture.
      await existing.remove({ force: true, v: true });
      container = await createOnce();
    }
    try {
      // Before the first start: the machine boots on its captured data.
      await restoreVolumes(
        this.options.storeDirectory,
        container,
        withoutVolumes(
          capture,
          shared.map(s => s.own),
        ),
        progress,
      );
      for (const ep of rest) {
        const connect = () =>
          this.docker
            .getNetwork(ep.network)
            .connect({ Container: container.id, EndpointConfig: ep.config });
        await connect().catch(async e => {
          if (!ep.config.MacAddress || !refusesMac(e)) throw e;
          adaptations.push(macRefused(this.id, ep, e));
          delete ep.config.MacAddress;
          await connect();
        });
      }
    } catch (e) {
      // Not left for a resumed run to find and start without its data or some of its networks.
      await container.remove({ force: true, v: true }).catch(() => {});
      throw e;
    }
    return {
      machine: this.handle(
        lab.runId,
        capture.machineRef,
        container.id,
        runtime,
      ),
      adaptations,
      addressesLost,
      ...(published.length > 0 ? { published } : {}),
    };
  }

  /** Connects a started machine to those of `endpoints` it is not on. */
  private async joinMissing(
    info: Docker.ContainerInspectInfo,
    endpoints: Array<{ network: string; config: Docker.EndpointSettings }>,
  ): Promise<void> {
    for (const ep of endpoints) {
      if (info.NetworkSettings?.Networks?.[ep.network]) continue;
      await this.docker
        .getNetwork(ep.network)
        .connect({ Container: info.Id, EndpointConfig: ep.config });
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
  ): Promise<{
    hostConfig: Docker.HostConfig;
    stopSignal?: string;
    stopTimeout?: number;
  }> {
    const {
      hostConfig,
      stopSignal,
      stopTimeout: production,
    } = dockerLimits(restorableLimits(test, runtime.limits, adaptations));
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
    // No restart policy, in a failover too: an engine restarted (or its host rebooted) would start
    // every machine at once, a dependent before what it waits for. The backend's failover
    // supervision (FailoverSupervision) starts them again wave by wave, gated by the run's probes.
    const policy = runtime.restartPolicy;
    if (policy) {
      const named = `${policy.name}${policy.maximumRetryCount ? `:${policy.maximumRetryCount}` : ''}`;
      adaptations.push(
        test
          ? `restart policy ${named} not applied in a test lab: the run starts and stops its machines`
          : `restart policy ${named} not applied: the failover's supervision starts its machines again in boot order, wave by wave, where the engine would start them all at once`,
      );
    }
    if (hostConfig.NanoCpus) {
      // Docker refuses a CPU limit above the CPUs the host has.
      const { NCPU } = await this.docker.info();
      if (NCPU && hostConfig.NanoCpus > NCPU * 1e9) {
        adaptations.push(
          `CPU limit ${hostConfig.NanoCpus / 1e9} lowered to the ${NCPU} CPUs engine ${this.id} has`,
        );
        hostConfig.NanoCpus = NCPU * 1e9;
      }
    }
    return { hostConfig, stopSignal, stopTimeout };
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
  private async loadFor(
    runId: string,
    capture: RestorableCapture,
    progress?: TransferProgressLines,
  ): Promise<void> {
    const ref = labImageRef(runId, capture.imageId);
    await loadArtifact(
      this.docker,
      this.options.storeDirectory,
      capture,
      ref,
      progress,
    );
    const [repo, tag] = splitRef(ref);
    await this.docker.getImage(capture.imageId).tag({ repo, tag });
  }

  private handle(
    runId: string,
    machineRef: string,
    id: string,
    runtime: RestorableCapture['runtime'],
  ): MachineHandle {
    const hostnames = [
      ...new Set(
        [runtime.hostname, ...runtime.networks.flatMap(n => n.aliases)].filter(
          Boolean,
        ),
      ),
    ];
    return { runId, machineRef, id, hostnames };
  }

  startMachine(machine: MachineHandle): Promise<void> {
    return this.onLabMachine(machine, 'starting', context =>
      this.startMachineOn(machine, context),
    );
  }

  /**
   * Engine work on a run's lab machine, failing as onEngine does with the context `doing` the
   * machine in its run's lab; but where the engine answers 404 and the machine's container is gone
   * indeed, as a NotFoundError saying so (removedMidRun), not as the engine's 404.
   */
  private onLabMachine<T>(
    machine: MachineHandle,
    doing: string,
    work: (context: string) => Promise<T>,
  ): Promise<T> {
    const context = `${doing} ${machine.machineRef} in the lab of run ${machine.runId} failed`;
    return onEngine(
      this.id,
      async () => {
        try {
          return await work(context);
        } catch (e) {
          throw await this.removedMidRun(machine, doing, e);
        }
      },
      context,
    );
  }

  /**
   * A lab machine whose container something outside the run removed (`docker rm -f` on the
   * recovery host) while the run still used it: the run removes its machines only in its
   * teardown, after its last step on them. Said naming the machine and its container, where the
   * engine's 404 (`no such container - …`) named neither and read as the engine's fault. Any
   * other error, or a 404 of something else (the probe container) with the machine still there,
   * is returned as it is.
   */
  private async removedMidRun(
    machine: MachineHandle,
    doing: string,
    error: unknown,
  ): Promise<unknown> {
    if (!isStatus(error, 404)) return error;
    const gone = await this.docker
      .getContainer(machine.id)
      .inspect()
      .then(
        () => false,
        e => isStatus(e, 404),
      );
    if (!gone) return error;
    return new NotFoundError(
      `lab machine ${machine.machineRef} (container ${machineContainerName(machine.runId, machine.machineRef)}) was removed from hypervisor host '${this.id}' by something outside the run, mid-run (docker rm, or another tool on its engine): ${doing} it found its container gone`,
    );
  }

  private async startMachineOn(
    machine: MachineHandle,
    context: string,
  ): Promise<void> {
    for (let probeMoved = false; ; probeMoved = true) {
      try {
        await this.docker.getContainer(machine.id).start();
        return;
      } catch (e) {
        if (isStatus(e, 304)) return; // already started
        // A host port it publishes (a failover's) taken since the run's pre-flight, or by a
        // process no engine lists: the engine says which (`Bind for 0.0.0.0:8080 failed: port is
        // already allocated`, `listen tcp4 0.0.0.0:8080: bind: address already in use`). The
        // host's condition, not the machine's: the run fails at the host, naming the port.
        const said = String((e as Error).message);
        if (
          /external connectivity|port is already allocated|userland proxy/i.test(
            said,
          )
        ) {
          const port = /(?:Bind for|listen \S+) \S*?:(\d+)/.exec(said)?.[1];
          throw engineError(
            `${context}: ${engineWords(this.id, e)}`,
            this.id,
            'answered',
            {
              kind: 'port-held',
              ...(port ? { hostPort: Number(port) } : {}),
            },
          );
        }
        if (!/address already in use/i.test(said)) throw e;
        const { wanted, clashes } = await this.addressClashes(machine);
        // The probe container can move: it got its address before this machine was restored,
        // from a lab not told this machine's address (a run tells every machine's; another
        // caller of the host may not).
        if (!probeMoved && clashes.length > 0 && clashes.every(c => c.probe)) {
          for (const c of clashes)
            await this.labProbe.moveProbe(machine.runId, c.holderId, c.network);
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
  private async addressClashes(machine: MachineHandle): Promise<{
    wanted: string[];
    clashes: Array<{
      network: string;
      address: string;
      holderId: string;
      holder: string;
      probe: boolean;
    }>;
  }> {
    const info = await this.docker.getContainer(machine.id).inspect();
    const wanted: string[] = [];
    const clashes = [];
    for (const [network, endpoint] of Object.entries(
      info.NetworkSettings.Networks ?? {},
    )) {
      const addresses = [
        endpoint.IPAMConfig?.IPv4Address,
        endpoint.IPAMConfig?.IPv6Address,
      ].filter((a): a is string => !!a);
      if (addresses.length === 0) continue;
      for (const address of addresses)
        wanted.push(`${address} on lab network ${network}`);
      const net = await this.docker.getNetwork(network).inspect();
      for (const address of addresses) {
        // Docker lists each container's addresses of both families, with their prefix.
        const held = Object.entries(
          (net.Containers ?? {}) as Record<
            string,
            { Name?: string; IPv4Address?: string; IPv6Address?: string }
          >,
        ).find(
          ([id, c]) =>
            id !== info.Id &&
            [c.IPv4Address, c.IPv6Address].some(a => a && sameIp(a, address)),
        );
        if (!held) continue;
        const [holderId, { Name: holderName = holderId }] = held;
        const labels =
          (await this.docker.getContainer(holderId).inspect()).Config.Labels ??
          {};
        const probe =
          labels[PROBE_LABEL] === 'true' &&
          labels[RUN_ID_LABEL] === machine.runId;
        const holder = probe
          ? `the lab's probe container ${holderName}`
          : labels[MACHINE_REF_LABEL]
            ? `machine ${labels[MACHINE_REF_LABEL]} (container ${holderName}${labels[RUN_ID_LABEL] === machine.runId ? '' : ` of run ${labels[RUN_ID_LABEL]}`})`
            : `container ${holderName}, not restored by this run`;
        clashes.push({ network, address, holderId, holder, probe });
      }
    }
    return { wanted, clashes };
  }

  hostPortsInUse(): Promise<HostPortInUse[]> {
    return onEngine(
      this.id,
      () => this.hostPortsInUseOn(),
      'listing the host ports its containers publish failed',
    );
  }

  /** What the engine's running containers publish (a stopped one holds no port), and whose each is. */
  private async hostPortsInUseOn(): Promise<HostPortInUse[]> {
    const inUse: HostPortInUse[] = [];
    for (const c of await this.docker.listContainers()) {
      const name = (c.Names?.[0] ?? c.Id).replace(/^\//, '');
      const labels = c.Labels ?? {};
      const machine = labels[MACHINE_REF_LABEL];
      const holder = machine
        ? `machine ${machine} of run ${labels[RUN_ID_LABEL] ?? '(none)'} (container ${name})`
        : `container ${name}`;
      for (const p of c.Ports ?? []) {
        if (!p.PublicPort) continue;
        inUse.push({
          hostPort: p.PublicPort,
          protocol: p.Type,
          ...(p.IP ? { hostIp: p.IP } : {}),
          holder,
        });
      }
    }
    return inUse;
  }

  inspectMachine(machine: MachineHandle): Promise<MachineState> {
    return this.onLabMachine(machine, 'inspecting', () =>
      this.inspectMachineOn(machine),
    );
  }

  private async inspectMachineOn(
    machine: MachineHandle,
  ): Promise<MachineState> {
    const info = await this.docker.getContainer(machine.id).inspect();
    const health = info.State.Health?.Status;
    const healthOutput =
      health === 'healthy'
        ? undefined
        : lastFailedCheckOutput(info.State.Health);
    const stoppedAt = info.State.Running
      ? undefined
      : dockerTime(info.State.FinishedAt);
    const startedAt = info.State.Running
      ? dockerTime(info.State.StartedAt)
      : undefined;
    // restoreMachine joins it to the lab container's namespace by that container's id.
    const sharesNetworkOf = /^container:(.+)$/.exec(
      info.HostConfig?.NetworkMode ?? '',
    )?.[1];
    return {
      running: info.State.Running,
      exitCode: info.State.Running ? undefined : info.State.ExitCode,
      health:
        health === 'starting' || health === 'healthy' || health === 'unhealthy'
          ? health
          : undefined,
      ...(healthOutput && { healthOutput }),
      ...(stoppedAt && { stoppedAt }),
      ...(startedAt && { startedAt }),
      ...(sharesNetworkOf && { sharesNetworkOf }),
    };
  }

  restartMachine(machine: MachineHandle): Promise<void> {
    return this.onLabMachine(
      machine,
      'restarting',
      // Its own stop timeout (the restore set production's): no shorter than a stop would be.
      async () => {
        await this.docker.getContainer(machine.id).restart();
      },
    );
  }

  logTail(machine: MachineHandle, lines: number): Promise<string> {
    return this.onLabMachine(machine, 'reading the log of', () =>
      this.logTailOn(machine, lines),
    );
  }

  private async logTailOn(
    machine: MachineHandle,
    lines: number,
  ): Promise<string> {
    const raw = (await this.docker.getContainer(machine.id).logs({
      stdout: true,
      stderr: true,
      follow: false,
      tail: lines,
    })) as unknown as Buffer;
    const { stdout, stderr } = demuxDockerStream(
      Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)),
    );
    return stderr
      ? `${stdout}${stdout.endsWith('\n') || !stdout ? '' : '\n'}${stderr}`
      : stdout;
  }

  /** Creates the probe image on the engine unless it is there (see LabProbe). */
  ensureProbeImage(): Promise<void> {
    return this.labProbe.ensureProbeImage();
  }

  probe(
    lab: LabHandle,
    machine: MachineHandle,
    probe: ProbeSpec,
  ): Promise<ProbeResult> {
    return this.onLabMachine(machine, 'probing', () =>
      this.labProbe.probe(lab, machine, probe),
    );
  }

  /**
   * Removes the run's probe container (and any helper of its left), once the run probes no more:
   * a failover's machines stay and serve production, and the probe container, holding an address
   * on each of production's subnets there, has no business beside them. Returns the names removed.
   * The run's teardown (a failover's release) removes everything else, as always.
   */
  removeProbes(runId: string): Promise<string[]> {
    return onEngine(
      this.id,
      () => this.labProbe.removeProbes(runId),
      `removing the probe container of run ${runId} failed`,
    );
  }

  reattach(
    runId: string,
  ): Promise<{ lab: LabHandle; machines: MachineHandle[] } | undefined> {
    return onEngine(
      this.id,
      () => this.reattachOn(runId),
      `finding the machines run ${runId} kept failed`,
    );
  }

  private async reattachOn(
    runId: string,
  ): Promise<{ lab: LabHandle; machines: MachineHandle[] } | undefined> {
    const containers = (
      await this.docker.listContainers({
        all: true,
        filters: { label: [`${RUN_ID_LABEL}=${runId}`, MACHINE_REF_LABEL] },
      })
    ).filter(c => c.Labels?.[PROBE_LABEL] !== 'true');
    if (containers.length === 0) return undefined;
    const networks = await this.docker.listNetworks({
      filters: { label: [`${RUN_ID_LABEL}=${runId}`] },
    });
    const machines: MachineHandle[] = [];
    for (const c of containers) {
      const info = await this.docker.getContainer(c.Id).inspect();
      const hostnames = [
        ...new Set(
          [
            info.Config?.Hostname,
            ...Object.values(info.NetworkSettings?.Networks ?? {}).flatMap(
              n => n.Aliases ?? [],
            ),
          ].filter((h): h is string => !!h),
        ),
      ];
      machines.push({
        runId,
        machineRef: c.Labels[MACHINE_REF_LABEL],
        id: c.Id,
        hostnames,
      });
    }
    // Its supervision probes the machines it starts, as the run did.
    this.labProbe.probeAgain(runId);
    return {
      lab: { runId, networks: networks.map(n => n.Name).sort() },
      machines,
    };
  }

  watchKeptMachines(
    onStopped: (runId: string) => void,
    onResumed: () => void,
  ): () => void {
    return followKeptMachineStops(this.docker, onStopped, onResumed, {
      logger: this.options.logger?.child({ hypervisorHost: this.id }),
    });
  }

  listLabResources(runId?: string): Promise<LabResources> {
    return onEngine(
      this.id,
      () => this.listLabResourcesOn(runId),
      `listing ${runId === undefined ? "every run's lab" : `the lab of run ${runId}`} failed`,
    );
  }

  private async listLabResourcesOn(runId?: string): Promise<LabResources> {
    const label =
      runId === undefined ? RUN_ID_LABEL : `${RUN_ID_LABEL}=${runId}`;
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [label] },
    });
    const networks = await this.docker.listNetworks({
      filters: { label: [label] },
    });
    const { Volumes: volumes } = await this.docker.listVolumes({
      filters: { label: [label] },
    });
    return {
      machines: containers
        .map(c => (c.Names?.[0] ?? c.Id).replace(/^\//, ''))
        .sort(),
      networks: networks.map(n => n.Name).sort(),
      ...(volumes?.length && { volumes: volumes.map(v => v.Name).sort() }),
    };
  }

  teardown(runId: string): Promise<LabResources> {
    return onEngine(
      this.id,
      () => this.teardownOn(runId),
      `tearing down the lab of run ${runId} failed`,
    );
  }

  private async teardownOn(runId: string): Promise<LabResources> {
    const removed = await removeLab(this.docker, runId);
    this.labProbe.forget(runId);
    for (const [name, fill] of this.volumeFills)
      if (fill.runId === runId) this.volumeFills.delete(name);
    return removed;
  }

  /**
   * Fills the run's volume for `s` once: machines of one wave restore at once, and the first of
   * them fills it while the others wait for it. A failed fill is tried again by the next machine.
   */
  private async fillOnce(
    runId: string,
    s: SharedVolume,
    imageId: string,
  ): Promise<void> {
    let fill = this.volumeFills.get(s.labVolume)?.fill;
    if (!fill) {
      fill = fillSharedVolume(
        this.docker,
        this.options.storeDirectory,
        runId,
        s,
        imageId,
      );
      this.volumeFills.set(s.labVolume, { runId, fill });
      fill.catch(() => this.volumeFills.delete(s.labVolume));
    }
    await fill;
  }
}

/** Whether the engine's answer refuses a MAC address it was asked for. */
function refusesMac(e: unknown): boolean {
  return (
    isStatus(e, 400, 403, 500) &&
    /\bmac\b|mac.?address/i.test(String((e as Error)?.message))
  );
}

/**
 * The capture's limits as the lab applies them: confined again (the record comes from the
 * database), without IPv6 sysctls in a test lab (sysctlsInLab).
 */
function restorableLimits(
  test: boolean,
  limits: MachineLimits | undefined,
  adaptations: string[],
): MachineLimits {
  const confined = confinedLimits(limits ?? {}, adaptations);
  const { sysctls, note } = sysctlsInLab(confined.sysctls, test);
  if (note) adaptations.push(note);
  delete confined.sysctls;
  return { ...confined, ...(sysctls ? { sysctls } : {}) };
}

/** The adaptation note of a production MAC the engine refused on a lab network. */
function macRefused(
  engineId: string,
  ep: { network: string; config: Docker.EndpointSettings },
  e: unknown,
): string {
  return `MAC address ${ep.config.MacAddress} not fixed on lab network ${ep.network}: engine ${engineId} refused it (${engineWords(engineId, e)}), so Docker picks one there`;
}

/**
 * The machine of the run whose container's network namespace a machine shared in production
 * (network mode `container:<id>`), by its capture's production container id; with its lab
 * container where it booted in an earlier wave. None for another mode, a container no machine of
 * the run is, or captures from before the id was recorded.
 */
function namespaceOwner(
  mode: string | undefined,
  runCaptures: RestorableCapture[],
  booted: MachineHandle[],
): { machineRef: string; booted?: MachineHandle } | undefined {
  if (!mode?.startsWith('container:')) return undefined;
  const id = mode.slice('container:'.length);
  const owner = runCaptures.find(c => {
    const own = c.runtime.productionContainerId;
    return own !== undefined && id.length >= 12 && own.startsWith(id);
  });
  if (!owner) return undefined;
  return {
    machineRef: owner.machineRef,
    booted: booted.find(b => b.machineRef === owner.machineRef),
  };
}

/**
 * The PID and IPC namespaces of the machine's lab container: those of the machine whose container's
 * it shared in production (`--pid`/`--ipc container:<id>`), where that machine booted in an earlier
 * wave (namespaceOwner), else its own, said. IPC shareable where a machine of the run shared this
 * one's: Docker lets no container join a private IPC namespace.
 */
function sharedNamespaces(
  capture: RestorableCapture,
  runCaptures: RestorableCapture[],
  booted: MachineHandle[],
  adaptations: string[],
): { PidMode?: string; IpcMode?: string } {
  const modes: { PidMode?: string; IpcMode?: string } = {};
  const kinds = [
    ['PID', PRODUCTION_PID_MODE_LABEL, 'PidMode'],
    ['IPC', PRODUCTION_IPC_MODE_LABEL, 'IpcMode'],
  ] as const;
  for (const [kind, label, key] of kinds) {
    const mode = capture.runtime.labels[label];
    if (!mode?.startsWith('container:')) continue;
    const owner = namespaceOwner(mode, runCaptures, booted);
    if (owner?.booted) {
      modes[key] = `container:${owner.booted.id}`;
      adaptations.push(
        `shares the ${kind} namespace of ${owner.machineRef} in the lab, as it shared that machine's container's in production (${kind} mode ${mode})`,
      );
      continue;
    }
    const whose = owner
      ? `${owner.machineRef}'s in production (${kind} mode ${mode}), which does not boot in an earlier wave`
      : `container ${mode.slice('container:'.length)}'s in production, no machine of this run`;
    adaptations.push(
      `${kind} namespace of its own in the lab: it shared ${whose}, so it does not see that machine's ${kind === 'PID' ? 'processes' : 'shared memory and semaphores'}`,
    );
  }
  const donor = runCaptures.some(
    c =>
      c.machineRef !== capture.machineRef &&
      namespaceOwner(c.runtime.labels[PRODUCTION_IPC_MODE_LABEL], [capture], [])
        ?.machineRef === capture.machineRef,
  );
  if (donor && !modes.IpcMode) modes.IpcMode = 'shareable';
  return modes;
}
