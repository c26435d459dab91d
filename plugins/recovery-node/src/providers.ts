import { CustomErrorBase, ServiceUnavailableError } from '@backstage/errors';
import {
  CAPTURE_STORE_ERROR_NAME,
  ENGINE_FAILED_ERROR_NAME,
  type CapturedMachineState,
  type InitializationEvent,
  type ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import type { TransferProgressListener } from './transferProgress';

/**
 * Where a primary machine's running state lives, from its catalog annotations.
 *
 * @public
 */
export interface MachineLocator {
  /** Catalog ref of the machine `Resource`, e.g. `resource:default/infra-01`. */
  machineRef: string;
  /** Id of the configured primary engine. */
  engine: string;
  /** Container (or VM) name on that engine. */
  container: string;
}

/**
 * A network the machine was attached to in production: its network identity.
 *
 * @public
 */
export interface CapturedNetwork {
  name: string;
  subnet?: string;
  gateway?: string;
  ipv4Address?: string;
  /** The network's IPv6 subnet and gateway, where production enabled IPv6 on it (absent in older captures). */
  ipv6Subnet?: string;
  ipv6Gateway?: string;
  ipv6Address?: string;
  /** Production's names for it on the network (`--network-alias`, and its container's name). */
  aliases: string[];
  /** A MAC address production fixed for it (`--mac-address`); absent where its engine chose one, and in older captures. */
  macAddress?: string;
}

/**
 * A machine's entry of a network for createLab: its captured network, and the primary engine its
 * capture came from. Only on that engine is a network of the same name production's own; on any
 * other it is a twin (the same compose project on both sites), in the lab's way like any other.
 *
 * @public
 */
export interface LabNetwork extends CapturedNetwork {
  /** The id of the primary engine the machine was captured from (Capture.engine); absent where unknown. */
  engine?: string;
}

/**
 * A volume of the machine carried by its capture: the volume's content at `destination`, as a
 * tar archive in the capture store (entries under the destination's last path element).
 *
 * @public
 */
export interface CapturedVolume {
  /** Absolute path in the machine where the volume was mounted. */
  destination: string;
  /** Where the archive lives in the capture store (provider-specific). */
  artifact: string;
  /** `sha256:…` of the archive. */
  checksum: string;
  sizeBytes: number;
  /**
   * The production volume archived, on its engine: machines restored together that mounted the
   * same one share one volume in the lab. Absent in captures from before it was recorded.
   */
  volume?: { engine: string; name: string };
  /** When its content was copied (ISO 8601): of machines sharing it, the newest copy fills it. */
  copiedAt?: string;
}

/**
 * The runtime configuration of a machine, as captured, then adapted.
 *
 * @public
 */
export interface MachineRuntime {
  hostname: string;
  networks: CapturedNetwork[];
  env: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir?: string;
  user?: string;
  exposedPorts: string[];
  healthcheck?: {
    test: string[];
    intervalMs?: number;
    timeoutMs?: number;
    retries?: number;
    startPeriodMs?: number;
  };
  labels: Record<string, string>;
  /**
   * Its container's id in production: a machine that shared its network namespace there
   * (`--network container:<id>`) finds it by it at restore. Absent in older captures.
   */
  productionContainerId?: string;
  /** Volumes carried by the capture, restored before the machine starts (absent in older captures). */
  volumes?: CapturedVolume[];
  /**
   * Memory the machine held when captured, without the file cache it could drop (as `docker
   * stats` counts it): what its restore will want of the host. Absent where the source cannot
   * tell, or the machine was not running.
   */
  memoryBytes?: number;
  /**
   * How production confined and ran the machine, where it said so: applied at restore, so the
   * restored machine runs as bounded as in production. Absent in older captures (restored with the
   * recovery engine's defaults, as before) and where production left the engine's default.
   */
  limits?: MachineLimits;
  /** Production's restart policy: kept by a failover, not by a test lab (the run decides what runs). */
  restartPolicy?: { name: string; maximumRetryCount?: number };
  /**
   * The host ports production published for the machine (`-p 8080:80`): a failover publishes them
   * again on the recovery host (failoverPorts), a test recovery none. Absent in older captures
   * and where production published none.
   */
  portBindings?: PortBinding[];
  /**
   * Production's extra `/etc/hosts` entries (`--add-host name:address`), but those to `host-gateway`
   * (the host it ran on). Absent in older captures and where production added none.
   */
  extraHosts?: string[];
  /**
   * Production's DNS servers (`--dns`): a failover uses them all, a test lab those in the machine's
   * captured subnets (the lab has those). Absent in older captures and where production set none.
   */
  dns?: string[];
}

/**
 * A host port production published for a machine (`docker run -p [ip:][hostPort:]port[/protocol]`).
 *
 * @public
 */
export interface PortBinding {
  /** The machine's port and protocol, as Docker names it: `80/tcp`. */
  containerPort: string;
  /**
   * The host port: production's own, or of `hostPortRange` the one its engine picked as the
   * machine started, where the capture saw it running. Absent where production let its engine
   * pick one, and where the capture did not see which of the range it picked.
   */
  hostPort?: number;
  /**
   * The range of host ports production asked for (`-p 8080-8090:80`, `8080-8090`), of which its
   * engine picks one free as the machine starts; absent for a single port.
   */
  hostPortRange?: string;
  /** The host address it was bound to; absent where it was bound to every address. */
  hostIp?: string;
}

/**
 * A host port a failover publishes for a machine on the recovery host: production's.
 *
 * @public
 */
export interface PublishedPort {
  containerPort: string;
  hostPort: number;
  /**
   * Production's address for it, where it bound it to one it has here: an address family's every
   * address (`0.0.0.0`, `::`), or loopback; absent: every address of both.
   */
  hostIp?: string;
}

/**
 * A host port something on a hypervisor host publishes now, and what.
 *
 * @public
 */
export interface HostPortInUse {
  hostPort: number;
  /** `tcp`, `udp` or `sctp`. */
  protocol: string;
  /** The address it is bound to; absent (or a wildcard) for every address. */
  hostIp?: string;
  /** Who holds it, in words: `container web-prod`, `machine resource:default/web-01 of run … (container …)`. */
  holder: string;
}

/**
 * Production's bounds on a machine (Docker's names in brackets).
 *
 * @public
 */
export interface MachineLimits {
  /** Hard memory limit (`--memory`). */
  memoryBytes?: number;
  /** Soft memory limit (`--memory-reservation`). */
  memoryReservationBytes?: number;
  /** Memory plus swap (`--memory-swap`); -1 unlimited swap. */
  memorySwapBytes?: number;
  /** CPUs in billionths (`--cpus`). */
  nanoCpus?: number;
  /** Relative CPU weight (`--cpu-shares`). */
  cpuShares?: number;
  /** CFS quota and period in µs (`--cpu-quota`, `--cpu-period`). */
  cpuQuota?: number;
  cpuPeriod?: number;
  /** Most processes at once (`--pids-limit`). */
  pidsLimit?: number;
  /** Root filesystem mounted read-only (`--read-only`). */
  readOnlyRootfs?: boolean;
  /** An init process reaps zombies and forwards signals (`--init`). */
  init?: boolean;
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  /** Capabilities production dropped (`--cap-drop`), and those it added back that a default machine has. */
  capDrop?: string[];
  capAdd?: string[];
  /** Security options that confine it further (`no-new-privileges`, an inline seccomp profile). */
  securityOpt?: string[];
  /** Namespaced kernel parameters (`--sysctl`): the machine's own, not the host's. */
  sysctls?: Record<string, string>;
  /** Signal that stops it (`--stop-signal`), where not SIGTERM. */
  stopSignal?: string;
  /** Seconds a stop waits before it kills (`--stop-timeout`), where production set it. */
  stopTimeoutSeconds?: number;
  /** Its tmpfs mounts, destination to `--tmpfs` options: empty at every start, so recreated. */
  tmpfs?: Record<string, string>;
  /** Size of /dev/shm (`--shm-size`), where not the default. */
  shmSizeBytes?: number;
}

/**
 * What a capture source stored for one machine.
 *
 * @public
 */
export interface CapturedMachine {
  /** Content digest of the captured image. */
  imageId: string;
  /** All the capture stores: its image archive and its volumes' archives (runtime.volumes). */
  sizeBytes: number;
  /**
   * Bytes the capture added to the capture store, where the source keeps what captures share
   * once (image layers): its own archives and the layers the store did not hold yet.
   */
  storedBytes?: number;
  /** `sha256:…` of the stored artifact. */
  checksum: string;
  /** Where the artifact lives in the capture store (provider-specific). */
  artifact: string;
  runtime: MachineRuntime;
  /** Host-specific parts rewritten at capture time. */
  adaptations: string[];
  durationMs: number;
  /**
   * How long production was paused for a consistent copy (0: it was not). Sources that copy
   * without pausing leave it out.
   */
  pausedMs?: number;
  /**
   * The machine's state when the capture began: running, stopped, restarting, paused by someone
   * else, its health check's verdict. A machine that is not serving is captured all the same (its
   * disk is the best copy there is), and its capture says so. Sources that cannot tell leave it out.
   */
  machineState?: CapturedMachineState;
  /**
   * Set where the pause took more than half its limit: how close the machine is to captures
   * refused for pausing it too long, and why (its volumes, copied while paused), in words.
   */
  pauseWarning?: string;
}

/**
 * Copies primary machines' running state into the capture store. One per configured
 * primary engine.
 *
 * @public
 */
export interface CaptureSource {
  /** Id of the primary engine this source reads, matched against the `engine` annotation. */
  readonly engineId: string;
  /**
   * `record`, where given, records the capture once its files are kept: a source that holds a
   * note of a capture under way calls it before letting go of the note, and keeps nothing of the
   * capture should it fail. A source without such a note may leave it uncalled: the caller then
   * records what it returns. `signal` aborts at the capture's deadline (or the backend's
   * shutdown): stop the engine calls, unpause what was paused, keep nothing, and fail with an
   * error that starts with the reason's message. An engine that cannot be reached, or answers
   * with an error, fails it with an EngineError. `progress` hears how its copies of large volumes
   * and images come along (TransferProgressLines).
   */
  capture(
    machine: MachineLocator,
    options: {
      captureId: string;
      signal?: AbortSignal;
      record?: (captured: CapturedMachine) => Promise<void>;
      progress?: TransferProgressListener;
    },
  ): Promise<CapturedMachine>;
  /** Removes a capture's artifacts from the store (retention): its image archive and the volumes it recorded. */
  discard(capture: {
    captureId: string;
    artifact: string;
    volumes?: CapturedVolume[];
  }): Promise<void>;
  /**
   * Removes what is left of captures that neither a record nor a capture under way accounts for
   * (a backend stopped before it recorded one, a discard that failed): of `machine` where given,
   * else of every machine the source holds captures of (a machine never captured again keeps no
   * leftovers either). `recorded` gives the ids of the given machines' recorded captures; it is
   * asked after the source has looked for captures under way, so that one recorded meanwhile is
   * among them. Returns the ids removed.
   */
  removeUnrecorded?(
    recorded: (machineRefs: string[]) => Promise<string[]>,
    machine?: MachineLocator,
  ): Promise<string[]>;
}

/**
 * How a capture source or hypervisor host says that its engine (or hypervisor) failed an
 * operation, not the backend: it could not be reached ({@link EngineUnreachableError}, 503), or it
 * answered with an error ({@link EngineFailedError}, 502). The backend answers its HTTP caller with
 * `statusCode`, never with the status of the engine's own answer (an engine's 404 or 409 is no
 * missing entity and no capture under way). The message names the engine, the machine or
 * container, the operation and the cause, in one line: `capture of resource:default/web-01
 * (container web-01) failed while committing the image: Docker engine 'primary' answered HTTP 500: ...`.
 * Made with {@link engineError}, told by {@link isEngineError}.
 *
 * @public
 */
export type EngineError = EngineUnreachableError | EngineFailedError;

/**
 * What kind of this package's error an error is, under a key shared by every copy of the package
 * (Symbol.for): an app may resolve two copies (a module built against another version), where
 * `instanceof` alone fails, and a name or fields alone would take any lookalike. Never on the wire.
 */
const ERROR_KIND: unique symbol = Symbol.for(
  '@backstage-recovery/plugin-recovery-node:error-kind',
);

/** Where an EngineFailedError keeps its host's condition: a symbol, as ERROR_KIND, so no error body carries it. */
const HOST_CONDITION: unique symbol = Symbol.for(
  '@backstage-recovery/plugin-recovery-node:host-condition',
);

type ErrorKind =
  | 'engine-unreachable'
  | 'engine-failed'
  | 'capture-stopped'
  | 'capture-store'
  | 'capture-damaged'
  | 'lab-subnet-held';

const isKind = (error: unknown, kind: ErrorKind) =>
  typeof error === 'object' &&
  error !== null &&
  (error as { [ERROR_KIND]?: unknown })[ERROR_KIND] === kind;

/**
 * An engine that could not be reached: a refused or broken connection, no socket, a timeout (no
 * answer within the wait), a failed TLS handshake. A ServiceUnavailableError (503), as Backstage's
 * error handler answers it and as a run takes it: its host gone, not its machine's failure. Try
 * again once the engine is back.
 *
 * @public
 */
export class EngineUnreachableError extends ServiceUnavailableError {
  readonly [ERROR_KIND]: ErrorKind = 'engine-unreachable';

  /** What the backend answers, in the error body too. */
  readonly statusCode = 503;

  constructor(
    message: string,
    /** Id of the engine (a primary engine, or a hypervisor host), as configured. */
    readonly engine: string,
  ) {
    super(message);
  }
}

/**
 * An engine that answered with an error: a 5xx, or a 4xx the operation does not make an answer of
 * its own (a container that is not there is a 404 NotFoundError naming it and the engine). A 502
 * named `EngineFailedError`, not a 503: the engine is up and refused, which trying again seldom
 * mends, and its own logs say why.
 *
 * @public
 */
export class EngineFailedError extends CustomErrorBase {
  readonly [ERROR_KIND]: ErrorKind = 'engine-failed';

  name = ENGINE_FAILED_ERROR_NAME;

  /** What the backend answers: Backstage's error handler knows no status by this name. */
  readonly statusCode = 502;

  /** The state of its host the engine said it failed on, where it did ({@link hostCondition}); never on the wire. */
  readonly [HOST_CONDITION]?: HostCondition;

  constructor(
    message: string,
    /** Id of the engine (a primary engine, or a hypervisor host), as configured. */
    readonly engine: string,
    condition?: HostCondition,
  ) {
    super(message);
    if (condition) this[HOST_CONDITION] = condition;
  }
}

/**
 * What of its host an engine can run out of: its disk (`no space left on device`, a disk quota),
 * its memory, its open files.
 *
 * @public
 */
export type HostResource = 'disk' | 'memory' | 'open files';

/**
 * The state of its host an engine failed an operation on: the host's condition, not the machine's
 * or the capture's. The host ran out of a `resource` (`exhausted`), or something of the host holds
 * a host port the machine was to publish (`port-held`: production's, which a failover publishes
 * again; `hostPort` where the engine named it).
 *
 * @public
 */
export type HostCondition =
  | { kind: 'exhausted'; resource: HostResource }
  | { kind: 'port-held'; hostPort?: number };

/**
 * The {@link EngineError} of an engine that was `unreachable`, or `answered` with an error (saying
 * what of its host's `condition` it failed on, where it did).
 *
 * @public
 */
export function engineError(
  message: string,
  engine: string,
  failure: 'unreachable' | 'answered',
  condition?: HostCondition,
): EngineError {
  return failure === 'unreachable'
    ? new EngineUnreachableError(message, engine)
    : new EngineFailedError(message, engine, condition);
}

/**
 * The host's condition an engine said it failed on, where `error` is an {@link EngineFailedError}
 * saying one: a run then fails at its host, naming no machine (readiness and owners' notices would
 * blame it for the host's state), and one on a host with room, or with the port free, may fare
 * otherwise.
 *
 * @public
 */
export function hostCondition(error: unknown): HostCondition | undefined {
  return isKind(error, 'engine-failed')
    ? (error as EngineFailedError)[HOST_CONDITION]
    : undefined;
}

/**
 * Whether `error` is an {@link EngineError}: an engine out of reach, or one that answered with an error.
 *
 * @public
 */
export function isEngineError(error: unknown): error is EngineError {
  return isKind(error, 'engine-unreachable') || isKind(error, 'engine-failed');
}

/**
 * A capture its source stopped because the backend shuts down: a ServiceUnavailableError (503, try
 * again once it is back), which says nothing of the machine, so no failed capture of it is recorded
 * for readiness. Told by {@link isCaptureStopped}.
 *
 * @public
 */
export class CaptureStoppedError extends ServiceUnavailableError {
  readonly [ERROR_KIND]: ErrorKind = 'capture-stopped';

  /** What the backend answers, in the error body too. */
  readonly statusCode = 503;
}

/**
 * Whether `error` is a {@link CaptureStoppedError}.
 *
 * @public
 */
export function isCaptureStopped(error: unknown): error is CaptureStoppedError {
  return isKind(error, 'capture-stopped');
}

/**
 * A capture the capture store could not take: full (ENOSPC), over its quota (EDQUOT), read-only
 * (EROFS), not writable or gone. The store's condition, not the backend's bug: the backend
 * answers its HTTP caller 507 (Insufficient Storage), never a 500, its message naming the machine,
 * the store's directory and what is wrong. Told by {@link isCaptureStoreError}.
 *
 * @public
 */
export class CaptureStoreError extends CustomErrorBase {
  readonly [ERROR_KIND]: ErrorKind = 'capture-store';

  name = CAPTURE_STORE_ERROR_NAME;

  /** What the backend answers: Backstage's error handler knows no status by this name. */
  readonly statusCode = 507;

  constructor(
    message: string,
    /** The capture store's directory. */
    readonly directory: string,
  ) {
    super(message);
  }
}

/**
 * Whether `error` is a {@link CaptureStoreError}.
 *
 * @public
 */
export function isCaptureStoreError(
  error: unknown,
): error is CaptureStoreError {
  return isKind(error, 'capture-store');
}

/**
 * A capture whose stored content no longer matches what was recorded of it (a checksum that does
 * not match, a layer file overwritten or gone, an archive cut short or missing): it cannot be
 * restored, now or later. What a hypervisor host's verifyCapture (and its restore) fails with where
 * the capture itself is damaged, as opposed to a store it cannot read now (an error of another
 * kind): the run marks the capture damaged, and no run restores it again. Told by {@link isCaptureDamaged}.
 *
 * @public
 */
export class CaptureDamagedError extends CustomErrorBase {
  readonly [ERROR_KIND]: ErrorKind = 'capture-damaged';

  name = 'CaptureDamagedError';

  constructor(
    message: string,
    readonly captureId: string,
  ) {
    super(message);
  }
}

/**
 * Whether `error` is a {@link CaptureDamagedError}.
 *
 * @public
 */
export function isCaptureDamaged(error: unknown): error is CaptureDamagedError {
  return isKind(error, 'capture-damaged');
}

/**
 * A network on the hypervisor host that no recovery run made holds (or overlaps) a production
 * subnet the run's lab needs: the lab would come up on another subnet, where its machines do not
 * get production's addresses and those that reach each other by address wait out their ready
 * timeout. What createLab fails with before it makes anything: the host's problem, not a
 * machine's. Its message names the host, the subnet and the network (name and id), and what to
 * do. Told by {@link isLabSubnetHeld}.
 *
 * @public
 */
export class LabSubnetHeldError extends CustomErrorBase {
  readonly [ERROR_KIND]: ErrorKind = 'lab-subnet-held';

  name = 'LabSubnetHeldError';

  constructor(
    message: string,
    /** Id of the hypervisor host, as configured. */
    readonly host: string,
    /** The production subnet the lab needs. */
    readonly subnet: string,
    /** The network holding it: its name, id and its own subnet. */
    readonly holder: { name: string; id: string; subnet: string },
  ) {
    super(message);
  }
}

/**
 * Whether `error` is a {@link LabSubnetHeldError}.
 *
 * @public
 */
export function isLabSubnetHeld(error: unknown): error is LabSubnetHeldError {
  return isKind(error, 'lab-subnet-held');
}

/**
 * A capture to restore, as the hypervisor host needs it.
 *
 * @public
 */
export interface RestorableCapture {
  captureId: string;
  machineRef: string;
  imageId: string;
  checksum: string;
  artifact: string;
  runtime: MachineRuntime;
  /**
   * All the capture stores (CapturedMachine.sizeBytes): its image archive is this less its
   * volumes'. The totals of its restore's progress lines; absent where unknown.
   */
  sizeBytes?: number;
}

/**
 * The isolated (or failover) network of one run on a hypervisor host.
 *
 * @public
 */
export interface LabHandle {
  runId: string;
  networks: string[];
}

/**
 * A machine restored on a hypervisor host, as its provider identifies it.
 *
 * @public
 */
export interface MachineHandle {
  runId: string;
  machineRef: string;
  /** Provider id of the restored machine (container id). */
  id: string;
  /** The host names the machine answers to inside the lab. */
  hostnames: string[];
}

/**
 * A restored machine's state as its provider reports it: running, exit code and health.
 *
 * @public
 */
export interface MachineState {
  running: boolean;
  exitCode?: number;
  /** From the captured health check, when the machine has one. */
  health?: 'starting' | 'healthy' | 'unhealthy';
  /** The output of its last health check that failed, on one line: why it is not healthy yet. */
  healthOutput?: string;
  /** When it stopped (ISO time), where it is not running and the host can tell. */
  stoppedAt?: string;
  /**
   * When it last started (ISO time, the host's clock), where it runs and the host can tell: one
   * sharing a namespace (sharesNetworkOf) that started before that namespace's machine did was left
   * in the namespace that machine had before (restarted outside supervision, say), without network.
   */
  startedAt?: string;
  /**
   * The id (MachineHandle.id) of the machine whose network namespace it joined (`--network
   * container:<id>`), where it shares one: that machine's stop takes its network with it, so a
   * kept failover's supervision restarts it after starting that machine again.
   */
  sharesNetworkOf?: string;
}

/**
 * The outcome of a readiness probe of a restored machine.
 *
 * @public
 */
export interface ProbeResult {
  ok: boolean;
  message: string;
}

/**
 * Resources on a hypervisor host that carry a run's label.
 *
 * @public
 */
export interface LabResources {
  machines: string[];
  networks: string[];
  /** Volumes the run's machines shared (CapturedVolume.volume). */
  volumes?: string[];
}

/**
 * A machine restored in a lab, not started yet, and what the host changed to restore it there.
 *
 * @public
 */
export interface RestoredMachine {
  machine: MachineHandle;
  /** What the host adapted, human-readable ("CPU limit 8 lowered to the 4 CPUs engine recovery has"). */
  adaptations: string[];
  /**
   * The adaptations (not also in `adaptations`) that gave up a production network, subnet or
   * address: whatever reaches the machine there as in production may fail in the lab.
   */
  addressesLost: string[];
  /** The host ports published for it on the host, in words (`8080 -> 80/tcp`): a failover's only. */
  published?: string[];
}

/**
 * What restoring a run's captures takes on a hypervisor host, against what the host has.
 *
 * @public
 */
export interface HostRoom {
  /** Bytes the restored captures take there: each image once loaded (layers they share, once) and each volume. */
  neededBytes: number;
  /** Bytes free where the host keeps them; absent where it cannot tell (`unknown` says why). */
  freeBytes?: number;
  /** Where that is, for messages: `recovery:/var/lib/docker`. */
  where: string;
  unknown?: string;
  /**
   * Memory the restored machines will hold at once (every wave stays up until the run ends): the
   * sum of what their captures say (`MachineRuntime.memoryBytes`), of `memoryKnownFor` of them.
   */
  neededMemoryBytes?: number;
  memoryKnownFor?: number;
  /** Memory the host has available for them (Linux's MemAvailable); absent where it cannot tell. */
  availableMemoryBytes?: number;
}

/**
 * The designated recovery host: its virtualization layer runs the recovered machines.
 * Every resource it creates for a run carries the run id as a label. Its virtualization layer
 * failing an operation (unreachable, or answering with an error) fails it with an EngineError.
 *
 * @public
 */
export interface HypervisorHost {
  readonly id: string;
  /**
   * Creates the run's emulated network: same subnets, addresses and names as production;
   * `internal` (no route out) for test runs. `networks` holds each machine's entry (a network
   * named more than once is one network), so the host knows every production address it must
   * keep its own containers off.
   */
  createLab(
    runId: string,
    networks: LabNetwork[],
    options: { internal: boolean },
  ): Promise<LabHandle>;
  /**
   * The room restoring a run's captures takes on the host, and what it has, read before the run
   * builds its lab: a run that needs more than the host has free fails then, not halfway through
   * its waves. `waves` holds the captures in boot order, a wave's restored at once. Anything it
   * leaves on the host carries the run id.
   */
  room?(runId: string, waves: RestorableCapture[][]): Promise<HostRoom>;
  /**
   * Reads every byte the capture's restore would read (its image, its volumes) against the
   * checksums recorded, streaming, and loads nothing: a run asks it of every capture before it
   * builds its lab, so a damaged one fails the run before any machine boots rather than at its
   * wave. Fails with a {@link CaptureDamagedError} where the capture is damaged; with any other
   * error where it could not tell (the store unreadable now). `signal` stops the reading;
   * `progress` hears how the reading of large files comes along (TransferProgressLines). A host
   * without it verifies each capture as it restores it (restoreMachine), as every host must.
   */
  verifyCapture?(
    capture: RestorableCapture,
    options?: { signal?: AbortSignal; progress?: TransferProgressListener },
  ): Promise<void>;
  /**
   * The host ports the host's machines (containers) publish now, whoever made them: before a
   * failover publishes production's host ports there, its pre-flight refuses one another holds.
   * A port held by anything else (a process of the host) fails the start of the machine that
   * wants it as the host's condition (an EngineFailedError whose hostCondition is `port-held`,
   * naming the port). A host without it leaves that to the start too.
   */
  hostPortsInUse?(): Promise<HostPortInUse[]>;
  /**
   * Loads the capture (verifying its checksum) and creates the machine, adapted, not started. In a
   * failover's lab (not internal) the machine publishes the host ports failoverPorts gives of its
   * runtime's portBindings, said in `published`; in a test lab none. `progress` hears how the
   * reading, loading and putting back of large archives comes along (TransferProgressLines).
   */
  restoreMachine(
    lab: LabHandle,
    capture: RestorableCapture,
    options?: {
      progress?: TransferProgressListener;
      /** The run's captures (this one among them): volumes they share in production are shared in the lab. */
      runCaptures?: RestorableCapture[];
      /** The run's machines ready in earlier waves: one whose network namespace this one shared in production, it shares in the lab. */
      booted?: MachineHandle[];
    },
  ): Promise<RestoredMachine>;
  startMachine(machine: MachineHandle): Promise<void>;
  /**
   * Stops a running machine and starts it again: one in another's network namespace
   * (MachineState.sharesNetworkOf) keeps running without network once that one stopped, and joins
   * its namespace again only so. A host without it leaves such a machine as it is.
   */
  restartMachine?(machine: MachineHandle): Promise<void>;
  inspectMachine(machine: MachineHandle): Promise<MachineState>;
  /** Runs a probe from inside the lab network, as a client there would. */
  probe(
    lab: LabHandle,
    machine: MachineHandle,
    probe: ProbeSpec,
  ): Promise<ProbeResult>;
  logTail(machine: MachineHandle, lines: number): Promise<string>;
  /**
   * Removes, once the run probes its machines no more, the helpers the host made for probing them
   * (a probe container holding an address on each lab network), and makes none again for the run.
   * A failover keeps its machines, where they serve production; its probe there serves nothing. A
   * host without it keeps them until the run's teardown, or a failover's release. Idempotent;
   * gives the names of what it removed.
   */
  removeProbes?(runId: string): Promise<string[]>;
  /**
   * The lab and machines a finished failover kept on the host, found again from what the host
   * labelled with its run id (a backend restarted since holds no handle of them): the failover's
   * supervision starts those the host stopped and probes them as the run did, so probing the run
   * is allowed again until removeProbes. Undefined where nothing of the run is left (released, or
   * removed by hand). A host without it leaves a kept failover unsupervised.
   */
  reattach?(
    runId: string,
  ): Promise<{ lab: LabHandle; machines: MachineHandle[] } | undefined>;
  /**
   * Tells, as it happens, that a machine a run keeps on the host stopped (the host's engine
   * restarted, the machine crashed or was killed): a kept failover's supervision then starts it
   * again at once, not at its next sweep. `onResumed` says the host's watch is back after a break
   * (an engine restart), in which stops went unheard. Returns what stops watching. Test labs'
   * machines may be told too: only the backend knows which runs are kept failovers. A host without
   * it is supervised by the sweep alone.
   */
  watchKeptMachines?(
    onStopped: (runId: string) => void,
    onResumed: () => void,
  ): () => void;
  /** Lists what still carries the run's label (or every run's, without a run id). */
  listLabResources(runId?: string): Promise<LabResources>;
  /** Removes everything labelled with the run id. Idempotent. */
  teardown(runId: string): Promise<LabResources>;
}

/**
 * A continuous source of initialization events (e.g. a primary engine's event stream).
 * `start` resolves when `signal` aborts; it reconnects on its own after failures.
 * `resume.since` is the time (epoch ms) of the newest event stored from this source: one that
 * can replay should start there, so events while the backend was down are not lost (events
 * sent again are stored once).
 *
 * @public
 */
export interface InitializationEventSource {
  readonly id: string;
  start(
    onEvents: (events: InitializationEvent[]) => Promise<void>,
    signal: AbortSignal,
    resume?: { since?: number },
  ): Promise<void>;
}
