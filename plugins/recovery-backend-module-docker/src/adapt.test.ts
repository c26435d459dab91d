import type Docker from 'dockerode';
import {
  PRODUCTION_IPC_MODE_LABEL,
  PRODUCTION_NETWORK_MODE_LABEL,
  PRODUCTION_PID_MODE_LABEL,
  adaptInspectedContainer,
  confinedLimits,
  dnsInLab,
  dockerHealthcheck,
  dockerLimits,
  dockerName,
  dockerTag,
  joinsLabNetwork,
  networkIdentity,
  sysctlsInLab,
  volumeMounts,
} from './adapt';

function inspected(
  overrides: {
    Config?: any;
    HostConfig?: any;
    Mounts?: any[];
    Networks?: any;
    /** `NetworkSettings.Ports`: the host ports bound now, as a running container has them. */
    Ports?: any;
  } = {},
) {
  return {
    Id: 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789',
    Name: '/data-01',
    Config: {
      Hostname: 'data-01',
      Env: ['A=1'],
      Cmd: ['/sbin/machine-boot'],
      Entrypoint: null,
      WorkingDir: '',
      User: '',
      ExposedPorts: { '5432/tcp': {}, '445/tcp': {} },
      Labels: { 'recovery.backstage-recovery.io/machine': 'data-01' },
      Healthcheck: {
        Test: ['CMD', '/hc'],
        Interval: 2e9,
        Timeout: 1e9,
        Retries: 3,
        StartPeriod: 30e9,
      },
      ...overrides.Config,
    },
    HostConfig: { NetworkMode: 'demo-prod', ...overrides.HostConfig },
    Mounts: overrides.Mounts ?? [],
    NetworkSettings: {
      ...(overrides.Ports ? { Ports: overrides.Ports } : {}),
      Networks: overrides.Networks ?? {
        'demo-prod': {
          IPAMConfig: { IPv4Address: '172.29.10.12' },
          IPAddress: '172.29.10.12',
          Gateway: '172.29.10.1',
          Aliases: ['database', 'files', 'abcdef012345'],
        },
      },
    },
  } as unknown as Docker.ContainerInspectInfo;
}

const nets = {
  'demo-prod': { subnet: '172.29.10.0/24', gateway: '172.29.10.1' },
};

