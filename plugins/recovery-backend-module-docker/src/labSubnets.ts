import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import {
  LabSubnetHeldError,
  parseCidr,
  productionSubnets,
  subnetsOverlap,
  type CapturedNetwork,
} from '@backstage-recovery/plugin-recovery-node';

/** A production subnet of the lab that a network on the engine, made by no run, holds or overlaps. */
export interface ForeignHolder {
  /** The production network whose subnet it is. */
  network: string;
  subnet: string;
  /** The engine's network in the way: its name, id and its own subnet. */
  holder: { name: string; id: string; subnet: string };
}

/**
 * The first of `wanted`'s production subnets (IPv4 or IPv6) that a network of the engine no recovery run made
 * (no run id label) holds or overlaps: Docker refuses the lab that subnet, and would give it
 * another one, where its machines lose production's addresses. Not production's own network (the
 * one of the same name): an engine that also runs production has it, and its lab can only take
 * another subnet (restoreMachine says which addresses that costs). Networks of runs are left to
 * their own checks (a failover's refused by createLab, a left lab removed before the run builds).
 */
export function foreignSubnetHolder(
  engineNetworks: Docker.NetworkInspectInfo[],
  wanted: CapturedNetwork[],
): ForeignHolder | undefined {
  for (const network of wanted) {
    for (const subnet of productionSubnets(network)) {
      for (const n of engineNetworks) {
        if (n.Labels?.[RUN_ID_LABEL] !== undefined) continue;
        if (n.Name === network.name) continue;
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
  const holds =
    subnetsOverlap(subnet, held.subnet) &&
    parseCidr(subnet)?.prefix === parseCidr(held.subnet)?.prefix
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
