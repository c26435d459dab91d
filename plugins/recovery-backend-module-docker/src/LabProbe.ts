import type Docker from 'dockerode';
import { Readable } from 'node:stream';
import {
  RUN_ID_LABEL,
  type ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  LabHandle,
  MachineHandle,
  ProbeResult,
} from '@backstage-recovery/plugin-recovery-node';
import { dockerName } from './adapt';
import { highestFree } from './lib/addresses';
import { busyboxDigest, busyboxRootfsEntries } from './lib/busybox';
import {
  demuxDockerStream,
  followProgress,
  isStatus,
  readAll,
} from './lib/dockerStreams';
import { onEngine } from './lib/engineErrors';
import { removeImage } from './lib/engineImages';
import { createTar } from './lib/tar';
import { PROBE_LABEL, splitRef } from './labNames';

export const DEFAULT_PROBE_IMAGE = 'recovery/probe:1';

/**
 * Label of the probe image the backend builds: the digest of the busybox file it was built from.
 * One without it (built before the static-busybox check, perhaps from a dynamic one that fails
 * every probe) or from another file is built again rather than reused.
 */
export const PROBE_BUSYBOX_LABEL =
  'recovery.backstage-recovery.io/probe-busybox';

export interface LabProbeOptions {
  /** Image of the per-lab probe container; created by `docker import` if missing. */
  probeImage?: string;
  /** Static busybox binary the probe image is built from. */
  busyboxPath?: string;
}

/**
 * The lab's helper containers, from the probe image (a static busybox): the probe container that
 * runs a lab's readiness probes from inside its networks, one per run and set of lab networks,
 * and the container that reads the room in the engine's data root. They carry the run id and
 * probe labels, and get addresses no production machine of the lab uses.
 */
export class LabProbe {
  private readonly probeImage: string;
  private probeImageReady?: Promise<void>;
  private readonly probeContainers = new Map<
    string,
    Promise<Docker.Container>
  >();
  /**
   * Runs whose probe helpers were removed for good (a failover done with its verification): a
   * probe of theirs still under way when they went (one past its deadline) makes none again.
   */
  private readonly doneProbing = new Set<string>();

  constructor(
    private readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: LabProbeOptions,
  ) {
    this.probeImage = options.probeImage ?? DEFAULT_PROBE_IMAGE;
  }

