/*
 * Production's host ports end to end, on real Docker engines: a machine publishes a port on the
 * primary engine's host (`-p PORT:8080`); the real backend captures it. A test recovery beside the
 * running production publishes nothing (its machine, inspected as the engine creates it, asks for
 * no host port). Once production is gone, a failover publishes the same port on the recovery
 * engine's host, where clients reach it on 127.0.0.1:PORT (both engines run on this machine);
 * before that, a container of the recovery engine holding the port refuses the failover up front,
 * and a process holding it fails the run at the host as its machine starts, naming both.
 */
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_PROBES,
  MACHINE_LABEL,
  RUN_ID_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import { CAPTURE_REPOSITORY } from '@backstage-recovery/plugin-recovery-backend-module-docker';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../demo/site';
import { createTestNetwork } from '../../plugins/recovery-backend-module-docker/src/testing/testNetwork';
import { DEFAULT_PROBE_IMAGE } from '../../plugins/recovery-backend-module-docker/src/LabProbe';
import {
  capture,
  demoRecoveryConfig,
  ENGINES,
  freePort,
  RunningBackend,
  startBackend,
  waitForRun,
  expectEnginesReachable,
} from './backend';

const primary = dockerFromHost(ENGINES.primary);
const recoveryHost = dockerFromHost(ENGINES.recovery);
const token = `p${process.pid}x${Date.now().toString(36)}`;
const SERVICE = 'component:default/fp-web';
const MACHINE = 'resource:default/fp-web-01';
const container = `fp-web-01-${token}`;
const network = `fp-prod-${token}`;
/** Apart from the demo's, the Docker tests' and the generated sites' subnets. */
const SUBNET = '172.29.61.0/24';
/** On the recovery engine: a container of its own holding the port. */
const holder = `fp-holder-${token}`;

/** Serves `ok` over HTTP on 8080 (busybox httpd). */
const HTTPD = [
  'sh',
  '-c',
  'mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w',
];

function catalog(): string {
  return [
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: {
        name: 'fp-web',
        annotations: { [ANNOTATION_PROBES]: 'tcp:8080' },
      },
      spec: {
        type: 'service',
        lifecycle: 'production',
        owner: 'platform-team',
        dependsOn: [MACHINE],
      },
    },
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Resource',
      metadata: {
        name: 'fp-web-01',
        annotations: {
          [ANNOTATION_ENGINE]: 'primary',
          [ANNOTATION_CONTAINER]: container,
        },
      },
      spec: { type: 'machine', owner: 'platform-team' },
    },
  ]
    .map(e => JSON.stringify(e))
    .join('\n---\n');
}

/** What answers HTTP on 127.0.0.1:`port`, or why nothing does. */
async function answerOn(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      signal: AbortSignal.timeout(5000),
    });
    return `${res.status} ${(await res.text()).trim()}`;
  } catch (e) {
    return `no answer: ${(e as Error).cause ?? (e as Error).message}`;
  }
}

/** The containers and networks the recovery engine holds labelled with a run. */
async function onRecoveryHost(runId: string) {
  const filters = JSON.stringify({ label: [`${RUN_ID_LABEL}=${runId}`] });
  const [containers, networks] = await Promise.all([
    recoveryHost.listContainers({ all: true, filters }),
    recoveryHost.listNetworks({ filters }),
  ]);
  return { containers, networks: networks.map(n => n.Name) };
}

/**
 * Watches the recovery engine for the containers runs create of fp-web-01 (they carry its
 * production labels), each inspected as it is created: what it was made to publish on the host.
 */
async function watchRestores() {
  const stream = (await recoveryHost.getEvents({
    filters: {
      type: ['container'],
      event: ['create'],
      label: [`${MACHINE_LABEL}=${MACHINE}`],
    },
  } as object)) as unknown as Readable;
  const inspected: Array<Promise<unknown>> = [];
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      const { id } = JSON.parse(line) as { id: string };
      inspected.push(
        recoveryHost
          .getContainer(id)
          .inspect()
          .then(info => info.HostConfig.PortBindings ?? {}),
      );
    }
  });
  return {
    /** What each container created meanwhile was made to publish. */
    stop: async () => {
      stream.destroy();
      return Promise.all(inspected);
    },
  };
}