describe('adaptInspectedContainer', () => {
  it('keeps the runtime and network identity of a clean container, without adaptations', () => {
    const { runtime, adaptations } = adaptInspectedContainer(inspected(), nets);
    expect(adaptations).toEqual([]);
    expect(runtime).toEqual({
      hostname: 'data-01',
      networks: [
        {
          name: 'demo-prod',
          subnet: '172.29.10.0/24',
          gateway: '172.29.10.1',
          ipv4Address: '172.29.10.12',
          // Its container's name too: machines on the network reach it by that.
          aliases: ['database', 'files', 'data-01'],
        },
      ],
      env: ['A=1'],
      cmd: ['/sbin/machine-boot'],
      entrypoint: undefined,
      workingDir: undefined,
      user: undefined,
      exposedPorts: ['445/tcp', '5432/tcp'],
      healthcheck: {
        test: ['CMD', '/hc'],
        intervalMs: 2000,
        timeoutMs: 1000,
        retries: 3,
        startPeriodMs: 30000,
      },
      labels: { 'recovery.backstage-recovery.io/machine': 'data-01' },
      // What a machine that shares its network namespace finds it by at restore.
      productionContainerId:
        'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789',
    });
  });

  it('drops host-specific parts and records each change', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          PortBindings: {
            '5432/tcp': [{ HostIp: '0.0.0.0', HostPort: '15432' }],
            '445/tcp': [],
          },
          Devices: [
            {
              PathOnHost: '/dev/sdb',
              PathInContainer: '/dev/sdb',
              CgroupPermissions: 'rwm',
            },
          ],
          CpusetCpus: '0-1',
          Privileged: true,
          CapAdd: ['NET_ADMIN'],
          ExtraHosts: ['db:10.0.0.5', 'host.docker.internal:host-gateway'],
          Dns: ['10.0.0.53'],
        },
        Mounts: [
          { Type: 'bind', Source: '/srv/data', Destination: '/var/lib/db' },
          {
            Type: 'volume',
            Name: 'logs',
            Source: '/var/lib/docker/volumes/logs/_data',
            Destination: '/var/log',
          },
        ],
      }),
      nets,
    );
    expect(adaptations).toEqual([
      'host port binding 0.0.0.0:15432 -> 5432/tcp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)',
      'bind mount of host path /srv/data at /var/lib/db dropped',
      "volume logs at /var/log not carried: the restored machine starts with the image's content there",
      'host device /dev/sdb (/dev/sdb) dropped',
      'CPU pinning to cpus 0-1 dropped',
      'privileged mode dropped',
      'added capabilities NET_ADMIN dropped',
      'extra /etc/hosts entries dropped: host.docker.internal:host-gateway (host-gateway is the recovery host in the lab, not the host production ran on)',
    ]);
    // Kept for the restore: the entry means in the lab what it meant, the restore picks DNS servers.
    expect(runtime.extraHosts).toEqual(['db:10.0.0.5']);
    expect(runtime.dns).toEqual(['10.0.0.53']);
    expect(runtime.networks[0].ipv4Address).toBe('172.29.10.12');
  });

  it('records the host ports production published, and says which a failover publishes again and why not the others', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          PortBindings: {
            '80/tcp': [
              { HostIp: '', HostPort: '8080' },
              { HostIp: '127.0.0.1', HostPort: '8081' },
            ],
            '53/udp': [{ HostIp: '', HostPort: '5353' }],
            '445/tcp': [{ HostIp: '10.0.0.5', HostPort: '445' }],
            '5432/tcp': [{ HostIp: '', HostPort: '' }],
            '9000/tcp': [],
          },
          PublishAllPorts: true,
        },
      }),
      nets,
    );
    expect(runtime.portBindings).toEqual([
      { containerPort: '445/tcp', hostPort: 445, hostIp: '10.0.0.5' },
      { containerPort: '53/udp', hostPort: 5353 },
      { containerPort: '5432/tcp' },
      { containerPort: '80/tcp', hostPort: 8080 },
      { containerPort: '80/tcp', hostPort: 8081, hostIp: '127.0.0.1' },
    ]);
    expect(adaptations).toEqual([
      'host port binding 10.0.0.5:445 -> 445/tcp dropped: bound to 10.0.0.5, an address of the primary host, not of the recovery host',
      'host port binding 5353 -> 53/udp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)',
      "host port binding (random) -> 5432/tcp dropped: its engine picked production's host port, so no client counts on it",
      'host port binding 8080 -> 80/tcp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)',
      'host port binding 127.0.0.1:8081 -> 80/tcp published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)',
      'publish-all-ports dropped',
    ]);
    // A machine that published nothing records nothing.
    expect(
      adaptInspectedContainer(inspected(), nets).runtime,
    ).not.toHaveProperty('portBindings');
  });

  it('records of a range of host ports the one its engine picked, as the running container has it, for a failover to publish; not running, none, saying why', () => {
    // `-p 8080-8090:80 -p 127.0.0.1:9080-9090:81`: Docker keeps the ranges, and binds one port of each.
    const PortBindings = {
      '80/tcp': [{ HostIp: '', HostPort: '8080-8090' }],
      '81/tcp': [{ HostIp: '127.0.0.1', HostPort: '9080-9090' }],
    };
    const running = adaptInspectedContainer(
      inspected({
        HostConfig: { PortBindings },
        Ports: {
          '80/tcp': [
            { HostIp: '0.0.0.0', HostPort: '8083' },
            { HostIp: '::', HostPort: '8083' },
          ],
          '81/tcp': [{ HostIp: '127.0.0.1', HostPort: '9081' }],
        },
      }),
      nets,
    );
    expect(running.runtime.portBindings).toEqual([
      { containerPort: '80/tcp', hostPort: 8083, hostPortRange: '8080-8090' },
      {
        containerPort: '81/tcp',
        hostPort: 9081,
        hostPortRange: '9080-9090',
        hostIp: '127.0.0.1',
      },
    ]);
    expect(running.adaptations).toEqual([
      'host port binding 8080-8090 -> 80/tcp: port 8083 of the range, which its engine picked and clients may count on, published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)',
      'host port binding 127.0.0.1:9080-9090 -> 81/tcp: port 9081 of the range, which its engine picked and clients may count on, published by a failover only, on the recovery host (a test recovery reaches the port on the lab network)',
    ]);

    const stopped = adaptInspectedContainer(
      inspected({ HostConfig: { PortBindings } }),
      nets,
    );
    expect(stopped.runtime.portBindings).toEqual([
      { containerPort: '80/tcp', hostPortRange: '8080-8090' },
      {
        containerPort: '81/tcp',
        hostPortRange: '9080-9090',
        hostIp: '127.0.0.1',
      },
    ]);
    expect(stopped.adaptations[0]).toBe(
      'host port binding 8080-8090 -> 80/tcp dropped: its engine picks one port of the range 8080-8090 as the machine starts, which clients may count on, and the capture saw none bound (the machine was not running): capture it again while it runs for a failover to publish that one',
    );
  });

  it("carries tmpfs mounts, --tmpfs (in the host config alone) and --mount ones, with their options for the restore, and a shared memory size that is not Docker's default", () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          Tmpfs: { '/run': '', '/tmp': 'size=64m,noexec' },
          ShmSize: 1024 * 1024 * 1024,
          Mounts: [
            {
              Type: 'tmpfs',
              Target: '/cache',
              TmpfsOptions: { SizeBytes: 2 * 1024 ** 2, Mode: 0o1770 },
            },
            { Type: 'tmpfs', Target: '/sealed', ReadOnly: true },
            {
              Type: 'tmpfs',
              Target: '/odd',
              TmpfsOptions: { SizeBytes: 1000 },
            },
          ],
        },
        Mounts: [
          { Type: 'tmpfs', Source: '', Destination: '/cache', RW: true },
          { Type: 'tmpfs', Source: '', Destination: '/sealed', RW: false },
          { Type: 'tmpfs', Source: '', Destination: '/odd', RW: true },
        ],
      }),
      nets,
    );
    expect(adaptations).toEqual([]);
    // As Docker itself turns `--mount type=tmpfs` options into a tmpfs's.
    const tmpfs = {
      '/run': '',
      '/tmp': 'size=64m,noexec',
      '/cache': 'mode=1770,size=2m',
      '/sealed': 'ro',
      '/odd': 'size=1000',
    };
    expect(runtime.limits).toEqual({ tmpfs, shmSizeBytes: 1024 ** 3 });
    expect(dockerLimits(runtime.limits!)).toEqual({
      hostConfig: { Tmpfs: tmpfs, ShmSize: 1024 ** 3 },
    });
    // The host's /dev/shm (host IPC, dropped itself) is not the machine's.
    expect(
      adaptInspectedContainer(
        inspected({ HostConfig: { IpcMode: 'host', ShmSize: 1024 ** 3 } }),
        nets,
      ).runtime,
    ).not.toHaveProperty('limits');
    expect(
      adaptInspectedContainer(
        inspected({ HostConfig: { ShmSize: 64 * 1024 * 1024 } }),
        nets,
      ).runtime,
    ).not.toHaveProperty('limits');
  });

  it('carries the volumes the capture archived, says so with their size, and records the others as not carried', () => {
    const info = inspected({
      Mounts: [
        {
          Type: 'volume',
          Name: 'pgdata',
          Source: '/var/lib/docker/volumes/pgdata/_data',
          Destination: '/var/lib/postgresql/data',
        },
        { Type: 'bind', Source: '/srv/conf', Destination: '/etc/app' },
        {
          Type: 'volume',
          Name: 'cache',
          Source: '/var/lib/docker/volumes/cache/_data',
          Destination: '/cache',
        },
        { Type: 'tmpfs', Source: '', Destination: '/run' },
      ],
    });
    expect(volumeMounts(info)).toEqual([
      { name: 'pgdata', destination: '/var/lib/postgresql/data' },
      { name: 'cache', destination: '/cache' },
    ]);
    const pgdata = {
      destination: '/var/lib/postgresql/data',
      artifact: 'cap-1.volume-1.tar',
      checksum: `sha256:${'a'.repeat(64)}`,
      sizeBytes: 3 * 1024 * 1024,
    };
    const { runtime, adaptations } = adaptInspectedContainer(info, nets, [
      pgdata,
    ]);
    expect(adaptations).toEqual([
      'volume pgdata at /var/lib/postgresql/data carried (3.0 MiB archive): the restored machine gets its content as captured',
      'bind mount of host path /srv/conf at /etc/app dropped',
      "volume cache at /cache not carried: the restored machine starts with the image's content there",
    ]);
    expect(runtime.limits).toEqual({ tmpfs: { '/run': '' } });
    expect(runtime.volumes).toEqual([pgdata]);
    // Without archives (an older capture's way), no volume in the runtime.
    expect(adaptInspectedContainer(info, nets).runtime.volumes).toBeUndefined();
    expect(
      adaptInspectedContainer(inspected(), nets).runtime,
    ).not.toHaveProperty('volumes');
  });

  it("keeps production's IPv6 subnet and address beside the IPv4 ones (--ipv6, --ip6)", () => {
    const identity = networkIdentity({
      EnableIPv6: true,
      IPAM: {
        Config: [
          { Subnet: '10.233.20.0/24', Gateway: '10.233.20.1' },
          { Subnet: 'fd00:233::/64', Gateway: 'fd00:233::1' },
        ],
      },
    });
    expect(identity).toEqual({
      subnet: '10.233.20.0/24',
      gateway: '10.233.20.1',
      ipv6Subnet: 'fd00:233::/64',
      ipv6Gateway: 'fd00:233::1',
    });
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        Networks: {
          'demo-prod': {
            IPAMConfig: {
              IPv4Address: '10.233.20.11',
              IPv6Address: 'fd00:233::11',
            },
            IPAddress: '10.233.20.11',
            GlobalIPv6Address: 'fd00:233::11',
            Aliases: [],
          },
        },
      }),
      { 'demo-prod': identity },
    );
    expect(adaptations).toEqual([]);
    expect(runtime.networks).toEqual([
      {
        name: 'demo-prod',
        subnet: '10.233.20.0/24',
        gateway: '10.233.20.1',
        ipv4Address: '10.233.20.11',
        ipv6Subnet: 'fd00:233::/64',
        ipv6Gateway: 'fd00:233::1',
        ipv6Address: 'fd00:233::11',
        aliases: ['data-01'],
      },
    ]);
    // IPv6 off: an IPv6 subnet listed in its IPAM configuration is not the network's.
    expect(
      networkIdentity({
        EnableIPv6: false,
        IPAM: {
          Config: [{ Subnet: 'fd00:1::/64' }, { Subnet: '10.1.0.0/16' }],
        },
      }),
    ).toEqual({ subnet: '10.1.0.0/16', gateway: undefined });
  });

  it('replaces host network mode and records it', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: { NetworkMode: 'host' },
        Networks: { host: { IPAddress: '' } },
      }),
      {},
    );
    expect(runtime.networks).toEqual([]);
    expect(adaptations[0]).toMatch(/^host network mode dropped/);
    // What tells the restore to put it on the lab network, as the adaptation says.
    expect(runtime.labels[PRODUCTION_NETWORK_MODE_LABEL]).toBe('host');
    expect(joinsLabNetwork(runtime)).toBe(true);
  });

  it('records a shared network namespace for the restore, and no network mode none or a production label of that name', () => {
    const shared = adaptInspectedContainer(
      inspected({
        HostConfig: { NetworkMode: 'container:abc123' },
        Networks: {},
      }),
      {},
    );
    expect(shared.runtime.networks).toEqual([]);
    expect(shared.adaptations[0]).toMatch(
      /^shared network namespace \(container:abc123\): the restore shares that machine's where it boots in an earlier wave, else gives the machine its own address on the lab network/,
    );
    expect(shared.runtime.labels[PRODUCTION_NETWORK_MODE_LABEL]).toBe(
      'container:abc123',
    );
    expect(joinsLabNetwork(shared.runtime)).toBe(true);

    const none = adaptInspectedContainer(
      inspected({ HostConfig: { NetworkMode: 'none' }, Networks: {} }),
      {},
    );
    expect(none.runtime.labels).toEqual({
      'recovery.backstage-recovery.io/machine': 'data-01',
    });
    expect(joinsLabNetwork(none.runtime)).toBe(false);

    const labelled = adaptInspectedContainer(
      inspected({
        Config: { Labels: { [PRODUCTION_NETWORK_MODE_LABEL]: 'host' } },
      }),
      nets,
    );
    expect(labelled.runtime.labels).toEqual({});
    expect(joinsLabNetwork(labelled.runtime)).toBe(false);
  });

  it('records a shared PID or IPC namespace for the restore, said, and no production label of that name', () => {
    const donor = `container:${'d'.repeat(64)}`;
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: { PidMode: donor, IpcMode: donor },
        Config: { Labels: { [PRODUCTION_PID_MODE_LABEL]: 'container:x' } },
      }),
      nets,
    );
    expect(runtime.labels).toEqual({
      [PRODUCTION_PID_MODE_LABEL]: donor,
      [PRODUCTION_IPC_MODE_LABEL]: donor,
    });
    expect(adaptations).toEqual([
      `shared PID namespace (${donor}): the restore shares that machine's where it boots in an earlier wave, else gives the machine its own`,
      `shared IPC namespace (${donor}): the restore shares that machine's where it boots in an earlier wave, else gives the machine its own`,
    ]);

    const own = adaptInspectedContainer(
      inspected({
        HostConfig: { PidMode: '', IpcMode: 'shareable' },
        Config: { Labels: { [PRODUCTION_IPC_MODE_LABEL]: donor } },
      }),
      nets,
    );
    expect(own.runtime.labels).toEqual({});
    expect(own.adaptations).toEqual([]);
  });

  it('ignores a disabled health check and falls back to the container name', () => {
    const { runtime } = adaptInspectedContainer(
      inspected({ Config: { Hostname: '', Healthcheck: { Test: ['NONE'] } } }),
      nets,
    );
    expect(runtime.healthcheck).toBeUndefined();
    expect(runtime.hostname).toBe('data-01');
  });
});

