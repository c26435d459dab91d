import type Docker from 'dockerode';
import { ConflictError } from '@backstage/errors';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { subnetsOverlap } from '@backstage-recovery/plugin-recovery-node';
import { dockerTag } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { LAB_IMAGE_REPOSITORY, MACHINE_REF_LABEL } from './labNames';

// What a failover keeps on the engine serves production there: production's subnets and
// machines, held until it is released. A later lab finds it here, and stays clear of it.

/** Who holds a subnet on the engine: a network of another run, a failover's where one does. */
export interface SubnetHolder {
  name: string;
  runId?: string;
  /** A run's network that is not internal: a failover's, whose machines it kept serve production. */
  failover: boolean;
}

/** The network of `networks` (not run `runId`'s) whose subnet overlaps `subnet` (of either family); a failover's first. */
export function subnetHolder(
  networks: Docker.NetworkInspectInfo[],
  subnet: string,
  runId: string,
): SubnetHolder | undefined {
  const holders: SubnetHolder[] = networks
    .filter(n => n.Labels?.[RUN_ID_LABEL] !== runId)
    .filter(n =>
      (n.IPAM?.Config ?? []).some(
        (c: { Subnet?: string }) =>
          c.Subnet && subnetsOverlap(c.Subnet, subnet),
      ),
    )
    .map(n => {
      const owner = n.Labels?.[RUN_ID_LABEL];
      return {
        name: n.Name,
        ...(owner ? { runId: owner } : {}),
        failover: !!owner && n.Internal !== true,
      };
    });
  return holders.find(h => h.failover) ?? holders[0];
}

export function describeHolder(holder: SubnetHolder): string {
  if (holder.failover)
    return `network ${holder.name} of failover ${holder.runId}, whose machines kept there serve production`;
  return holder.runId
    ? `network ${holder.name} of run ${holder.runId}`
    : `network ${holder.name}`;
}

/** What an engineer does first to free the engine of what a failover kept: release it, or remove it by hand. */
export function releaseFirst(runId: string): string {
  return `release failover ${runId} first (recovery release ${runId}, or POST /runs/${runId}/release), or else remove it by hand: ${removalCommands(runId)}`;
}

/** How an engineer removes what a failover kept on the engine, once production no longer needs it. */
function removalCommands(runId: string): string {
  const label = `label=${RUN_ID_LABEL}=${runId}`;
  const images = `reference=${LAB_IMAGE_REPOSITORY}/*:${dockerTag(runId)}`;
  return `docker rm -f $(docker ps -aq --filter ${label}); docker network rm $(docker network ls -q --filter ${label}); docker rmi $(docker images -q --filter '${images}')`;
}

/**
 * Refuses a failover's restore of a machine that another failover kept on the engine (one whose
 * networks are not all internal, as a test lab's are): its copy would serve production beside
 * that one. The subnet check at createLab misses machines of no captured subnet (host network).
 */
export async function refuseKeptElsewhere(
  docker: Docker,
  engineId: string,
  runId: string,
  machineRef: string,
): Promise<void> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${MACHINE_REF_LABEL}=${machineRef}`] },
  });
  for (const c of containers) {
    const owner = c.Labels?.[RUN_ID_LABEL];
    if (!owner || owner === runId) continue;
    const networks = Object.keys(c.NetworkSettings?.Networks ?? {});
    let testLab = networks.length > 0;
    for (const network of networks) {
      if (!testLab) break;
      try {
        testLab =
          (await docker.getNetwork(network).inspect()).Internal === true;
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
    }
    if (testLab) continue;
    const name = (c.Names?.[0] ?? c.Id).replace(/^\//, '');
    throw new ConflictError(
      `machine ${machineRef} is already on engine ${engineId}: failover ${owner} kept it as container ${name} (${c.State}), and this failover's copy would serve production beside it. ` +
        `Fail over onto another hypervisor host or, once production no longer needs what failover ${owner} kept, ${releaseFirst(owner)}`,
    );
  }
}
