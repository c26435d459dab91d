import type Docker from 'dockerode';
import {
  bindMountDropped,
  formatBytes,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedNetwork,
  CapturedVolume,
  MachineLimits,
  MachineRuntime,
  PortBinding,
} from '@backstage-recovery/plugin-recovery-node';
import {
  describePortBinding,
  failoverPorts,
  subnetsOverlap,
} from '@backstage-recovery/plugin-recovery-node';
import { subnetsInLab } from './labSubnets';

/** Subnet and gateway of a network on the primary engine, from `docker network inspect`. */
export interface NetworkIdentity {
  subnet?: string;
  gateway?: string;
  /** Where production enabled IPv6 on it (`--ipv6`). */
  ipv6Subnet?: string;
  ipv6Gateway?: string;
}

/** A network's identity from its `docker network inspect`: its IPv4 subnet, and its IPv6 one where enabled. */
export function networkIdentity(net: {
  EnableIPv6?: boolean;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> | null };
}): NetworkIdentity {
  const configs = net.IPAM?.Config ?? [];
  const v4 = configs.find(c => c.Subnet && !c.Subnet.includes(':'));
  const v6 = net.EnableIPv6
    ? configs.find(c => c.Subnet?.includes(':'))
    : undefined;
  return {
    subnet: v4?.Subnet,
    gateway: v4?.Gateway,
    ...(v6?.Subnet ? { ipv6Subnet: v6.Subnet } : {}),
    ...(v6?.Gateway ? { ipv6Gateway: v6.Gateway } : {}),
  };
}

const NS_PER_MS = 1_000_000;
/** Docker's /dev/shm unless `--shm-size` (or the daemon's `default-shm-size`) says otherwise. */
const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/**
 * Runtime label recording a production network mode the lab replaces with an address of its own
 * (`host`, `container:<id>`): the runtime has no network to say so, and without it the restore
 * could not tell such a machine from one that had no network at all.
 */
export const PRODUCTION_NETWORK_MODE_LABEL =
  'recovery.backstage-recovery.io/production-network-mode';

/**
 * Runtime labels recording the PID and IPC namespaces a machine shared with another container in
 * production (`--pid container:<id>`, `--ipc container:<id>`), for the restore to share its
 * machine's in the lab as it does a network namespace.
 */
export const PRODUCTION_PID_MODE_LABEL =
  'recovery.backstage-recovery.io/production-pid-mode';
export const PRODUCTION_IPC_MODE_LABEL =
  'recovery.backstage-recovery.io/production-ipc-mode';

/** Whether the machine goes on the lab network with an address Docker picks (host or shared namespace in production). */
export function joinsLabNetwork(
  runtime: Pick<MachineRuntime, 'labels'>,
): boolean {
  const mode = runtime.labels[PRODUCTION_NETWORK_MODE_LABEL] ?? '';
  return mode === 'host' || mode.startsWith('container:');
}

/** Docker's default bridge network: its embedded DNS answers no names there. */
const DEFAULT_BRIDGE = 'bridge';

/**
 * The names production's embedded DNS answered for the machine on `network`: its aliases and, on a
 * user-defined network, its container's name (machines reach one another by it: `wget
 * http://pg:8080`), which the lab container, named after the run, does not have. Docker adds the
 * container's short id as an alias on user-defined networks: not identity.
 */
function productionAliases(
  aliases: string[] | null | undefined,
  containerId: string,
  network: string,
  containerName: string,
): string[] {
  const out: string[] = [];
  const names = [
    ...(aliases ?? []),
    ...(network !== DEFAULT_BRIDGE && containerName ? [containerName] : []),
  ];
  for (const a of names) {
    if (containerId.startsWith(a) && a.length >= 12) continue;
    if (!out.includes(a)) out.push(a);
  }
  return out;
}

/**
 * The MAC address production fixed for the machine on a network (`--mac-address`): the
 * container's `Config.MacAddress` where the engine's API still lists it (before 1.44, where it is
 * the first network's), else the endpoint's own where it is not the one Docker derives from its
 * IPv4 address (02:42 and the address's four bytes), which the lab derives again anyway. An engine
 * that picks MACs at random has them carried too: harmless, the lab is isolated. A stopped
 * machine's endpoints list none: only the configured one is known then.
 */