describe("a machine's network identity beyond its addresses", () => {
  it('carries its container name as an alias on user-defined networks, where Docker resolves it, not on the default bridge', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        Config: { Hostname: 'abcdef012345' },
        Networks: {
          'demo-prod': {
            IPAddress: '172.29.10.12',
            Aliases: ['abcdef012345'],
          },
          bridge: { IPAddress: '172.17.0.4', Aliases: null },
        },
      }),
      { ...nets, bridge: { subnet: '172.17.0.0/16' } },
    );
    expect(adaptations).toEqual([]);
    expect(runtime.networks.map(n => [n.name, n.aliases])).toEqual([
      ['demo-prod', ['data-01']],
      ['bridge', []],
    ]);
  });

  it('keeps --add-host entries (production addresses mean the same in the lab) but those to host-gateway, saying why', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          ExtraHosts: [
            'database.corp:10.240.3.10',
            'gw.corp=host-gateway',
            'v6.corp:fd00::10',
          ],
        },
      }),
      nets,
    );
    expect(runtime.extraHosts).toEqual([
      'database.corp:10.240.3.10',
      'v6.corp:fd00::10',
    ]);
    expect(adaptations).toEqual([
      'extra /etc/hosts entries dropped: gw.corp=host-gateway (host-gateway is the recovery host in the lab, not the host production ran on)',
    ]);
    // None to keep: none recorded.
    expect(
      adaptInspectedContainer(inspected(), nets).runtime.extraHosts,
    ).toBeUndefined();
  });

  it('keeps a fixed MAC address (--mac-address), as Config.MacAddress (API before 1.44) or an endpoint MAC Docker did not derive from the address', () => {
    const twoNetworks = {
      'demo-prod': {
        IPAddress: '172.29.10.12',
        MacAddress: '02:AA:BB:00:00:01',
        Aliases: [],
      },
      back: {
        IPAddress: '10.8.0.5',
        // Docker's own: 02:42 and 10.8.0.5.
        MacAddress: '02:42:0a:08:00:05',
        Aliases: [],
      },
    };
    const identities = { ...nets, back: { subnet: '10.8.0.0/16' } };
    const older = adaptInspectedContainer(
      inspected({
        Config: { MacAddress: '02:aa:bb:00:00:01' },
        Networks: twoNetworks,
      }),
      identities,
    );
    expect(older.adaptations).toEqual([]);
    expect(older.runtime.networks.map(n => [n.name, n.macAddress])).toEqual([
      ['demo-prod', '02:aa:bb:00:00:01'],
      ['back', undefined],
    ]);
    // API 1.44 on: no Config.MacAddress, the endpoint's own says it.
    const newer = adaptInspectedContainer(
      inspected({ Networks: twoNetworks }),
      identities,
    );
    expect(newer.runtime.networks.map(n => n.macAddress)).toEqual([
      '02:aa:bb:00:00:01',
      undefined,
    ]);
    // Stopped: the endpoints list none, the configured one is the first network's.
    const stopped = adaptInspectedContainer(
      inspected({
        Config: { MacAddress: '02:aa:bb:00:00:01' },
        Networks: {
          'demo-prod': { IPAddress: '', MacAddress: '', Aliases: [] },
        },
      }),
      nets,
    );
    expect(stopped.runtime.networks[0].macAddress).toBe('02:aa:bb:00:00:01');
    // Created on no named network: NetworkMode `default` (Docker 20.10), Docker's bridge.
    const onDefault = adaptInspectedContainer(
      inspected({
        Config: { MacAddress: '02:aa:bb:00:00:01' },
        HostConfig: { NetworkMode: 'default' },
        Networks: { bridge: { IPAddress: '', MacAddress: '', Aliases: [] } },
      }),
      nets,
    );
    expect(onDefault.runtime.networks.map(n => [n.name, n.macAddress])).toEqual(
      [['bridge', '02:aa:bb:00:00:01']],
    );
    // A MAC Docker derived from the address: nothing to fix.
    expect(
      adaptInspectedContainer(
        inspected({
          Networks: {
            'demo-prod': {
              IPAddress: '172.29.10.12',
              MacAddress: '02:42:ac:1d:0a:0c',
              Aliases: [],
            },
          },
        }),
        nets,
      ).runtime.networks[0],
    ).not.toHaveProperty('macAddress');
  });
});

