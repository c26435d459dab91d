/*
 * Generated production sites for end-to-end tests: from a seed, 4–7 primary machines (containers
 * of the demo's busybox image) on 1–3 networks, running a random DAG of services that really wait
 * for their dependencies at boot, and the catalog that describes them.
 */
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_PROBES,
  MACHINE_LABEL,
  RUN_ID_LABEL,
  SERVICE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import { CAPTURE_REPOSITORY } from '@backstage-recovery/plugin-recovery-backend-module-docker';
import type Docker from 'dockerode';
import {
  demuxDockerStream,
  isStatus,
} from '../../plugins/recovery-backend-module-docker/src/lib/dockerStreams';
import { seededRandom } from '../../bench/generate';
import { DEMO_IMAGE } from '../../demo/site';
import { createTestNetwork } from '../../plugins/recovery-backend-module-docker/src/testing/testNetwork';
import { NETWORK_LABEL } from '../../plugins/recovery-backend-module-docker/src/labNames';
import { removeLab } from '../../plugins/recovery-backend-module-docker/src/labTeardown';

/** On everything a generated site creates on the primary engine (and so on its restored machines); its value is the test process's token. */
export const RANDOM_SITE_LABEL = 'io.backstage-recovery.e2e.random-site';

export interface SiteNetwork {
  /** Docker network name (unique per test process). */
  name: string;
  subnet: string;
  gateway: string;
}

export interface SiteService {
  /** Catalog Component name. */
  name: string;
  machine: string;
  port: number;
  kind: 'tcp' | 'http';
  /** Probe in the annotation syntax. */
  probe: string;
  /** Names of the services it waits for. */
  dependsOn: string[];
}

export interface SiteMachine {
  /** Catalog Resource name. */
  name: string;
  container: string;
  /** Position in a production boot order: dependencies only on machines of lower rank. */
  rank: number;
  networks: Array<{ network: string; ipv4: string }>;
  services: string[];
}

export interface Site {
  seed: number;
  /** Catalog System covering the site. */
  system: string;
  networks: SiteNetwork[];
  machines: SiteMachine[];
  services: SiteService[];
}

const SERVICE_NAMES = [
  'dns',
  'directory',
  'database',
  'cache',
  'queue',
  'files',
  'auth',
  'search',
  'billing',
  'api',
  'shop',
  'mail',
  'metrics',
  'reports',
  'ledger',
  'gateway',
];

/**
 * The site of `seed`. `slot` (0–9) gives its subnets, 172.29.(120 + 3 slot + n).0/24, apart from
 * the demo's (172.29.10.0/24), the Docker tests' (172.29.77–87.0/24) and the other slots'.
 * `token` makes its Docker names unique to the test process.
 */
export function generateSite(seed: number, slot: number, token: string): Site {
  const { int, chance, pick, shuffled } = seededRandom(seed);
  const site = `rs${seed}`;
  const networkCount = 1 + int(3);
  const networks: SiteNetwork[] = Array.from(
    { length: networkCount },
    (_, n) => {
      const third = 120 + 3 * slot + n;
      return {
        name: `${site}-net${n}-${token}`,
        subnet: `172.29.${third}.0/24`,
        gateway: `172.29.${third}.1`,
      };
    },
  );
  const machineCount = 4 + int(4);
  // Names apart from ranks, so that no order in the names matches the boot order by chance.
  const machineNames = shuffled(
    Array.from({ length: machineCount }, (_, i) => `${site}-m${i + 1}`),
  );
  const machines: SiteMachine[] = machineNames.map((name, rank) => {
    const home = rank < networkCount ? rank : int(networkCount);
    const nets = new Set([home]);
    // Rank 1 is always on network 0 too, so it can wait for rank 0: the site boots in two waves at least.
    if (networkCount > 1 && rank === 1) nets.add(0);
    else if (networkCount > 1 && chance(0.2))
      nets.add(pick([...Array(networkCount).keys()].filter(n => n !== home)));
    return {
      name,
      container: `${name}-${token}`,
      rank,
      networks: [...nets].map(n => ({
        network: networks[n].name,
        ipv4: `172.29.${120 + 3 * slot + n}.${11 + rank}`,
      })),
      services: [],
    };
  });
  const perMachine = machines.map(() => (chance(0.4) ? 2 : 1));
  if (!perMachine.includes(2)) perMachine[int(machineCount)] = 2;

  const names = shuffled(SERVICE_NAMES);
  const services: SiteService[] = [];
  const shareNetwork = (a: SiteMachine, b: SiteMachine) =>
    a.networks.some(x => b.networks.some(y => y.network === x.network));
  for (const machine of machines) {
    for (let i = 0; i < perMachine[machine.rank]; i++) {
      const k = services.length;
      const kind = chance(0.5) ? 'http' : 'tcp';
      const port = (kind === 'http' ? 8000 : 6000) + k;
      const name = `${site}-${names[k]}`;
      const byName = (s: string) =>
        machines.find(
          m => m.name === services.find(x => x.name === s)!.machine,
        )!;
      const candidates = services
        .filter(
          s =>
            s.machine === machine.name || shareNetwork(byName(s.name), machine),
        )
        .map(s => s.name);
      const wanted = Math.min(
        candidates.length,
        chance(0.15) ? 0 : chance(0.65) ? 1 : 2,
      );
      const dependsOn = shuffled(candidates).slice(0, wanted);
      if (machine.rank === 1 && i === 0) {
        const first = services.find(s => byName(s.name).rank === 0)!.name;
        if (!dependsOn.includes(first)) dependsOn.push(first);
      }
      services.push({
        name,
        machine: machine.name,
        port,
        kind,
        probe: kind === 'http' ? `http:${port}/healthz` : `tcp:${port}`,
        dependsOn,
      });
      machine.services.push(name);
    }
  }
  return { seed, system: site, networks, machines, services };
}

