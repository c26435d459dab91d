import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import type { RunStore } from '../../recovery-backend/src/database/RunStore';
import type { RunService } from '../../recovery-backend/src/run/RunService';
import {
  FailoverSupervision,
  SUPERVISION_SWEEP_SECONDS,
} from '../../recovery-backend/src/run/supervision';
import type { ProviderRegistry } from '../../recovery-backend/src/service/ProviderRegistry';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { DEFAULT_PROBE_IMAGE, LabProbe } from './LabProbe';
import { demuxDockerStream } from './lib/dockerStreams';
import { createTestNetwork } from './testing/testNetwork';
import { webOverDataGraph } from './testing/webOverDataGraph';
import { removeCaptureImages } from './testing/removeCaptureImages';
import { buildRunSite } from './testing/runSite';

/*
 * What production's network gave a machine beyond one IPv4 address comes back in the lab: in a
 * failover, a dual-stack network's IPv6 subnet and the machine's IPv6 address (`--ipv6`, `--ip6`;
 * a test lab is IPv4-only and says so), and a
 * sidecar's place in another machine's network namespace (`--network container:<data>`), which
 * boots in the wave after it. And what names the machine's network gave it: a machine reached by
 * its container's name, `--add-host` entries, a `--dns` server that is a machine of the plan, and a
 * fixed MAC address (`--mac-address`). Each machine serves only where the lab gave it what
 * production did.
 */

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const RECOVERY =
  process.env.RECOVERY_HOST_DOCKER_HOST ??
  'unix:///run/recovery-docker/recovery.sock';
const primary = dockerFromHost(PRIMARY);
const recovery = dockerFromHost(RECOVERY);
const suffix = Date.now().toString(36);
const NETWORK = `net-identity-prod-${suffix}`;
const SUBNET = '10.233.20.0/24';
const SUBNET6 = 'fd00:233::/64';
const DATA_ADDRESS6 = 'fd00:233::11';
/** fd00:233::11 as /proc/net/if_inet6 lists it. */
const DATA_ADDRESS6_PROC = 'fd000233000000000000000000000011';
const store = mkdtempSync(join(tmpdir(), 'recovery-net-identity-'));
const containers: string[] = [];
const runIds: string[] = [];
const READY_TIMEOUT_MS = 20_000;

const DATA = 'resource:default/ni-data';
const SIDECAR = 'resource:default/ni-sidecar';
const DATA_SVC = 'component:default/ni-data-svc';
const SIDECAR_SVC = 'component:default/ni-sidecar-svc';
const DNSD = 'resource:default/ni-dnsd';
const APP = 'resource:default/ni-app';
const DNSD_SVC = 'component:default/ni-dnsd-svc';
const APP_SVC = 'component:default/ni-app-svc';
/** dnsd's container, reached by this name alone: created without --hostname or alias. */
const DNSD_CONTAINER = `ni-dnsd-${suffix}`;
const DNSD_ADDRESS = '10.233.20.53';
/** What dnsd answers for every A question: 10.233.20.99. */
const DNSD_ANSWER = '10 233 20 99';
const APP_MAC = '02:aa:bb:cc:dd:01';
/**
 * dnsd's DNS server, one DNS-over-TCP answer a connection (busybox has no UDP server): Docker's
 * embedded resolver forwards a TCP question to `--dns` servers over TCP.
 */
