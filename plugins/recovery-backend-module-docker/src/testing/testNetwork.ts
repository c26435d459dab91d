import type Docker from 'dockerode';

/**
 * Creates a test's network, named `…${suffix}` on fixed subnets, after removing what an
 * interrupted earlier run of the same test left: its network there (the same name but for the
 * suffix, on one of these subnets) with the containers on it. The engines keep their data root from
 * one start to the next, so without this a run killed before its afterAll would fail every later
 * run's ("Pool overlaps with other one on this address space").
 */
export async function createTestNetwork(
  docker: Docker,
  options: Docker.NetworkCreateOptions & { Name: string },
  suffix: string,
): Promise<Docker.Network> {
  if (!options.Name.endsWith(suffix))
    throw new Error(`test network ${options.Name} does not end with ${suffix}`);
  const prefix = options.Name.slice(0, -suffix.length);
  const subnets = new Set(
    (options.IPAM?.Config ?? []).map(c => c.Subnet?.toLowerCase()),
  );
  for (const network of await docker.listNetworks()) {
    const left =
      network.Name.startsWith(prefix) &&
      (network.IPAM?.Config ?? []).some(c =>
        subnets.has(c.Subnet?.toLowerCase()),
      );
    if (!left) continue;
    const { Containers } = await docker.getNetwork(network.Id).inspect();
    for (const id of Object.keys(Containers ?? {}))
      await docker.getContainer(id).remove({ force: true, v: true });
    await docker.getNetwork(network.Id).remove();
  }
  return docker.createNetwork(options);
}
