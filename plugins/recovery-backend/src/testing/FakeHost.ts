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
  private readonly crashed = new Set<string>();

  constructor(private readonly needs: Record<string, string[]>, private readonly crashes: string[] = []) {}

  async createLab(runId: string, networks: CapturedNetwork[]): Promise<LabHandle> {
    const names = networks.map(n => `lab-${runId}-${n.name}`);
    names.forEach(n => this.labels.set(n, runId));
    return { runId, networks: names };
  }
  async restoreMachine(lab: LabHandle, capture: RestorableCapture): Promise<RestoredMachine> {
    const id = `${lab.runId}/${capture.machineRef}`;
    this.labels.set(id, lab.runId);
    return {
      machine: { runId: lab.runId, machineRef: capture.machineRef, id, hostnames: [] },
      adaptations: ['dropped host port binding 8080->80/tcp'],
      addressesLost: [],
    };
  }
  async startMachine(machine: MachineHandle) {
    this.started.push(machine.machineRef);
    if (this.crashes.includes(machine.machineRef)) {
      this.crashed.add(machine.id);
      return;
    }
    const ok = (this.needs[machine.machineRef] ?? []).every(dep => this.up.has(`${machine.runId}/${dep}`));
    if (ok) this.up.add(machine.id);
  }
  async inspectMachine(machine: MachineHandle): Promise<MachineState> {
    return this.crashed.has(machine.id) ? { running: false, exitCode: 3 } : { running: true };
  }
  async probe(_lab: LabHandle, machine: MachineHandle, probe: ProbeSpec): Promise<ProbeResult> {
    return this.up.has(machine.id)
      ? { ok: true, message: 'connected' }
      : { ok: false, message: `connection to ${machine.machineRef}:${probe.port} refused` };
  }
  async logTail(machine: MachineHandle) {
    return `console of ${machine.machineRef}`;
  }
  async listLabResources(runId?: string): Promise<LabResources> {
    const mine = [...this.labels].filter(([, r]) => !runId || r === runId).map(([k]) => k);
    return { machines: mine.filter(k => !k.startsWith('lab-')), networks: mine.filter(k => k.startsWith('lab-')) };
  }
  async teardown(runId: string): Promise<LabResources> {
    const resources = await this.listLabResources(runId);
    for (const k of [...resources.machines, ...resources.networks]) this.labels.delete(k);
    return resources;
  }
}