const DNS_ANSWER_SCRIPT = String.raw`#!/bin/sh
len=$(dd bs=1 count=2 2>/dev/null | od -An -tu1 | awk '{print $1*256+$2}')
set -- $(dd bs=1 count=$len 2>/dev/null | od -An -tu1 -v)
id1=$1; id2=$2; shift 12
q=''; for b in "$@"; do q="$q$(printf '\\%03o' $b)"; done
n=$((len + 16))
printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((n / 256)) $((n % 256)) $id1 $id2)\\201\\200\\000\\001\\000\\001\\000\\000\\000\\000$q\\300\\014\\000\\001\\000\\001\\000\\000\\000\\074\\000\\004\\012\\351\\024\\143"`;
/** Serves 8080 for its probe, and DNS on 53. */
const DNSD_SCRIPT = `mkdir -p /w; echo ok > /w/index.html; printf '%s\\n' "$DNS_ANSWER_SCRIPT" > /w/dns.sh; chmod +x /w/dns.sh; httpd -p 8080 -h /w; exec nc -ll -p 53 -e /w/dns.sh`;
/** A question for svc.corp (A) over TCP to Docker's embedded resolver, which passes it to the --dns server. */
const ASK_SVC_CORP = String.raw`printf '\000\032\022\064\001\000\000\001\000\000\000\000\000\000\003svc\004corp\000\000\001\000\001' | timeout 3 nc 127.0.0.11 53 | od -An -tu1 -v | tr -s ' \n' ' '`;
/** Serves 8080 only once it reaches dnsd by its container name, by an --add-host name and as its DNS server, and has its fixed MAC. */
const APP_SCRIPT = `until wget -q -O /dev/null http://${DNSD_CONTAINER}:8080/ 2>/dev/null; do echo 'waiting for ${DNSD_CONTAINER} by its container name'; sleep 0.5; done
until wget -q -O /dev/null http://pg.corp:8080/ 2>/dev/null; do echo 'waiting for pg.corp (--add-host)'; sleep 0.5; done
until ${ASK_SVC_CORP} | grep -q ' ${DNSD_ANSWER} *$'; do echo 'waiting for svc.corp from the --dns server'; sleep 0.5; done
until [ "$(cat /sys/class/net/eth0/address)" = ${APP_MAC} ]; do echo "MAC $(cat /sys/class/net/eth0/address), not ${APP_MAC}"; sleep 0.5; done
mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w`;

/** A global-scope line of /proc/net/if_inet6 (address, index, prefix, scope 00). */
const GLOBAL_IPV6 = "'^[0-9a-f]{32} [0-9a-f]+ [0-9a-f]+ 00 '";
/**
 * Serves 8080 only once the machine has its production IPv6 address, where it has IPv6 at all: a
 * failover's dual-stack network must give it that one; a test lab, IPv4-only, gives it none.
 */
const DATA_SCRIPT = `until grep -q ${DATA_ADDRESS6_PROC} /proc/net/if_inet6 || ! grep -qE ${GLOBAL_IPV6} /proc/net/if_inet6; do sleep 0.5; done; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8080 -h /w`;
/** Serves 8081 only once data answers on localhost: it shares data's network namespace. */
const SIDECAR_SCRIPT =
  'until nc -w 1 127.0.0.1 8080 -e true 2>/dev/null; do sleep 0.5; done; mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 8081 -h /w';

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
let runStore: RunStore;
let runs: RunService;
let providers: ProviderRegistry;
let dataId: string;
const host = new DockerHypervisorHost('recovery', recovery, {
  storeDirectory: store,
});

function graph(): RecoveryGraph {
  const g = webOverDataGraph(
    { serviceRef: DATA_SVC, machineRef: DATA, container: `ni-data-${suffix}` },
    {
      serviceRef: SIDECAR_SVC,
      machineRef: SIDECAR,
      container: `ni-sidecar-${suffix}`,
    },
  );
  g.services.get(SIDECAR_SVC)!.probes = [{ kind: 'tcp', port: 8081 }];
  return g;
}

