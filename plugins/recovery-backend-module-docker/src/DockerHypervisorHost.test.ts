import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type Docker from 'dockerode';
import { ConflictError } from '@backstage/errors';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import {
  hostCondition,
  isEngineError,
  isLabSubnetHeld,
  type LabHandle,
  type MachineHandle,
  type RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import {
  PRODUCTION_IPC_MODE_LABEL,
  PRODUCTION_NETWORK_MODE_LABEL,
  PRODUCTION_PID_MODE_LABEL,
} from './adapt';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import {
  MACHINE_REF_LABEL,
  PROBE_LABEL,
  machineContainerName,
} from './labNames';
import { PROBE_BUSYBOX_LABEL } from './LabProbe';
import { busyboxDigest, notStaticElf } from './lib/busybox';
import { writeThinArchive } from './lib/layerStore';
import { createTar } from './lib/tar';

/** The probe image as the backend builds it from this host's busybox: reused, not built again. */
const builtProbeImage = {
  Id: 'sha256:probe',
  Config: { Labels: { [PROBE_BUSYBOX_LABEL]: busyboxDigest() } },
};

/**
 * An engine with one lab network and the machines on it, whose probe container can be killed:
 * it counts the probe containers created, and refuses a second of the same name as Docker does.
 */
function engineWithProbe(
  runId: string,
  output: () => PassThrough = () => new PassThrough().end(),
  exitCode: number | null = 0,
) {
  const probeName = `rr-${runId}-probe`;
  const state = { probeExists: false, created: 0, conflicts: 0 };
  const tick = () => new Promise(resolve => setImmediate(resolve));
  const notFound = (what: string) =>
    Object.assign(new Error(`no such container: ${what}`), { statusCode: 404 });
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
              NetworkSettings: {
                Networks: {
                  [`rr-${runId}-prod`]: { IPAddress: `10.0.0.${id.length}` },
                },
              },
            }),
          },
    getImage: () => ({ inspect: async () => builtProbeImage }),
    getNetwork: () => ({
      inspect: async () => ({ IPAM: { Config: [] }, Containers: {} }),
    }),
    listContainers: async () => [],
    createContainer: async (opts: { name: string }) => {
      await tick();
      if (opts.name === probeName && state.probeExists) {
        state.conflicts++;
        throw Object.assign(
          new Error(
            `Conflict. The container name "/${probeName}" is already in use`,
          ),
          { statusCode: 409 },
        );
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
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    const lab: LabHandle = { runId, networks: [`rr-${runId}-prod`] };
    const machines: MachineHandle[] = ['web', 'data', 'infra'].map(name => ({
      runId,
      machineRef: `resource:default/${name}`,
      id: name,
      hostnames: [name],
    }));
    const probeAll = () =>
      Promise.all(
        machines.map(m => host.probe(lab, m, { kind: 'tcp', port: 80 })),
      );

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
      setImmediate(() =>
        stream.destroy(
          Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
        ),
      );
      return stream;
    };
    const lab: LabHandle = { runId: 'run-2', networks: ['rr-run-2-prod'] };
    const machine: MachineHandle = {
      runId: 'run-2',
      machineRef: 'resource:default/web',
      id: 'web',
      hostnames: ['web'],
    };
    const passed = new DockerHypervisorHost(
      'dr-host',
      engineWithProbe('run-2', broken, 0).docker,
      { storeDirectory: '/nonexistent' },
    );
    expect(await passed.probe(lab, machine, { kind: 'tcp', port: 80 })).toEqual(
      {
        ok: true,
        message:
          'TCP connect to 10.0.0.3:80 from the lab (probe container, network rr-run-2-prod): ok',
      },
    );
    const unknown = new DockerHypervisorHost(
      'dr-host',
      engineWithProbe('run-2', broken, null).docker,
      { storeDirectory: '/nonexistent' },
    );
    expect(
      await unknown.probe(lab, machine, { kind: 'tcp', port: 80 }),
    ).toEqual({
      ok: false,
      message:
        'TCP connect to 10.0.0.3:80 from the lab (probe container, network rr-run-2-prod): failed (its output could not be read: socket hang up)',
    });
  });
});

/**
 * An engine whose machine `app` is on two lab networks and answers probes only at `answering`
 * (a daemon bound to one interface), `answerAfterMs` later than a refusal comes, and at `silent`
 * not at all (a probe there gets no result: a network that drops its packets); it says which
 * addresses were probed, in order.
 */
function engineWithTwoNetworks(
  runId: string,
  answering: string[],
  {
    silent = [],
    answerAfterMs = 0,
  }: { silent?: string[]; answerAfterMs?: number } = {},
) {
  const tried: string[] = [];
  const probe = {
    id: 'probe-id',
    inspect: async () => ({ State: { Running: true } }),
    start: async () => {},
    exec: async ({ Cmd }: { Cmd: string[] }) => {
      const address = /\d+\.\d+\.\d+\.\d+/.exec(Cmd.join(' '))![0];
      tried.push(address);
      const up = answering.includes(address);
      if (silent.includes(address))
        return {
          start: async () => new PassThrough(),
          inspect: async () => ({ ExitCode: null }),
        };
      return {
        start: async () => {
          if (up && answerAfterMs > 0)
            await new Promise(resolve => setTimeout(resolve, answerAfterMs));
          return new PassThrough().end(up ? '' : 'Connection refused');
        },
        inspect: async () => ({ ExitCode: up ? 0 : 1 }),
      };
    },
  };
  const docker = {
    getContainer: (id: string) =>
      id === `rr-${runId}-probe`
        ? probe
        : {
            inspect: async () => ({
              Id: id,
              Name: `/${id}`,
              NetworkSettings: {
                Networks: {
                  // Docker lists a container's networks by name: mgmt before prod.
                  [`rr-${runId}-w4-mgmt`]: { IPAddress: '172.30.60.41' },
                  [`rr-${runId}-w4-prod`]: { IPAddress: '172.30.50.41' },
                },
              },
            }),
          },
    getImage: () => ({ inspect: async () => builtProbeImage }),
    getNetwork: () => ({
      inspect: async () => ({ IPAM: { Config: [] }, Containers: {} }),
      connect: async () => {},
    }),
    listContainers: async () => [],
    createContainer: async () => probe,
  } as unknown as Docker;
  return { docker, tried };
}