function fixedMacAddress(
  endpoint: { MacAddress?: string; IPAddress?: string },
  configured: string | undefined,
  /** The network the container was created on (`--network`), the one `configured` is for. */
  primary: boolean,
): string | undefined {
  const mac = endpoint.MacAddress?.toLowerCase();
  if (!mac) return primary ? configured?.toLowerCase() || undefined : undefined;
  if (configured?.toLowerCase() === mac) return mac;
  const derived = endpoint.IPAddress
    ? `02:42:${endpoint.IPAddress.split('.')
        .map(b => Number(b).toString(16).padStart(2, '0'))
        .join(':')}`
    : undefined;
  return mac === derived ? undefined : mac;
}

/**
 * Of production's DNS servers, those the machine uses in the lab, and a note naming the others: a
 * failover runs on production's network reach and uses them all; a test lab reaches only the
 * machine's captured subnets it has (IPv4 only: subnetsInLab), so only servers in them (a DNS
 * machine of the plan, say).
 */
export function dnsInLab(
  runtime: Pick<MachineRuntime, 'dns' | 'networks'>,
  test: boolean,
): { dns: string[]; note?: string } {
  const servers = runtime.dns ?? [];
  if (!test) return { dns: servers };
  const subnets = runtime.networks.flatMap(n =>
    subnetsInLab(n, { internal: true }),
  );
  const inLab = (ip: string) =>
    subnets.some(s =>
      subnetsOverlap(s, `${ip}/${ip.includes(':') ? 128 : 32}`),
    );
  const dns = servers.filter(inLab);
  const outside = servers.filter(ip => !inLab(ip));
  return {
    dns,
    ...(outside.length > 0
      ? {
          note: `DNS servers ${outside.join(', ')} not used in the test lab: outside the machine's production subnets it has${
            subnets.length ? ` (${subnets.join(', ')})` : ''
          }, the isolated lab cannot reach them (the lab's resolver answers the lab's names)`,
        }
      : {}),
  };
}

/** An `--add-host` entry to the host production ran on (`name:host-gateway`, `name=host-gateway`). */
const toHostGateway = (entry: string) => /[:=]host-gateway$/.test(entry);

type Mount = Docker.ContainerInspectInfo['Mounts'][number] & {
  Type?: string;
  Name?: string;
};

/** The mounts a capture carries: the machine's volumes (bind mounts and tmpfs are the host's, not its state). */
export function volumeMounts(
  info: Pick<Docker.ContainerInspectInfo, 'Mounts'>,
): Array<{ name: string; destination: string }> {
  return ((info.Mounts ?? []) as Mount[])
    .filter(m => m.Type === 'volume')
    .map(m => ({ name: m.Name ?? m.Source, destination: m.Destination }));
}

/**
 * The "driver insertion" step at capture time: turns `docker inspect` of a primary machine
 * into the runtime the recovery host can run, dropping what ties it to its host (host port
 * bindings, host paths, devices, host namespaces, pinned CPUs, privileges), keeping how
 * production bounded it (limits, restart policy) for the restore. Every change is recorded,
 * human-readable, in `adaptations`. Pure: no I/O.
 */