/** Whether the container's network namespace holds data's production IPv6 address: data's own. */
async function seesDataAddress(id: string): Promise<boolean> {
  const exec = await recovery.getContainer(id).exec({
    Cmd: ['grep', '-q', DATA_ADDRESS6_PROC, '/proc/net/if_inet6'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = (await exec.start({
    hijack: true,
    stdin: false,
  })) as NodeJS.ReadableStream;
  await new Promise(resolve => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.resume();
  });
  return (await exec.inspect()).ExitCode === 0;
}

/** The global IPv6 addresses of interface `name` in the recovery engine's own network namespace, as /proc/net/if_inet6 writes them. */
async function hostIPv6On(name: string): Promise<string[]> {
  await new LabProbe('recovery', recovery, {}).ensureProbeImage();
  const reader = await recovery.createContainer({
    Image: DEFAULT_PROBE_IMAGE,
    Cmd: ['cat', '/proc/net/if_inet6'],
    HostConfig: { NetworkMode: 'host' },
  });
  try {
    await reader.start();
    await reader.wait();
    const lines = demuxDockerStream(
      await reader.logs({ stdout: true, stderr: false }),
    ).stdout;
    return lines
      .split('\n')
      .map(l => l.trim().split(/\s+/))
      .filter(f => f[5] === name && f[3] === '00')
      .map(f => f[0]);
  } finally {
    await reader.remove({ force: true });
  }
}

/** dnsd, then the machine that reaches it by name, hosts entry and as its DNS server. */
function appGraph(): RecoveryGraph {
  return webOverDataGraph(
    { serviceRef: DNSD_SVC, machineRef: DNSD, container: DNSD_CONTAINER },
    { serviceRef: APP_SVC, machineRef: APP, container: `ni-app-${suffix}` },
  );
}

async function testRun(entityRef = SIDECAR_SVC): Promise<RecoveryRun> {
  const started = await runs.start({
    entityRef,
    mode: 'test',
    trigger: 'user',
  });
  runIds.push(started.id);
  await runs.waitFor(started.id);
  return (await runStore.getRun(started.id))!;
}

beforeAll(async () => {
  await primary.ping();
  await recovery.ping();
  await buildDemoImage(primary);
  await createTestNetwork(
    primary,
    {
      Name: NETWORK,
      Driver: 'bridge',
      EnableIPv6: true,
      IPAM: {
        Driver: 'default',
        Config: [{ Subnet: SUBNET }, { Subnet: SUBNET6 }],
      },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    },
    suffix,
  );
  const data = await primary.createContainer({
    name: `ni-data-${suffix}`,
    Hostname: 'ni-data',
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', DATA_SCRIPT],
    StopTimeout: 1,
    HostConfig: { NetworkMode: NETWORK },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: {
          IPAMConfig: {
            IPv4Address: '10.233.20.11',
            IPv6Address: DATA_ADDRESS6,
          },
        },
      },
    },
  });
  containers.push(`ni-data-${suffix}`);
  await data.start();
  dataId = data.id;
  const sidecar = await primary.createContainer({
    name: `ni-sidecar-${suffix}`,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', SIDECAR_SCRIPT],
    StopTimeout: 1,
    HostConfig: { NetworkMode: `container:${data.id}` },
  });
  containers.push(`ni-sidecar-${suffix}`);
  await sidecar.start();
  // No --hostname, no alias: other machines reach dnsd by its container's name.
  const dnsd = await primary.createContainer({
    name: DNSD_CONTAINER,
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', DNSD_SCRIPT],
    Env: [`DNS_ANSWER_SCRIPT=${DNS_ANSWER_SCRIPT}`],
    StopTimeout: 1,
    HostConfig: { NetworkMode: NETWORK },
    NetworkingConfig: {
      EndpointsConfig: {
        [NETWORK]: { IPAMConfig: { IPv4Address: DNSD_ADDRESS } },
      },
    },
  });
  containers.push(DNSD_CONTAINER);
  await dnsd.start();
  const app = await primary.createContainer({
    name: `ni-app-${suffix}`,
    Hostname: 'ni-app',
    Image: DEMO_IMAGE,
    Cmd: ['sh', '-c', APP_SCRIPT],
    StopTimeout: 1,
    // Container-wide before API 1.44 (these engines'), an endpoint's own from it.
    MacAddress: APP_MAC,
    HostConfig: {
      NetworkMode: NETWORK,
      ExtraHosts: [`pg.corp:${DNSD_ADDRESS}`],
      Dns: [DNSD_ADDRESS],
    },
  } as Parameters<typeof primary.createContainer>[0]);
  containers.push(`ni-app-${suffix}`);
  await app.start();
  // Production passes: the machine serves once it reached dnsd all three ways, with its MAC.
  await waitForServing(app.id);

  const site = await buildRunSite({
    database: await databases.init('SQLITE_3'),
    primary,
    storeDirectory: store,
    host,
    graph: ref => (ref === APP_SVC ? appGraph() : graph()),
    run: { machineReadyTimeoutMs: READY_TIMEOUT_MS },
  });
  ({ runStore, providers, runs } = site);
  const { captures } = site;
  for (const machineRef of [DATA, SIDECAR])
    await captures.captureMachine({
      machineRef,
      engine: 'primary',
      container: graph().machines.get(machineRef)!.locator!.container,
    });
  for (const machineRef of [DNSD, APP])
    await captures.captureMachine({
      machineRef,
      engine: 'primary',
      container: appGraph().machines.get(machineRef)!.locator!.container,
    });
});