describe('DockerHypervisorHost probes of a machine on two networks', () => {
  const runId = 'run-3';
  const lab: LabHandle = {
    runId,
    networks: [`rr-${runId}-w4-mgmt`, `rr-${runId}-w4-prod`],
  };
  const where = `from the lab (probe container, network rr-${runId}-w4-mgmt, rr-${runId}-w4-prod)`;
  const machine: MachineHandle = {
    runId,
    machineRef: 'resource:default/w4-app-01',
    id: 'app',
    hostnames: ['w4-app-01'],
  };
  const hostFor = (
    answering: string[],
    options?: Parameters<typeof engineWithTwoNetworks>[2],
  ) => {
    const { docker, tried } = engineWithTwoNetworks(runId, answering, options);
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    return { host, tried };
  };

  it("passes a tcp probe that only the machine's production address answers, naming the address that refused before it answered", async () => {
    const { host, tried } = hostFor(['172.30.50.41'], { answerAfterMs: 20 });
    expect(await host.probe(lab, machine, { kind: 'tcp', port: 7000 })).toEqual(
      {
        ok: true,
        message: `TCP connect to 172.30.50.41:7000 ${where}: ok (after TCP connect to 172.30.60.41:7000: failed (Connection refused))`,
      },
    );
    expect(tried).toEqual(['172.30.60.41', '172.30.50.41']);
  });

  it('passes at the first address that answers', async () => {
    const { host, tried } = hostFor(['172.30.60.41', '172.30.50.41']);
    expect(
      await host.probe(lab, machine, { kind: 'http', port: 7000, path: '/' }),
    ).toEqual({
      ok: true,
      message: `HTTP GET http://172.30.60.41:7000/ ${where}: ok`,
    });
    expect(tried).toEqual(['172.30.60.41', '172.30.50.41']);
  });

  it("probes every address at once: one that never answers does not hold up the machine's pass at another", async () => {
    vi.useFakeTimers();
    try {
      const { host, tried } = hostFor(['172.30.50.41'], {
        silent: ['172.30.60.41'],
      });
      let result: unknown;
      const probing = host
        .probe(lab, machine, { kind: 'tcp', port: 7000 })
        .then(r => (result = r));
      // Well within the 15 s a probe with no result is given.
      await vi.advanceTimersByTimeAsync(100);
      expect(result).toEqual({
        ok: true,
        message: `TCP connect to 172.30.50.41:7000 ${where}: ok`,
      });
      expect(tried).toEqual(['172.30.60.41', '172.30.50.41']);
      await vi.advanceTimersByTimeAsync(15_000);
      await probing;
    } finally {
      vi.useRealTimers();
    }
  });

  it('says an address that gave no result among those that failed', async () => {
    vi.useFakeTimers();
    try {
      const { host } = hostFor([], { silent: ['172.30.60.41'] });
      const probing = host.probe(lab, machine, { kind: 'tcp', port: 7000 });
      await vi.advanceTimersByTimeAsync(15_000);
      expect(await probing).toEqual({
        ok: false,
        message: `none of the machine's 2 lab addresses answered ${where}: TCP connect to 172.30.60.41:7000: no result within 15 s; TCP connect to 172.30.50.41:7000: failed (Connection refused)`,
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it('passes an http probe the same way', async () => {
    const { host } = hostFor(['172.30.50.41']);
    const result = await host.probe(lab, machine, {
      kind: 'http',
      port: 7000,
      path: 'healthz',
    });
    expect(result).toMatchObject({ ok: true });
    expect(result.message).toMatch(
      /^HTTP GET http:\/\/172\.30\.50\.41:7000\/healthz from the lab/,
    );
  });

  it('fails where no address answers, naming every address tried and what each said', async () => {
    const { host, tried } = hostFor([]);
    expect(await host.probe(lab, machine, { kind: 'tcp', port: 7000 })).toEqual(
      {
        ok: false,
        message: `none of the machine's 2 lab addresses answered ${where}: TCP connect to 172.30.60.41:7000: failed (Connection refused); TCP connect to 172.30.50.41:7000: failed (Connection refused)`,
      },
    );
    expect(tried).toEqual(['172.30.60.41', '172.30.50.41']);
  });
});

/** A capture store holding one (whole) archive, and the capture of it with `runtime`. */
const stores: string[] = [];
afterAll(() =>
  stores.forEach(store => rmSync(store, { recursive: true, force: true })),
);

function storeWith(runtime: Partial<RestorableCapture['runtime']> = {}): {
  store: string;
  capture: RestorableCapture;
} {
  const store = mkdtempSync(join(tmpdir(), 'recovery-host-'));
  stores.push(store);
  const content = Buffer.from('an image archive');
  writeFileSync(join(store, 'cap-1.tar'), content);
  return {
    store,
    capture: {
      captureId: 'cap-1',
      machineRef: 'resource:default/web',
      imageId: 'sha256:image',
      checksum: `sha256:${createHash('sha256').update(content).digest('hex')}`,
      artifact: 'cap-1.tar',
      runtime: {
        hostname: 'web',
        networks: [],
        env: [],
        exposedPorts: [],
        labels: {},
        ...runtime,
      },
    },
  };
}

/** An engine that creates machine containers, with lab networks internal or not, and says what it did. */
function restoringEngine(
  options: {
    internal?: boolean;
    failConnect?: string;
    /** Containers already on the engine, and which networks are internal (others: as `internal`). */
    containers?: Docker.ContainerInfo[];
    internalNetworks?: string[];
    /** What `docker network inspect` says of a lab network's addresses (others: none). */
    labNetworks?: Record<string, { EnableIPv6?: boolean; IPAM: unknown }>;
  } = {},
) {
  const calls: string[] = [];
  const created: Docker.ContainerCreateOptions[] = [];
  const docker = {
    getImage: () => ({ inspect: async () => ({ Id: 'sha256:image' }) }),
    listContainers: async ({ filters }: { filters: { label: string[] } }) => {
      calls.push(`list containers ${filters.label.join(',')}`);
      const [key, value] = filters.label[0].split('=');
      return (options.containers ?? []).filter(c => c.Labels[key] === value);
    },
    getNetwork: (name: string) => ({
      inspect: async () => {
        calls.push(`inspect network ${name}`);
        return {
          Name: name,
          Internal:
            options.internalNetworks?.includes(name) ||
            (options.internal ?? true),
          IPAM: { Config: [] },
          ...options.labNetworks?.[name],
        };
      },
      connect: async () => {
        calls.push(`connect ${name}`);
        if (name === options.failConnect)
          throw Object.assign(
            new Error('endpoint with name web already exists'),
            { statusCode: 403 },
          );
      },
    }),
    info: async () => {
      calls.push('info');
      return { NCPU: 2 };
    },
    createContainer: async (opts: Docker.ContainerCreateOptions) => {
      created.push(opts);
      return {
        id: 'machine-id',
        putArchive: async () => {},
        remove: async () => {
          calls.push('remove machine');
        },
      };
    },
  } as unknown as Docker;
  return { docker, calls, created };
}

describe('DockerHypervisorHost restore', () => {
  const lab: LabHandle = {
    runId: 'run-1',
    networks: ['rr-run-1-front', 'rr-run-1-back'],
  };
  const network = (name: string) => ({ name, aliases: [] });

  it('restores a capture without production limits in a test lab exactly as before: no restart policy, 5 s to stop, nothing more asked of the engine than whose lab it is', async () => {
    const { store, capture } = storeWith();
    const { docker, calls, created } = restoringEngine({ internal: true });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { adaptations } = await host.restoreMachine(lab, capture);
    expect(adaptations).toEqual([]);
    expect(created[0].HostConfig).toEqual({
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
    });
    expect(created[0].StopTimeout).toBe(5);
    expect(created[0]).not.toHaveProperty('StopSignal');
    expect(calls).toEqual(['inspect network rr-run-1-front']);
  });

  it("gives a failover's machines the time production gave them to stop, or the engine's default; a test lab's 5 s", async () => {
    const { store, capture } = storeWith({
      limits: { stopTimeoutSeconds: 60 } as never,
    });
    const failover = restoringEngine({ internal: false });
    await new DockerHypervisorHost('dr-host', failover.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    await new DockerHypervisorHost('dr-host', failover.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, {
      ...capture,
      runtime: { ...capture.runtime, limits: undefined },
    });
    expect(failover.created[0].StopTimeout).toBe(60);
    expect(failover.created[1]).not.toHaveProperty('StopTimeout');
    const test = restoringEngine({ internal: true });
    await new DockerHypervisorHost('dr-host', test.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(test.created[0].StopTimeout).toBe(5);
  });

  it("applies production's limits; a test lab keeps no restart policy, and a CPU limit above the host's CPUs is lowered", async () => {
    const { store, capture } = storeWith({
      limits: {
        memoryBytes: 256 * 1024 ** 2,
        nanoCpus: 4e9,
        readOnlyRootfs: true,
        init: true,
        capDrop: ['ALL'],
        stopSignal: 'SIGQUIT',
      },
      restartPolicy: { name: 'always' },
    });
    const { docker, created } = restoringEngine({ internal: true });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { adaptations } = await host.restoreMachine(lab, capture);
    expect(created[0].HostConfig).toEqual({
      Memory: 256 * 1024 ** 2,
      NanoCpus: 2e9,
      ReadonlyRootfs: true,
      Init: true,
      CapDrop: ['ALL'],
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
    });
    expect(created[0].StopSignal).toBe('SIGQUIT');
    expect(adaptations).toEqual([
      'restart policy always not applied in a test lab: the run starts and stops its machines',
      'CPU limit 4 lowered to the 2 CPUs engine dr-host has',
    ]);
  });

  it('gives a machine whose stored runtime was changed no more than the capture would have: no added privilege, no unconfined option; no IPv6 sysctl in a test lab', async () => {
    const { store, capture } = storeWith({
      limits: {
        capAdd: ['ALL', 'NET_BIND_SERVICE'],
        securityOpt: [
          'seccomp=unconfined',
          'apparmor=unconfined',
          'no-new-privileges',
        ],
        sysctls: {
          'net.core.somaxconn': '1024',
          'net.ipv6.conf.all.disable_ipv6': '0',
        },
      },
    });
    const test = restoringEngine({ internal: true });
    const { adaptations } = await new DockerHypervisorHost(
      'dr-host',
      test.docker,
      { storeDirectory: store },
    ).restoreMachine(lab, capture);
    expect(test.created[0].HostConfig).toEqual({
      CapAdd: ['NET_BIND_SERVICE'],
      SecurityOpt: ['no-new-privileges'],
      Sysctls: { 'net.core.somaxconn': '1024' },
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
    });
    expect(adaptations).toEqual([
      'added capabilities ALL dropped',
      "security option seccomp=unconfined dropped: the lab keeps the engine's default confinement",
      "security option apparmor=unconfined dropped: the lab keeps the engine's default confinement",
      "IPv6 sysctls not applied in the test lab: net.ipv6.conf.all.disable_ipv6=0 (the test lab is IPv4-only; IPv6 on would give the machine a link-local path to the recovery host's bridge)",
    ]);
    // A failover runs on production's network reach: its IPv6 sysctls are kept, not privileges.
    const failover = restoringEngine({ internal: false });
    await new DockerHypervisorHost('dr-host', failover.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(failover.created[0].HostConfig).toMatchObject({
      CapAdd: ['NET_BIND_SERVICE'],
      SecurityOpt: ['no-new-privileges'],
      Sysctls: {
        'net.core.somaxconn': '1024',
        'net.ipv6.conf.all.disable_ipv6': '0',
      },
    });
  });

  it('keeps no restart policy in a failover either: its supervision starts the machines again in boot order', async () => {
    const { store, capture } = storeWith({
      restartPolicy: { name: 'on-failure', maximumRetryCount: 5 },
    });
    const { docker, created } = restoringEngine({ internal: false });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { adaptations } = await host.restoreMachine(lab, capture);
    expect(created[0].HostConfig?.RestartPolicy).toEqual({ Name: 'no' });
    expect(adaptations).toEqual([
      "restart policy on-failure:5 not applied: the failover's supervision starts its machines again in boot order, wave by wave, where the engine would start them all at once",
    ]);
  });

  it("refuses a failover's copy of a machine another failover kept on the engine, before it loads anything; not for a test lab's", async () => {
    const { store, capture } = storeWith();
    const keptBy = (runId: string, networkName: string) =>
      ({
        Id: `${runId}-web`,
        Names: [`/rr-${runId}-web`],
        State: 'running',
        Labels: {
          [RUN_ID_LABEL]: runId,
          [MACHINE_REF_LABEL]: capture.machineRef,
        },
        NetworkSettings: { Networks: { [networkName]: {} } },
      }) as unknown as Docker.ContainerInfo;
    // Host network in production: no subnet for createLab to find held.
    const first = keptBy('first', 'rr-first-host');
    const failover = restoringEngine({ internal: false, containers: [first] });
    const host = new DockerHypervisorHost('dr-host', failover.docker, {
      storeDirectory: store,
    });
    await expect(host.restoreMachine(lab, capture)).rejects.toThrow(
      `machine resource:default/web is already on engine dr-host: failover first kept it as container rr-first-web (running), and this failover's copy would serve production beside it. ` +
        `Fail over onto another hypervisor host or, once production no longer needs what failover first kept, release failover first first (recovery release first, or POST /runs/first/release), or else remove it by hand: docker rm -f $(docker ps -aq --filter label=${RUN_ID_LABEL}=first)`,
    );
    expect(failover.created).toEqual([]);
    // A test lab's machine of it (its network internal), or this failover's own (resumed), is no copy serving production.
    const testLab = keptBy('a-test', 'rr-a-test-host');
    const resumed = keptBy('run-1', 'rr-run-1-front');
    const again = restoringEngine({
      internal: false,
      containers: [testLab, resumed],
      internalNetworks: ['rr-a-test-host'],
    });
    await new DockerHypervisorHost('dr-host', again.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(again.created).toHaveLength(1);
    // A test lab does not look.
    const test = restoringEngine({ internal: true, containers: [first] });
    await new DockerHypervisorHost('dr-host', test.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(test.calls).toEqual(['inspect network rr-run-1-front']);
  });

  it('removes the machine it created when it cannot join a later lab network, as when a volume fails', async () => {
    const { store, capture } = storeWith({
      networks: [network('front'), network('back')],
    });
    const { docker, calls } = restoringEngine({ failConnect: 'rr-run-1-back' });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    await expect(host.restoreMachine(lab, capture)).rejects.toThrow(
      'endpoint with name web already exists',
    );
    expect(calls).toEqual([
      'inspect network rr-run-1-front',
      'connect rr-run-1-back',
      'remove machine',
    ]);
  });
});

describe("DockerHypervisorHost restore of a machine that shared another container's network namespace", () => {
  const lab: LabHandle = { runId: 'run-1', networks: ['rr-run-1-prod'] };
  const dbId = 'db0123456789'.padEnd(64, 'a');
  const db: RestorableCapture = {
    captureId: 'cap-db',
    machineRef: 'resource:default/db',
    imageId: 'sha256:db',
    checksum: 'sha256:none',
    artifact: 'cap-db.tar',
    runtime: {
      hostname: 'db',
      networks: [
        {
          name: 'prod',
          subnet: '10.233.20.0/24',
          ipv4Address: '10.233.20.5',
          aliases: [],
        },
      ],
      env: [],
      exposedPorts: ['5432/tcp'],
      labels: {},
      productionContainerId: dbId,
    },
  };
  const dbInLab: MachineHandle = {
    runId: 'run-1',
    machineRef: 'resource:default/db',
    id: 'lab-db-id',
    hostnames: ['db'],
  };
  /** The sidecar, restored with the run's captures and the machines of earlier waves given. */
  async function restoreSidecar(
    mode: string,
    booted: MachineHandle[],
    owner: RestorableCapture = db,
  ) {
    const { store, capture } = storeWith({
      hostname: 'sidecar',
      exposedPorts: ['9187/tcp'],
      labels: { [PRODUCTION_NETWORK_MODE_LABEL]: mode },
    });
    const { docker, created } = restoringEngine();
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture, {
      runCaptures: [owner, capture],
      booted,
    });
    return { restored, created: created[0] };
  }

  it('shares the lab container of the machine it shared in production, where that one booted in an earlier wave', async () => {
    const { restored, created } = await restoreSidecar(`container:${dbId}`, [
      dbInLab,
    ]);
    expect(created.HostConfig?.NetworkMode).toBe('container:lab-db-id');
    // Docker refuses these beside a shared namespace: the one shared has them.
    expect(created).not.toHaveProperty('Hostname');
    expect(created.ExposedPorts).toBeUndefined();
    expect(created.NetworkingConfig).toBeUndefined();
    expect(restored.addressesLost).toEqual([]);
    expect(restored.adaptations).toEqual([
      `shares the network namespace of resource:default/db in the lab, as it shared that machine's container's in production (network mode container:${dbId})`,
    ]);
  });

  it('says which machine it cannot share where that one boots in its wave or later, and one no machine of the run', async () => {
    const later = await restoreSidecar(`container:${dbId}`, []);
    expect(later.created.HostConfig?.NetworkMode).toBe('rr-run-1-prod');
    expect(later.restored.addressesLost).toEqual([
      `shared the network namespace of resource:default/db in production (network mode container:${dbId}), which does not boot in an earlier wave, so it cannot share it in the lab: on lab network rr-run-1-prod with an address Docker picks, not the addresses it had in production`,
    ]);
    const other = 'ff0123456789'.padEnd(64, 'b');
    const foreign = await restoreSidecar(`container:${other}`, [dbInLab]);
    expect(foreign.created.HostConfig?.NetworkMode).toBe('rr-run-1-prod');
    expect(foreign.restored.addressesLost).toEqual([
      `shared the network namespace of container ${other} in production, no machine of this run: on lab network rr-run-1-prod with an address Docker picks, not the addresses it had in production`,
    ]);
    // A capture of the run from before container ids were recorded may be that one.
    const old = await restoreSidecar(`container:${dbId}`, [dbInLab], {
      ...db,
      runtime: { ...db.runtime, productionContainerId: undefined },
    });
    expect(old.restored.addressesLost).toEqual([
      `shared the network namespace of container ${dbId} in production, no machine of this run (or one whose capture is too old to tell: capture it again): on lab network rr-run-1-prod with an address Docker picks, not the addresses it had in production`,
    ]);
  });

  it("shares the PID and IPC namespaces of the machine it shared them with, where it booted earlier; else its own, said; the donor's IPC shareable", async () => {
    const mode = `container:${dbId}`;
    const sharer = async (booted: MachineHandle[]) => {
      const { store, capture } = storeWith({
        hostname: 'debug',
        labels: {
          [PRODUCTION_PID_MODE_LABEL]: mode,
          [PRODUCTION_IPC_MODE_LABEL]: mode,
        },
      });
      const { docker, created } = restoringEngine();
      const restored = await new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: store,
      }).restoreMachine(lab, capture, { runCaptures: [db, capture], booted });
      return { restored, created: created[0], capture, store };
    };
    const shared = await sharer([dbInLab]);
    expect([
      shared.created.HostConfig?.PidMode,
      shared.created.HostConfig?.IpcMode,
    ]).toEqual(['container:lab-db-id', 'container:lab-db-id']);
    expect(shared.restored.adaptations).toEqual([
      `shares the PID namespace of resource:default/db in the lab, as it shared that machine's container's in production (PID mode ${mode})`,
      `shares the IPC namespace of resource:default/db in the lab, as it shared that machine's container's in production (IPC mode ${mode})`,
    ]);

    const later = await sharer([]);
    expect(later.created.HostConfig).not.toHaveProperty('PidMode');
    expect(later.created.HostConfig).not.toHaveProperty('IpcMode');
    expect(later.restored.adaptations).toEqual([
      `PID namespace of its own in the lab: it shared resource:default/db's in production (PID mode ${mode}), which does not boot in an earlier wave, so it does not see that machine's processes`,
      `IPC namespace of its own in the lab: it shared resource:default/db's in production (IPC mode ${mode}), which does not boot in an earlier wave, so it does not see that machine's shared memory and semaphores`,
    ]);

    // The donor, restored first: Docker lets none join a private IPC namespace.
    const { docker, created } = restoringEngine({
      labNetworks: {
        'rr-run-1-prod': { IPAM: { Config: [{ Subnet: '10.233.20.0/24' }] } },
      },
    });
    await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: shared.store,
    }).restoreMachine(
      lab,
      {
        ...db,
        artifact: shared.capture.artifact,
        checksum: shared.capture.checksum,
      },
      { runCaptures: [db, shared.capture] },
    );
    expect(created[0].HostConfig?.IpcMode).toBe('shareable');
    expect(created[0].HostConfig).not.toHaveProperty('PidMode');
  });
});

describe('DockerHypervisorHost restore of IPv6 addresses', () => {
  const lab: LabHandle = { runId: 'run-1', networks: ['rr-run-1-front'] };
  const front = {
    name: 'front',
    subnet: '10.233.20.0/24',
    ipv4Address: '10.233.20.11',
    ipv6Subnet: 'fd00:233::/64',
    ipv6Address: 'fd00:233::11',
    aliases: [],
  };
  const endpoint = (created: Docker.ContainerCreateOptions[]) =>
    created[0].NetworkingConfig?.EndpointsConfig?.['rr-run-1-front'];

  it("gives the machine its production IPv6 address beside its IPv4 one where the lab network has production's IPv6 subnet", async () => {
    const { store, capture } = storeWith({ networks: [front] });
    const { docker, created } = restoringEngine({
      labNetworks: {
        'rr-run-1-front': {
          EnableIPv6: true,
          IPAM: {
            Config: [{ Subnet: '10.233.20.0/24' }, { Subnet: 'fd00:233::/64' }],
          },
        },
      },
    });
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(restored.addressesLost).toEqual([]);
    expect(endpoint(created)?.IPAMConfig).toEqual({
      IPv4Address: '10.233.20.11',
      IPv6Address: 'fd00:233::11',
    });
  });

  it("gives a failover's machine its production IPv6 address where the lab network's IPv6 subnet is production's written otherwise", async () => {
    const { store, capture } = storeWith({ networks: [front] });
    const { docker, created } = restoringEngine({
      internal: false,
      labNetworks: {
        'rr-run-1-front': {
          EnableIPv6: true,
          IPAM: {
            Config: [
              { Subnet: '10.233.20.0/24' },
              { Subnet: 'FD00:233:0:0::/64' },
            ],
          },
        },
      },
    });
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(restored.addressesLost).toEqual([]);
    expect(endpoint(created)?.IPAMConfig).toEqual({
      IPv4Address: '10.233.20.11',
      IPv6Address: 'fd00:233::11',
    });
  });

  it('says which IPv6 address the machine loses in a test lab, IPv4-only, and why, and keeps its IPv4 one', async () => {
    const { store, capture } = storeWith({ networks: [front] });
    const { docker, created } = restoringEngine({
      labNetworks: {
        'rr-run-1-front': { IPAM: { Config: [{ Subnet: '10.233.20.0/24' }] } },
      },
    });
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(restored.addressesLost).toEqual([
      "network front: the test lab is IPv4-only (engine dr-host would put its IPv6 gateway on the host's bridge, through which the lab would reach the host); the machine does not get its production IPv6 address fd00:233::11",
    ]);
    expect(endpoint(created)?.IPAMConfig).toEqual({
      IPv4Address: '10.233.20.11',
    });
  });
});

describe("DockerHypervisorHost restore in a failover whose lab did not get production's subnet", () => {
  const lab: LabHandle = { runId: 'run-1', networks: ['rr-run-1-front'] };
  const front = {
    name: 'front',
    subnet: '10.240.7.0/24',
    ipv4Address: '10.240.7.10',
    aliases: [],
  };
  /** Docker chose 10.232.1.0/24 for the lab: a test lab's network held production's subnet. */
  function offSubnet(internal: boolean) {
    const engine = restoringEngine({
      internal,
      labNetworks: {
        'rr-run-1-front': { IPAM: { Config: [{ Subnet: '10.232.1.0/24' }] } },
      },
    });
    const docker = {
      ...engine.docker,
      listNetworks: async () => [
        {
          Name: 'rr-a-test-front',
          Id: 'a'.repeat(64),
          Internal: true,
          Labels: { [RUN_ID_LABEL]: 'a-test' },
          IPAM: { Config: [{ Subnet: '10.240.7.0/24' }] },
        },
      ],
    } as unknown as Docker;
    return { ...engine, docker };
  }
  const lost =
    'network front: production subnet 10.240.7.0/24 is in use on engine dr-host by network rr-a-test-front of run a-test; the lab uses 10.232.1.0/24 and the machine gets a dynamic address instead of 10.240.7.10';

  it('fails the machine, naming it and the address, and creates nothing', async () => {
    const { store, capture } = storeWith({ networks: [front] });
    const { docker, created } = offSubnet(false);
    const error = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    })
      .restoreMachine(lab, capture)
      .catch(e => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe(
      `failover run-1 cannot give machine resource:default/web its production address on engine dr-host: ${lost}. ` +
        "Clients that reach it by address would not find it. Free production's subnet on that engine, or fail over onto another hypervisor host",
    );
    expect(created).toEqual([]);
  });

  it('restores it in a test lab with a dynamic address, and says so', async () => {
    const { store, capture } = storeWith({ networks: [front] });
    const { docker, created } = offSubnet(true);
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(restored.addressesLost).toEqual([lost]);
    expect(
      created[0].NetworkingConfig?.EndpointsConfig?.['rr-run-1-front']
        ?.IPAMConfig,
    ).toBeUndefined();
  });
});

describe('DockerHypervisorHost start of a machine whose production IPv6 address is held', () => {
  /** An engine where machine web's start finds its addresses on rr-run-1-front held by `holders`. */
  function engineWith(
    holders: Record<
      string,
      {
        Name: string;
        IPv4Address?: string;
        IPv6Address?: string;
        labels: Record<string, string>;
      }
    >,
    /** The lab network's IPAM configs. */
    ipam: Array<Record<string, string>> = [],
  ) {
    const connected: Array<{ Container: string; EndpointConfig: unknown }> = [];
    const docker = {
      getContainer: (id: string) => ({
        start: async () => {
          throw new Error(
            'failed to set up container networking: Address already in use',
          );
        },
        inspect: async () =>
          id === 'web-id'
            ? {
                Id: 'web-id',
                NetworkSettings: {
                  Networks: {
                    'rr-run-1-front': {
                      IPAMConfig: {
                        IPv4Address: '10.233.20.11',
                        IPv6Address: 'fd00:233::11',
                      },
                    },
                  },
                },
              }
            : { Config: { Labels: holders[id].labels } },
      }),
      getNetwork: () => ({
        inspect: async () => ({
          Containers: Object.fromEntries(
            Object.entries(holders).map(([id, { labels: _, ...c }]) => [id, c]),
          ),
          IPAM: { Config: ipam },
        }),
        disconnect: async () => {},
        connect: async (opts: {
          Container: string;
          EndpointConfig: unknown;
        }) => {
          connected.push(opts);
        },
      }),
      listContainers: async () => [],
    } as unknown as Docker;
    return { docker, connected };
  }
  const web: MachineHandle = {
    runId: 'run-1',
    machineRef: 'resource:default/web',
    id: 'web-id',
    hostnames: [],
  };

  it('names the machine that holds it, however the engine writes the address', async () => {
    const { docker } = engineWith({
      'db-id': {
        Name: 'rr-run-1-db',
        IPv4Address: '10.233.20.12/24',
        IPv6Address: 'fd00:233:0:0:0:0:0:11/64',
        labels: {
          [MACHINE_REF_LABEL]: 'resource:default/db',
          [RUN_ID_LABEL]: 'run-1',
        },
      },
    });
    await expect(
      new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: '/nowhere',
      }).startMachine(web),
    ).rejects.toThrow(
      'machine resource:default/web cannot get its production address fd00:233::11 on lab network rr-run-1-front: machine resource:default/db (container rr-run-1-db) holds it',
    );
  });

  it("moves the lab's probe container off it, as off an IPv4 address", async () => {
    const { docker, connected } = engineWith({
      'probe-id': {
        Name: 'rr-run-1-probe',
        IPv4Address: '10.233.20.254/24',
        IPv6Address: 'fd00:233::11/64',
        labels: { [PROBE_LABEL]: 'true', [RUN_ID_LABEL]: 'run-1' },
      },
    });
    // Moved once; the start that still fails names the probe container.
    await expect(
      new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: '/nowhere',
      }).startMachine(web),
    ).rejects.toThrow(
      "cannot get its production address fd00:233::11 on lab network rr-run-1-front: the lab's probe container rr-run-1-probe holds it",
    );
    expect(connected.map(c => c.Container)).toEqual(['probe-id']);
  });

  it("gives the probe container the highest free address of each family's lab range: none of production's", async () => {
    const { docker, connected } = engineWith(
      {
        'probe-id': {
          Name: 'rr-run-1-probe',
          IPv4Address: '10.233.20.254/24',
          IPv6Address: 'fd00:233::11/64',
          labels: { [PROBE_LABEL]: 'true', [RUN_ID_LABEL]: 'run-1' },
        },
      },
      [
        {
          Subnet: '10.233.20.0/24',
          Gateway: '10.233.20.1',
          IPRange: '10.233.20.128/25',
        },
        {
          Subnet: 'fd00:233::/64',
          Gateway: 'fd00:233::1',
          IPRange: 'fd00:233:0:0:8000::/65',
        },
      ],
    );
    await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    })
      .startMachine(web)
      .catch(() => {});
    expect(connected).toEqual([
      {
        Container: 'probe-id',
        EndpointConfig: {
          IPAMConfig: {
            IPv4Address: '10.233.20.253',
            IPv6Address: 'fd00:233::ffff:ffff:ffff:fffe',
          },
        },
      },
    ]);
  });
});

