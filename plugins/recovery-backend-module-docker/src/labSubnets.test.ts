import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import {
  isLabSubnetHeld,
  LabSubnetHeldError,
} from '@backstage-recovery/plugin-recovery-node';
import { foreignSubnetHolder, labSubnetHeld } from './labSubnets';

const net = (
  name: string,
  subnets: string[],
  labels: Record<string, string> = {},
) =>
  ({
    Name: name,
    Id: `${name}-0123456789abcdef`,
    Labels: labels,
    IPAM: { Config: subnets.map(Subnet => ({ Subnet })) },
  }) as unknown as Docker.NetworkInspectInfo;

const prod = { name: 'prod', subnet: '172.29.10.0/24', aliases: [] };
const back = { name: 'back', subnet: '10.8.0.0/16', aliases: [] };
/** A test lab on engine dr-host. */
const testLab = { engine: 'dr-host', internal: true };

describe('foreignSubnetHolder', () => {
  it.each([
    ['the same subnet', '172.29.10.0/24'],
    ['part of it', '172.29.10.128/25'],
    ['a block holding it', '172.29.0.0/16'],
    ['one address of it', '172.29.10.77/32'],
  ])('finds a network no run made on %s', (_, subnet) => {
    expect(
      foreignSubnetHolder(
        [net('bridge', ['10.200.2.0/24']), net('x', [subnet])],
        [prod],
        testLab,
      ),
    ).toEqual({
      network: 'prod',
      subnet: '172.29.10.0/24',
      holder: { name: 'x', id: 'x-0123456789abcdef', subnet },
    });
  });

  it('names the subnet of the holder that overlaps, of a network with several, for the first production network held', () => {
    expect(
      foreignSubnetHolder(
        [net('dual', ['fd00::/64', '10.8.4.0/24', '172.29.10.0/24'])],
        [back, prod],
        testLab,
      ),
    ).toMatchObject({
      network: 'back',
      subnet: '10.8.0.0/16',
      holder: { name: 'dual', subnet: '10.8.4.0/24' },
    });
  });

  it.each([
    ['the same subnet, written otherwise', 'FD00:0233:0:0::/64'],
    ['part of it', 'fd00:233::8000:0:0/97'],
    ['a block holding it', 'fd00::/16'],
    ['one address of it', 'fd00:233::11/128'],
  ])(
    "finds for a failover a network no run made on production's IPv6 subnet, which a test lab (IPv4-only) does not take: %s",
    (_, subnet) => {
      const networks = [
        net('bridge', ['10.200.2.0/24', 'fd00:1::/64']),
        net('x', ['10.99.0.0/24', subnet]),
      ];
      const dual = [{ ...prod, ipv6Subnet: 'fd00:233::/64' }];
      expect(
        foreignSubnetHolder(networks, dual, { ...testLab, internal: false }),
      ).toEqual({
        network: 'prod',
        subnet: 'fd00:233::/64',
        holder: { name: 'x', id: 'x-0123456789abcdef', subnet },
      });
      expect(foreignSubnetHolder(networks, dual, testLab)).toBeUndefined();
    },
  );

  it("passes over runs' networks (ours, a failover's, another lab's), production's own network of that name in a test lab on the engine captured from, and subnets that do not touch", () => {
    const networks = [
      net('rr-run-1-prod', ['172.29.10.0/24'], { [RUN_ID_LABEL]: 'run-1' }),
      net('rr-other-prod', ['172.29.10.0/24'], { [RUN_ID_LABEL]: 'other' }),
      // An engine that also runs production: its own network, the lab takes another subnet.
      net('prod', ['172.29.10.0/24']),
      net('next-door', ['172.29.11.0/24']),
      net('v6', ['fd00::/64']),
      net('none', []),
    ];
    expect(
      foreignSubnetHolder(networks, [{ ...prod, engine: 'dr-host' }], testLab),
    ).toBeUndefined();
    // A production network without a subnet captured asks for none.
    expect(
      foreignSubnetHolder(
        [net('x', ['0.0.0.0/0'])],
        [{ name: 'host-net', aliases: [] }],
        testLab,
      ),
    ).toBeUndefined();
  });

  it("finds a network of production's name on an engine the machine was not captured from (a twin), or of unknown engine", () => {
    const twin = net('prod', ['172.29.10.0/24']);
    const found = {
      network: 'prod',
      subnet: '172.29.10.0/24',
      holder: {
        name: 'prod',
        id: 'prod-0123456789abcdef',
        subnet: '172.29.10.0/24',
      },
    };
    expect(
      foreignSubnetHolder([twin], [{ ...prod, engine: 'primary' }], testLab),
    ).toEqual(found);
    expect(foreignSubnetHolder([twin], [prod], testLab)).toEqual(found);
    // Docker's own bridge, 172.17.0.0/16 on every stock engine, is production's `bridge` elsewhere.
    expect(
      foreignSubnetHolder(
        [net('bridge', ['172.17.0.0/16'])],
        [
          {
            name: 'bridge',
            subnet: '172.17.0.0/16',
            aliases: [],
            engine: 'primary',
          },
        ],
        testLab,
      ),
    ).toMatchObject({ holder: { name: 'bridge' } });
  });

  it("finds production's own network in a failover's way, even on the engine the machine was captured from", () => {
    expect(
      foreignSubnetHolder(
        [net('prod', ['172.29.10.0/24'])],
        [{ ...prod, engine: 'dr-host' }],
        { engine: 'dr-host', internal: false },
      ),
    ).toMatchObject({
      network: 'prod',
      subnet: '172.29.10.0/24',
      holder: { name: 'prod', subnet: '172.29.10.0/24' },
    });
  });
});