afterAll(async () => {
  for (const id of runIds) await host.teardown(id).catch(() => {});
  for (const name of containers.reverse())
    await primary
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
  await removeCaptureImages([primary, recovery], suffix);
  await primary
    .getNetwork(NETWORK)
    .remove()
    .catch(() => {});
  rmSync(store, { recursive: true, force: true });
});

/** Waits until the primary machine answers on 8080 from inside: it passed its script's checks. */
async function waitForServing(id: string): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS;
  const container = primary.getContainer(id);
  const said = async () =>
    (await container.logs({ stdout: true, stderr: true, tail: 5 })).toString();
  for (;;) {
    if (!(await container.inspect()).State.Running)
      throw new Error(`production machine ${id} stopped: ${await said()}`);
    const exec = await container.exec({
      Cmd: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = (await exec.start({
      hijack: true,
      stdin: false,
    })) as NodeJS.ReadableStream;
    await new Promise(resolve => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.resume();
    });
    if ((await exec.inspect()).ExitCode === 0) return;
    if (Date.now() > until)
      throw new Error(
        `production machine ${id} did not serve 8080: ${await said()}`,
      );
    await new Promise(resolve => setTimeout(resolve, 300));
  }
}

describe("production's IPv6 addresses and shared network namespaces in the lab (real engines)", () => {
  it("boots data and the sidecar in its network namespace in a test lab, IPv4-only, saying why data's production IPv6 address is not carried", async () => {
    const run = await testRun();
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(
      run.steps
        .filter(s => s.level === 'warning')
        .map(s => [s.machineRef, s.message]),
    ).toEqual([
      [
        DATA,
        `Adapted, without production's addresses: network ${NETWORK}: the test lab is IPv4-only (engine recovery would put its IPv6 gateway on the host's bridge, through which the lab would reach the host); ` +
          `the machine does not get its production IPv6 address ${DATA_ADDRESS6}`,
      ],
    ]);
    expect(
      run.steps.find(
        s => s.machineRef === SIDECAR && s.message.startsWith('Adapted:'),
      )?.message,
    ).toContain(
      `shares the network namespace of ${DATA} in the lab, as it shared that machine's container's in production (network mode container:${dataId})`,
    );
  });

  it("gives a test lab's network no IPv6, so the host's bridge holds no IPv6 gateway the lab would reach the host by; a failover's stays dual-stack", async () => {
    const production = {
      name: NETWORK,
      subnet: SUBNET,
      ipv4Address: '10.233.20.11',
      ipv6Subnet: SUBNET6,
      ipv6Address: DATA_ADDRESS6,
      aliases: [],
    };
    const bridgeOf = async (runId: string, internal: boolean) => {
      runIds.push(runId);
      const lab = await host.createLab(runId, [production], { internal });
      const net = await recovery.getNetwork(lab.networks[0]).inspect();
      return {
        EnableIPv6: net.EnableIPv6,
        subnets: net.IPAM?.Config?.map(c => c.Subnet),
        bridgeIPv6: await hostIPv6On(`br-${net.Id.slice(0, 12)}`),
      };
    };
    try {
      expect(await bridgeOf(`ni-v4only-${suffix}`, true)).toEqual({
        EnableIPv6: false,
        subnets: [SUBNET],
        bridgeIPv6: [],
      });
    } finally {
      await host.teardown(`ni-v4only-${suffix}`);
    }
    try {
      // What the test lab's bridge would hold: production's IPv6 gateway, fd00:233::1.
      expect(await bridgeOf(`ni-dual-${suffix}`, false)).toEqual({
        EnableIPv6: true,
        subnets: [SUBNET, SUBNET6],
        bridgeIPv6: ['fd000233000000000000000000000001'],
      });
    } finally {
      await host.teardown(`ni-dual-${suffix}`);
    }
  });

  it("restarts the sidecar after data when a failover's supervision brings data back: it runs in data's network namespace again", async () => {
    const started = await runs.start({
      entityRef: SIDECAR_SVC,
      mode: 'failover',
      trigger: 'user',
    });
    runIds.push(started.id);
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    const { machines } = (await host.reattach(run.id))!;
    const data = machines.find(m => m.machineRef === DATA)!;
    const sidecar = machines.find(m => m.machineRef === SIDECAR)!;
    expect(await seesDataAddress(sidecar.id)).toBe(true);

    // data alone dies: the sidecar runs on, its namespace without data's network.
    await recovery.getContainer(data.id).kill();
    expect((await host.inspectMachine(data)).running).toBe(false);
    expect(await host.inspectMachine(sidecar)).toMatchObject({
      running: true,
      sharesNetworkOf: data.id,
    });
    expect(await seesDataAddress(sidecar.id)).toBe(false);

    const t0 = Date.now();
    const outcome = await new FailoverSupervision(
      runStore,
      providers,
      mockServices.logger.mock(),
      mockServices.auditor.mock(),
      {
        machineReadyTimeoutMs: READY_TIMEOUT_MS,
        probeIntervalMs: 200,
        stepTimeoutMs: 30_000,
        minReadyMs: 500,
      },
    ).supervise(host, run.id);
    // eslint-disable-next-line no-console
    console.log('sidecar back in data namespace in ms', Date.now() - t0);
    expect(outcome).toMatchObject({
      kind: 'restarted',
      machineRefs: [DATA, SIDECAR],
      sharers: [{ machineRef: SIDECAR, of: DATA }],
    });
    expect(await seesDataAddress(sidecar.id)).toBe(true);
    const said = (await runStore.getRun(run.id))!.steps.at(-1)!.message;
    expect(said).toContain(
      `${SIDECAR} restarted after ${DATA}, whose network namespace it shares: it kept running without network once ${DATA} stopped`,
    );
    // Production's subnets free on the recovery engine again, for the next run.
    await runs.releaseFailover(run.id);
  });

  it("restarts the sidecar once data was restarted by hand (docker restart), within the supervision's interval: it ran on in data's old namespace, without network", async () => {
    const started = await runs.start({
      entityRef: SIDECAR_SVC,
      mode: 'failover',
      trigger: 'user',
    });
    runIds.push(started.id);
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    const { machines } = (await host.reattach(run.id))!;
    const data = machines.find(m => m.machineRef === DATA)!;
    const sidecar = machines.find(m => m.machineRef === SIDECAR)!;
    expect(await seesDataAddress(sidecar.id)).toBe(true);

    // Supervised as the backend does: the kept machines' stops heard, and the sweep.
    const supervision = new FailoverSupervision(
      runStore,
      providers,
      mockServices.logger.mock(),
      mockServices.auditor.mock(),
      {
        machineReadyTimeoutMs: READY_TIMEOUT_MS,
        probeIntervalMs: 200,
        stepTimeoutMs: 30_000,
        minReadyMs: 500,
      },
    );
    // The watch's own connection to the host's engine, once open (the engine's listener count
    // would count every other client of the engine too).
    let watchConnected = false;
    const getEvents = recovery.getEvents.bind(recovery);
    const watchOpening = vi
      .spyOn(recovery, 'getEvents')
      .mockImplementation((async (options: object) => {
        const stream = await getEvents(options);
        watchConnected = true;
        return stream;
      }) as typeof recovery.getEvents);
    const stopWatching = supervision.watch();
    const sweeps = setInterval(
      () => void supervision.sweep(),
      SUPERVISION_SWEEP_SECONDS * 1000,
    );
    try {
      // The watch's connection to the engine open before the restart, however long a loaded
      // engine takes: a stop made before it is heard by the sweep only.
      await vi.waitFor(() => expect(watchConnected).toBe(true), {
        timeout: 60_000,
        interval: 100,
      });
      // An engineer restarts data: no stop is left to find, and the sidecar stays in its old namespace.
      await recovery.getContainer(data.id).restart({ t: 0 });
      const t0 = Date.now();
      expect(await host.inspectMachine(data)).toMatchObject({ running: true });
      expect(await host.inspectMachine(sidecar)).toMatchObject({
        running: true,
        sharesNetworkOf: data.id,
      });
      expect(await seesDataAddress(sidecar.id)).toBe(false);

      await vi.waitFor(
        async () => expect(await seesDataAddress(sidecar.id)).toBe(true),
        { timeout: SUPERVISION_SWEEP_SECONDS * 1000, interval: 200 },
      );
      // eslint-disable-next-line no-console
      console.log(
        'sidecar back in data namespace after data restarted by hand in ms',
        Date.now() - t0,
      );
    } finally {
      clearInterval(sweeps);
      await stopWatching();
      watchOpening.mockRestore();
    }
    await vi.waitFor(
      async () =>
        expect((await runStore.getRun(run.id))!.steps.at(-1)!.message).toMatch(
          new RegExp(
            `^Supervision: none found stopped on recovery, but ${DATA} restarted there outside supervision \\(by hand, say\\); 1 machine started again in wave order in [0-9.]+ s \\(${SIDECAR}; ` +
              `${SIDECAR} restarted after ${DATA}, whose network namespace it shares: it kept running without network once ${DATA} was restarted outside supervision; restart 1 of this failover\\)$`,
          ),
        ),
      { timeout: 5_000, interval: 100 },
    );
    expect(
      (await runStore.getRun(run.id))!.supervision?.degraded,
    ).toBeUndefined();
    await runs.releaseFailover(run.id);
  });

  it("fails a failover before any machine is restored where a network no run made holds part of production's IPv6 subnet, naming host, subnet and network; a test recovery, IPv4-only, runs beside it", async () => {
    // Part of fd00:233::/64, written as a person might: the IPv4 subnet is free.
    const name = `net-identity-foreign6-${suffix}`;
    const foreign = await createTestNetwork(
      recovery,
      {
        Name: name,
        Driver: 'bridge',
        EnableIPv6: true,
        IPAM: {
          Driver: 'default',
          Config: [
            { Subnet: '10.233.21.0/24' },
            { Subnet: 'FD00:233:0:0:8000::/65' },
          ],
        },
      },
      suffix,
    );
    try {
      const t0 = Date.now();
      const started = await runs.start({
        entityRef: SIDECAR_SVC,
        mode: 'failover',
        trigger: 'user',
      });
      runIds.push(started.id);
      await runs.waitFor(started.id);
      const run = (await runStore.getRun(started.id))!;
      // eslint-disable-next-line no-console
      console.log('IPv6 subnet held: run failed in ms', Date.now() - t0);
      expect(run.status).toBe('failed');
      // The host's problem, not a machine's: none named, none restored.
      expect(run.error?.machineRef).toBeUndefined();
      const message = run.error!.message;
      expect(message).toContain(
        `hypervisor host recovery cannot give the lab production network ${NETWORK}'s subnet ${SUBNET6}: network ${name} (id ${foreign.id.slice(0, 12)}) on its engine has subnet`,
      );
      expect(message).toContain(`docker network rm ${name}`);
      expect(
        run.machines.map(m => [m.machineRef, m.phase, m.restoreStartedAt]),
      ).toEqual([
        [DATA, 'skipped', undefined],
        [SIDECAR, 'skipped', undefined],
      ]);
      expect(
        run.steps.some(st => st.message.startsWith('Created network')),
      ).toBe(false);
      expect(await host.listLabResources(run.id)).toEqual({
        machines: [],
        networks: [],
      });
      const test = await testRun();
      expect(test.error?.message).toBeUndefined();
      expect(test.status).toBe('succeeded');
    } finally {
      await recovery.getNetwork(foreign.id).remove();
    }
  });
});