export const machineOf = (site: Site, service: string) =>
  site.machines.find(
    m => m.name === site.services.find(s => s.name === service)!.machine,
  )!;

/** Machine name → the other machines its services wait for. */
export function machineDependencies(site: Site): Map<string, Set<string>> {
  const deps = new Map(site.machines.map(m => [m.name, new Set<string>()]));
  for (const s of site.services) {
    for (const d of s.dependsOn) {
      const target = machineOf(site, d).name;
      if (target !== s.machine) deps.get(s.machine)!.add(target);
    }
  }
  return deps;
}

/**
 * PID 1 of a generated machine. $SITE_SERVICES lists its services as `name/port/kind/deps`, deps
 * `-` or `host:port:kind,...`. Each service waits for every dependency to answer (TCP connect, or
 * HTTP GET of /healthz) for at most $DEPENDENCY_DEADLINE seconds from boot, then opens its own port
 * and logs `service=<name> initialized`; past the deadline it logs `service=<name> failed: ...` and
 * the machine exits with status 3, as a machine whose service cannot start would go down.
 * (Busybox's `wget -T` crashes: `timeout` bounds the GET instead.)
 */
const MACHINE_SCRIPT = `
PATH=/bin:/sbin; export PATH
D=\${DEPENDENCY_DEADLINE:-10}
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }
answers() {
  if [ "$3" = http ]; then timeout 2 wget -q -O /dev/null "http://$1:$2/healthz"; else nc -w 1 "$1" "$2" -e true; fi
}
serve() {
  name=$1; port=$2; kind=$3; deps=$4
  end=$(($(date +%s) + D))
  for d in $(echo "$deps" | tr , ' '); do
    [ "$d" = - ] && continue
    host=\${d%%:*}; rest=\${d#*:}; dport=\${rest%%:*}; dkind=\${rest#*:}
    until answers "$host" "$dport" "$dkind" 2>/dev/null; do
      if [ "$(date +%s)" -ge "$end" ]; then
        log "service=$name failed: dependency $d not answering within \${D}s"
        touch /tmp/failed
        exit 1
      fi
      sleep 0.3
    done
  done
  if [ "$kind" = http ]; then
    mkdir -p "/srv/$name" && echo ok >"/srv/$name/healthz"
    httpd -f -p "$port" -h "/srv/$name" &
  else
    DEMO_BANNER=$name nc -ll -p "$port" -e /usr/libexec/demo/banner &
  fi
  until answers 127.0.0.1 "$port" "$kind" 2>/dev/null; do sleep 0.1; done
  log "service=$name initialized"
}
mkdir -p /tmp && rm -f /tmp/failed
trap 'exit 0' TERM INT
log "machine=$(hostname) booting services=$SITE_SERVICES deadline=\${D}s"
for s in $SITE_SERVICES; do
  serve $(echo "$s" | tr / ' ') &
done
while [ ! -e /tmp/failed ]; do sleep 0.5; done
log "machine=$(hostname) going down: a service failed"
exit 3
`;