describe('DockerHypervisorHost host ports', () => {
  const lab: LabHandle = { runId: 'run-1', networks: ['rr-run-1-front'] };
  const bindings = {
    exposedPorts: ['80/tcp'],
    portBindings: [
      { containerPort: '80/tcp', hostPort: 8080 },
      { containerPort: '9000/tcp', hostPort: 9000, hostIp: '127.0.0.1' },
      { containerPort: '5432/tcp' },
    ],
  };

  it("publishes production's host ports in a failover, saying which (a random one not); in a test lab none", async () => {
    const { store, capture } = storeWith(bindings);
    const { docker, created } = restoringEngine({ internal: false });
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(created[0].HostConfig?.PortBindings).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '9000/tcp': [{ HostIp: '127.0.0.1', HostPort: '9000' }],
    });
    // Docker publishes only exposed ports.
    expect(Object.keys(created[0].ExposedPorts ?? {}).sort()).toEqual([
      '80/tcp',
      '9000/tcp',
    ]);
    expect(restored.published).toEqual([
      '8080 -> 80/tcp',
      '127.0.0.1:9000 -> 9000/tcp',
    ]);

    // A test lab publishes none: production still runs, and the lab stays isolated.
    const test = restoringEngine({ internal: true });
    const inTest = await new DockerHypervisorHost('dr-host', test.docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(test.created[0].HostConfig).not.toHaveProperty('PortBindings');
    expect(test.created[0].ExposedPorts).toEqual({ '80/tcp': {} });
    expect(inTest).not.toHaveProperty('published');
  });

  it('publishes a port production bound once on each address family apart, and a binding listed twice once: the engine would refuse the second', async () => {
    const { store, capture } = storeWith({
      exposedPorts: ['80/tcp'],
      // `-p 0.0.0.0:8080:80 -p [::]:8080:80`, the first said again.
      portBindings: [
        { containerPort: '80/tcp', hostPort: 8080, hostIp: '0.0.0.0' },
        { containerPort: '80/tcp', hostPort: 8080, hostIp: '::' },
        { containerPort: '80/tcp', hostPort: 8080, hostIp: '0.0.0.0' },
      ],
    });
    const { docker, created } = restoringEngine({ internal: false });
    const restored = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    }).restoreMachine(lab, capture);
    expect(created[0].HostConfig?.PortBindings).toEqual({
      '80/tcp': [
        { HostIp: '0.0.0.0', HostPort: '8080' },
        { HostIp: '::', HostPort: '8080' },
      ],
    });
    expect(restored.published).toEqual([
      '0.0.0.0:8080 -> 80/tcp',
      '[::]:8080 -> 80/tcp',
    ]);
  });

  it("fails a start whose host port something else holds as the host's condition, naming the machine, the port and the engine's words", async () => {
    const refusals = [
      'driver failed programming external connectivity on endpoint rr-run-1-web (0123): Bind for 0.0.0.0:8080 failed: port is already allocated',
      'driver failed programming external connectivity on endpoint rr-run-1-web (0123): Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address already in use',
      'driver failed programming external connectivity on endpoint rr-run-1-web (0123): Bind for [::]:8080 failed: port is already allocated',
    ];
    for (const refusal of refusals) {
      const docker = {
        getContainer: () => ({
          start: async () => {
            throw Object.assign(
              new Error(`(HTTP code 500) server error - ${refusal}`),
              { statusCode: 500 },
            );
          },
        }),
      } as unknown as Docker;
      const host = new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: '/nonexistent',
      });
      const error = await host
        .startMachine({
          runId: 'run-1',
          machineRef: 'resource:default/web',
          id: 'machine-id',
          hostnames: [],
        })
        .catch(e => e);
      expect(error).toMatchObject({
        name: 'EngineFailedError',
        engine: 'dr-host',
        message: `starting resource:default/web in the lab of run run-1 failed: Docker engine 'dr-host' answered HTTP 500: ${refusal}`,
      });
      // The host's state, not the machine's: a run fails at the host, naming the port.
      expect(hostCondition(error)).toEqual({
        kind: 'port-held',
        hostPort: 8080,
      });
    }
  });

  it('lists the host ports its running containers publish, and whose each is', async () => {
    const docker = {
      listContainers: async (options?: object) => {
        // Running ones only: a stopped container holds no port.
        expect(options).toBeUndefined();
        return [
          {
            Id: 'a',
            Names: ['/web-prod'],
            Labels: {},
            Ports: [
              { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
              { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
              { PrivatePort: 443, Type: 'tcp' },
            ],
          },
          {
            Id: 'b',
            Names: ['/rr-kept-dns'],
            Labels: {
              [RUN_ID_LABEL]: 'kept',
              [MACHINE_REF_LABEL]: 'resource:default/dns',
            },
            Ports: [{ PrivatePort: 53, PublicPort: 53, Type: 'udp' }],
          },
        ];
      },
    } as unknown as Docker;
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    expect(await host.hostPortsInUse()).toEqual([
      {
        hostPort: 8080,
        protocol: 'tcp',
        hostIp: '0.0.0.0',
        holder: 'container web-prod',
      },
      {
        hostPort: 8080,
        protocol: 'tcp',
        hostIp: '::',
        holder: 'container web-prod',
      },
      {
        hostPort: 53,
        protocol: 'udp',
        holder:
          'machine resource:default/dns of run kept (container rr-kept-dns)',
      },
    ]);
  });
});

