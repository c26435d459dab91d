/** IPv4 arithmetic for lab networks: which addresses the host may give its own containers. */

function toInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

function toIp(n: number): string {
  return [24, 16, 8, 0]
    .map(shift => Math.floor(n / 2 ** shift) % 256)
    .join('.');
}

function parseSubnet(
  cidr: string,
): { base: number; prefix: number; size: number } | undefined {
  const [ip, bits] = cidr.split('/');
  const n = toInt(ip);
  const prefix = Number(bits);
  if (n === undefined || !/^\d{1,2}$/.test(bits ?? '') || prefix > 32)
    return undefined;
  const size = 2 ** (32 - prefix);
  return { base: n - (n % size), prefix, size };
}

/** The subnet's first host address: Docker's gateway when none is given. */
export function firstHost(subnet: string): string | undefined {
  const net = parseSubnet(subnet);
  return net && net.size > 2 ? toIp(net.base + 1) : undefined;
}

/**
 * The block of `subnet` Docker picks a lab's dynamic addresses from (its `IPRange`): the largest,
 * then highest, aligned block holding none of `reserved` (the machines' production addresses,
 * the gateway). Production hands out its own dynamic addresses from the bottom of the subnet,
 * so the top is where the lab's helpers and host-network machines collide with none of them.
 */
export function helperRange(
  subnet: string,
  reserved: Iterable<string | undefined>,
): string | undefined {
  const net = parseSubnet(subnet);
  if (!net || net.prefix > 29) return undefined;
  const taken = [...reserved]
    .map(ip => (ip ? toInt(ip) : undefined))
    .filter((n): n is number => n !== undefined);
  for (let prefix = net.prefix + 1; prefix <= 30; prefix++) {
    const size = 2 ** (32 - prefix);
    for (
      let start = net.base + net.size - size;
      start >= net.base;
      start -= size
    ) {
      if (!taken.some(t => t >= start && t < start + size))
        return `${toIp(start)}/${prefix}`;
    }
  }
  return undefined;
}

/** The highest address of `range` (in `subnet`) that is no network or broadcast address and not in `used`. */
export function highestFree(
  subnet: string,
  range: string,
  used: Iterable<string | undefined>,
): string | undefined {
  const net = parseSubnet(subnet);
  const block = parseSubnet(range);
  if (!net || !block) return undefined;
  const taken = new Set(
    [...used].map(ip => (ip ? toInt(ip.split('/')[0]) : undefined)),
  );
  const low = Math.max(block.base, net.base + 1);
  for (
    let n = Math.min(block.base + block.size, net.base + net.size - 1) - 1;
    n >= low;
    n--
  ) {
    if (!taken.has(n)) return toIp(n);
  }
  return undefined;
}