export function adaptInspectedContainer(
  info: Docker.ContainerInspectInfo,
  networks: Record<string, NetworkIdentity>,
  /** The volumes the capture archived (by destination); a volume not among them is not carried. */
  volumes: CapturedVolume[] = [],
): { runtime: MachineRuntime; adaptations: string[] } {
  const adaptations: string[] = [];
  const config = info.Config;
  const host = (info.HostConfig ?? {}) as Docker.HostConfig &
    Record<string, any>;

  // Network identity.
  const captured: CapturedNetwork[] = [];
  const networkMode = host.NetworkMode ?? 'default';
  if (networkMode === 'host') {
    adaptations.push(
      "host network mode dropped: the machine gets an address on the lab network instead of the host's interfaces",
    );
  } else if (networkMode === 'none') {
    adaptations.push(
      'machine had no network (network mode none); it stays without one',
    );
  } else if (networkMode.startsWith('container:')) {
    adaptations.push(
      `shared network namespace (${networkMode}): the restore shares that machine's where it boots in an earlier wave, else gives the machine its own address on the lab network`,
    );
  }
  if (
    networkMode !== 'host' &&
    networkMode !== 'none' &&
    !networkMode.startsWith('container:')
  ) {
    // The network it was created on: `default` is Docker's bridge (Docker 20.10 writes it so).
    const createdOn = networkMode === 'default' ? 'bridge' : networkMode;
    for (const [name, endpoint] of Object.entries(
      info.NetworkSettings?.Networks ?? {},
    )) {
      const identity = networks[name] ?? {};
      const ipv4 =
        endpoint.IPAMConfig?.IPv4Address || endpoint.IPAddress || undefined;
      const ipv6 =
        endpoint.IPAMConfig?.IPv6Address ||
        endpoint.GlobalIPv6Address ||
        undefined;
      const mac = fixedMacAddress(
        endpoint,
        (config as { MacAddress?: string }).MacAddress,
        name === createdOn,
      );
      captured.push({
        name,
        subnet: identity.subnet,
        gateway: identity.gateway ?? (endpoint.Gateway || undefined),
        ipv4Address: ipv4,
        ...(identity.ipv6Subnet ? { ipv6Subnet: identity.ipv6Subnet } : {}),
        ...(identity.ipv6Gateway ? { ipv6Gateway: identity.ipv6Gateway } : {}),
        ...(ipv6 ? { ipv6Address: ipv6 } : {}),
        aliases: productionAliases(
          endpoint.Aliases,
          info.Id,
          name,
          info.Name.replace(/^\//, ''),
        ),
        ...(mac ? { macAddress: mac } : {}),
      });
    }
  }

  // Host ports: recorded, for a failover to publish them again on the recovery host (the rule:
  // failoverPorts); a test recovery publishes none.
  const portBindings = productionPortBindings(
    host.PortBindings,
    info.NetworkSettings?.Ports,
  );
  const { dropped } = failoverPorts(portBindings);
  for (const binding of portBindings) {
    const why = dropped.find(d => d.binding === binding)?.why;
    // Of a range, the port its engine picked is what a failover publishes.
    const picked = binding.hostPortRange
      ? `: port ${binding.hostPort} of the range, which its engine picked and clients may count on,`
      : '';
    adaptations.push(
      `host port binding ${describePortBinding(binding)}${
        why
          ? ` dropped: ${why}`
          : `${picked} published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)`
      }`,
    );
  }
  if (host.PublishAllPorts) adaptations.push('publish-all-ports dropped');

  // Storage.
  const carried: CapturedVolume[] = [];
  for (const m of (info.Mounts ?? []) as Mount[]) {
    if (m.Type === 'bind') {
      adaptations.push(bindMountDropped(m.Source, m.Destination));
    } else if (m.Type === 'volume') {
      const volume = volumes.find(v => v.destination === m.Destination);
      if (volume) {
        carried.push(volume);
        adaptations.push(
          `volume ${m.Name ?? m.Source} at ${m.Destination} carried (${formatBytes(volume.sizeBytes)} archive): the restored machine gets its content as captured`,
        );
      } else {
        adaptations.push(
          `volume ${m.Name ?? m.Source} at ${m.Destination} not carried: the restored machine starts with the image's content there`,
        );
      }
    }
    // A tmpfs is empty at every start: recreated in the lab (with the limits), at production's
    // mode (tmpfsMountpoints.ts), nothing is lost.
  }

  // Devices and host-specific hardware.
  for (const d of host.Devices ?? []) {
    adaptations.push(
      `host device ${d.PathOnHost} (${d.PathInContainer}) dropped`,
    );
  }
  if (host.DeviceRequests?.length)
    adaptations.push('device requests (GPUs) dropped');
  if (host.CpusetCpus)
    adaptations.push(`CPU pinning to cpus ${host.CpusetCpus} dropped`);
  if (host.CpusetMems)
    adaptations.push(`memory node pinning to ${host.CpusetMems} dropped`);
  if (host.Privileged) adaptations.push('privileged mode dropped');
  const capAdd = keptCapabilities((host.CapAdd ?? []) as string[], adaptations);
  // A sandboxing runtime (runsc, kata) is the production engine's: the recovery engine may lack it.
  const runtimeName = (host as { Runtime?: string }).Runtime;
  if (runtimeName && !RUNC.includes(runtimeName))
    adaptations.push(runtimeNotCarried(runtimeName));
  if (host.PidMode === 'host') adaptations.push('host PID namespace dropped');
  if (host.IpcMode === 'host') adaptations.push('host IPC namespace dropped');
  for (const [kind, mode] of [
    ['PID', host.PidMode ?? ''],
    ['IPC', host.IpcMode ?? ''],
  ]) {
    if (mode.startsWith('container:'))
      adaptations.push(
        `shared ${kind} namespace (${mode}): the restore shares that machine's where it boots in an earlier wave, else gives the machine its own`,
      );
  }
  if (host.UTSMode === 'host') adaptations.push('host UTS namespace dropped');
  if (host.UsernsMode === 'host')
    adaptations.push('host user namespace mode dropped');
  // The lab keeps production's addresses, so an entry means there what it meant in production;
  // but host-gateway is the recovery host there, which a test lab cannot reach.
  const extraHosts = ((host.ExtraHosts ?? []) as string[]).filter(
    e => !toHostGateway(e),
  );
  const toGateway = ((host.ExtraHosts ?? []) as string[]).filter(toHostGateway);
  if (toGateway.length) {
    adaptations.push(
      `extra /etc/hosts entries dropped: ${toGateway.join(', ')} (host-gateway is the recovery host in the lab, not the host production ran on)`,
    );
  }
  // Kept: which of them a run uses is the restore's choice (a test lab reaches only its subnets).
  const dns = (host.Dns ?? []) as string[];
  if (
    host.LogConfig?.Type &&
    !['json-file', 'local'].includes(host.LogConfig.Type)
  ) {
    adaptations.push(
      `log driver ${host.LogConfig.Type} replaced by the engine's default`,
    );
  }

  const hc = config.Healthcheck;
  const healthcheck =
    hc?.Test && hc.Test.length && hc.Test[0] !== 'NONE'
      ? {
          test: hc.Test,
          intervalMs: hc.Interval ? hc.Interval / NS_PER_MS : undefined,
          timeoutMs: hc.Timeout ? hc.Timeout / NS_PER_MS : undefined,
          retries: hc.Retries || undefined,
          startPeriodMs: hc.StartPeriod
            ? hc.StartPeriod / NS_PER_MS
            : undefined,
        }
      : undefined;

  // Set by the capture alone: a production container's own label of that name says nothing.
  const labels: Record<string, string> = { ...(config.Labels ?? {}) };
  delete labels[PRODUCTION_NETWORK_MODE_LABEL];
  if (networkMode === 'host' || networkMode.startsWith('container:')) {
    labels[PRODUCTION_NETWORK_MODE_LABEL] = networkMode;
  }
  for (const [label, mode] of [
    [PRODUCTION_PID_MODE_LABEL, host.PidMode ?? ''],
    [PRODUCTION_IPC_MODE_LABEL, host.IpcMode ?? ''],
  ]) {
    delete labels[label];
    if (mode.startsWith('container:')) labels[label] = mode;
  }
  const runtime: MachineRuntime = {
    hostname: config.Hostname || info.Name.replace(/^\//, ''),
    networks: captured,
    env: config.Env ?? [],
    cmd: toList(config.Cmd),
    entrypoint: toList(config.Entrypoint),
    workingDir: config.WorkingDir || undefined,
    user: config.User || undefined,
    exposedPorts: Object.keys(config.ExposedPorts ?? {}).sort(),
    healthcheck,
    labels,
    productionContainerId: info.Id,
    ...(carried.length > 0 ? { volumes: carried } : {}),
    ...(portBindings.length > 0 ? { portBindings } : {}),
    ...(extraHosts.length > 0 ? { extraHosts } : {}),
    ...(dns.length > 0 ? { dns } : {}),
  };
  const limits = productionLimits(info, capAdd, carried, adaptations);
  if (Object.keys(limits).length > 0) runtime.limits = limits;
  const restart = host.RestartPolicy;
  if (restart?.Name && restart.Name !== 'no') {
    runtime.restartPolicy = {
      name: restart.Name,
      ...(restart.Name === 'on-failure' && restart.MaximumRetryCount
        ? { maximumRetryCount: restart.MaximumRetryCount }
        : {}),
    };
  }
  return { runtime, adaptations };
}

/**
 * Production's host port bindings (`HostConfig.PortBindings`), by port then as listed. A range of
 * host ports (`-p 8080-8090:80`: Docker keeps `HostPort` `8080-8090` there, and picks one free port
 * of it as the container starts) is recorded with the port its engine picked, as `running` (the
 * container's `NetworkSettings.Ports`, which lists what is bound now, per address family) shows it:
 * a failover publishes that one, which clients may count on. Publishing the range itself would
 * have the recovery host's engine pick again, likely another port of it.
 */
function productionPortBindings(
  bindings: Docker.HostConfig['PortBindings'] | undefined,
  running: Record<string, unknown> | undefined,
): PortBinding[] {
  const bound = (containerPort: string) => {
    const list = running?.[containerPort];
    return Array.isArray(list)
      ? (list as Array<{ HostIp?: string; HostPort?: string }>)
      : [];
  };
  return Object.entries((bindings ?? {}) as Record<string, unknown>)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([containerPort, list]) =>
      (Array.isArray(list)
        ? (list as Array<{ HostIp?: string; HostPort?: string }>)
        : []
      ).map(b => {
        const range = /^(\d+)-(\d+)$/.exec(b.HostPort ?? '');
        // Empty: the engine picked the port, and none counts on it.
        let hostPort = /^\d+$/.test(b.HostPort ?? '')
          ? Number(b.HostPort)
          : undefined;
        if (range) {
          const [from, to] = [Number(range[1]), Number(range[2])];
          hostPort = bound(containerPort)
            .filter(r => !b.HostIp || r.HostIp === b.HostIp)
            .map(r => Number(r.HostPort))
            .find(p => p >= from && p <= to);
        }
        return {
          containerPort,
          ...(hostPort ? { hostPort } : {}),
          ...(range ? { hostPortRange: `${range[1]}-${range[2]}` } : {}),
          ...(b.HostIp ? { hostIp: b.HostIp } : {}),
        };
      }),
    );
}