describe('DockerHypervisorHost lab networks', () => {
  /** An engine whose networks hold `held` subnets: a lab network asking for one is refused as Docker does. */
  function engineHolding(
    held: Array<{
      name: string;
      subnet: string;
      runId?: string;
      internal?: boolean;
    }>,
  ) {
    const created: string[] = [];
    const docker = {
      listNetworks: async () =>
        held.map(h => ({
          Name: h.name,
          Id: `${h.name}-id`.padEnd(64, '0'),
          Internal: h.internal ?? false,
          Labels: h.runId ? { [RUN_ID_LABEL]: h.runId } : {},
          IPAM: { Config: [{ Subnet: h.subnet }] },
        })),
      getNetwork: () => ({
        inspect: async () =>
          Promise.reject(
            Object.assign(new Error('no such network'), { statusCode: 404 }),
          ),
      }),
      createNetwork: async (opts: Docker.NetworkCreateOptions) => {
        const subnet = opts.IPAM?.Config?.[0]?.Subnet;
        if (subnet && held.some(h => h.subnet === subnet))
          throw new Error(
            'invalid pool request: Pool overlaps with other one on this address space',
          );
        created.push(`${opts.Name} ${subnet ?? 'chosen by Docker'}`);
      },
    } as unknown as Docker;
    return { docker, created };
  }
  const front = {
    name: 'front',
    subnet: '172.29.10.0/24',
    ipv4Address: '172.29.10.11',
    aliases: [],
  };
  const back = {
    name: 'back',
    subnet: '172.29.20.0/24',
    ipv4Address: '172.29.20.11',
    aliases: [],
  };

  it("makes a failover's lab network with production's IPv6 subnet too, a test lab's IPv4-only, and refuses a failover where the engine refuses IPv6, naming network, subnet and the engine's words", async () => {
    const made = async (internal: boolean, refusal?: string) => {
      const asked: Docker.NetworkCreateOptions[] = [];
      const docker = {
        ...engineHolding([]).docker,
        createNetwork: async (opts: Docker.NetworkCreateOptions) => {
          asked.push(opts);
          if (refusal && opts.EnableIPv6) throw new Error(refusal);
        },
      } as unknown as Docker;
      await new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: '/nowhere',
      }).createLab(
        'run-1',
        [
          {
            name: 'front',
            subnet: '10.233.20.0/24',
            ipv4Address: '10.233.20.11',
            ipv6Subnet: 'fd00:233::/64',
            ipv6Address: 'fd00:233::11',
            aliases: [],
          },
        ],
        { internal },
      );
      return asked.map(a => ({
        EnableIPv6: a.EnableIPv6,
        subnets: a.IPAM?.Config?.map(c => c.Subnet),
      }));
    };
    expect(await made(false)).toEqual([
      { EnableIPv6: true, subnets: ['10.233.20.0/24', 'fd00:233::/64'] },
    ]);
    // A test lab: the engine would put the IPv6 gateway on the host's bridge.
    expect(await made(true)).toEqual([
      { EnableIPv6: undefined, subnets: ['10.233.20.0/24'] },
    ]);
    // IPv6 off on the engine: refused at the lab, before any wave boots.
    const refused = await made(
      false,
      'failed to enable IPv6: open /proc/sys/net/ipv6/conf/br-1/disable_ipv6: no such file or directory',
    ).catch(e => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refused.message).toBe(
      "failover run-1 cannot give the lab production network front's IPv6 subnet fd00:233::/64: " +
        'engine dr-host refused lab network rr-run-1-front with it (failed to enable IPv6: open /proc/sys/net/ipv6/conf/br-1/disable_ipv6: no such file or directory), ' +
        "so its machines would not get their production IPv6 addresses. Enable IPv6 on that engine's host, or fail over onto another hypervisor host",
    );
    // A subnet in use: tried again IPv4-only, whose own checks tell which family it was.
    expect(
      await made(
        false,
        'invalid pool request: Pool overlaps with other one on this address space',
      ),
    ).toEqual([
      { EnableIPv6: true, subnets: ['10.233.20.0/24', 'fd00:233::/64'] },
      { EnableIPv6: undefined, subnets: ['10.233.20.0/24'] },
    ]);
  });

  it("keeps the lab's own IPv6 addresses (the probe's) off production's, as its IPv4 ones: a range at the top of the subnet, the gateway explicit", async () => {
    const asked: Docker.NetworkCreateOptions[] = [];
    const docker = {
      ...engineHolding([]).docker,
      createNetwork: async (opts: Docker.NetworkCreateOptions) => {
        asked.push(opts);
      },
    } as unknown as Docker;
    const dual = (ipv4Address: string, ipv6Address: string) => ({
      name: 'front',
      subnet: '10.233.20.0/24',
      ipv4Address,
      ipv6Subnet: 'fd00:233::/64',
      ipv6Address,
      aliases: [],
    });
    await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    }).createLab(
      'run-1',
      // A machine high in the subnet, written as production's engine may not: the range passes it.
      [
        dual('10.233.20.11', 'fd00:233::11'),
        dual('10.233.20.12', 'FD00:233:0:0:F000::12'),
      ],
      { internal: false },
    );
    expect(asked.map(a => a.IPAM?.Config)).toEqual([
      [
        {
          Subnet: '10.233.20.0/24',
          Gateway: '10.233.20.1',
          IPRange: '10.233.20.128/25',
        },
        {
          Subnet: 'fd00:233::/64',
          Gateway: 'fd00:233::1',
          IPRange: 'fd00:233:0:0:8000::/66',
        },
      ],
    ]);
  });

  it("refuses a failover where a network no run made, or a failover's, holds production's IPv6 subnet, before it makes any network, naming host, subnet and holder; not a test lab, which takes no IPv6", async () => {
    const dual = {
      ...front,
      ipv6Subnet: 'fd00:233::/64',
      ipv6Address: 'fd00:233::11',
    };
    const foreign = engineHolding([
      { name: 'lab-vpn6', subnet: 'fd00:233:0:0:8000::/65' },
    ]);
    const error = await new DockerHypervisorHost('dr-host', foreign.docker, {
      storeDirectory: '/nowhere',
    })
      .createLab('run-1', [dual, back], { internal: false })
      .catch(e => e);
    expect(isLabSubnetHeld(error)).toBe(true);
    expect(error).toMatchObject({
      host: 'dr-host',
      subnet: 'fd00:233::/64',
      holder: { name: 'lab-vpn6', subnet: 'fd00:233:0:0:8000::/65' },
    });
    expect(error.message).toContain(
      "hypervisor host dr-host cannot give the lab production network front's subnet fd00:233::/64: " +
        'network lab-vpn6 (id lab-vpn6-id0) on its engine has subnet fd00:233:0:0:8000::/65, which overlaps it',
    );
    expect(foreign.created).toEqual([]);
    await new DockerHypervisorHost('dr-host', foreign.docker, {
      storeDirectory: '/nowhere',
    }).createLab('run-2', [dual, back], { internal: true });
    expect(foreign.created).toEqual([
      'rr-run-2-front 172.29.10.0/24',
      'rr-run-2-back 172.29.20.0/24',
    ]);

    const kept = engineHolding([
      { name: 'rr-first-front', subnet: 'fd00:233::/64', runId: 'first' },
    ]);
    await expect(
      new DockerHypervisorHost('dr-host', kept.docker, {
        storeDirectory: '/nowhere',
      }).createLab('run-1', [dual, back], { internal: false }),
    ).rejects.toThrow(
      'production network front (fd00:233::/64) is held on engine dr-host by network rr-first-front of failover first, whose machines kept there serve production',
    );
    expect(kept.created).toEqual([]);
  });

  it("makes the networks that get production's subnet before those whose subnet Docker chooses, which could be theirs", async () => {
    // Production's own network, on an engine that is also the primary (back was captured there).
    const { docker, created } = engineHolding([
      { name: 'back', subnet: '172.29.20.0/24' },
    ]);
    const lab = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    }).createLab('run-1', [{ ...back, engine: 'dr-host' }, front], {
      internal: true,
    });
    expect(lab.networks).toEqual(['rr-run-1-back', 'rr-run-1-front']);
    expect(created).toEqual([
      'rr-run-1-front 172.29.10.0/24',
      'rr-run-1-back chosen by Docker',
    ]);
  });

  it("refuses a lab, test or failover, where a failover's network holds a production subnet, before it makes any network", async () => {
    const held = [
      { name: 'rr-first-back', subnet: '172.29.20.0/22', runId: 'first' },
      // A test lab's (internal) or production's own (role both) is no failover's: Docker chooses there.
      {
        name: 'rr-test-front',
        subnet: '172.29.10.0/24',
        runId: 'a-test',
        internal: true,
      },
    ];
    const { docker, created } = engineHolding(held);
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    });
    await expect(
      host.createLab('run-1', [front, back], { internal: false }),
    ).rejects.toThrow(
      'production network back (172.29.20.0/24) is held on engine dr-host by network rr-first-back of failover first, whose machines kept there serve production',
    );
    await expect(
      host.createLab('run-1', [front, back], { internal: true }),
    ).rejects.toThrow(
      "production network back (172.29.20.0/24) is held on engine dr-host by network rr-first-back of failover first, whose machines kept there serve production: a test lab cannot have it beside them, so its machines would not get production's addresses. " +
        `Run the test on another hypervisor host or, once production no longer needs what failover first kept, release failover first first (recovery release first, or POST /runs/first/release), or else remove it by hand: docker rm -f $(docker ps -aq --filter label=${RUN_ID_LABEL}=first)`,
    );
    expect(created).toEqual([]);
    await host.createLab('run-1', [front], { internal: false });
    expect(created).toEqual(['rr-run-1-front chosen by Docker']);
  });

  it("refuses a lab, test or failover, where a network of production's name holds its subnet on an engine the machines were not captured from (a twin), before it makes any network", async () => {
    // The same compose project on both sites: walk-twin on the recovery engine too, same subnet.
    const { docker, created } = engineHolding([
      { name: 'back', subnet: '172.29.20.0/24' },
    ]);
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    });
    const fromPrimary = [front, { ...back, engine: 'primary' }];
    for (const internal of [true, false]) {
      const error = await host
        .createLab('run-1', fromPrimary, { internal })
        .catch(e => e);
      expect(isLabSubnetHeld(error)).toBe(true);
      expect(error).toMatchObject({
        host: 'dr-host',
        subnet: '172.29.20.0/24',
        holder: { name: 'back', id: 'back-id'.padEnd(64, '0') },
      });
      expect(error.message).toContain(
        "hypervisor host dr-host cannot give the lab production network back's subnet 172.29.20.0/24: network back (id back-id00000) on its engine holds that subnet",
      );
      expect(error.message).toContain('docker network rm back');
      expect(error.message).toMatch(
        internal
          ? /run the test on another hypervisor host$/
          : /fail over onto another hypervisor host$/,
      );
    }
    expect(created).toEqual([]);
  });

  it("refuses a failover on the engine its machines were captured from while production's own network holds the subnet: its machines would lose their addresses", async () => {
    const { docker, created } = engineHolding([
      { name: 'back', subnet: '172.29.20.0/24' },
    ]);
    const error = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    })
      .createLab('run-1', [front, { ...back, engine: 'dr-host' }], {
        internal: false,
      })
      .catch(e => e);
    expect(isLabSubnetHeld(error)).toBe(true);
    expect(error.message).toMatch(
      /^hypervisor host dr-host cannot give the lab production network back's subnet 172\.29\.20\.0\/24: network back \(id back-id00000\).*fail over onto another hypervisor host$/,
    );
    expect(created).toEqual([]);
  });

  it('refuses a lab where a network no run made holds part of a production subnet, before it makes any network, naming host, subnet and network', async () => {
    const { docker, created } = engineHolding([
      { name: 'lab-vpn', subnet: '172.29.20.128/25' },
    ]);
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    });
    const error = await host
      .createLab('run-1', [front, back], { internal: true })
      .catch(e => e);
    expect(isLabSubnetHeld(error)).toBe(true);
    expect(isEngineError(error)).toBe(false);
    expect(error).toMatchObject({
      host: 'dr-host',
      subnet: '172.29.20.0/24',
      holder: { name: 'lab-vpn', subnet: '172.29.20.128/25' },
    });
    expect(error.message).toBe(
      "hypervisor host dr-host cannot give the lab production network back's subnet 172.29.20.0/24: " +
        `network lab-vpn (id lab-vpn-id00) on its engine has subnet 172.29.20.128/25, which overlaps it, and no recovery run made it (it carries no ${RUN_ID_LABEL} label). ` +
        "The lab would get another subnet there, where its machines do not get production's addresses. " +
        'Remove that network if nothing on the host needs it (docker network rm lab-vpn), or run the test on another hypervisor host',
    );
    expect(created).toEqual([]);
  });

  it('refuses a lab whose subnet a network no run made took after the look, the networks made so far left for the run to remove', async () => {
    const { docker, created } = engineHolding([]);
    const listNetworks = docker.listNetworks.bind(docker);
    let looks = 0;
    // Made by hand between createLab's look and its network for back.
    docker.listNetworks = (async () =>
      ++looks === 1
        ? listNetworks()
        : [
            {
              Name: 'by-hand',
              Id: 'f'.repeat(64),
              Labels: {},
              IPAM: { Config: [{ Subnet: '172.29.20.0/24' }] },
            },
          ]) as unknown as Docker['listNetworks'];
    const createNetwork = docker.createNetwork.bind(docker);
    docker.createNetwork = (async (opts: Docker.NetworkCreateOptions) => {
      if (opts.IPAM?.Config?.[0]?.Subnet === '172.29.20.0/24')
        throw new Error('invalid pool request: Pool overlaps with other one');
      return createNetwork(opts);
    }) as unknown as Docker['createNetwork'];
    const error = await new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nowhere',
    })
      .createLab('run-1', [front, back], { internal: false })
      .catch(e => e);
    expect(isLabSubnetHeld(error)).toBe(true);
    expect(error.message).toContain(
      `network by-hand (id ${'f'.repeat(12)}) on its engine holds that subnet`,
    );
    expect(error.message).toMatch(/fail over onto another hypervisor host$/);
    expect(created).toEqual(['rr-run-1-front 172.29.10.0/24']);
  });
});

