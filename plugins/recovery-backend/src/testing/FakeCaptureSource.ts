import type { CapturedMachineState } from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedMachine,
  CaptureSource,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';

/** A capture source in memory: records what it captured and discarded. */
export class FakeCaptureSource implements CaptureSource {
  readonly captured: string[] = [];
  readonly discarded: string[] = [];
  /** The state each container is captured in (by container name); none said where not set. */
  readonly machineStates = new Map<string, CapturedMachineState>();
  /** The pause warning each container's capture carries (by container name). */
  readonly pauseWarnings = new Map<string, string>();
  /** The production container id each container is captured with (by name); none where not set. */
  readonly containerIds = new Map<string, string>();

  constructor(readonly engineId = 'primary') {}

  async capture(
    machine: MachineLocator,
    options: { captureId: string },
  ): Promise<CapturedMachine> {
    this.captured.push(machine.container);
    // A real capture takes far longer than the millisecond its time is kept in; without this, the
    // captures of a test could share one and "the last N" would be chosen by their random ids.
    const started = Date.now();
    while (Date.now() === started)
      await new Promise(resolve => setTimeout(resolve, 1));
    return {
      imageId: `sha256:${options.captureId}`,
      sizeBytes: 1000,
      checksum: `sha256:${options.captureId}`,
      artifact: `/store/${options.captureId}.tar`,
      runtime: {
        hostname: machine.container,
        networks: [
          {
            name: 'prod',
            subnet: '172.29.10.0/24',
            aliases: [machine.container],
          },
        ],
        env: [],
        exposedPorts: [],
        labels: {},
        ...(this.containerIds.has(machine.container) && {
          productionContainerId: this.containerIds.get(machine.container),
        }),
      },
      adaptations: [],
      durationMs: 5,
      pausedMs: 2,
      ...(this.machineStates.has(machine.container) && {
        machineState: this.machineStates.get(machine.container),
      }),
      ...(this.pauseWarnings.has(machine.container) && {
        pauseWarning: this.pauseWarnings.get(machine.container),
      }),
    };
  }

  async discard(capture: { captureId: string }): Promise<void> {
    this.discarded.push(capture.captureId);
  }
}

/**
 * A capture source whose captures of the `gated` containers wait until let through: a capture
 * under way, as a slow engine or another request holds one. It keeps no note of its own.
 */
export class GatedCaptureSource extends FakeCaptureSource {
  readonly gated = new Set<string>();
  /** Captures held at the gate, by container. */
  readonly waiting = new Map<string, () => void>();

  override async capture(
    machine: MachineLocator,
    options: { captureId: string },
  ): Promise<CapturedMachine> {
    if (this.gated.has(machine.container))
      await new Promise<void>(resolve =>
        this.waiting.set(machine.container, resolve),
      );
    return super.capture(machine, options);
  }

  /** Lets the held capture of `container` through, or of every gated container; later ones pass too. */
  letThrough(container?: string): void {
    for (const [held, resolve] of [...this.waiting]) {
      if (container !== undefined && held !== container) continue;
      this.waiting.delete(held);
      resolve();
    }
    if (container === undefined) this.gated.clear();
    else this.gated.delete(container);
  }
}