  /**
   * Creates the probe image on the engine (`docker import` of a static busybox) unless it is there,
   * built from the busybox file the backend has. Where the backend has none, one it built from
   * another (or that someone put there) is used as it is: nothing else could be built.
   */
  ensureProbeImage(): Promise<void> {
    return onEngine(this.engineId, () => this.ensureProbeImageOn());
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
      if (
        present &&
        (digest === undefined ||
          present.Config?.Labels?.[PROBE_BUSYBOX_LABEL] === digest)
      )
        return;
      // Refuses a busybox that cannot run alone, naming it and the setting.
      const tar = createTar(busyboxRootfsEntries(busyboxPath));
      const [repo, tag = 'latest'] = splitRef(this.probeImage);
      const stream = await this.docker.importImage(
        Readable.from([tar]) as any,
        {
          repo,
          tag,
          changes: [`LABEL ${PROBE_BUSYBOX_LABEL}=${digest}`],
        } as any,
      );
      await followProgress(stream as unknown as Readable);
      // The one it replaces lost its tag: removed unless a probe container uses it.
      if (
        present &&
        (await this.docker.getImage(this.probeImage).inspect()).Id !==
          present.Id
      )
        await removeImage(this.docker, present.Id);
    })().finally(() => {
      this.probeImageReady = undefined;
    });
    return this.probeImageReady;
  }

  /**
   * Runs `probe` against the machine from the lab's probe container, made on first use: at each of
   * its lab addresses at once, passing at the first that answers. A machine on two networks may
   * serve on one of them alone (a daemon bound to its production interface): it is up, without
   * waiting out the other's timeout. Failures are said in the lab's network order (on a pass, those
   * that came before it).
   */
  async probe(
    lab: LabHandle,
    machine: MachineHandle,
    probe: ProbeSpec,
  ): Promise<ProbeResult> {
    const targets = await this.probeTargets(lab, machine);
    if (targets.length === 0) {
      return {
        ok: false,
        message: `machine ${machine.machineRef} is on no lab network: nothing in the lab reaches it`,
      };
    }
    const where = `from the lab (probe container, network ${lab.networks.join(', ')})`;
    // By target, in the lab's order: those that failed so far.
    const failed: Array<{ what: string; failure: string } | undefined> = [];
    const said = () =>
      failed.flatMap(f => (f ? [`${f.what}: ${f.failure}`] : [])).join('; ');
    const passed = await new Promise<string | undefined>((resolve, reject) => {
      let left = targets.length;
      // An engine's error (not the machine's answer) is thrown, unless another address passes.
      let thrown: { error: unknown } | undefined;
      targets.forEach((target, i) => {
        this.probeAt(lab, target, probe)
          .then(
            ({ what, failure }) => {
              if (failure === undefined) {
                const before = said();
                resolve(
                  `${what} ${where}: ok${before && ` (after ${before})`}`,
                );
              } else failed[i] = { what, failure };
            },
            error => {
              thrown ??= { error };
            },
          )
          .finally(() => {
            if (--left > 0) return;
            if (thrown) reject(thrown.error);
            else resolve(undefined);
          });
      });
    });
    if (passed !== undefined) return { ok: true, message: passed };
    const failures = failed.filter(f => f !== undefined);
    if (failures.length === 1)
      return {
        ok: false,
        message: `${failures[0].what} ${where}: ${failures[0].failure}`,
      };
    return {
      ok: false,
      message: `none of the machine's ${failures.length} lab addresses answered ${where}: ${said()}`,
    };
  }

  /** One try of `probe` at `target`: what it did, and why it failed (none where it passed). */
  private async probeAt(
    lab: LabHandle,
    target: string,
    probe: ProbeSpec,
  ): Promise<{ what: string; failure?: string }> {
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
    const exec = await container
      .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true })
      .catch(async e => {
        // The probe container stopped or went (killed, out of memory): made again, else every
        // later probe of the run would fail on it rather than on the machine.
        if (!isStatus(e, 404, 409)) throw e;
        // Only the one that failed: a probe beside this one (a wave's machines are verified at
        // once) may already be making it again, and a second would clash with it on its name.
        const key = probeContainerKey(lab);
        if (this.probeContainers.get(key) === pending)
          this.probeContainers.delete(key);
        return (await this.probeContainer(lab)).exec({
          Cmd: cmd,
          AttachStdout: true,
          AttachStderr: true,
        });
      });
    const stream = (await exec.start({
      hijack: true,
      stdin: false,
    })) as unknown as Readable;
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
    if (raw === undefined) return { what, failure: 'no result within 15 s' };
    if (ExitCode === 0) return { what };
    const reason =
      output ||
      (readFailed && `its output could not be read: ${readFailed.message}`) ||
      (ExitCode === 143 || ExitCode === 124
        ? 'timed out'
        : `exit code ${ExitCode}`);
    return { what, failure: `failed (${reason})` };
  }

  /**
   * Where the probe reaches the machine: each of its lab addresses once (those of the machine
   * whose network namespace it shares), in the lab's network order; before it has any (not running), its container name, which only the lab's DNS answers.
   * Never a production name (its hostname, e.g. the production host's for a host-network
   * machine): the lab's DNS passes names it does not know on, and outside an isolated lab that
   * may reach production itself.
   */
  private async probeTargets(
    lab: LabHandle,
    machine: MachineHandle,
  ): Promise<string[]> {
    let info = await this.docker.getContainer(machine.id).inspect();
    // Sharing another machine's network namespace (as in production): reached at its addresses.
    const shared = /^container:(.+)$/.exec(info.HostConfig?.NetworkMode ?? '');
    if (shared) info = await this.docker.getContainer(shared[1]).inspect();
    const endpoints = lab.networks
      .map(net => info.NetworkSettings.Networks?.[net])
      .filter(Boolean);
    if (endpoints.length === 0) return [];
    const addresses = [
      ...new Set(endpoints.map(ep => ep!.IPAddress).filter(Boolean)),
    ];
    return addresses.length > 0 ? addresses : [info.Name.replace(/^\//, '')];
  }

  private probeContainer(lab: LabHandle): Promise<Docker.Container> {
    if (this.doneProbing.has(lab.runId)) {
      return Promise.reject(
        new Error(
          `run ${lab.runId} probes no more: its probe container was removed once its machines were verified`,
        ),
      );
    }
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

  private async createProbeContainer(
    lab: LabHandle,
  ): Promise<Docker.Container> {
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
      Cmd: [
        'sh',
        '-c',
        'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
      ],
      Labels: { [RUN_ID_LABEL]: lab.runId, [PROBE_LABEL]: 'true' },
      HostConfig: {
        NetworkMode: first ?? 'none',
        RestartPolicy: { Name: 'no' },
      },
      NetworkingConfig: first
        ? {
            EndpointsConfig: {
              [first]: await this.helperEndpoint(lab.runId, first),
            },
          }
        : undefined,
    });
    for (const net of rest) {
      await this.docker.getNetwork(net).connect({
        Container: container.id,
        EndpointConfig: await this.helperEndpoint(lab.runId, net),
      });
    }
    await container.start();
    return container;
  }

  /**
   * The endpoint of a container the host adds to a lab network itself (the probe container):
   * the highest free address of the lab's range, which holds no production address the lab was
   * told of, and none a restored machine is to have. Where Docker chose the subnet (production's
   * is in use on this engine) every address there is dynamic: Docker picks.
   */
  private async helperEndpoint(
    runId: string,
    network: string,
  ): Promise<Docker.EndpointSettings> {
    const info = await this.docker.getNetwork(network).inspect();
    // Of each family the lab has a range of (IPv6 where production's subnet had IPv6).
    const configs = (info.IPAM?.Config ?? []).filter(
      (c: { Subnet?: string; IPRange?: string }) => c.Subnet && c.IPRange,
    ) as Array<{ Subnet: string; IPRange: string; Gateway?: string }>;
    if (configs.length === 0) return {};
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${RUN_ID_LABEL}=${runId}`] },
    });
    const onNetwork = Object.values(
      (info.Containers ?? {}) as Record<
        string,
        { IPv4Address?: string; IPv6Address?: string }
      >,
    );
    const told = containers.map(
      c => c.NetworkSettings?.Networks?.[network]?.IPAMConfig,
    );
    const IPAMConfig: { IPv4Address?: string; IPv6Address?: string } = {};
    for (const cfg of configs) {
      const address = highestFree(cfg.Subnet, cfg.IPRange, [
        cfg.Gateway,
        ...onNetwork.flatMap(c => [c.IPv4Address, c.IPv6Address]),
        ...told.flatMap(c => [c?.IPv4Address, c?.IPv6Address]),
      ]);
      if (address)
        IPAMConfig[address.includes(':') ? 'IPv6Address' : 'IPv4Address'] =
          address;
    }
    return Object.keys(IPAMConfig).length > 0 ? { IPAMConfig } : {};
  }

  /** Gives the probe container another address on `network`: a machine needs the one it has. */
  async moveProbe(
    runId: string,
    probeId: string,
    network: string,
  ): Promise<void> {
    const net = this.docker.getNetwork(network);
    // A probe running meanwhile fails, and its verification tries it again.
    await net.disconnect({ Container: probeId, Force: true });
    await net.connect({
      Container: probeId,
      EndpointConfig: await this.helperEndpoint(runId, network),
    });
  }

  /**
   * Removes run `runId`'s helper containers (its probe container, a room check's a stopped
   * backend left) and makes none again for it; returns their names. What the run restored stays.
   */
  async removeProbes(runId: string): Promise<string[]> {
    this.doneProbing.add(runId);
    this.forget(runId);
    const helpers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${RUN_ID_LABEL}=${runId}`, `${PROBE_LABEL}=true`] },
    });
    const removed: string[] = [];
    for (const c of helpers) {
      try {
        await this.docker.getContainer(c.Id).remove({ force: true });
        removed.push((c.Names?.[0] ?? c.Id).replace(/^\//, ''));
      } catch (e) {
        // Gone meanwhile (a release, a teardown beside it), or being removed already.
        if (!isStatus(e, 404, 409)) throw e;
      }
    }
    return removed.sort();
  }

  /** Lets run `runId` probe again after removeProbes: a kept failover's supervision verifies machines it started. */
  probeAgain(runId: string): void {
    this.doneProbing.delete(runId);
  }

  /** Forgets run `runId`'s probe containers: its teardown removed them. */
  forget(runId: string): void {
    for (const key of this.probeContainers.keys()) {
      if (key.startsWith(`${runId}\n`)) this.probeContainers.delete(key);
    }
  }

  /** Free bytes in `directory` of the engine's host and the memory it has available, read there. */
  async freeRoomIn(
    runId: string,
    directory: string,
  ): Promise<{ freeBytes: number; availableMemoryBytes?: number }> {
    await this.ensureProbeImage();
    const name = dockerName('rr', runId, 'room');
    await this.removeLeftHelper(runId, name);
    const container = await this.docker.createContainer({
      name,
      Image: this.probeImage,
      // A container's /proc/meminfo is its host's (the VM's, where the engine runs in one).
      // The status is df's: a kernel without MemAvailable (before 3.14) leaves the memory unknown.
      Cmd: [
        'sh',
        '-c',
        'df -k -P /data-root; s=$?; grep "^MemAvailable:" /proc/meminfo; exit $s',
      ],
      Labels: { [RUN_ID_LABEL]: runId, [PROBE_LABEL]: 'true' },
      HostConfig: {
        Binds: [`${directory}:/data-root:ro`],
        NetworkMode: 'none',
        RestartPolicy: { Name: 'no' },
      },
    });
    try {
      await container.start();
      const { StatusCode } = await container.wait();
      const { stdout, stderr } = demuxDockerStream(
        (await container.logs({
          stdout: true,
          stderr: true,
          follow: false,
        })) as unknown as Buffer,
      );
      // `Filesystem 1024-blocks Used Available Capacity Mounted-on`, one line per filesystem, then
      // `MemAvailable: <n> kB`.
      const lines = stdout.trim().split('\n');
      const memory = /^MemAvailable:\s+(\d+) kB$/.exec(
        lines.at(-1)?.trim() ?? '',
      );
      if (memory) lines.pop();
      const available = Number(lines.at(-1)?.trim().split(/\s+/)[3]);
      if (StatusCode !== 0 || !Number.isFinite(available)) {
        throw new Error(
          `df in ${directory} said: ${(stderr || stdout).trim() || `exit ${StatusCode}`}`,
        );
      }
      return {
        freeBytes: available * 1024,
        ...(memory && { availableMemoryBytes: Number(memory[1]) * 1024 }),
      };
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
      labels =
        (await this.docker.getContainer(name).inspect()).Config.Labels ?? {};
    } catch (e) {
      if (isStatus(e, 404)) return;
      throw e;
    }
    if (labels[RUN_ID_LABEL] !== runId || labels[PROBE_LABEL] !== 'true')
      return;
    try {
      await this.docker.getContainer(name).remove({ force: true });
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
  }
}

/** One probe container per run and set of lab networks. */
const probeContainerKey = (lab: LabHandle) =>
  `${lab.runId}\n${lab.networks.join(',')}`;

async function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  onTimeout: () => void,
): Promise<T | undefined> {
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