/** Docker's default capabilities: every machine has them unless production dropped them. */
const DEFAULT_CAPABILITIES = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
]);

const capabilityName = (c: string) => c.toUpperCase().replace(/^CAP_/, '');

/**
 * Of the capabilities production added, those a restored machine keeps: added back after a drop,
 * a capability any machine has is no privilege; the others (`ALL`, `SYS_ADMIN`…) go, noted.
 */
function keptCapabilities(capAdd: string[], adaptations: string[]): string[] {
  const beyondDefault = capAdd.filter(
    c => !DEFAULT_CAPABILITIES.has(capabilityName(c)),
  );
  if (beyondDefault.length)
    adaptations.push(`added capabilities ${beyondDefault.join(', ')} dropped`);
  return capAdd.filter(c => !beyondDefault.includes(c));
}

/** Seccomp actions that let the call through (SCMP_ACT_LOG: and log it). */
const SECCOMP_ALLOWS = ['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG'];

/**
 * Whether an inline seccomp profile (`seccomp=<json>`) lets every system call through, as
 * `seccomp=unconfined` does: it allows by default and no rule denies. One that does not parse is
 * left to the engine to refuse.
 */
function allowsEverything(profile: string): boolean {
  let parsed: {
    defaultAction?: unknown;
    syscalls?: Array<{ action?: unknown }> | null;
  };
  try {
    parsed = JSON.parse(profile);
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null) return false;
  return (
    SECCOMP_ALLOWS.includes(String(parsed.defaultAction)) &&
    (parsed.syscalls ?? []).every(rule =>
      SECCOMP_ALLOWS.includes(String(rule?.action)),
    )
  );
}

