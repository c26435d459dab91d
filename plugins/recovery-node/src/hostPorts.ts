import type { HostPortInUse, PortBinding, PublishedPort } from './providers';

/**
 * Which of production's host port bindings a failover publishes on the recovery host, and why each
 * other is not. The rule: a failover publishes every host port production published on every
 * address (of both families, or of one: `0.0.0.0`, `::`) or on loopback, on the same address, so
 * that clients that reached production by it reach the failover copy on the recovery host; a port
 * production let its engine pick is not (no client counts on it), nor one of a range whose pick the
 * capture did not see, nor one bound to another address (the primary host's, which the recovery
 * host does not have; published on every address instead, it would be exposed wider than
 * production had it). A binding listed twice (`-p 8080:80` said again, or in another spelling of
 * its address) is published once. A test recovery publishes none: production still runs, and its
 * lab stays isolated.
 *
 * @public
 */
export function failoverPorts(bindings: PortBinding[] = []): {
  publish: PublishedPort[];
  dropped: Array<{ binding: PortBinding; why: string }>;
} {
  const publish: PublishedPort[] = [];
  const dropped: Array<{ binding: PortBinding; why: string }> = [];
  const seen = new Set<string>();
  for (const binding of bindings) {
    const { containerPort, hostPort, hostPortRange } = binding;
    const address = canonicalAddress(binding.hostIp);
    if (hostPort === undefined && hostPortRange)
      dropped.push({
        binding,
        why: `its engine picks one port of the range ${hostPortRange} as the machine starts, which clients may count on, and the capture saw none bound (the machine was not running): capture it again while it runs for a failover to publish that one`,
      });
    else if (hostPort === undefined)
      dropped.push({
        binding,
        why: "its engine picked production's host port, so no client counts on it",
      });
    else if (address && !isWildcard(address) && !isLoopback(address))
      dropped.push({
        binding,
        why: `bound to ${address}, an address of the primary host, not of the recovery host`,
      });
    else {
      // Twice, Docker would refuse the second (`port is already allocated`).
      const key = `${containerPort} ${hostPort} ${address}`;
      if (seen.has(key)) continue;
      seen.add(key);
      publish.push({
        containerPort,
        hostPort,
        ...(address ? { hostIp: address } : {}),
      });
    }
  }
  return { publish, dropped };
}

/**
 * A binding in words, as `docker port` says it: `8080 -> 80/tcp`, `127.0.0.1:8080 -> 80/tcp`,
 * `[::]:8080 -> 80/tcp`, `(random) -> 80/tcp`; a range as production asked it (`8080-8090 -> 80/tcp`).
 *
 * @public
 */
export function describePortBinding(binding: PortBinding): string {
  const ip = binding.hostIp;
  const at = ip ? `${ip.includes(':') ? `[${ip}]` : ip}:` : '';
  const port = binding.hostPortRange ?? binding.hostPort ?? '(random)';
  return `${at}${port} -> ${binding.containerPort}`;
}

/**
 * The protocol of a port as Docker names it (`80/tcp`, `53/udp`; tcp where it says none).
 *
 * @public
 */
export const protocolOf = (containerPort: string): string =>
  containerPort.split('/')[1] || 'tcp';

/**
 * Whether two host ports are one: the same port and protocol, on addresses that meet
 * ({@link addressesMeet}).
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
    addressesMeet(a.hostIp, b.hostIp)
  );
}

/**
 * Whether a port bound on one host address is taken on the other. The rule, as Docker binds them:
 * no address (absent, or '') is every address of both families, so it meets any; `0.0.0.0` is
 * every IPv4 address (it meets 127.0.0.1, not ::1), `::` every IPv6 address (Docker binds it
 * IPv6-only: it meets ::1, not 127.0.0.1 nor `0.0.0.0`); any other address meets itself alone.
 */
function addressesMeet(a?: string, b?: string): boolean {
  const [x, y] = [canonicalAddress(a), canonicalAddress(b)];
  if (!x || !y || x === y) return true;
  const covers = (wide: string, other: string) =>
    (wide === '0.0.0.0' && !isIPv6(other)) || (wide === '::' && isIPv6(other));
  return covers(x, y) || covers(y, x);
}

/**
 * An address as one spelling of it: without brackets, in lower case, IPv6 compressed
 * (`0:0:0:0:0:0:0:1` is `::1`); '' for none.
 */
function canonicalAddress(ip?: string): string {
  const bare = (ip ?? '')
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  if (!isIPv6(bare)) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare; // A zone (`fe80::1%eth0`): as written.
  }
}

const isIPv6 = (ip: string) => ip.includes(':');

const isWildcard = (ip: string) => ip === '0.0.0.0' || ip === '::';

const isLoopback = (ip: string) => /^127\./.test(ip) || ip === '::1';