describe('DockerHypervisorHost room', () => {
  it("removes the run's helper container a stopped backend left before it makes it again, and reads the room", async () => {
    const name = 'rr-run-1-room';
    const containers = new Map<string, Record<string, string>>([
      [name, { [RUN_ID_LABEL]: 'run-1', [PROBE_LABEL]: 'true' }],
    ]);
    const docker = {
      info: async () => ({ DockerRootDir: '/var/lib/docker' }),
      getImage: () => ({ inspect: async () => builtProbeImage }),
      getContainer: (id: string) => ({
        inspect: async () => {
          if (!containers.has(id))
            throw Object.assign(new Error('no such container'), {
              statusCode: 404,
            });
          return { Config: { Labels: containers.get(id) } };
        },
        remove: async () => {
          containers.delete(id);
        },
      }),
      createContainer: async (opts: Docker.ContainerCreateOptions) => {
        if (containers.has(opts.name!)) {
          throw Object.assign(
            new Error(
              `Conflict. The container name "/${opts.name}" is already in use`,
            ),
            { statusCode: 409 },
          );
        }
        containers.set(opts.name!, opts.Labels ?? {});
        return {
          start: async () => {},
          wait: async () => ({ StatusCode: 0 }),
          logs: async () =>
            Buffer.from(
              'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 100 900 10% /data-root\nMemAvailable: 2048 kB\n',
            ),
          remove: async () => {
            containers.delete(opts.name!);
          },
        };
      },
    } as unknown as Docker;
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    expect(await host.room!('run-1', [])).toEqual({
      neededBytes: 0,
      where: 'dr-host:/var/lib/docker',
      freeBytes: 900 * 1024,
      availableMemoryBytes: 2048 * 1024,
    });
    expect([...containers.keys()]).toEqual([]);

    // One of that name that is not the run's is left alone: the room is then unknown.
    containers.set(name, { owner: 'someone' });
    expect((await host.room!('run-1', [])).unknown).toMatch(/already in use/);
    expect(containers.get(name)).toEqual({ owner: 'someone' });
  });

  it('says what failed where the engine fails the room check, in words that read', async () => {
    const docker = {
      info: async () => {
        throw Object.assign(
          new Error(
            '(HTTP code 500) server error - layer store: input/output error',
          ),
          { statusCode: 500 },
        );
      },
    } as unknown as Docker;
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    await expect(host.room!('run-1', [])).rejects.toMatchObject({
      name: 'EngineFailedError',
      message:
        "checking the room for run run-1 (disk space and memory) failed: Docker engine 'dr-host' answered HTTP 500: layer store: input/output error",
    });
  });
});

