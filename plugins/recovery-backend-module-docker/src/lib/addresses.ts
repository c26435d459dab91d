import {
  familyBits,
  formatIp,
  parseCidr,
  parseIp,
} from '@backstage-recovery/plugin-recovery-node';

// Address arithmetic for lab networks, of both families: which addresses the host may give its
// own containers.

/** The subnet's first host address: Docker's gateway when none is given. */
export function firstHost(subnet: string): string | undefined {
  const net = parseCidr(subnet);
  return net && net.size > 2n
    ? formatIp(net.family, net.value + 1n)
    : undefined;
}

/**
 * The block of `subnet` Docker picks a lab's dynamic addresses from (its `IPRange`): the largest,
 * then highest, aligned block holding none of `reserved` (the machines' production addresses,
 * the gateway). Production hands out its own dynamic addresses from the bottom of the subnet,
 * so the top is where the lab's helpers and host-network machines collide with none of them. An
 * IPv6 subnet's as an IPv4 one's: Docker hands out IPv6 addresses from the bottom too.
 */
export function helperRange(
  subnet: string,
  reserved: Iterable<string | undefined>,
): string | undefined {
  const net = parseCidr(subnet);
  const bits = net && familyBits(net.family);
  if (!net || !bits || net.prefix > bits - 3) return undefined;
  const taken = addressesOf(net.family, reserved);
  // Each halving leaves at most one block per reserved address to pass over: few tries.
  for (let prefix = net.prefix + 1; prefix <= bits - 2; prefix++) {
    const size = 1n << BigInt(bits - prefix);
    for (
      let start = net.value + net.size - size;
      start >= net.value;
      start -= size
    ) {
      if (!taken.some(t => t >= start && t < start + size))
        return `${formatIp(net.family, start)}/${prefix}`;
    }
  }
  return undefined;
}

/** The addresses of `family` among `ips` (written with or without a prefix) as numbers. */
function addressesOf(
  family: 4 | 6,
  ips: Iterable<string | undefined>,
): bigint[] {
  return [...ips].flatMap(ip => {
    const address = ip ? parseIp(ip.split('/')[0]) : undefined;
    return address?.family === family ? [address.value] : [];
  });
}

/** The highest address of `range` (in `subnet`) that is no network or broadcast address and not in `used`. */
export function highestFree(
  subnet: string,
  range: string,
  used: Iterable<string | undefined>,
): string | undefined {
  const net = parseCidr(subnet);
  const block = parseCidr(range);
  if (!net || !block || block.family !== net.family) return undefined;
  const taken = new Set(addressesOf(net.family, used));
  const low = block.value > net.value ? block.value : net.value + 1n;
  const top = block.value + block.size;
  for (
    let n =
      (top < net.value + net.size - 1n ? top : net.value + net.size - 1n) - 1n;
    n >= low;
    n--
  ) {
    if (!taken.has(n)) return formatIp(net.family, n);
  }
  return undefined;
}
