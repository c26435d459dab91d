import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import {
  LabSubnetHeldError,
  productionSubnets,
  sameSubnet,
  subnetsOverlap,
  type CapturedNetwork,
  type LabNetwork,
} from '@backstage-recovery/plugin-recovery-node';

/**
 * The production subnets a lab takes for `network`: both families in a failover, the IPv4 one
 * only in a test lab, which createLab makes IPv4-only (the engine would put the IPv6 gateway on
 * the host's bridge, through which the lab would reach the host).
 */
export function subnetsInLab(
  network: CapturedNetwork,
  lab: { internal: boolean },
): string[] {
  if (!lab.internal) return productionSubnets(network);
  return network.subnet ? [network.subnet] : [];
}

/** A production subnet of the lab that a network on the engine, made by no run, holds or overlaps. */
export interface ForeignHolder {
  /** The production network whose subnet it is. */
  network: string;
  subnet: string;
  /** The engine's network in the way: its name, id and its own subnet. */
  holder: { name: string; id: string; subnet: string };
}

/**
 * The first of the production subnets the lab takes of `wanted` (subnetsInLab) that a network of the engine no recovery run made
 * (no run id label) holds or overlaps: Docker refuses the lab that subnet, and would give it
 * another one, where its machines lose production's addresses. Passed over: production's own
 * network, in a test lab only, on the engine the machine was captured from (role both): the
 * network of its name there, which the test's lab can only sit beside on another subnet
 * (restoreMachine says which addresses that costs). A network of that name on any other engine is
 * a twin (the same compose project on both sites, Docker's `bridge`), and a failover keeps no
 * machine off its production address, so both are in the way. Networks of runs are left to their
 * own checks (a failover's refused by createLab, a left lab removed before the run builds).
 */
export function foreignSubnetHolder(
  engineNetworks: Docker.NetworkInspectInfo[],
  wanted: LabNetwork[],
  lab: { engine: string; internal: boolean },
): ForeignHolder | undefined {
  for (const network of wanted) {
    const ownNetwork = lab.internal && network.engine === lab.engine;
    for (const subnet of subnetsInLab(network, lab)) {
      for (const n of engineNetworks) {
        if (n.Labels?.[RUN_ID_LABEL] !== undefined) continue;
        if (ownNetwork && n.Name === network.name) continue;
        const held = (n.IPAM?.Config ?? []).find(
          (c: { Subnet?: string }) =>
            c.Subnet && subnetsOverlap(c.Subnet, subnet),
        );
        if (held)
          return {
            network: network.name,
            subnet,
            holder: { name: n.Name, id: n.Id, subnet: held.Subnet! },
          };
      }
    }
  }
  return undefined;
}

/** Docker's own networks, which `docker network rm` cannot remove. */
const PREDEFINED = new Set(['bridge', 'docker_gwbridge', 'ingress']);

/** The refusal of a lab whose subnet `held` names: host, subnet, network, and what to do. */
export function labSubnetHeld(
  hostId: string,
  held: ForeignHolder,
  options: { internal: boolean },
): LabSubnetHeldError {
  const { name, id, subnet } = held.holder;
  // The same block however written (`fd00:233::/64`, `fd00:233:0:0::/64`).
  const holds = sameSubnet(subnet, held.subnet)
    ? 'holds that subnet'
    : `has subnet ${subnet}, which overlaps it`;
  const free = PREDEFINED.has(name)
    ? `Give the engine's network ${name} another subnet (dockerd's --bip or default-address-pools)`
    : `Remove that network if nothing on the host needs it (docker network rm ${name})`;
  const elsewhere = options.internal
    ? 'run the test on another hypervisor host'
    : 'fail over onto another hypervisor host';
  return new LabSubnetHeldError(
    `hypervisor host ${hostId} cannot give the lab production network ${held.network}'s subnet ${held.subnet}: ` +
      `network ${name} (id ${id.slice(0, 12)}) on its engine ${holds}, and no recovery run made it (it carries no ${RUN_ID_LABEL} label). ` +
      `The lab would get another subnet there, where its machines do not get production's addresses. ${free}, or ${elsewhere}`,
    hostId,
    held.subnet,
    held.holder,
  );
}
