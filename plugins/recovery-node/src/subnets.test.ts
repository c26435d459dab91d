import {
  formatIp,
  parseCidr,
  parseIp,
  sameIp,
  sameSubnet,
  subnetsOverlap,
} from './subnets';

describe('subnetsOverlap', () => {
  it.each([
    ['172.29.10.0/24', '172.29.10.0/24', true],
    ['172.29.0.0/16', '172.29.10.0/24', true],
    ['172.29.10.128/25', '172.29.10.0/24', true],
    ['172.29.10.5/24', '172.29.10.200/32', true], // host bits of a block are cleared
    ['172.29.10.0/25', '172.29.10.128/25', false],
    ['172.29.10.0/24', '172.29.11.0/24', false],
    ['0.0.0.0/0', '10.1.2.3/32', true],
    // IPv6, however written: `::` anywhere, leading zeros, upper case.
    ['fd00:233::/64', 'fd00:233::/64', true],
    ['fd00:233::/64', 'FD00:0233:0000:0000::/64', true],
    ['fd00:233::/64', 'fd00:233:0:0:8000::/65', true],
    ['fd00:233::/48', 'fd00:233:0:ffff::/64', true],
    ['fd00:233::11/64', 'fd00:233::ffff/128', true], // host bits of a block are cleared
    ['fd00:233::/64', 'fd00:233:0:1::/64', false],
    ['fd00:233::/65', 'fd00:233::8000:0:0:0/65', false],
    ['fd00::/8', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', true],
    ['fd00::/8', 'fe00::/8', false],
    ['::/0', '2001:db8::1/128', true],
    ['::ffff:172.29.10.0/120', '::ffff:ac1d:a80/128', true], // a dotted IPv4 tail
    // Two families never overlap, whatever their numbers.
    ['0.0.0.0/0', '::/0', false],
    ['10.0.0.0/8', '::a00:0/104', false],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(subnetsOverlap(a, b)).toBe(expected);
    expect(subnetsOverlap(b, a)).toBe(expected);
  });
  it.each([
    ['172.29.10.0'],
    ['172.29.10.0/33'],
    ['172.29.300.0/24'],
    ['172.29.10.0/ 24'],
    [''],
    ['fd00::/129'],
    ['fd00:::1/64'],
    ['fd00::1::2/64'],
    ['1:2:3:4:5:6:7:8:9/64'],
    ['1:2:3:4:5:6:7::8/64'], // `::` for no group at all
    ['fd00:12345::/64'],
    ['fd00::g/64'],
    ['fe80::1%eth0/64'],
    ['fd00::/64/1'],
  ])('judges nothing of %j: false', bad => {
    expect(subnetsOverlap(bad, '172.29.10.0/24')).toBe(false);
    expect(subnetsOverlap(bad, '::/0')).toBe(false);
  });
});

describe('IP addresses of both families', () => {
  it('reads IPv6 with `::` compression at the start, middle and end as one number', () => {
    expect(parseIp('::')).toEqual({ family: 6, value: 0n });
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIp('fd00::')?.value).toBe(0xfd00n << 112n);
    expect(parseIp('fd00:233::11')?.value).toBe(
      (0xfd00n << 112n) | (0x233n << 96n) | 0x11n,
    );
    expect(parseIp('1:2:3:4:5:6:7::')?.value).toBe(
      parseIp('1:2:3:4:5:6:7:0')?.value,
    );
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
  });

  it('writes addresses as Docker does, the longest run of zero groups compressed', () => {
    const again = (ip: string) => {
      const a = parseIp(ip)!;
      return formatIp(a.family, a.value);
    };
    expect(again('FD00:0233:0000:0000:0000:0000:0000:0011')).toBe(
      'fd00:233::11',
    );
    expect(again('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(again('1:0:0:2:0:0:3:4')).toBe('1::2:0:0:3:4'); // a tie: the first run
    expect(again('1:0:2:3:4:5:6:7')).toBe('1:0:2:3:4:5:6:7'); // one zero group stays
    expect(again('::')).toBe('::');
    expect(again('fd00::')).toBe('fd00::');
    expect(again('::1')).toBe('::1');
    expect(again('172.29.10.5')).toBe('172.29.10.5');
  });

  it('tells the same address however written, a prefix ignored, never across families', () => {
    expect(sameIp('fd00:233::11', 'fd00:233:0:0:0:0:0:11')).toBe(true);
    expect(sameIp('fd00:233::11/64', 'FD00:233::0011')).toBe(true);
    expect(sameIp('fd00:233::11', 'fd00:233::12')).toBe(false);
    expect(sameIp('172.29.10.5/24', '172.29.10.5')).toBe(true);
    expect(sameIp('::ac1d:a05', '172.29.10.5')).toBe(false);
    expect(sameIp('', '')).toBe(false);
  });

  it('reads a dotted IPv4 group only as the last of an address, never before `::`', () => {
    expect(parseIp('::ffff:1.2.3.4')?.value).toBe(0xffff01020304n);
    expect(parseIp('1:2:3:4:5:6:1.2.3.4')?.family).toBe(6);
    expect(parseIp('1.2.3.4::')).toBeUndefined();
    expect(parseIp('1:2:1.2.3.4::5')).toBeUndefined();
    expect(parseCidr('1.2.3.4::/64')).toBeUndefined();
  });

  it('tells the same block however written, never one of another prefix or family', () => {
    expect(sameSubnet('fd00:233::/64', 'FD00:233:0:0::/64')).toBe(true);
    expect(sameSubnet('fd00:233::11/64', 'fd00:233::/64')).toBe(true);
    expect(sameSubnet('172.29.10.0/24', '172.29.10.0/24')).toBe(true);
    expect(sameSubnet('fd00:233::/64', 'fd00:233::/65')).toBe(false);
    expect(sameSubnet('172.29.10.0/24', '172.29.0.0/16')).toBe(false);
    expect(sameSubnet('0.0.0.0/0', '::/0')).toBe(false);
    expect(sameSubnet('', '')).toBe(false);
  });

  it('clears the host bits of a block and counts its addresses', () => {
    expect(parseCidr('fd00:233::11/64')).toEqual({
      family: 6,
      value: parseIp('fd00:233::')!.value,
      prefix: 64,
      size: 1n << 64n,
    });
    expect(parseCidr('172.29.10.5/24')).toEqual({
      family: 4,
      value: parseIp('172.29.10.0')!.value,
      prefix: 24,
      size: 256n,
    });
  });
});
