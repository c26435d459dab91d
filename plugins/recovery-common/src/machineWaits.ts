/**
 * What one machine of a dependent service waits for, for one of its dependencies running on
 * `dependencyMachines`: every one of them, unless the machine hosts a replica of the dependency
 * itself. Its services have the dependency there; two machines that each host replicas of both
 * services would otherwise wait for each other.
 *
 * @public
 */
export function machinesAwaited(
  machine: string,
  dependencyMachines: Iterable<string>,
): string[] {
  const list = [...dependencyMachines];
  return list.includes(machine) ? [] : list;
}
