import {
  describePortBinding,
  failoverPorts,
  hostPortsClash,
  protocolOf,
} from './hostPorts';

describe('failoverPorts', () => {
  it("publishes production's host ports on every address (of both families, or one) or loopback, on production's address; not one its engine picked, nor one bound to another address of the primary host", () => {
    expect(
      failoverPorts([
        { containerPort: '80/tcp', hostPort: 8080 },
        { containerPort: '80/tcp', hostPort: 8443, hostIp: '0.0.0.0' },
        { containerPort: '53/udp', hostPort: 53, hostIp: '::' },
        { containerPort: '9000/tcp', hostPort: 9000, hostIp: '127.0.0.1' },
        { containerPort: '9001/tcp', hostPort: 9001, hostIp: '::1' },
        { containerPort: '5432/tcp' },
        { containerPort: '445/tcp', hostPort: 445, hostIp: '10.0.0.5' },
      ]),
    ).toEqual({
      publish: [
        { containerPort: '80/tcp', hostPort: 8080 },
        // Docker binds 0.0.0.0 on IPv4 alone, :: on IPv6 alone: no wider than production.
        { containerPort: '80/tcp', hostPort: 8443, hostIp: '0.0.0.0' },
        { containerPort: '53/udp', hostPort: 53, hostIp: '::' },
        { containerPort: '9000/tcp', hostPort: 9000, hostIp: '127.0.0.1' },
        { containerPort: '9001/tcp', hostPort: 9001, hostIp: '::1' },
      ],
      dropped: [
        {
          binding: { containerPort: '5432/tcp' },
          why: "its engine picked production's host port, so no client counts on it",
        },
        {
          binding: {
            containerPort: '445/tcp',
            hostPort: 445,
            hostIp: '10.0.0.5',
          },
          why: 'bound to 10.0.0.5, an address of the primary host, not of the recovery host',
        },
      ],
    });
  });

  it('publishes a binding listed twice once, in whatever spelling of its address; one port on both families apart, as production had it', () => {
    const { publish } = failoverPorts([
      // `-p 0.0.0.0:8080:80 -p [::]:8080:80`: one port on each family, which Docker takes.
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '0.0.0.0' },
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '::' },
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '0.0.0.0' },
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '[0:0:0:0:0:0:0:0]' },
      { containerPort: '9000/tcp', hostPort: 9000, hostIp: '::1' },
      { containerPort: '9000/tcp', hostPort: 9000, hostIp: '0:0:0:0:0:0:0:1' },
      { containerPort: '53/udp', hostPort: 53 },
      { containerPort: '53/udp', hostPort: 53 },
    ]);
    expect(publish).toEqual([
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '0.0.0.0' },
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '::' },
      { containerPort: '9000/tcp', hostPort: 9000, hostIp: '::1' },
      { containerPort: '53/udp', hostPort: 53 },
    ]);
    // What one machine publishes the engine can bind at once: no two of them clash.
    const bound = publish.map(p => ({
      ...p,
      protocol: protocolOf(p.containerPort),
    }));
    for (const [i, a] of bound.entries())
      for (const b of bound.slice(i + 1))
        expect(hostPortsClash(a, b)).toBe(false);
  });

  it('publishes the port of a range production asked for that its engine picked, where the capture saw it; else drops it saying clients may count on it', () => {
    expect(
      failoverPorts([
        { containerPort: '80/tcp', hostPort: 8083, hostPortRange: '8080-8090' },
        { containerPort: '81/tcp', hostPortRange: '9080-9090' },
      ]),
    ).toEqual({
      publish: [{ containerPort: '80/tcp', hostPort: 8083 }],
      dropped: [
        {
          binding: { containerPort: '81/tcp', hostPortRange: '9080-9090' },
          why: 'its engine picks one port of the range 9080-9090 as the machine starts, which clients may count on, and the capture saw none bound (the machine was not running): capture it again while it runs for a failover to publish that one',
        },
      ],
    });
  });

  it('publishes nothing for a capture that recorded no bindings (older captures too)', () => {
    expect(failoverPorts(undefined)).toEqual({ publish: [], dropped: [] });
    expect(failoverPorts([])).toEqual({ publish: [], dropped: [] });
  });
});

describe('describePortBinding', () => {
  it.each([
    [{ containerPort: '80/tcp', hostPort: 8080 }, '8080 -> 80/tcp'],
    [
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '127.0.0.1' },
      '127.0.0.1:8080 -> 80/tcp',
    ],
    [
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '::1' },
      '[::1]:8080 -> 80/tcp',
    ],
    [
      { containerPort: '80/tcp', hostPort: 8080, hostIp: '::' },
      '[::]:8080 -> 80/tcp',
    ],
    [
      { containerPort: '80/tcp', hostPort: 8083, hostPortRange: '8080-8090' },
      '8080-8090 -> 80/tcp',
    ],
    [{ containerPort: '53/udp' }, '(random) -> 53/udp'],
  ])('says %j as %s', (binding, said) => {
    expect(describePortBinding(binding)).toBe(said);
  });
});

describe('hostPortsClash', () => {
  const tcp = (hostPort: number, hostIp?: string) => ({
    hostPort,
    protocol: 'tcp',
    ...(hostIp ? { hostIp } : {}),
  });
  it.each([
    [tcp(8080), tcp(8080), true],
    [tcp(8080), tcp(8080, '0.0.0.0'), true],
    [tcp(8080), tcp(8080, '::'), true],
    [tcp(8080), tcp(8080, '127.0.0.1'), true],
    [tcp(8080), tcp(8080, '::1'), true],
    [tcp(8080, '0.0.0.0'), tcp(8080, '127.0.0.1'), true],
    [tcp(8080, '0.0.0.0'), tcp(8080, '::1'), false],
    // Docker binds [::] IPv6-only.
    [tcp(8080, '::'), tcp(8080, '127.0.0.1'), false],
    [tcp(8080, '::'), tcp(8080, '::1'), true],
    [tcp(8080, '::'), tcp(8080, '0.0.0.0'), false],
    [tcp(8080, '::'), tcp(8080, '[0:0:0:0:0:0:0:0]'), true],
    [tcp(8080, '::1'), tcp(8080, '0:0:0:0:0:0:0:1'), true],
    [tcp(8080, '127.0.0.1'), tcp(8080, '127.0.0.1'), true],
    [tcp(8080, '127.0.0.1'), tcp(8080, '127.0.0.2'), false],
    [tcp(8080), tcp(8081), false],
    [tcp(53), { hostPort: 53, protocol: 'udp' }, false],
  ])('%j and %j: %s', (a, b, clash) => {
    expect(hostPortsClash(a, b)).toBe(clash);
    expect(hostPortsClash(b, a)).toBe(clash);
  });

  it("takes a port's protocol from Docker's name of it", () => {
    expect(protocolOf('53/udp')).toBe('udp');
    expect(protocolOf('80/tcp')).toBe('tcp');
    expect(protocolOf('80')).toBe('tcp');
  });
});
