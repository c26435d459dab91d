/** An IPv4 octet as Node's `isIPv4` takes it: 0 to 255, no leading zero. */
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
/** 127.0.0.0/8 in dotted-quad form. */
const IPV4_LOOPBACK = new RegExp(`^127(?:\\.${OCTET}){3}$`);

/**
 * Whether a host name is this machine's loopback, so that traffic to it never leaves the machine:
 * `localhost`, an address of 127.0.0.0/8 in dotted-quad form, or `::1`; in any case, IPv6 in
 * brackets or not (a WHATWG URL's `hostname` gives `[::1]`, and normalises `127.1` and
 * `[0:0::1]` into these forms). Not `*.localhost` nor `localhost.`: resolvers may send those to
 * DNS, search domains and all.
 *
 * @public
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return name === 'localhost' || name === '::1' || IPV4_LOOPBACK.test(name);
}