/**
 * Of production's security options, those that confine the machine (no new privileges, a seccomp
 * profile that denies something): kept. The others, unconfined or the production host's own, go,
 * noted, and the recovery engine's default confinement applies.
 */
function keptSecurityOptions(
  securityOpt: string[],
  adaptations: string[],
): string[] {
  const kept: string[] = [];
  for (const opt of securityOpt) {
    const [key, value = ''] = opt.split(/[=:](.*)/s);
    const allowAll = key === 'seccomp' && allowsEverything(value);
    if (
      key === 'no-new-privileges' ||
      (key === 'seccomp' && value !== 'unconfined' && !allowAll)
    ) {
      kept.push(opt);
    } else if (allowAll) {
      adaptations.push(
        "security option seccomp dropped (a profile that allows every system call, as unconfined does): the lab keeps the engine's default confinement",
      );
    } else if (value === 'unconfined' || value === 'disable') {
      adaptations.push(
        `security option ${opt} dropped: the lab keeps the engine's default confinement`,
      );
    } else {
      adaptations.push(
        `security option ${key} dropped (${value}): the production host's, the recovery engine's default applies`,
      );
    }
  }
  return kept;
}

/**
 * The limits a restore may give a machine: the capture's filter applied again (keptCapabilities,
 * keptSecurityOptions), as the runtime comes from the database this time. Whoever can write a
 * capture's record must not get a machine with every capability or unconfined on the recovery
 * host: root there. A capture's own limits pass unchanged; what a changed record adds goes, noted.
 */
