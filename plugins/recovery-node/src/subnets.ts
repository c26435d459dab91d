import type { CapturedNetwork } from './providers';

/**
 * An IP address as a number, with its family: IPv6 written any way (`::` compression, leading
 * zeros, upper case, a dotted IPv4 tail) is one number.
 *
 * @public
 */
export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

/**
 * A CIDR block: its first address (the host bits of the written address cleared), its prefix
 * length and how many addresses it holds.
 *
 * @public
 */
export interface IpBlock extends IpAddress {
  prefix: number;
  size: bigint;
}

/**
 * Address bits of each family.
 *
 * @public
 */
export function familyBits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function ipv4Value(ip: string): bigint | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256n + BigInt(p);
  }
  return n;
}

/**
 * The hextets of `groups` (a dotted IPv4 tail, where `endsAddress`, counts as two); undefined
 * where one is malformed. Only the address's last group may be dotted: not one before `::`.
 */
function hextets(groups: string[], endsAddress: boolean): number[] | undefined {
  const out: number[] = [];
  for (const [i, g] of groups.entries()) {
    if (endsAddress && i === groups.length - 1 && g.includes('.')) {
      const v4 = ipv4Value(g);
      if (v4 === undefined) return undefined;
      out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else if (/^[0-9a-f]{1,4}$/i.test(g)) {
      out.push(parseInt(g, 16));
    } else {
      return undefined;
    }
  }
  return out;
}

function ipv6Value(ip: string): bigint | undefined {
  const halves = ip.split('::');
  if (halves.length > 2) return undefined;
  const split = (s: string) => (s === '' ? [] : s.split(':'));
  const head = hextets(split(halves[0]), halves.length === 1);
  const tail = halves.length === 2 ? hextets(split(halves[1]), true) : [];
  if (!head || !tail) return undefined;
  // `::` stands for one zero group at least.
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail].reduce(
    (n, h) => (n << 16n) | BigInt(h),
    0n,
  );
}

/**
 * An IPv4 or IPv6 address (without prefix or zone) as a number; undefined for anything else.
 *
 * @public
 */
export function parseIp(ip: string): IpAddress | undefined {
  if (ip.includes(':')) {
    const value = ipv6Value(ip);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = ipv4Value(ip);
  return value === undefined ? undefined : { family: 4, value };
}

/**
 * An IPv4 or IPv6 CIDR block (`172.29.10.0/24`, `fd00:233::/64`); undefined for anything else.
 *
 * @public
 */
export function parseCidr(cidr: string): IpBlock | undefined {
  const [ip, bits, ...rest] = cidr.split('/');
  const address = parseIp(ip);
  if (!address || rest.length > 0 || !/^\d{1,3}$/.test(bits ?? ''))
    return undefined;
  const prefix = Number(bits);
  const width = familyBits(address.family);
  if (prefix > width) return undefined;
  const size = 1n << BigInt(width - prefix);
  return {
    family: address.family,
    value: address.value - (address.value % size),
    prefix,
    size,
  };
}

/**
 * The address `value` of `family` as Docker writes it: IPv6 lower case, its longest run of two or
 * more zero groups compressed to `::` (RFC 5952).
 *
 * @public
 */
export function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4)
    return [24n, 16n, 8n, 0n].map(s => String((value >> s) & 255n)).join('.');
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map(s =>
    Number((value >> s) & 0xffffn),
  );
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]) => gs.map(g => g.toString(16)).join(':');
  return best.at < 0
    ? hex(groups)
    : `${hex(groups.slice(0, best.at))}::${hex(groups.slice(best.at + best.length))}`;
}

/**
 * Whether two addresses are the same one, however each is written (`fd00::11`, `FD00:0:0::0011`);
 * an address with a prefix (`fd00::11/64`, as Docker lists a container's) counts as its address.
 *
 * @public
 */
export function sameIp(a: string, b: string): boolean {
  const x = parseIp(a.split('/')[0]);
  const y = parseIp(b.split('/')[0]);
  return !!x && !!y && x.family === y.family && x.value === y.value;
}

/**
 * Whether two CIDR blocks are the same one, however each is written (`fd00:233::/64`,
 * `fd00:233:0:0::/64`): same family, first address and prefix; false for anything that is no block.
 *
 * @public
 */
export function sameSubnet(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return (
    !!x &&
    !!y &&
    x.family === y.family &&
    x.value === y.value &&
    x.prefix === y.prefix
  );
}

/**
 * Whether two CIDR blocks of the same family (IPv4 or IPv6) share an address; false for blocks of
 * two families and for anything that is no block, which no check here can judge. The backend and
 * hypervisor hosts both ask it of production's subnets.
 *
 * @public
 */
export function subnetsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return (
    !!x &&
    !!y &&
    x.family === y.family &&
    x.value < y.value + y.size &&
    y.value < x.value + x.size
  );
}

/**
 * The subnets of both families production gave `network` (IPv4, then IPv6 where it had one): a
 * lab needs each as it was, and each is held or free on a host apart.
 *
 * @public
 */
export function productionSubnets(network: CapturedNetwork): string[] {
  return [network.subnet, network.ipv6Subnet].filter((s): s is string => !!s);
}