/** The container's $SITE_SERVICES: its services, each with where its dependencies answer. */
function serviceSpec(site: Site, machine: SiteMachine): string {
  return machine.services
    .map(name => {
      const s = site.services.find(x => x.name === name)!;
      const deps = s.dependsOn.map(d => {
        const dep = site.services.find(x => x.name === d)!;
        const target = machineOf(site, d);
        const host =
          target.name === machine.name
            ? '127.0.0.1'
            : target.networks.find(n =>
                machine.networks.some(o => o.network === n.network),
              )!.ipv4;
        return `${host}:${dep.port}:${dep.kind}`;
      });
      return `${s.name}/${s.port}/${s.kind}/${deps.join(',') || '-'}`;
    })
    .join(' ');
}

export interface ServiceLine {
  service: string;
  state: 'initialized' | 'failed';
  line: string;
}

/** Each service's initialized/failed line in a machine's console. */
export function serviceLines(log: string): ServiceLine[] {
  return [
    ...log.matchAll(/^\S+ service=(\S+) (initialized|failed)\b.*$/gm),
  ].map(m => ({
    service: m[1],
    state: m[2] as ServiceLine['state'],
    line: m[0],
  }));
}

export async function consoleOf(
  docker: Docker,
  container: string,
): Promise<string> {
  const raw = (await docker
    .getContainer(container)
    .logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  return demuxDockerStream(raw).stdout;
}

/**
 * Creates the site on the primary engine (the demo image must be there) and boots its machines in
 * rank order, each one's services initialized before the next machine starts.
 */
export async function startSite(
  docker: Docker,
  site: Site,
  options: {
    token: string;
    dependencyDeadlineSeconds: number;
    timeoutMs?: number;
  },
): Promise<void> {
  const labels = { [RANDOM_SITE_LABEL]: options.token };
  for (const net of site.networks) {
    await createTestNetwork(
      docker,
      {
        Name: net.name,
        Driver: 'bridge',
        CheckDuplicate: true,
        IPAM: {
          Driver: 'default',
          Config: [{ Subnet: net.subnet, Gateway: net.gateway }],
        },
        // As demo-prod: no NAT rule on a subnet the recovery engine's lab reuses on the same host.
        Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
        Labels: labels,
      },
      options.token,
    );
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (const machine of [...site.machines].sort((a, b) => a.rank - b.rank)) {
    const [first, ...more] = machine.networks;
    const container = await docker.createContainer({
      name: machine.container,
      Hostname: machine.name,
      Image: DEMO_IMAGE,
      Cmd: ['/bin/sh', '-c', MACHINE_SCRIPT],
      Env: [
        `SITE_SERVICES=${serviceSpec(site, machine)}`,
        `DEPENDENCY_DEADLINE=${options.dependencyDeadlineSeconds}`,
      ],
      ExposedPorts: Object.fromEntries(
        machine.services.map(name => [
          `${site.services.find(s => s.name === name)!.port}/tcp`,
          {},
        ]),
      ),
      Labels: {
        ...labels,
        [MACHINE_LABEL]: `resource:default/${machine.name}`,
        [SERVICE_LABEL]: machine.services.join(','),
      },
      StopTimeout: 2,
      HostConfig: { NetworkMode: first.network, RestartPolicy: { Name: 'no' } },
      NetworkingConfig: {
        EndpointsConfig: {
          [first.network]: { IPAMConfig: { IPv4Address: first.ipv4 } },
        },
      },
    });
    for (const net of more) {
      await docker.getNetwork(net.network).connect({
        Container: machine.container,
        EndpointConfig: { IPAMConfig: { IPv4Address: net.ipv4 } },
      });
    }
    await container.start();
    for (;;) {
      const lines = serviceLines(await consoleOf(docker, machine.container));
      const failed = lines.find(l => l.state === 'failed');
      if (failed)
        throw new Error(
          `${site.system}: machine ${machine.name} on the primary engine: ${failed.line}`,
        );
      if (
        machine.services.every(s =>
          lines.some(l => l.service === s && l.state === 'initialized'),
        )
      )
        break;
      if (Date.now() > deadline) {
        throw new Error(
          `${site.system}: machine ${machine.name} on the primary engine: services not initialized in time:\n${await consoleOf(docker, machine.container)}`,
        );
      }
      await new Promise(r => setTimeout(r, 200));
    }
  }
}

/** A test process's token for the Docker names and labels of its sites: `p<pid>x<time>`. */
export function siteToken(): string {
  return `p${process.pid}x${Date.now().toString(36)}`;
}

/** Whether what carries `value` (a token) is the caller's (`token`) or a test process's no longer alive (a run killed mid-way). */
function removable(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  if (value === token) return true;
  const pid = Number(/^p(\d+)x/.exec(value)?.[1]);
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * Removes what generated sites of the test process with `token` (or of one no longer alive) left:
 * on the primary engine their containers, networks and capture tags; on the recovery engine the labs
 * that restored them: found by their containers (which carry production's labels) and by their
 * networks (named after production's), one of which can outlive its containers.
 */
export async function removeSites(
  primary: Docker,
  recovery: Docker,
  token: string,
): Promise<string[]> {
  const removed: string[] = [];
  const filters = JSON.stringify({ label: [RANDOM_SITE_LABEL] });
  const runIds = new Set<string>();
  for (const c of await recovery.listContainers({ all: true, filters })) {
    const runId = c.Labels?.[RUN_ID_LABEL];
    if (runId && removable(c.Labels?.[RANDOM_SITE_LABEL], token))
      runIds.add(runId);
  }
  for (const n of await recovery.listNetworks({
    filters: JSON.stringify({ label: [RUN_ID_LABEL] }),
  })) {
    const labels = n.Labels ?? {};
    if (
      removable(
        /-(p\d+x[0-9a-z]+)$/.exec(labels[NETWORK_LABEL] ?? '')?.[1],
        token,
      )
    )
      runIds.add(labels[RUN_ID_LABEL]);
  }
  for (const runId of runIds) {
    await removeLab(recovery, runId);
    removed.push(`lab of run ${runId}`);
  }
  for (const c of await primary.listContainers({ all: true, filters })) {
    if (!removable(c.Labels?.[RANDOM_SITE_LABEL], token)) continue;
    await primary
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(e => {
        if (!isStatus(e, 404, 409)) throw e;
      });
    removed.push(`container ${c.Names[0].replace(/^\//, '')}`);
  }
  for (const n of await primary.listNetworks({ filters })) {
    if (!removable(n.Labels?.[RANDOM_SITE_LABEL], token)) continue;
    await primary
      .getNetwork(n.Id)
      .remove()
      .catch(e => {
        if (!isStatus(e, 404)) throw e;
      });
    removed.push(`network ${n.Name}`);
  }
  // Tagged per machine container (recovery-capture/<container>:<capture id>), whose name ends with the token.
  const captures = await primary.listImages({
    filters: JSON.stringify({ reference: [`${CAPTURE_REPOSITORY}/*`] }),
  });
  for (const tag of captures.flatMap(i => i.RepoTags ?? [])) {
    const owner = new RegExp(
      `^${CAPTURE_REPOSITORY}/rs\\d+-m\\d+-(p\\d+x[0-9a-z]+):`,
    ).exec(tag)?.[1];
    if (!removable(owner, token)) continue;
    await primary
      .getImage(tag)
      .remove()
      .catch(e => {
        if (!isStatus(e, 404, 409)) throw e;
      });
    removed.push(`image ${tag}`);
  }
  return removed;
}

/** The catalog of the sites: a System each, its machines as Resources, its services as Components. */
export function siteCatalog(sites: Site[]): object[] {
  const owner = 'group:default/platform-team';
  const entities: object[] = [];
  for (const site of sites) {
    entities.push({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: {
        name: site.system,
        description: `Generated site of seed ${site.seed}`,
      },
      spec: { owner },
    });
    for (const m of site.machines) {
      entities.push({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'Resource',
        metadata: {
          name: m.name,
          annotations: {
            [ANNOTATION_ENGINE]: 'primary',
            [ANNOTATION_CONTAINER]: m.container,
          },
        },
        spec: { type: 'machine', owner, system: site.system },
      });
    }
    for (const s of site.services) {
      entities.push({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'Component',
        metadata: {
          name: s.name,
          annotations: { [ANNOTATION_PROBES]: s.probe },
        },
        spec: {
          type: 'service',
          lifecycle: 'production',
          owner,
          system: site.system,
          dependsOn: [
            `resource:default/${s.machine}`,
            ...s.dependsOn.map(d => `component:default/${d}`),
          ],
        },
      });
    }
  }
  return entities;
}

/** One line per machine, for test output and failure reports. */
export function describeSite(site: Site): string {
  const lines = [
    `site ${site.system} (seed ${site.seed}): networks ${site.networks.map(n => `${n.name} ${n.subnet}`).join(', ')}`,
  ];
  for (const m of [...site.machines].sort((a, b) => a.rank - b.rank)) {
    const svc = m.services.map(name => {
      const s = site.services.find(x => x.name === name)!;
      return `${name} ${s.probe}${s.dependsOn.length ? ` ← ${s.dependsOn.join(', ')}` : ''}`;
    });
    lines.push(
      `  ${m.name} [${m.networks.map(n => n.ipv4).join(', ')}]: ${svc.join('; ')}`,
    );
  }
  return lines.join('\n');
}
