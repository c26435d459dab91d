import type { HostPortInUse, PortBinding, PublishedPort } from './providers';

/**
 * Which of production's host port bindings a failover publishes on the recovery host, and why each
 * other is not. The rule: a failover publishes every host port production published on every
 * address or on loopback, so that clients that reached production by it reach the failover copy on
 * the recovery host; a port production let its engine pick is not (no client counts on it), nor
 * one bound to another address (the primary host's, which the recovery host does not have;
 * published on every address instead, it would be exposed wider than production had it). A test
 * recovery publishes none: production still runs, and its lab stays isolated.
 *
 * @public
 */
export function failoverPorts(bindings: PortBinding[] = []): {
  publish: PublishedPort[];
  dropped: Array<{ binding: PortBinding; why: string }>;
} {
  const publish: PublishedPort[] = [];
  const dropped: Array<{ binding: PortBinding; why: string }> = [];
  for (const binding of bindings) {
    const { containerPort, hostPort, hostIp } = binding;
    if (hostPort === undefined)
      dropped.push({
        binding,
        why: "its engine picked production's host port, so no client counts on it",
      });
    else if (hostIp && !isWildcard(hostIp) && !isLoopback(hostIp))
      dropped.push({
        binding,
        why: `bound to ${hostIp}, an address of the primary host, not of the recovery host`,
      });
    else
      publish.push({
        containerPort,
        hostPort,
        ...(hostIp && isLoopback(hostIp) ? { hostIp } : {}),
      });
  }
  return { publish, dropped };
}

/**
 * A binding in words, as `docker port` says it: `8080 -> 80/tcp`, `127.0.0.1:8080 -> 80/tcp`,
 * `(random) -> 80/tcp`.
 *
 * @public
 */
export function describePortBinding(binding: PortBinding): string {
  const ip = binding.hostIp;
  const at = ip ? `${ip.includes(':') ? `[${ip}]` : ip}:` : '';
  return `${at}${binding.hostPort ?? '(random)'} -> ${binding.containerPort}`;
}

/**
 * The protocol of a port as Docker names it (`80/tcp`, `53/udp`; tcp where it says none).
 *
 * @public
 */
export const protocolOf = (containerPort: string): string =>
  containerPort.split('/')[1] || 'tcp';

/**
 * Whether two host ports are one: the same port and protocol, on addresses that meet (either is
 * every address, or both are the same one). IPv4 and IPv6 wildcards are taken as one: Docker
 * publishes on both.
 *
 * @public
 */
export function hostPortsClash(
  a: Pick<HostPortInUse, 'hostPort' | 'protocol' | 'hostIp'>,
  b: Pick<HostPortInUse, 'hostPort' | 'protocol' | 'hostIp'>,
): boolean {
  return (
    a.hostPort === b.hostPort &&
    a.protocol === b.protocol &&
    (!a.hostIp ||
      !b.hostIp ||
      isWildcard(a.hostIp) ||
      isWildcard(b.hostIp) ||
      a.hostIp === b.hostIp)
  );
}

const isWildcard = (ip: string) => ip === '0.0.0.0' || ip === '::';

const isLoopback = (ip: string) => /^127\./.test(ip) || ip === '::1';
