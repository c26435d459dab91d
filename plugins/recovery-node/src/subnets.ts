/**
 * Whether two IPv4 CIDR blocks share an address; false for anything else (IPv6, not a block), which
 * no check here can judge. The backend and hypervisor hosts both ask it of production's subnets.
 *
 * @public
 */
export function subnetsOverlap(a: string, b: string): boolean {
  const x = ipv4Block(a);
  const y = ipv4Block(b);
  return !!x && !!y && x.start < y.end && y.start < x.end;
}

/** The addresses of an IPv4 CIDR block as [start, end), the address's host bits cleared. */
function ipv4Block(cidr: string): { start: number; end: number } | undefined {
  const [ip, bits] = cidr.split('/');
  const parts = ip.split('.').map(Number);
  if (
    parts.length !== 4 ||
    parts.some(p => !Number.isInteger(p) || p < 0 || p > 255) ||
    !/^\d{1,2}$/.test(bits ?? '')
  )
    return undefined;
  const prefix = Number(bits);
  if (prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const address = parts.reduce((n, p) => n * 256 + p, 0);
  const start = address - (address % size);
  return { start, end: start + size };
}