describe('dnsInLab', () => {
  const networks = [
    {
      name: 'demo-prod',
      subnet: '10.240.3.0/24',
      ipv6Subnet: 'fd00:240::/64',
      aliases: [],
    },
  ];
  const dns = ['10.240.3.11', 'fd00:240::53', '8.8.8.8'];

  it("keeps in a test lab the DNS servers in the machine's production subnets the lab has (IPv4 only), and names the others", () => {
    expect(dnsInLab({ networks, dns }, true)).toEqual({
      dns: ['10.240.3.11'],
      note: "DNS servers fd00:240::53, 8.8.8.8 not used in the test lab: outside the machine's production subnets it has (10.240.3.0/24), the isolated lab cannot reach them (the lab's resolver answers the lab's names)",
    });
  });

  it("keeps them all in a failover, which runs on production's network reach", () => {
    expect(dnsInLab({ networks, dns }, false)).toEqual({ dns });
  });

  it('keeps none and says nothing where production set none', () => {
    expect(dnsInLab({ networks }, true)).toEqual({ dns: [] });
  });
});

describe('helpers', () => {
  it('converts health checks back to nanoseconds', () => {
    expect(
      dockerHealthcheck({ test: ['CMD', 'x'], intervalMs: 2000, retries: 3 }),
    ).toEqual({
      Test: ['CMD', 'x'],
      Interval: 2e9,
      Timeout: undefined,
      Retries: 3,
      StartPeriod: undefined,
    });
  });
  it('makes valid Docker names and tags', () => {
    expect(dockerName('rr', 'run:1/2', 'demo prod')).toBe(
      'rr-run-1-2-demo-prod',
    );
    expect(dockerTag('.cap/42:x')).toBe('cap-42-x');
  });
});