describe('DockerHypervisorHost room of captures sharing a base image', () => {
  const base = Buffer.alloc(300_000, 7);
  const tops = [1, 2, 3, 4].map(n => Buffer.alloc(100_000, n));
  let store: string;
  let captures: RestorableCapture[];
  beforeAll(async () => {
    store = mkdtempSync(join(tmpdir(), 'recovery-room-'));
    stores.push(store);
    captures = [];
    for (const [i, top] of tops.entries()) {
      // docker save names a layer's directory by an id of the image's chain: the base's differs
      // from one capture to the next, though its content (and the store's copy) is one.
      const [baseId, topId] = [
        `${i}${'a'.repeat(63)}`,
        `${i}${'b'.repeat(63)}`,
      ];
      const saved = createTar([
        { type: 'file', path: `${baseId}/json`, content: `{"id":"${baseId}"}` },
        { type: 'file', path: `${baseId}/layer.tar`, content: base },
        { type: 'file', path: `${topId}/json`, content: `{"id":"${topId}"}` },
        { type: 'file', path: `${topId}/layer.tar`, content: top },
        {
          type: 'file',
          path: 'manifest.json',
          content: JSON.stringify([
            { Layers: [`${baseId}/layer.tar`, `${topId}/layer.tar`] },
          ]),
        },
      ]);
      const { checksum } = await writeThinArchive(
        Readable.from([saved]),
        store,
        `cap-${i}.tar`,
        [],
      );
      captures.push({
        captureId: `cap-${i}`,
        machineRef: `resource:default/w4-app-0${i}`,
        imageId: `sha256:image-${i}`,
        checksum,
        artifact: `cap-${i}.tar`,
        runtime: {
          hostname: `w4-app-0${i}`,
          networks: [],
          env: [],
          exposedPorts: [],
          labels: {},
          volumes: [
            {
              destination: '/data',
              artifact: `cap-${i}-vol.tar`,
              checksum: 'sha256:x',
              sizeBytes: 1000,
            },
          ],
        },
      });
    }
  });

  /** An engine with 7.7 MiB free in its data root, holding the images `present`. */
  const engine = (present: string[] = []) =>
    ({
      info: async () => ({ DockerRootDir: '/var/lib/docker' }),
      getImage: (ref: string) => ({
        inspect: async () => {
          if (ref === 'recovery/probe:1') return builtProbeImage;
          if (present.includes(ref)) return { Id: ref };
          throw Object.assign(new Error('no such image'), { statusCode: 404 });
        },
      }),
      getContainer: () => ({
        inspect: async () => {
          throw Object.assign(new Error('no such container'), {
            statusCode: 404,
          });
        },
      }),
      createContainer: async () => ({
        start: async () => {},
        wait: async () => ({ StatusCode: 0 }),
        logs: async () =>
          Buffer.from(
            'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 9000 1115 7885 13% /data-root\n',
          ),
        remove: async () => {},
      }),
    }) as unknown as Docker;

  it('counts the base layer once, by its content, though each archive names it under another directory', async () => {
    const host = new DockerHypervisorHost('dr-host', engine(), {
      storeDirectory: store,
    });
    const room = await host.room!(
      'run-1',
      captures.map(c => [c]),
    );
    // The base once, each capture's own layer, the largest wave's archive unpacked whole (a base
    // and a top), the volumes; and under a KiB of json beside them.
    const expected =
      base.length + tops.length * 100_000 + base.length + 100_000 + 4 * 1000;
    expect(room.neededBytes).toBeGreaterThanOrEqual(expected);
    expect(room.neededBytes).toBeLessThan(expected + 2048);
    expect(room.freeBytes).toBe(7885 * 1024);
  });

  it('takes only the volumes of a capture whose image the engine has: it is not loaded', async () => {
    const all = new DockerHypervisorHost(
      'dr-host',
      engine(captures.map(c => c.imageId)),
      { storeDirectory: store },
    );
    expect(
      (
        await all.room!(
          'run-1',
          captures.map(c => [c]),
        )
      ).neededBytes,
    ).toBe(4 * 1000);
    const one = new DockerHypervisorHost(
      'dr-host',
      engine(captures.slice(1).map(c => c.imageId)),
      { storeDirectory: store },
    );
    const needed = (
      await one.room!(
        'run-1',
        captures.map(c => [c]),
      )
    ).neededBytes;
    const expected = 2 * (base.length + 100_000) + 4 * 1000;
    expect(needed).toBeGreaterThanOrEqual(expected);
    expect(needed).toBeLessThan(expected + 2048);
  });
});

describe('DockerHypervisorHost probe removal', () => {
  it("removes the run's probe helpers and nothing else of it, and makes no probe container for it again", async () => {
    const runId = 'run-1';
    const { docker, state } = engineWithProbe(runId);
    const lab: LabHandle = { runId, networks: [`rr-${runId}-prod`] };
    const machine: MachineHandle = {
      runId,
      machineRef: 'resource:default/web',
      id: 'web',
      hostnames: ['web'],
    };
    const removed: string[] = [];
    const listed: unknown[] = [];
    const helpers = [
      { Id: 'probe-id', Names: [`/rr-${runId}-probe`] },
      // Removed meanwhile (a release beside it): not there to remove, and no failure.
      { Id: 'gone-id', Names: [`/rr-${runId}-room`] },
    ];
    Object.assign(docker, {
      listContainers: async (options: unknown) => {
        listed.push(options);
        return state.probeExists ? helpers : [];
      },
    });
    const getContainer = docker.getContainer.bind(docker);
    docker.getContainer = ((id: string) =>
      id === 'probe-id' || id === 'gone-id'
        ? {
            remove: async () => {
              if (id === 'gone-id')
                throw Object.assign(new Error('no such container'), {
                  statusCode: 404,
                });
              removed.push(id);
              state.probeExists = false;
            },
          }
        : getContainer(id)) as Docker['getContainer'];
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    expect(
      await host.probe(lab, machine, { kind: 'tcp', port: 80 }),
    ).toMatchObject({ ok: true });
    expect(state.created).toBe(1);

    expect(await host.removeProbes(runId)).toEqual([`rr-${runId}-probe`]);
    expect(removed).toEqual(['probe-id']);
    // Only the run's helpers: what it restored is no helper.
    expect(listed).toEqual([
      {
        all: true,
        filters: { label: [`${RUN_ID_LABEL}=${runId}`, `${PROBE_LABEL}=true`] },
      },
    ]);
    // A probe of the run after that (one still under way when it was removed) makes none again.
    await expect(
      host.probe(lab, machine, { kind: 'tcp', port: 80 }),
    ).rejects.toThrow(`run ${runId} probes no more`);
    expect(state.created).toBe(1);
  });
});