describe('labSubnetHeld', () => {
  const held = {
    network: 'prod',
    subnet: '172.29.10.0/24',
    holder: { name: 'foreign-x', id: 'a'.repeat(64), subnet: '172.29.10.0/24' },
  };

  it("says a test lab's refusal: host, subnet, network and id, and what to do", () => {
    const error = labSubnetHeld('dr-host', held, { internal: true });
    expect(error).toBeInstanceOf(LabSubnetHeldError);
    expect(isLabSubnetHeld(error)).toBe(true);
    expect(error).toMatchObject({
      name: 'LabSubnetHeldError',
      host: 'dr-host',
      subnet: '172.29.10.0/24',
      holder: held.holder,
    });
    expect(error.message).toBe(
      "hypervisor host dr-host cannot give the lab production network prod's subnet 172.29.10.0/24: " +
        `network foreign-x (id ${'a'.repeat(12)}) on its engine holds that subnet, and no recovery run made it (it carries no ${RUN_ID_LABEL} label). ` +
        "The lab would get another subnet there, where its machines do not get production's addresses. " +
        'Remove that network if nothing on the host needs it (docker network rm foreign-x), or run the test on another hypervisor host',
    );
  });

  it('says an IPv6 subnet written otherwise is the one held, not one overlapping it', () => {
    const message = labSubnetHeld(
      'dr-host',
      {
        network: 'prod',
        subnet: 'fd00:233::/64',
        holder: { name: 'x', id: 'c'.repeat(64), subnet: 'fd00:233:0:0::/64' },
      },
      { internal: true },
    ).message;
    expect(message).toContain(
      "cannot give the lab production network prod's subnet fd00:233::/64: network x (id cccccccccccc) on its engine holds that subnet,",
    );
  });

  it("sends a failover to another host, and has Docker's own bridge moved rather than removed", () => {
    const message = labSubnetHeld(
      'dr-host',
      {
        ...held,
        holder: { name: 'bridge', id: 'b'.repeat(64), subnet: '172.29.0.0/16' },
      },
      { internal: false },
    ).message;
    expect(message).toContain(
      'network bridge (id bbbbbbbbbbbb) on its engine has subnet 172.29.0.0/16, which overlaps it',
    );
    expect(message).toMatch(
      /Give the engine's network bridge another subnet \(dockerd's --bip or default-address-pools\), or fail over onto another hypervisor host$/,
    );
    expect(message).not.toContain('docker network rm');
  });
});