export function confinedLimits(
  limits: MachineLimits,
  adaptations: string[],
): MachineLimits {
  const confined: MachineLimits = { ...limits };
  delete confined.capAdd;
  delete confined.securityOpt;
  const capAdd = keptCapabilities(limits.capAdd ?? [], adaptations);
  const securityOpt = keptSecurityOptions(
    limits.securityOpt ?? [],
    adaptations,
  );
  if (capAdd.length) confined.capAdd = capAdd;
  if (securityOpt.length) confined.securityOpt = securityOpt;
  return confined;
}

/** Docker's own runtime, by either name it goes by. */
const RUNC = ['runc', 'io.containerd.runc.v2'];

/** The note of a production runtime the restore does not use. */
const runtimeNotCarried = (name: string) =>
  `container runtime ${name} not carried: the restored machine runs under the recovery engine's default runtime (runc unless that engine sets another), without what ${name} gave it in production (a sandbox such as runsc or kata isolates it from its host more than runc)`;

/** Sysctls that turn IPv6 on, or tune it. */
const IPV6_SYSCTL = /^net\.ipv6\./;

/**
 * Of production's sysctls, those the machine gets in the lab, and a note naming the others: a test
 * lab is IPv4-only (createLab), and IPv6 turned on there
 * (`net.ipv6.conf.all.disable_ipv6=0`) would give the machine a link-local (fe80::) path to the
 * recovery host's side of the lab's bridge. A failover keeps them all.
 */
export function sysctlsInLab(
  sysctls: Record<string, string> | undefined,
  test: boolean,
): { sysctls?: Record<string, string>; note?: string } {
  if (!sysctls || !test) return { sysctls };
  const kept = Object.fromEntries(
    Object.entries(sysctls).filter(([name]) => !IPV6_SYSCTL.test(name)),
  );
  const dropped = Object.entries(sysctls)
    .filter(([name]) => IPV6_SYSCTL.test(name))
    .map(([name, value]) => `${name}=${value}`);
  return {
    ...(Object.keys(kept).length > 0 ? { sysctls: kept } : {}),
    ...(dropped.length > 0
      ? {
          note: `IPv6 sysctls not applied in the test lab: ${dropped.join(', ')} (the test lab is IPv4-only; IPv6 on would give the machine a link-local path to the recovery host's bridge)`,
        }
      : {}),
  };
}

/**
 * Production's tmpfs mounts, `--tmpfs` (the host config's `Tmpfs`) and `--mount type=tmpfs` (its
 * `Mounts`) alike, as `--tmpfs` options: Docker turns the latter's into those same options.
 */
function productionTmpfs(
  info: Pick<Docker.ContainerInspectInfo, 'HostConfig' | 'Mounts'>,
): Record<string, string> {
  const host = (info.HostConfig ?? {}) as Docker.HostConfig &
    Record<string, any>;
  const tmpfs: Record<string, string> = { ...(host.Tmpfs ?? {}) };
  const specs = (host.Mounts ?? []) as Array<{
    Type?: string;
    Target?: string;
    ReadOnly?: boolean;
    TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] };
  }>;
  for (const m of (info.Mounts ?? []) as Mount[]) {
    if (m.Type !== 'tmpfs' || m.Destination in tmpfs) continue;
    const spec = specs.find(
      s => s.Type === 'tmpfs' && s.Target === m.Destination,
    );
    tmpfs[m.Destination] = tmpfsOptions(
      spec?.ReadOnly ?? m.RW === false,
      spec?.TmpfsOptions,
    );
  }
  return tmpfs;
}