/** An engine on which machine `name` of the run is already there (a backend stopped mid-restore). */
function engineWithLeftMachine(
  name: string,
  left: { status: string; networks: string[]; labels: Record<string, string> },
) {
  const calls: string[] = [];
  let exists = true;
  const docker = {
    getImage: () => ({ inspect: async () => ({ Id: 'sha256:image' }) }),
    getNetwork: (network: string) => ({
      inspect: async () => ({
        Name: network,
        Internal: true,
        IPAM: { Config: [] },
      }),
      connect: async (opts: {
        Container: string;
        EndpointConfig: Docker.EndpointSettings;
      }) => {
        calls.push(
          `connect ${network} ${opts.Container} ${(opts.EndpointConfig.Aliases ?? []).join(',')}`,
        );
      },
    }),
    getContainer: (id: string) => ({
      inspect: async () => ({
        Id: 'left-id',
        Config: { Labels: left.labels },
        State: { Status: left.status, Running: left.status === 'running' },
        NetworkSettings: {
          Networks: Object.fromEntries(left.networks.map(n => [n, {}])),
        },
      }),
      remove: async () => {
        calls.push(`remove ${id}`);
        exists = false;
      },
    }),
    createContainer: async (opts: Docker.ContainerCreateOptions) => {
      if (exists && opts.name === name) {
        throw Object.assign(
          new Error(
            `Conflict. The container name "/${name}" is already in use`,
          ),
          { statusCode: 409 },
        );
      }
      calls.push(`create ${opts.name} on ${opts.HostConfig?.NetworkMode}`);
      return {
        id: 'new-id',
        putArchive: async () => {},
        remove: async () => {},
      };
    },
  } as unknown as Docker;
  return { docker, calls };
}

describe('DockerHypervisorHost restore resumed', () => {
  const lab: LabHandle = {
    runId: 'run-1',
    networks: ['rr-run-1-front', 'rr-run-1-back'],
  };
  const machineRef = 'resource:default/web';
  const name = machineContainerName('run-1', machineRef);
  const labels = { [RUN_ID_LABEL]: 'run-1', [MACHINE_REF_LABEL]: machineRef };
  const networks = [
    { name: 'front', aliases: ['www'] },
    { name: 'back', aliases: ['api'] },
  ];

  it('makes again a machine a stopped backend created but never started: it may lack networks and volume content', async () => {
    const { store, capture } = storeWith({ networks });
    const { docker, calls } = engineWithLeftMachine(name, {
      status: 'created',
      networks: ['rr-run-1-front'],
      labels,
    });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { machine } = await host.restoreMachine(lab, capture);
    expect(machine.id).toBe('new-id');
    expect(calls).toEqual([
      `remove ${name}`,
      `create ${name} on rr-run-1-front`,
      'connect rr-run-1-back new-id api,web',
    ]);
  });

  it('joins a started machine of the run to the lab networks it is not on, and keeps it', async () => {
    const { store, capture } = storeWith({ networks });
    const { docker, calls } = engineWithLeftMachine(name, {
      status: 'running',
      networks: ['rr-run-1-front'],
      labels,
    });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { machine } = await host.restoreMachine(lab, capture);
    expect(machine.id).toBe('left-id');
    expect(calls).toEqual(['connect rr-run-1-back left-id api,web']);
  });

  it("refuses a container of that name that is another run's, and leaves it", async () => {
    const { store, capture } = storeWith({ networks });
    const { docker, calls } = engineWithLeftMachine(name, {
      status: 'created',
      networks: [],
      labels: { ...labels, [RUN_ID_LABEL]: 'run-0' },
    });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    await expect(host.restoreMachine(lab, capture)).rejects.toThrow(
      `container ${name} on engine dr-host belongs to ${machineRef} of run run-0`,
    );
    expect(calls).toEqual([]);
  });
});

describe('DockerHypervisorHost restore of read-only machines', () => {
  it('gives read-only up for a capture from before read-only volumes were weighed: Docker refuses their content on it', async () => {
    const volume = {
      destination: '/etc/app',
      artifact: 'cap-1.tar',
      checksum: '',
      sizeBytes: 1,
    };
    const { store, capture } = storeWith({
      limits: { readOnlyRootfs: true, memoryBytes: 1024 ** 3 },
    });
    const { docker, created } = restoringEngine();
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    // The archive is the store's one file: its checksum is the image archive's.
    const withVolume = {
      ...capture,
      runtime: {
        ...capture.runtime,
        volumes: [{ ...volume, checksum: capture.checksum }],
      },
    };
    const { adaptations } = await host.restoreMachine(
      { runId: 'run-1', networks: [] },
      withVolume,
    );
    expect(created[0].HostConfig).toEqual({
      Memory: 1024 ** 3,
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
    });
    expect(adaptations).toEqual([
      'read-only root filesystem not kept: the restore puts the content of volume /etc/app into it, which Docker refuses while it is read-only',
    ]);
    // Without volumes it stays read-only, with production's tmpfs mounts.
    const tmpfs = { '/tmp': 'size=1m' };
    await host.restoreMachine(
      { runId: 'run-1', networks: [] },
      {
        ...capture,
        runtime: {
          ...capture.runtime,
          limits: { readOnlyRootfs: true, tmpfs } as never,
        },
      },
    );
    expect(created[1].HostConfig).toMatchObject({
      ReadonlyRootfs: true,
      Tmpfs: tmpfs,
    });
  });
});

/** An engine holding at most the probe image, that says what was imported and removed. */
function engineWithProbeImage(present?: {
  Id: string;
  Config: { Labels?: Record<string, string> };
}) {
  const calls: string[] = [];
  let image = present;
  const docker = {
    getImage: (ref: string) => ({
      inspect: async () => {
        if (ref === 'recovery/probe:1' && image) return image;
        if (ref === present?.Id && present) return present;
        throw Object.assign(new Error(`no such image: ${ref}`), {
          statusCode: 404,
        });
      },
      remove: async () => {
        calls.push(`remove ${ref}`);
      },
    }),
    importImage: async (
      _tar: unknown,
      opts: { repo: string; tag: string; changes: string[] },
    ) => {
      calls.push(`import ${opts.repo}:${opts.tag} ${opts.changes.join(' ')}`);
      const label = /^LABEL (\S+)=(\S+)$/.exec(opts.changes[0])!;
      image = {
        Id: 'sha256:new',
        Config: { Labels: { [label[1]]: label[2] } },
      };
      return new PassThrough().end('{"status":"sha256:new"}\n');
    },
  } as unknown as Docker;
  return { docker, calls };
}

describe('DockerHypervisorHost probe image', () => {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-probe-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const staticBusybox =
    existsSync('/bin/busybox') && !notStaticElf(readFileSync('/bin/busybox'));
  const digest = busyboxDigest('/bin/busybox');

  it.runIf(staticBusybox)(
    'builds it labelled with the digest of the busybox it is built from, and reuses it while that is the busybox',
    async () => {
      const { docker, calls } = engineWithProbeImage();
      const host = new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: dir,
      });
      await host.ensureProbeImage();
      await host.ensureProbeImage();
      expect(calls).toEqual([
        `import recovery/probe:1 LABEL ${PROBE_BUSYBOX_LABEL}=${digest}`,
      ]);
    },
  );

  it.runIf(staticBusybox)(
    'builds again, and removes, one built before the label (perhaps from a dynamic busybox) or from another busybox',
    async () => {
      for (const labels of [
        undefined,
        { [PROBE_BUSYBOX_LABEL]: `sha256:${'0'.repeat(64)}` },
      ]) {
        const { docker, calls } = engineWithProbeImage({
          Id: 'sha256:stale',
          Config: { Labels: labels },
        });
        await new DockerHypervisorHost('dr-host', docker, {
          storeDirectory: dir,
        }).ensureProbeImage();
        expect(calls).toEqual([
          `import recovery/probe:1 LABEL ${PROBE_BUSYBOX_LABEL}=${digest}`,
          'remove sha256:stale',
        ]);
      }
    },
  );

  it('refuses to build one from a dynamic busybox rather than reuse a stale one, and uses the one there when the backend has no busybox', async () => {
    const stale = { Id: 'sha256:stale', Config: {} };
    const dynamic = engineWithProbeImage(stale);
    await expect(
      new DockerHypervisorHost('dr-host', dynamic.docker, {
        storeDirectory: dir,
        busyboxPath: '/bin/true',
      }).ensureProbeImage(),
    ).rejects.toThrow(/^\/bin\/true is dynamically linked/);
    expect(dynamic.calls).toEqual([]);

    const none = engineWithProbeImage(stale);
    await new DockerHypervisorHost('dr-host', none.docker, {
      storeDirectory: dir,
      busyboxPath: join(dir, 'no-busybox'),
    }).ensureProbeImage();
    expect(none.calls).toEqual([]);
  });
});

describe('DockerHypervisorHost inspectMachine', () => {
  const inspecting = (State: object) =>
    new DockerHypervisorHost(
      'dr-host',
      {
        getContainer: () => ({ inspect: async () => ({ State }) }),
      } as unknown as Docker,
      { storeDirectory: '/nonexistent' },
    ).inspectMachine({
      runId: 'run-1',
      machineRef: 'resource:default/db',
      id: 'db',
      hostnames: [],
    });

  it("says when a stopped machine stopped, from the engine's FinishedAt; nothing for a running one or Docker's zero time", async () => {
    expect(
      await inspecting({
        Running: false,
        ExitCode: 137,
        FinishedAt: '2026-12-06T01:00:00.5Z',
      }),
    ).toEqual({
      running: false,
      exitCode: 137,
      stoppedAt: '2026-12-06T01:00:00.5Z',
    });
    expect(
      (
        await inspecting({
          Running: true,
          FinishedAt: '2026-12-06T01:00:00Z',
        })
      ).stoppedAt,
    ).toBeUndefined();
    expect(
      await inspecting({
        Running: false,
        ExitCode: 0,
        FinishedAt: '0001-01-01T00:00:00Z',
      }),
    ).toEqual({ running: false, exitCode: 0 });
  });

  it("says when a running machine started, from the engine's StartedAt: a sharer started before its namespace's owner lost its network", async () => {
    expect(
      await inspecting({
        Running: true,
        StartedAt: '2026-12-06T01:00:00.123456789Z',
        FinishedAt: '2026-12-06T00:59:59Z',
      }),
    ).toEqual({ running: true, startedAt: '2026-12-06T01:00:00.123456789Z' });
    expect(
      (
        await inspecting({
          Running: false,
          ExitCode: 0,
          StartedAt: '2026-12-06T01:00:00Z',
        })
      ).startedAt,
    ).toBeUndefined();
  });

  it("says whose network namespace a machine shares, by that lab container's id, for its supervision to restart it after that one", async () => {
    const host = new DockerHypervisorHost(
      'dr-host',
      {
        getContainer: (id: string) => ({
          inspect: async () => ({
            State: { Running: true },
            HostConfig: {
              NetworkMode: id === 'sidecar' ? 'container:data-id' : 'rr-net',
            },
          }),
        }),
      } as unknown as Docker,
      { storeDirectory: '/nonexistent' },
    );
    const handle = (id: string) => ({
      runId: 'run-1',
      machineRef: `resource:default/${id}`,
      id,
      hostnames: [],
    });
    expect(await host.inspectMachine(handle('sidecar'))).toEqual({
      running: true,
      sharesNetworkOf: 'data-id',
    });
    expect(await host.inspectMachine(handle('data'))).toEqual({
      running: true,
    });
  });
});

