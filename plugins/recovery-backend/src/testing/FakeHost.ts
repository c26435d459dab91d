import type { ProbeSpec } from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedNetwork,
  HypervisorHost,
  LabHandle,
  LabResources,
  MachineHandle,
  MachineState,
  ProbeResult,
  RestorableCapture,
  RestoredMachine,
} from '@backstage-recovery/plugin-recovery-node';

/**
 * A hypervisor host in memory whose machines behave like the demo's: a machine's services
 * come up only if the machines it needs were already up when it started.
 */
export class FakeHost implements HypervisorHost {
  readonly id = 'fake';
  readonly started: string[] = [];
  readonly labels = new Map<string, string>(); // resource -> run id
  private readonly up = new Set<string>();
  private readonly exited = new Map<string, number>(); // machine id -> exit code
  private readonly unhealthy = new Set<string>();

  constructor(
    private readonly needs: Record<string, string[]>,
    private readonly crashes: string[] = [],
  ) {}

  async createLab(
    runId: string,
    networks: CapturedNetwork[],
  ): Promise<LabHandle> {
    const names = [...new Set(networks.map(n => `lab-${runId}-${n.name}`))];
    names.forEach(n => this.labels.set(n, runId));
    return { runId, networks: names };
  }
  async restoreMachine(
    lab: LabHandle,
    capture: RestorableCapture,
  ): Promise<RestoredMachine> {
    const id = `${lab.runId}/${capture.machineRef}`;
    this.labels.set(id, lab.runId);
    return {
      machine: {
        runId: lab.runId,
        machineRef: capture.machineRef,
        id,
        hostnames: [],
      },
      adaptations: ['dropped host port binding 8080->80/tcp'],
      addressesLost: [],
    };
  }
  async startMachine(machine: MachineHandle) {
    this.started.push(machine.machineRef);
    // Started again after it stopped: it runs, unless it crashes again.
    this.exited.delete(machine.id);
    if (this.crashes.includes(machine.machineRef)) {
      this.exited.set(machine.id, 3);
      return;
    }
    const ok = (this.needs[machine.machineRef] ?? []).every(dep =>
      this.up.has(`${machine.runId}/${dep}`),
    );
    if (ok) this.up.add(machine.id);
  }
  /** The machine stops, as a process that exits after it came up. */
  exit(machineId: string, exitCode: number) {
    this.up.delete(machineId);
    this.exited.set(machineId, exitCode);
  }
  /** The engine restarted: every machine of run `runId` it holds exited (0), none restarted. */
  restartEngine(runId: string) {
    for (const id of this.resources(runId).machines) this.exit(id, 0);
  }
  async reattach(
    runId: string,
  ): Promise<{ lab: LabHandle; machines: MachineHandle[] } | undefined> {
    const { machines, networks } = this.resources(runId);
    if (machines.length === 0) return undefined;
    return {
      lab: { runId, networks },
      machines: machines.map(id => ({
        runId,
        machineRef: id.slice(runId.length + 1),
        id,
        hostnames: [],
      })),
    };
  }
  /** The machine keeps running but its services stop answering. */
  stopAnswering(machineId: string) {
    this.up.delete(machineId);
  }
  /** The machine keeps running and answering, but its health check reports unhealthy. */
  turnUnhealthy(machineId: string) {
    this.unhealthy.add(machineId);
  }
  async inspectMachine(machine: MachineHandle): Promise<MachineState> {
    // A torn-down machine is gone, as on an engine: inspecting it fails.
    if (!this.labels.has(machine.id))
      throw new Error(`No such container: ${machine.id}`);
    const exitCode = this.exited.get(machine.id);
    if (exitCode !== undefined) return { running: false, exitCode };
    return this.unhealthy.has(machine.id)
      ? { running: true, health: 'unhealthy' }
      : { running: true };
  }
  async probe(
    _lab: LabHandle,
    machine: MachineHandle,
    probe: ProbeSpec,
  ): Promise<ProbeResult> {
    return this.up.has(machine.id)
      ? { ok: true, message: 'connected' }
      : {
          ok: false,
          message: `connection to ${machine.machineRef}:${probe.port} refused`,
        };
  }
  async logTail(machine: MachineHandle) {
    return `console of ${machine.machineRef}`;
  }
  async listLabResources(runId?: string): Promise<LabResources> {
    return this.resources(runId);
  }
  async teardown(runId: string): Promise<LabResources> {
    const resources = this.resources(runId);
    for (const k of [...resources.machines, ...resources.networks]) {
      this.labels.delete(k);
      this.up.delete(k);
    }
    return resources;
  }
  // Not through listLabResources: a test that makes that call fail fails it, not teardowns.
  private resources(runId?: string): LabResources {
    const mine = [...this.labels]
      .filter(([, r]) => !runId || r === runId)
      .map(([k]) => k);
    return {
      machines: mine.filter(k => !k.startsWith('lab-')),
      networks: mine.filter(k => k.startsWith('lab-')),
    };
  }
}
