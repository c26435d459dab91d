import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
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
} from '@backstage-recovery/plugin-recovery-node';
import { RecoveryStore } from '../database/RecoveryStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import type { RecoveryGraph, ServiceNode } from '../plan/recoveryGraph';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { RunService, RunServiceOptions } from './RunService';

/**
 * A hypervisor host in memory whose machines behave like the demo's: a machine's services
 * come up only if the machines it needs were already up when it started.
 */
class FakeHost implements HypervisorHost {
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
  async restoreMachine(lab: LabHandle, capture: RestorableCapture) {
    const id = `${lab.runId}/${capture.machineRef}`;
    this.labels.set(id, lab.runId);
    return {
      machine: { runId: lab.runId, machineRef: capture.machineRef, id, hostnames: [] },
      adaptations: ['dropped host port binding 8080->80/tcp'],
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

const svc = (ref: string, machine: string, dependsOn: string[] = []): ServiceNode => ({
  ref,
  machines: [machine],
  dependsOn,
  probes: [{ kind: 'tcp', port: 1 }],
});
const demoGraph: RecoveryGraph = {
  rootRef: 'component:default/web',
  roots: ['component:default/web'],
  services: new Map(
    [
      svc('component:default/dns', 'resource:default/infra-01'),
      svc('component:default/database', 'resource:default/data-01', ['component:default/dns']),
      svc('component:default/web', 'resource:default/web-01', ['component:default/database']),
    ].map(s => [s.ref, s]),
  ),
  machines: new Map(
    ['infra-01', 'data-01', 'web-01'].map(n => [
      `resource:default/${n}`,
      { ref: `resource:default/${n}`, locator: { machineRef: `resource:default/${n}`, engine: 'primary', container: n } },
    ]),
  ),
  problems: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};
const needs = {
  'resource:default/data-01': ['resource:default/infra-01'],
  'resource:default/web-01': ['resource:default/data-01'],
};

const options: RunServiceOptions = {
  machineReadyTimeoutMs: 300,
  probeIntervalMs: 20,
  heartbeatIntervalMs: 50,
  staleAfterMs: 1_000,
  allowTestHooks: true,
};

describe('RunService', () => {
  const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
  let store: RecoveryStore;

  beforeEach(async () => {
    const knex = await databases.init('SQLITE_3');
    await RecoveryStore.migrate(knex);
    store = new RecoveryStore(knex);
    for (const n of ['infra-01', 'data-01', 'web-01']) {
      await store.insertCapture({
        id: `cap-${n}`,
        machineRef: `resource:default/${n}`,
        engine: 'primary',
        container: n,
        imageId: 'sha256:1',
        sizeBytes: 1,
        checksum: 'sha256:1',
        artifact: `/store/${n}.tar`,
        runtime: { hostname: n, networks: [{ name: 'prod', aliases: [] }], env: [], exposedPorts: [], labels: {} },
        adaptations: [],
        durationMs: 1,
        createdAt: new Date().toISOString(),
      });
    }
  });

  function service(host: HypervisorHost, overrides: Partial<RunServiceOptions> = {}) {
    const providers = new ProviderRegistry();
    providers.addHypervisorHost(host);
    const plans = new PlanService({ load: async () => demoGraph } as unknown as CatalogGraphLoader);
    return new RunService(store, providers, plans, mockServices.logger.mock(), { ...options, ...overrides });
  }

  it('boots wave by wave, gates each machine on its probes, measures RTO and tears down', async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    const started = await runs.start({ entityRef: 'component:default/web', mode: 'test', trigger: 'user' });
    expect(started.status).toBe('pending');
    await runs.waitFor(started.id);

    const run = (await store.getRun(started.id))!;
    expect(run.status).toBe('succeeded');
    expect(host.started).toEqual(['resource:default/infra-01', 'resource:default/data-01', 'resource:default/web-01']);
    const [infra, data, web] = run.machines;
    expect(run.machines.every(m => m.phase === 'ready')).toBe(true);
    expect(Date.parse(infra.readyAt!)).toBeLessThanOrEqual(Date.parse(data.startedAt!));
    expect(Date.parse(data.readyAt!)).toBeLessThanOrEqual(Date.parse(web.startedAt!));
    expect(run.rtoSeconds).toBeGreaterThanOrEqual(0);
    expect(run.rtoSeconds).toBe((Date.parse(web.readyAt!) - Date.parse(infra.restoreStartedAt!)) / 1000);
    expect(run.steps.map(s => s.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Lab torn down: removed 3 machines and 1 networks$/)]),
    );
    expect(await host.listLabResources(run.id)).toEqual({ machines: [], networks: [] });
  });

  it('fails a reversed boot order on the probe that never passes, naming machine and probe', async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
      options: { reverseBootOrder: true },
    });
    await runs.waitFor(started.id);
    const run = (await store.getRun(started.id))!;
    expect(run.status).toBe('failed');
    expect(host.started).toEqual(['resource:default/web-01']);
    expect(run.error).toEqual({
      machineRef: 'resource:default/web-01',
      probe: 'tcp:1',
      message: expect.stringContaining('resource:default/web-01 failed: probe tcp:1 did not pass within 0.3 s: connection to resource:default/web-01:1 refused'),
    });
    expect(run.machines.find(m => m.machineRef === 'resource:default/web-01')).toMatchObject({
      phase: 'failed',
      probe: 'tcp:1',
      logTail: 'console of resource:default/web-01',
    });
    expect(run.machines.filter(m => m.phase === 'waiting')).toHaveLength(2);
    expect(await host.listLabResources(run.id)).toEqual({ machines: [], networks: [] });
  });

  it('fails fast when a machine stops, with its exit code', async () => {
    const host = new FakeHost(needs, ['resource:default/infra-01']);
    const runs = service(host, { machineReadyTimeoutMs: 60_000 });
    const started = await runs.start({ entityRef: 'component:default/web', mode: 'test', trigger: 'user' });
    await runs.waitFor(started.id);
    const run = (await store.getRun(started.id))!;
    expect(run.status).toBe('failed');
    expect(run.error?.message).toBe('resource:default/infra-01 failed: stopped with exit code 3');
  });

  it('refuses what it cannot do, saying why', async () => {
    const host = new FakeHost(needs);
    await expect(
      service(host, { allowTestHooks: false }).start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        options: { reverseBootOrder: true },
      }),
    ).rejects.toThrow('Run options reverseBootOrder are test hooks');

    const runs = service(host, { machineReadyTimeoutMs: 60_000 });
    const blocker = new FakeHost({ 'resource:default/infra-01': ['resource:default/never'] });
    const busy = service(blocker, { machineReadyTimeoutMs: 60_000 });
    const first = await busy.start({ entityRef: 'component:default/web', mode: 'test', trigger: 'user' });
    await expect(
      busy.start({ entityRef: 'component:default/web', mode: 'test', trigger: 'user' }),
    ).rejects.toThrow(`Hypervisor host 'fake' is busy with run ${first.id}`);
    await busy.shutdown();
    const interrupted = (await store.getRun(first.id))!;
    expect(interrupted.status).toBe('failed');
    expect(interrupted.error?.message).toBe('Interrupted: the backend is shutting down');

    await store.pruneCaptures('resource:default/data-01', 0);
    await expect(
      runs.start({ entityRef: 'component:default/web', mode: 'test', trigger: 'user' }),
    ).rejects.toThrow('No capture of resource:default/data-01 yet');
  });

  it('cleans up runs orphaned by a stopped backend', async () => {
    const host = new FakeHost(needs);
    await store.insertRun(
      {
        id: 'orphan',
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        hypervisorHost: 'fake',
        plan: { entityRef: 'component:default/web', waves: [], machines: [] },
        options: {},
        machines: [],
      },
      new Date(Date.now() - 10_000),
    );
    await host.createLab('orphan', [{ name: 'prod', aliases: [] }]);
    const runs = service(host);
    expect(await runs.cleanUpInterruptedRuns()).toEqual(['orphan']);
    const run = (await store.getRun('orphan'))!;
    expect(run.status).toBe('failed');
    expect(run.error?.message).toBe(
      'Interrupted: the backend driving this run stopped; removed 0 machines and 1 networks',
    );
    expect(await host.listLabResources('orphan')).toEqual({ machines: [], networks: [] });
  });
});