const removeContainer = (docker: typeof primary, name: string) =>
  docker
    .getContainer(name)
    .remove({ force: true, v: true })
    .catch(() => {});

describe("a failover publishes production's host ports; a test recovery none", () => {
  let dataDir: string;
  let backend: RunningBackend;
  let port: number;
  const failoverIds: string[] = [];
  const captureIds: string[] = [];
  let listener: Server | undefined;
  const startedAt = Date.now();

  beforeAll(async () => {
    await expectEnginesReachable({ primary, recovery: recoveryHost });
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-e2e-ports-'));
    const catalogFile = join(dataDir, 'catalog-info.yaml');
    writeFileSync(catalogFile, catalog());
    await buildDemoImage(primary);
    port = await freePort();
    // Production: a machine on a network of its own, publishing 8080 on its host as PORT.
    await createTestNetwork(
      primary,
      {
        Name: network,
        Driver: 'bridge',
        CheckDuplicate: true,
        IPAM: { Driver: 'default', Config: [{ Subnet: SUBNET }] },
        // As demo-prod: no NAT rule on a subnet the recovery engine's lab reuses on the same host.
        Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
      },
      token,
    );
    const machine = await primary.createContainer({
      name: container,
      Hostname: 'fp-web-01',
      Image: DEMO_IMAGE,
      Cmd: HTTPD,
      ExposedPorts: { '8080/tcp': {} },
      Labels: { [MACHINE_LABEL]: MACHINE },
      StopTimeout: 1,
      HostConfig: {
        NetworkMode: network,
        PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: String(port) }] },
      },
    });
    await machine.start();
    backend = await startBackend({
      dataDir,
      catalogFile,
      readyEntity: SERVICE,
      config: demoRecoveryConfig(dataDir),
    });
  });

  afterAll(async () => {
    await new Promise(resolve =>
      listener ? listener.close(resolve) : resolve(undefined),
    );
    if (backend) await releaseFailovers();
    await backend?.stop();
    await removeContainer(recoveryHost, holder);
    await removeContainer(primary, container);
    await primary
      .getNetwork(network)
      .remove()
      .catch(() => {});
    // The captures' tags on the primary engine outlive the store they belong to, removed with dataDir.
    for (const id of captureIds) {
      const images = await primary.listImages({
        filters: JSON.stringify({
          reference: [`${CAPTURE_REPOSITORY}/*:${id}`],
        }),
      });
      for (const tag of images
        .flatMap(i => i.RepoTags ?? [])
        .filter(t => t.endsWith(`:${id}`)))
        await primary
          .getImage(tag)
          .remove()
          .catch(() => {});
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    console.log(
      `failover ports e2e: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
    );
  });

  /** Releases what the failovers so far kept: a failover is never torn down by itself. */
  async function releaseFailovers(): Promise<void> {
    for (const id of failoverIds) {
      const left = await onRecoveryHost(id);
      if (left.containers.length + left.networks.length > 0)
        await backend.api('POST', `/runs/${id}/release`).catch(() => {});
    }
  }

  /** A failover of fp-web, driven to its end. */
  async function failover(): Promise<RecoveryRun> {
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: SERVICE,
      mode: 'failover',
    });
    expect(started.status).toBe(202);
    failoverIds.push(started.body.id);
    return waitForRun(backend, started.body.id);
  }

  const portSteps = (run: RecoveryRun) =>
    run.steps
      .filter(s => /host port/i.test(s.message))
      .map(s => [s.machineRef, s.message]);

  it('captures the machine with the host port it publishes', async () => {
    expect(await answerOn(port)).toBe('200 ok');
    const captured = await capture(backend, { entityRef: SERVICE });
    captureIds.push(...captured.captures.map(c => c.id));
    expect({ status: captured.status, error: captured.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(captured.captures[0].adaptations).toContain(
      `host port binding ${port} -> 8080/tcp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)`,
    );
  });

  it('test-recovers it beside the running production, publishing no host port', async () => {
    const restores = await watchRestores();
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: SERVICE,
    });
    expect(started.status).toBe(202);
    const run = await waitForRun(backend, started.body.id);
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    // Its one machine, made to publish nothing on the host.
    expect(await restores.stop()).toEqual([{}]);
    expect(portSteps(run)).toEqual([
      [
        MACHINE,
        `Adapted at capture: host port binding ${port} -> 8080/tcp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)`,
      ],
    ]);
    expect(await onRecoveryHost(run.id)).toEqual({
      containers: [],
      networks: [],
    });
    expect(await answerOn(port)).toBe('200 ok');
  });

  it('once production is gone, refuses a failover up front while a container of the recovery engine holds the port, naming machine, port and holder', async () => {
    // The site is lost, its network too: both engines run on this machine, and the primary
    // engine's bridge would otherwise keep the host's route to production's subnet from the lab's.
    await removeContainer(primary, container);
    await primary.getNetwork(network).remove();
    expect(await answerOn(port)).toMatch(/^no answer/);
    const held = await recoveryHost.createContainer({
      name: holder,
      Image: DEFAULT_PROBE_IMAGE,
      Cmd: ['/bin/sleep', '600'],
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: {
        PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: String(port) }] },
      },
    });
    await held.start();
    try {
      const run = await failover();
      expect({ status: run.status, error: run.error }).toEqual({
        status: 'failed',
        error: {
          message: `${MACHINE} cannot publish host port ${port} -> 8080/tcp on recovery: container ${holder} holds it there. Free the port (stop what holds it), or fail over onto another hypervisor host; nothing of it is on recovery`,
        },
      });
      expect(run.machines.map(m => m.phase)).toEqual(['skipped']);
      expect(await onRecoveryHost(run.id)).toEqual({
        containers: [],
        networks: [],
      });
    } finally {
      await removeContainer(recoveryHost, holder);
      // Should it have booted anything, the next failover would be refused beside it.
      await releaseFailovers();
    }
  });

  it("fails the run at the host where a process of the host holds the port as the machine starts, naming host, port, machine and the engine's error, blaming no machine", async () => {
    // Takes connections and drops them: holds the port, keeps no client waiting.
    listener = createServer(socket => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      listener!.once('error', reject);
      listener!.listen(port, '0.0.0.0', resolve);
    });
    let run: RecoveryRun | undefined;
    try {
      run = await failover();
      expect(run.status).toBe('failed');
      // The host's state, not the machine's: readiness and owners' notices blame no machine.
      expect(run.error?.machineRef).toBeUndefined();
      expect(run.error?.message).toMatch(
        new RegExp(
          `^hypervisor host recovery has host port ${port}, which ${MACHINE} publishes as production did, held by something else: starting ${MACHINE} in the lab of run ${run.id} failed: Docker engine 'recovery' answered HTTP 500: .*0\\.0\\.0\\.0:${port}.*address already in use.*\\. Free the port there, or fail over onto another hypervisor host; kept `,
        ),
      );
      expect(run.machines.map(m => m.phase)).toEqual(['failed']);
    } finally {
      await new Promise(resolve => listener!.close(resolve));
      listener = undefined;
      // What it kept, as any failover does: released for the next.
      await releaseFailovers();
    }
    expect(await onRecoveryHost(run.id)).toEqual({
      containers: [],
      networks: [],
    });
  });

  it('fails it over publishing the same host port, where clients reach the copy on 127.0.0.1; released, the port is free again', async () => {
    const run = await failover();
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(portSteps(run)).toEqual([
      [
        undefined,
        `Host ports this failover publishes are free on recovery: ${port} -> 8080/tcp (${MACHINE})`,
      ],
      [
        MACHINE,
        `Adapted at capture: host port binding ${port} -> 8080/tcp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)`,
      ],
      [
        MACHINE,
        `Published host port ${port} -> 8080/tcp on the recovery host, as production did`,
      ],
    ]);
    // Production is gone: what answers is the failover's copy, on the recovery engine.
    expect(await answerOn(port)).toBe('200 ok');
    const [copy] = (await onRecoveryHost(run.id)).containers;
    expect(
      copy.Ports.filter(p => p.PublicPort).map(p => [
        p.PublicPort,
        p.PrivatePort,
      ]),
    ).toContainEqual([port, 8080]);

    const released = await backend.api('POST', `/runs/${run.id}/release`);
    expect(released.status).toBe(200);
    expect(await answerOn(port)).toMatch(/^no answer/);
  });
});