describe('production limits', () => {
  it('carries what bounds the machine in production, for the restore to apply', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        Config: { StopSignal: 'SIGQUIT', StopTimeout: 30 },
        HostConfig: {
          Memory: 512 * 1024 ** 2,
          MemorySwap: 512 * 1024 ** 2,
          MemoryReservation: 256 * 1024 ** 2,
          NanoCpus: 1.5e9,
          CpuShares: 512,
          PidsLimit: 200,
          ReadonlyRootfs: true,
          Init: true,
          RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
          Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
          CapDrop: ['ALL'],
          CapAdd: ['NET_BIND_SERVICE', 'CAP_SETUID', 'SYS_ADMIN'],
          SecurityOpt: [
            'no-new-privileges:true',
            'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}',
            'apparmor=unconfined',
            'apparmor=prod-web',
            'label=disable',
          ],
          Sysctls: { 'net.core.somaxconn': '1024' },
        },
      }),
      nets,
    );
    expect(runtime.limits).toEqual({
      memoryBytes: 512 * 1024 ** 2,
      memorySwapBytes: 512 * 1024 ** 2,
      memoryReservationBytes: 256 * 1024 ** 2,
      nanoCpus: 1.5e9,
      cpuShares: 512,
      pidsLimit: 200,
      readOnlyRootfs: true,
      init: true,
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
      capDrop: ['ALL'],
      // Added back after the drop, ones any machine has: no privilege.
      capAdd: ['NET_BIND_SERVICE', 'CAP_SETUID'],
      securityOpt: [
        'no-new-privileges:true',
        'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}',
      ],
      sysctls: { 'net.core.somaxconn': '1024' },
      stopSignal: 'SIGQUIT',
      stopTimeoutSeconds: 30,
    });
    expect(runtime.restartPolicy).toEqual({
      name: 'on-failure',
      maximumRetryCount: 3,
    });
    expect(adaptations).toEqual([
      'added capabilities SYS_ADMIN dropped',
      "security option apparmor=unconfined dropped: the lab keeps the engine's default confinement",
      "security option apparmor dropped (prod-web): the production host's, the recovery engine's default applies",
      "security option label=disable dropped: the lab keeps the engine's default confinement",
    ]);
    expect(dockerLimits(runtime.limits!)).toEqual({
      hostConfig: {
        Memory: 512 * 1024 ** 2,
        MemorySwap: 512 * 1024 ** 2,
        MemoryReservation: 256 * 1024 ** 2,
        NanoCpus: 1.5e9,
        CpuShares: 512,
        PidsLimit: 200,
        ReadonlyRootfs: true,
        Init: true,
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
        CapDrop: ['ALL'],
        CapAdd: ['NET_BIND_SERVICE', 'CAP_SETUID'],
        SecurityOpt: [
          'no-new-privileges:true',
          'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}',
        ],
        Sysctls: { 'net.core.somaxconn': '1024' },
      },
      stopSignal: 'SIGQUIT',
      stopTimeout: 30,
    });
  });

  it('treats a seccomp profile that allows every system call as unconfined: dropped, the engine default applies', () => {
    const allowAll = JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_LOG' }],
    });
    const denying = JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_ERRNO' }],
    });
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          SecurityOpt: [
            `seccomp=${allowAll}`,
            'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
            `seccomp:${denying}`,
          ],
        },
      }),
      nets,
    );
    expect(runtime.limits?.securityOpt).toEqual([`seccomp:${denying}`]);
    expect(adaptations).toEqual([
      "security option seccomp dropped (a profile that allows every system call, as unconfined does): the lab keeps the engine's default confinement",
      "security option seccomp dropped (a profile that allows every system call, as unconfined does): the lab keeps the engine's default confinement",
    ]);
  });

  it('says a production container runtime (runsc, kata) is not carried: the machine runs under the recovery engine default', () => {
    const { adaptations } = adaptInspectedContainer(
      inspected({ HostConfig: { Runtime: 'runsc' } }),
      nets,
    );
    expect(adaptations).toEqual([
      "container runtime runsc not carried: the restored machine runs under the recovery engine's default runtime (runc unless that engine sets another), without what runsc gave it in production (a sandbox such as runsc or kata isolates it from its host more than runc)",
    ]);
    for (const Runtime of ['runc', 'io.containerd.runc.v2', undefined])
      expect(
        adaptInspectedContainer(inspected({ HostConfig: { Runtime } }), nets)
          .adaptations,
      ).toEqual([]);
  });

  it("confines a restore's limits again as the capture did: a changed record gets no capability beyond the defaults, nor unconfined options", () => {
    const notes: string[] = [];
    const limits = confinedLimits(
      {
        memoryBytes: 1024,
        capDrop: ['NET_RAW'],
        capAdd: ['ALL', 'SYS_ADMIN', 'NET_BIND_SERVICE'],
        securityOpt: [
          'seccomp=unconfined',
          'apparmor=unconfined',
          'systempaths=unconfined',
          'label=disable',
          'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
          'no-new-privileges',
        ],
        sysctls: { 'net.core.somaxconn': '1024' },
      },
      notes,
    );
    expect(limits).toEqual({
      memoryBytes: 1024,
      capDrop: ['NET_RAW'],
      capAdd: ['NET_BIND_SERVICE'],
      securityOpt: ['no-new-privileges'],
      sysctls: { 'net.core.somaxconn': '1024' },
    });
    expect(notes).toEqual([
      'added capabilities ALL, SYS_ADMIN dropped',
      "security option seccomp=unconfined dropped: the lab keeps the engine's default confinement",
      "security option apparmor=unconfined dropped: the lab keeps the engine's default confinement",
      "security option systempaths=unconfined dropped: the lab keeps the engine's default confinement",
      "security option label=disable dropped: the lab keeps the engine's default confinement",
      "security option seccomp dropped (a profile that allows every system call, as unconfined does): the lab keeps the engine's default confinement",
    ]);
    // What a capture kept passes as it is, without a note.
    const kept: string[] = [];
    expect(
      confinedLimits(
        { capAdd: ['CHOWN'], securityOpt: ['no-new-privileges:true'] },
        kept,
      ),
    ).toEqual({ capAdd: ['CHOWN'], securityOpt: ['no-new-privileges:true'] });
    expect(kept).toEqual([]);
  });

  it("keeps IPv6 sysctls out of a test lab, IPv4-only, saying so; a failover's machine gets them", () => {
    const sysctls = {
      'net.core.somaxconn': '1024',
      'net.ipv6.conf.all.disable_ipv6': '0',
      'net.ipv6.conf.default.forwarding': '1',
    };
    expect(sysctlsInLab(sysctls, true)).toEqual({
      sysctls: { 'net.core.somaxconn': '1024' },
      note: "IPv6 sysctls not applied in the test lab: net.ipv6.conf.all.disable_ipv6=0, net.ipv6.conf.default.forwarding=1 (the test lab is IPv4-only; IPv6 on would give the machine a link-local path to the recovery host's bridge)",
    });
    expect(sysctlsInLab(sysctls, false)).toEqual({ sysctls });
    expect(
      sysctlsInLab({ 'net.ipv6.conf.all.disable_ipv6': '0' }, true).sysctls,
    ).toBeUndefined();
    expect(sysctlsInLab(undefined, true)).toEqual({ sysctls: undefined });
  });

  it("keeps no limits or restart policy where production left the engine's defaults", () => {
    const { runtime } = adaptInspectedContainer(
      inspected({
        Config: { StopSignal: 'SIGTERM' },
        HostConfig: {
          Memory: 0,
          NanoCpus: 0,
          PidsLimit: -1,
          RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
          Ulimits: null,
          CapAdd: null,
          SecurityOpt: null,
        },
      }),
      nets,
    );
    expect(runtime).not.toHaveProperty('limits');
    expect(runtime).not.toHaveProperty('restartPolicy');
    expect(dockerLimits({})).toEqual({ hostConfig: {} });
    expect(
      adaptInspectedContainer(
        inspected({
          HostConfig: {
            RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
          },
        }),
        nets,
      ).runtime.restartPolicy,
    ).toEqual({
      name: 'always',
    });
  });

  it('keeps a read-only root filesystem only where production wrote to no mount the lab keeps in it', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          ReadonlyRootfs: true,
          Memory: 64 * 1024 ** 2,
          Tmpfs: { '/tmp': '' },
        },
        Mounts: [
          {
            Type: 'volume',
            Name: 'pgdata',
            Source: '/v',
            Destination: '/var/lib/db',
            RW: true,
          },
          {
            Type: 'bind',
            Source: '/srv/conf',
            Destination: '/etc/app',
            RW: false,
          },
        ],
      }),
      nets,
    );
    expect(runtime.limits).toEqual({
      memoryBytes: 64 * 1024 ** 2,
      tmpfs: { '/tmp': '' },
    });
    expect(adaptations).toContain(
      'read-only root filesystem not kept: the machine writes to /var/lib/db, which the lab keeps in its root filesystem',
    );
  });

  it('keeps a read-only root filesystem where the machine writes only to tmpfs mounts, which the lab recreates', () => {
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: {
          ReadonlyRootfs: true,
          Tmpfs: { '/tmp': 'size=1m' },
          Mounts: [{ Type: 'tmpfs', Target: '/run' }],
        },
        Mounts: [
          { Type: 'tmpfs', Source: '', Destination: '/run', RW: true },
          {
            Type: 'volume',
            Name: 'conf',
            Source: '/v',
            Destination: '/etc/app',
            RW: false,
          },
        ],
      }),
      nets,
    );
    // The read-only volume is not carried: the image's content stays there, nothing is written.
    expect(runtime.limits).toEqual({
      readOnlyRootfs: true,
      tmpfs: { '/tmp': 'size=1m', '/run': '' },
    });
    expect(adaptations.filter(a => a.startsWith('read-only'))).toEqual([]);
    expect(dockerLimits(runtime.limits!).hostConfig).toEqual({
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'size=1m', '/run': '' },
    });
  });

  it('drops a tmpfs a carried volume lies under: the volume content the restore puts in the root filesystem would be hidden by it', () => {
    const db = {
      destination: '/var/run/db',
      artifact: 'cap-1.volume-1.tar',
      checksum: `sha256:${'a'.repeat(64)}`,
      sizeBytes: 1024,
    };
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: { Tmpfs: { '/var/run': '', '/var/r': '', '/tmp': '' } },
        Mounts: [
          {
            Type: 'volume',
            Name: 'db',
            Source: '/v',
            Destination: '/var/run/db',
            RW: true,
          },
        ],
      }),
      nets,
      [db],
    );
    expect(runtime.limits).toEqual({ tmpfs: { '/var/r': '', '/tmp': '' } });
    expect(adaptations).toContain(
      'tmpfs at /var/run dropped: it would hide the content of volume /var/run/db, which the lab keeps in the root filesystem under it',
    );
  });

  it('gives read-only up where the restore puts a carried read-only volume back: Docker refuses that on a read-only root filesystem', () => {
    const conf = {
      destination: '/etc/app',
      artifact: 'cap-1.volume-1.tar',
      checksum: `sha256:${'a'.repeat(64)}`,
      sizeBytes: 1024,
    };
    const { runtime, adaptations } = adaptInspectedContainer(
      inspected({
        HostConfig: { ReadonlyRootfs: true },
        Mounts: [
          {
            Type: 'volume',
            Name: 'conf',
            Source: '/v',
            Destination: '/etc/app',
            RW: false,
          },
        ],
      }),
      nets,
      [conf],
    );
    expect(runtime).not.toHaveProperty('limits');
    expect(adaptations).toContain(
      'read-only root filesystem not kept: the restore puts the content of read-only volume /etc/app into it, which Docker refuses while it is read-only',
    );
  });
});