describe("production's names, hosts entries, DNS servers and MAC addresses in the lab (real engines)", () => {
  it('boots a machine that reaches dnsd by its container name, by an --add-host name and as its --dns server, on its fixed MAC, with nothing of it dropped', async () => {
    const t0 = Date.now();
    const run = await testRun(APP_SVC);
    // eslint-disable-next-line no-console
    console.log(
      'names, hosts, DNS and MAC: test recovery in ms',
      Date.now() - t0,
    );
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    // Production's network is dual-stack: only the IPv6 addresses the IPv4-only test lab does not carry.
    expect(
      run.steps
        .filter(s => s.level === 'warning')
        .map(s => [
          s.machineRef,
          s.message.replace(/fd00:233::[0-9a-f]+$/, '<address>'),
        ]),
    ).toEqual(
      [DNSD, APP].map(machineRef => [
        machineRef,
        `Adapted, without production's addresses: network ${NETWORK}: the test lab is IPv4-only (engine recovery would put its IPv6 gateway on the host's bridge, through which the lab would reach the host); ` +
          'the machine does not get its production IPv6 address <address>',
      ]),
    );
    const adapted = run.steps
      .filter(s => s.machineRef === APP && s.message.startsWith('Adapted:'))
      .map(s => s.message)
      .join('\n');
    expect(adapted).not.toMatch(/hosts entries|DNS servers|MAC address/);
  });
});