/** Docker's own conversion of `--mount type=tmpfs` options (its `ConvertTmpfsOptions`). */
function tmpfsOptions(
  readOnly: boolean,
  opts: { SizeBytes?: number; Mode?: number; Options?: string[][] } = {},
): string {
  const out: string[] = [];
  if (readOnly) out.push('ro');
  if (opts.Mode) out.push(`mode=${opts.Mode.toString(8)}`);
  const size = opts.SizeBytes;
  if (size) {
    const unit = (
      [
        ['g', 1024 ** 3],
        ['m', 1024 ** 2],
        ['k', 1024],
      ] as const
    ).find(([, n]) => size % n === 0);
    out.push(`size=${unit ? `${size / unit[1]}${unit[0]}` : size}`);
  }
  for (const option of opts.Options ?? [])
    out.push(option.filter(Boolean).join('='));
  return out.join(',');
}

/**
 * How production bounded the machine, for the restore to apply: limits, read-only root, tmpfs
 * mounts and /dev/shm's size, init, ulimits, dropped capabilities, confining security options,
 * sysctls, stop signal and timeout.
 * What the lab cannot honour, or gives up on purpose, is recorded in `adaptations` instead.
 */
function productionLimits(
  info: Docker.ContainerInspectInfo,
  capAdd: string[],
  carried: CapturedVolume[],
  adaptations: string[],
): MachineLimits {
  const host = (info.HostConfig ?? {}) as Docker.HostConfig &
    Record<string, any>;
  const limits: MachineLimits = {};
  if (host.Memory) {
    limits.memoryBytes = host.Memory;
    // Without a memory limit Docker refuses a swap limit.
    if (host.MemorySwap) limits.memorySwapBytes = host.MemorySwap;
  }
  if (host.MemoryReservation)
    limits.memoryReservationBytes = host.MemoryReservation;
  if (host.NanoCpus) limits.nanoCpus = host.NanoCpus;
  if (host.CpuShares) limits.cpuShares = host.CpuShares;
  if (host.CpuQuota) limits.cpuQuota = host.CpuQuota;
  if (host.CpuPeriod) limits.cpuPeriod = host.CpuPeriod;
  if (host.PidsLimit && host.PidsLimit > 0) limits.pidsLimit = host.PidsLimit;
  const tmpfs = productionTmpfs(info);
  for (const destination of Object.keys(tmpfs)) {
    // It would hide what the restore puts in the root filesystem under it.
    const under = carried
      .filter(v =>
        `${v.destination}/`.startsWith(`${destination.replace(/\/+$/, '')}/`),
      )
      .map(v => v.destination);
    if (under.length === 0) continue;
    delete tmpfs[destination];
    adaptations.push(
      `tmpfs at ${destination} dropped: it would hide the content of volume ${under.join(', ')}, which the lab keeps in the root filesystem under it`,
    );
  }
  if (Object.keys(tmpfs).length > 0) limits.tmpfs = tmpfs;
  // The machine's own /dev/shm, memory like a tmpfs (a database's shared buffers, say), unless it
  // used the host's or another container's IPC namespace.
  if (
    host.ShmSize &&
    host.ShmSize !== DEFAULT_SHM_BYTES &&
    !/^(host$|container:)/.test(host.IpcMode ?? '')
  ) {
    limits.shmSizeBytes = host.ShmSize;
  }
  if (host.ReadonlyRootfs) {
    // The lab puts what production wrote on mounts into the machine's own filesystem (volume
    // content) or drops it (bind mounts): read-only, the machine could not write there. Nor could
    // the restore put a carried volume's content back, read-only as production mounted it or
    // not. A tmpfs is recreated as a tmpfs: no reason to give read-only up.
    const writable = ((info.Mounts ?? []) as Mount[])
      .filter(m => m.RW && m.Type !== 'tmpfs' && !(m.Destination in tmpfs))
      .map(m => m.Destination);
    const restored = carried
      .map(v => v.destination)
      .filter(d => !writable.includes(d));
    if (writable.length === 0 && restored.length === 0)
      limits.readOnlyRootfs = true;
    else {
      const why = [
        ...(writable.length
          ? [
              `the machine writes to ${writable.join(', ')}, which the lab keeps in its root filesystem`,
            ]
          : []),
        ...(restored.length
          ? [
              `the restore puts the content of read-only volume ${restored.join(', ')} into it, which Docker refuses while it is read-only`,
            ]
          : []),
      ];
      adaptations.push(`read-only root filesystem not kept: ${why.join('; ')}`);
    }
  }
  if (host.Init) limits.init = true;
  if (host.Ulimits?.length) {
    limits.ulimits = host.Ulimits.map(u => ({
      name: u.Name ?? '',
      soft: u.Soft ?? 0,
      hard: u.Hard ?? 0,
    }));
  }
  if (host.CapDrop?.length) limits.capDrop = host.CapDrop;
  if (capAdd.length) limits.capAdd = capAdd;
  const securityOpt = keptSecurityOptions(
    (host.SecurityOpt ?? []) as string[],
    adaptations,
  );
  if (securityOpt.length) limits.securityOpt = securityOpt;
  if (host.Sysctls && Object.keys(host.Sysctls).length)
    limits.sysctls = host.Sysctls;
  const stopSignal = (info.Config as { StopSignal?: string }).StopSignal;
  if (stopSignal && stopSignal !== 'SIGTERM') limits.stopSignal = stopSignal;
  const stopTimeout = (info.Config as { StopTimeout?: number | null })
    .StopTimeout;
  if (typeof stopTimeout === 'number') limits.stopTimeoutSeconds = stopTimeout;
  return limits;
}

