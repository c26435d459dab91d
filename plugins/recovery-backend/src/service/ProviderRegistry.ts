import { InputError, ServiceUnavailableError } from '@backstage/errors';
import type {
  CaptureSource,
  HypervisorHost,
  InitializationEventSource,
  RecoveryProvidersExtensionPoint,
} from '@backstage-recovery/plugin-recovery-node';

/** What modules registered through the providers extension point. */
export class ProviderRegistry implements RecoveryProvidersExtensionPoint {
  private readonly captureSources = new Map<string, CaptureSource>();
  private readonly hosts = new Map<string, HypervisorHost>();
  readonly eventSources: InitializationEventSource[] = [];
  private closed = false;

  /**
   * What modules get through the extension point: the add methods alone, refused once the
   * plugin's init has begun (close). By then its config was checked against the hosts
   * registered (recovery.hypervisorHost) and its services were given what it holds.
   */
  extensionPoint(): RecoveryProvidersExtensionPoint {
    const open = (what: string) => {
      if (this.closed)
        throw new Error(
          `${what} registered after the recovery plugin started: register in your module's init`,
        );
    };
    return {
      addCaptureSource: source => {
        open(`Capture source for engine '${source.engineId}'`);
        this.addCaptureSource(source);
      },
      addHypervisorHost: host => {
        open(`Hypervisor host '${host.id}'`);
        this.addHypervisorHost(host);
      },
      addEventSource: source => {
        open(`Event source '${source.id}'`);
        this.addEventSource(source);
      },
    };
  }

  /** Refuses modules' additions from now on (see extensionPoint). */
  close(): void {
    this.closed = true;
  }

  addCaptureSource(source: CaptureSource): void {
    if (this.captureSources.has(source.engineId)) {
      throw new Error(
        `A capture source for engine '${source.engineId}' is already registered`,
      );
    }
    this.captureSources.set(source.engineId, source);
  }

  addHypervisorHost(host: HypervisorHost): void {
    if (this.hosts.has(host.id)) {
      throw new Error(`A hypervisor host '${host.id}' is already registered`);
    }
    this.hosts.set(host.id, host);
  }

  addEventSource(source: InitializationEventSource): void {
    this.eventSources.push(source);
  }

  /** Every capture source registered, one per primary engine. */
  allCaptureSources(): CaptureSource[] {
    return [...this.captureSources.values()];
  }

  captureSource(engineId: string): CaptureSource {
    const source = this.captureSources.get(engineId);
    if (!source) {
      const known = [...this.captureSources.keys()].join(', ') || 'none';
      throw new InputError(
        `No capture source for primary engine '${engineId}' (configured: ${known})`,
      );
    }
    return source;
  }

  /** The ids of the hypervisor hosts registered. */
  hypervisorHostIds(): string[] {
    return [...this.hosts.keys()];
  }

  /**
   * The designated hypervisor host: the configured one, or the only one registered. Without one,
   * the backend is misconfigured, not the request wrong (503, naming the setting).
   */
  hypervisorHost(designated?: string): HypervisorHost {
    if (designated) {
      const host = this.hosts.get(designated);
      if (!host) {
        throw new ServiceUnavailableError(
          `Hypervisor host '${designated}' (recovery.hypervisorHost) is not registered by any module`,
        );
      }
      return host;
    }
    if (this.hosts.size !== 1) {
      throw new ServiceUnavailableError(
        this.hosts.size === 0
          ? 'No hypervisor host is registered: add a provider module such as the Docker module'
          : `Several hypervisor hosts are registered (${[...this.hosts.keys()].join(', ')}): set recovery.hypervisorHost`,
      );
    }
    return [...this.hosts.values()][0];
  }
}