describe("DockerHypervisorHost restore of production's names, hosts entries, DNS servers and MAC addresses", () => {
  const lab: LabHandle = {
    runId: 'run-1',
    networks: ['rr-run-1-front', 'rr-run-1-back'],
  };
  const runtime = {
    networks: [
      {
        name: 'front',
        subnet: '10.240.3.0/24',
        aliases: ['www', 'web-prod'],
        macAddress: '02:aa:bb:00:00:01',
      },
      {
        name: 'back',
        subnet: '10.8.0.0/16',
        aliases: [],
        macAddress: '02:aa:bb:00:00:02',
      },
    ],
    extraHosts: ['database.corp:10.240.3.10'],
    dns: ['10.240.3.11', '8.8.8.8'],
  };

  /** restoringEngine, at a Docker API version, saying how it was asked to connect, refusing a MAC where told. */
  function engine(options: {
    internal: boolean;
    apiVersion: string;
    refuseMac?: string;
  }) {
    const { docker, created } = restoringEngine({
      internal: options.internal,
    });
    const connected: Array<{ network: string; mac?: string }> = [];
    const { createContainer, getNetwork } = docker;
    const refused = (mac: string | undefined) =>
      Object.assign(
        new Error(`(HTTP code 400) unexpected - invalid MAC address ${mac}`),
        { statusCode: 400 },
      );
    Object.assign(docker, {
      version: async () => ({ ApiVersion: options.apiVersion }),
      createContainer: async (opts: Docker.ContainerCreateOptions) => {
        const mac =
          opts.MacAddress ??
          opts.NetworkingConfig?.EndpointsConfig?.['rr-run-1-front']
            ?.MacAddress;
        if (mac && mac === options.refuseMac) throw refused(mac);
        return createContainer.call(docker, opts);
      },
      getNetwork: (name: string) => ({
        ...getNetwork.call(docker, name),
        connect: async (o: { EndpointConfig: Docker.EndpointSettings }) => {
          const mac = o.EndpointConfig.MacAddress;
          if (mac && mac === options.refuseMac) throw refused(mac);
          connected.push({ network: name, ...(mac ? { mac } : {}) });
        },
      }),
    });
    return { docker, created, connected };
  }

  it("gives a test lab's machine its names, hosts entries, the DNS servers it reaches and its first network's MAC (API before 1.44: container-wide), saying what it does not get", async () => {
    const { store, capture } = storeWith(runtime);
    const { docker, created, connected } = engine({
      internal: true,
      apiVersion: '1.41',
    });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { adaptations } = await host.restoreMachine(lab, capture);
    expect(created[0].HostConfig).toMatchObject({
      ExtraHosts: ['database.corp:10.240.3.10'],
      Dns: ['10.240.3.11'],
    });
    expect(created[0].MacAddress).toBe('02:aa:bb:00:00:01');
    expect(
      created[0].NetworkingConfig?.EndpointsConfig?.['rr-run-1-front']?.Aliases,
    ).toEqual(['www', 'web-prod', 'web']);
    expect(connected).toEqual([{ network: 'rr-run-1-back' }]);
    expect(adaptations).toEqual([
      "DNS servers 8.8.8.8 not used in the test lab: outside the machine's production subnets it has (10.240.3.0/24, 10.8.0.0/16), the isolated lab cannot reach them (the lab's resolver answers the lab's names)",
      "MAC address 02:aa:bb:00:00:02 not fixed on lab network rr-run-1-back: engine dr-host (Docker API before 1.44) fixes one only on a machine's first network, so Docker picks one there",
    ]);
  });

  it('asks the engine its API version once per host, however many machines with a MAC it restores', async () => {
    const { store, capture } = storeWith(runtime);
    const { docker } = engine({ internal: true, apiVersion: '1.41' });
    let asked = 0;
    const { version } = docker as unknown as { version: () => unknown };
    Object.assign(docker, {
      version: async () => {
        asked += 1;
        return version();
      },
    });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    await host.restoreMachine(lab, capture);
    await host.restoreMachine(lab, capture);
    expect(asked).toBe(1);
  });

  it('gives a failover every DNS server and, from API 1.44, each network its MAC', async () => {
    const { store, capture } = storeWith(runtime);
    const { docker, created, connected } = engine({
      internal: false,
      apiVersion: '1.44',
    });
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: store,
    });
    const { adaptations } = await host.restoreMachine(lab, capture);
    expect(created[0].HostConfig?.Dns).toEqual(['10.240.3.11', '8.8.8.8']);
    expect(created[0]).not.toHaveProperty('MacAddress');
    expect(
      created[0].NetworkingConfig?.EndpointsConfig?.['rr-run-1-front']
        ?.MacAddress,
    ).toBe('02:aa:bb:00:00:01');
    expect(connected).toEqual([
      { network: 'rr-run-1-back', mac: '02:aa:bb:00:00:02' },
    ]);
    expect(adaptations).toEqual([]);
  });

  it.each([
    ['joining a later network', 'rr-run-1-back', '02:aa:bb:00:00:02'],
    ['creating it', 'rr-run-1-front', '02:aa:bb:00:00:01'],
  ])(
    'restores the machine without a MAC its engine refuses %s, and says so',
    async (_, network, refuseMac) => {
      const { store, capture } = storeWith(runtime);
      const { docker, created, connected } = engine({
        internal: false,
        apiVersion: '1.44',
        refuseMac,
      });
      const host = new DockerHypervisorHost('dr-host', docker, {
        storeDirectory: store,
      });
      const { adaptations } = await host.restoreMachine(lab, capture);
      expect(created).toHaveLength(1);
      expect(
        created[0].NetworkingConfig?.EndpointsConfig?.['rr-run-1-front']
          ?.MacAddress,
      ).toBe(network === 'rr-run-1-front' ? undefined : '02:aa:bb:00:00:01');
      expect(connected).toEqual([
        network === 'rr-run-1-back'
          ? { network: 'rr-run-1-back' }
          : { network: 'rr-run-1-back', mac: '02:aa:bb:00:00:02' },
      ]);
      expect(adaptations).toEqual([
        `MAC address ${refuseMac} not fixed on lab network ${network}: engine dr-host refused it (Docker engine 'dr-host' answered HTTP 400: invalid MAC address ${refuseMac}), so Docker picks one there`,
      ]);
    },
  );
});

describe('DockerHypervisorHost of a lab machine removed mid-run (docker rm -f)', () => {
  const runId = 'run-1';
  const lab: LabHandle = { runId, networks: [`rr-${runId}-prod`] };
  const machine: MachineHandle = {
    runId,
    machineRef: 'resource:default/db-01',
    id: 'c'.repeat(64),
    hostnames: ['db-01'],
  };
  const name = machineContainerName(runId, machine.machineRef);
  const removed = `lab machine resource:default/db-01 (container ${name}) was removed from hypervisor host 'dr-host' by something outside the run, mid-run (docker rm, or another tool on its engine)`;
  /** dockerode's error for dockerd's 404, as it words it. */
  const notFound = (id: string) =>
    Object.assign(
      new Error(
        `(HTTP code 404) no such container - No such container: ${id} `,
      ),
      { statusCode: 404, reason: 'no such container' },
    );

  /**
   * An engine whose lab holds the machine until `state.removed`, then answers 404 for anything of
   * it, as dockerd does; `state.startFails` fails its start otherwise.
   */
  function engine() {
    const state = {
      removed: false,
      startFails: undefined as Error | undefined,
    };
    const probeName = `rr-${runId}-probe`;
    const gone = async (id: string) => {
      if (id !== probeName && state.removed) throw notFound(id);
    };
    const docker = {
      getContainer: (id: string) => ({
        id,
        inspect: async () => {
          await gone(id);
          return id === probeName
            ? { State: { Running: true } }
            : {
                Id: id,
                Name: `/${name}`,
                State: { Running: true },
                HostConfig: {},
                NetworkSettings: {
                  Networks: { [lab.networks[0]]: { IPAddress: '10.0.0.2' } },
                },
              };
        },
        start: async () => {
          await gone(id);
          if (state.startFails) throw state.startFails;
        },
        restart: () => gone(id),
        logs: async () => {
          await gone(id);
          return Buffer.alloc(0);
        },
        exec: async () => {
          await gone(id);
          throw new Error('not wanted: the probe is not run');
        },
      }),
      getImage: () => ({ inspect: async () => builtProbeImage }),
      listContainers: async () => [],
    } as unknown as Docker;
    const host = new DockerHypervisorHost('dr-host', docker, {
      storeDirectory: '/nonexistent',
    });
    return { host, state };
  }

  it.each([
    ['inspecting', (h: DockerHypervisorHost) => h.inspectMachine(machine)],
    ['starting', (h: DockerHypervisorHost) => h.startMachine(machine)],
    ['restarting', (h: DockerHypervisorHost) => h.restartMachine(machine)],
    [
      'probing',
      (h: DockerHypervisorHost) =>
        h.probe(lab, machine, { kind: 'tcp', port: 5432 }),
    ],
    ['reading the log of', (h: DockerHypervisorHost) => h.logTail(machine, 30)],
  ])(
    "says it was removed by something outside the run, naming machine and container, not the engine's 404, %s it",
    async (doing, call) => {
      const { host, state } = engine();
      state.removed = true;
      const error = await call(host).catch(e => e);
      expect(error).toMatchObject({
        name: 'NotFoundError',
        message: `${removed}: ${doing} it found its container gone`,
      });
      expect(isEngineError(error)).toBe(false);
      expect(error.message).not.toMatch(/HTTP|404/);
    },
  );

  it("leaves a 404 of something else, the machine still there, the engine's answer", async () => {
    const { host, state } = engine();
    // Its lab network removed by hand: dockerd answers the start 404 for the network.
    state.startFails = Object.assign(
      new Error(
        `(HTTP code 404) no such container - network ${lab.networks[0]} not found `,
      ),
      { statusCode: 404 },
    );
    const error = await host.startMachine(machine).catch(e => e);
    expect(isEngineError(error)).toBe(true);
    expect(error.message).toBe(
      `starting ${machine.machineRef} in the lab of run ${runId} failed: Docker engine 'dr-host' answered HTTP 404: network ${lab.networks[0]} not found`,
    );
  });
});