/** The runtime's limits as Docker's create options: only those production set. */
export function dockerLimits(limits: MachineLimits): {
  hostConfig: Docker.HostConfig;
  stopSignal?: string;
  stopTimeout?: number;
} {
  const hostConfig: Docker.HostConfig & Record<string, unknown> = {};
  const set = (key: string, value: unknown) => {
    if (value !== undefined) hostConfig[key] = value;
  };
  set('Memory', limits.memoryBytes);
  set('MemorySwap', limits.memorySwapBytes);
  set('MemoryReservation', limits.memoryReservationBytes);
  set('NanoCpus', limits.nanoCpus);
  set('CpuShares', limits.cpuShares);
  set('CpuQuota', limits.cpuQuota);
  set('CpuPeriod', limits.cpuPeriod);
  set('PidsLimit', limits.pidsLimit);
  set('ReadonlyRootfs', limits.readOnlyRootfs);
  set('Init', limits.init);
  set(
    'Ulimits',
    limits.ulimits?.map(u => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
  );
  set('CapDrop', limits.capDrop);
  set('CapAdd', limits.capAdd);
  set('SecurityOpt', limits.securityOpt);
  set('Sysctls', limits.sysctls);
  set('Tmpfs', limits.tmpfs);
  set('ShmSize', limits.shmSizeBytes);
  return {
    hostConfig,
    ...(limits.stopSignal ? { stopSignal: limits.stopSignal } : {}),
    ...(limits.stopTimeoutSeconds !== undefined
      ? { stopTimeout: limits.stopTimeoutSeconds }
      : {}),
  };
}

function toList(v: string | string[] | null | undefined): string[] | undefined {
  if (v === null || v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

/** Runtime healthcheck back to Docker's nanosecond form. */
export function dockerHealthcheck(
  hc: MachineRuntime['healthcheck'],
): Docker.ContainerCreateOptions['Healthcheck'] | undefined {
  if (!hc) return undefined;
  return {
    Test: hc.test,
    Interval: hc.intervalMs ? Math.round(hc.intervalMs * NS_PER_MS) : undefined,
    Timeout: hc.timeoutMs ? Math.round(hc.timeoutMs * NS_PER_MS) : undefined,
    Retries: hc.retries,
    StartPeriod: hc.startPeriodMs
      ? Math.round(hc.startPeriodMs * NS_PER_MS)
      : undefined,
  };
}

/** Docker object names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
export function dockerName(...parts: string[]): string {
  return parts
    .join('-')
    .replace(/[^a-zA-Z0-9_.-]+/g, '-')
    .replace(/^[^a-zA-Z0-9]+/, '')
    .slice(0, 200);
}

/** Image tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
export function dockerTag(value: string): string {
  const t = value.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[.-]+/, '');
  return (t || 'capture').slice(0, 128);
}
