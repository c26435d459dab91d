import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { LabHandle, MachineHandle } from '@backstage-recovery/plugin-recovery-node';
import { DockerHypervisorHost } from './DockerHypervisorHost';

/**
 * An engine with one lab network and the machines on it, whose probe container can be killed:
 * it counts the probe containers created, and refuses a second of the same name as Docker does.
 */
function engineWithProbe(runId: string, output: () => PassThrough = () => new PassThrough().end(), exitCode: number | null = 0) {
  const probeName = `rr-${runId}-probe`;
  const state = { probeExists: false, created: 0, conflicts: 0 };
  const tick = () => new Promise(resolve => setImmediate(resolve));
  const notFound = (what: string) => Object.assign(new Error(`no such container: ${what}`), { statusCode: 404 });
  const probe = {
    id: 'probe-id',
    inspect: async () => {
      await tick();
      if (!state.probeExists) throw notFound(probeName);
      return { State: { Running: true } };
    },
    start: async () => {},
    exec: async () => {
      await tick();
      if (!state.probeExists) throw notFound(probeName);
      return {
        start: async () => output(),
        inspect: async () => ({ ExitCode: exitCode }),
      };
    },
  };
  const docker = {
    getContainer: (id: string) =>
      id === probeName
        ? probe
        : {
            inspect: async () => ({
              Id: id,
              Name: `/${id}`,
              NetworkSettings: { Networks: { [`rr-${runId}-prod`]: { IPAddress: `10.0.0.${id.length}` } } },
            }),
          },
    getImage: () => ({ inspect: async () => ({ Id: 'sha256:probe' }) }),
    getNetwork: () => ({ inspect: async () => ({ IPAM: { Config: [] }, Containers: {} }) }),
    listContainers: async () => [],
    createContainer: async (opts: { name: string }) => {
      await tick();
      if (opts.name === probeName && state.probeExists) {
        state.conflicts++;
        throw Object.assign(new Error(`Conflict. The container name "/${probeName}" is already in use`), { statusCode: 409 });
      }
      state.probeExists = true;
      state.created++;
      return probe;
    },
  } as unknown as Docker;
  return { docker, state };
}

describe('DockerHypervisorHost probes', () => {
  it('makes the probe container again once when it died while a wave is verified, not once per machine', async () => {
    const runId = 'run-1';
    const { docker, state } = engineWithProbe(runId);
    const host = new DockerHypervisorHost('dr-host', docker, { storeDirectory: '/nonexistent' });
    const lab: LabHandle = { runId, networks: [`rr-${runId}-prod`] };
    const machines: MachineHandle[] = ['web', 'data', 'infra'].map(name => ({
      runId,
      machineRef: `resource:default/${name}`,
      id: name,
      hostnames: [name],
    }));
    const probeAll = () => Promise.all(machines.map(m => host.probe(lab, m, { kind: 'tcp', port: 80 })));

    expect((await probeAll()).map(r => r.ok)).toEqual([true, true, true]);
    expect(state.created).toBe(1);

    state.probeExists = false; // killed (out of memory, say)
    const results = await probeAll();
    expect(results.map(r => r.ok)).toEqual([true, true, true]);
    expect(state).toMatchObject({ created: 2, conflicts: 0 });
  });

  it('says a probe whose output broke off failed on that, not on time, and passes it where its exit code says so', async () => {
    const broken = () => {
      const stream = new PassThrough();
      setImmediate(() => stream.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
      return stream;
    };
    const lab: LabHandle = { runId: 'run-2', networks: ['rr-run-2-prod'] };
    const machine: MachineHandle = { runId: 'run-2', machineRef: 'resource:default/web', id: 'web', hostnames: ['web'] };
    const passed = new DockerHypervisorHost('dr-host', engineWithProbe('run-2', broken, 0).docker, { storeDirectory: '/nonexistent' });
    expect(await passed.probe(lab, machine, { kind: 'tcp', port: 80 })).toEqual({
      ok: true,
      message: 'TCP connect to 10.0.0.3:80 from the lab (probe container, network rr-run-2-prod): ok',
    });
    const unknown = new DockerHypervisorHost('dr-host', engineWithProbe('run-2', broken, null).docker, { storeDirectory: '/nonexistent' });
    expect(await unknown.probe(lab, machine, { kind: 'tcp', port: 80 })).toEqual({
      ok: false,
      message: 'TCP connect to 10.0.0.3:80 from the lab (probe container, network rr-run-2-prod): failed (its output could not be read: socket hang up)',
    });
  });
});
