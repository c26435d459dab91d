import { firstHost, helperRange, highestFree } from './addresses';

describe('lab addresses', () => {
  it('keeps the top of the subnet for the lab, clear of every production address and the gateway', () => {
    expect(
      helperRange('172.29.77.0/24', [
        '172.29.77.2',
        '172.29.77.3',
        '172.29.77.1',
      ]),
    ).toBe('172.29.77.128/25');
    expect(helperRange('172.18.0.0/16', ['172.18.0.1', '172.18.0.2'])).toBe(
      '172.18.128.0/17',
    );
    // A production address in the top half: the largest block left, highest first.
    expect(helperRange('10.0.0.0/24', ['10.0.0.1', '10.0.0.200'])).toBe(
      '10.0.0.128/26',
    );
    expect(
      helperRange('10.0.0.0/24', ['10.0.0.254', '10.0.0.1', '10.0.0.150']),
    ).toBe('10.0.0.64/26');
    expect(
      helperRange('10.0.0.0/29', ['10.0.0.1', '10.0.0.5']),
    ).toBeUndefined();
    expect(helperRange('10.0.0.0/28', ['10.0.0.1'])).toBe('10.0.0.8/29');
    expect(helperRange('10.0.0.0/30', [])).toBeUndefined();
  });

  it("keeps an IPv6 subnet's top for the lab too, clear of production's IPv6 addresses however written", () => {
    expect(helperRange('fd00:233::/64', ['fd00:233::1', 'fd00:233::11'])).toBe(
      'fd00:233:0:0:8000::/65',
    );
    // A production address in the top half (written uncompressed): the largest block left, highest first.
    expect(
      helperRange('fd00:233::/64', [
        'fd00:233::1',
        'FD00:0233:0000:0000:ffff:0000:0000:0001',
      ]),
    ).toBe('fd00:233:0:0:8000::/66');
    expect(helperRange('fd00::/125', ['fd00::1', 'fd00::5'])).toBeUndefined();
    expect(helperRange('fd00::/124', ['fd00::1'])).toBe('fd00::8/125');
    expect(helperRange('fd00::/126', [])).toBeUndefined();
    // Addresses of the other family reserve nothing here.
    expect(helperRange('10.0.0.0/24', ['fd00::1', '10.0.0.1'])).toBe(
      '10.0.0.128/25',
    );
  });

  it('gives a helper the highest free address of the range, never broadcast nor network address', () => {
    expect(
      highestFree('172.29.77.0/24', '172.29.77.128/25', ['172.29.77.1']),
    ).toBe('172.29.77.254');
    expect(
      highestFree('172.29.77.0/24', '172.29.77.128/25', [
        '172.29.77.254/24',
        undefined,
      ]),
    ).toBe('172.29.77.253');
    expect(
      highestFree('10.0.0.0/24', '10.0.0.0/30', ['10.0.0.3', '10.0.0.2']),
    ).toBe('10.0.0.1');
    expect(
      highestFree('10.0.0.0/24', '10.0.0.0/31', ['10.0.0.1']),
    ).toBeUndefined();
  });

  it('gives a helper the highest free IPv6 address of the range, passing over those in use', () => {
    expect(
      highestFree('fd00:233::/64', 'fd00:233:0:0:8000::/65', [
        'fd00:233::1',
        'fd00:233::ffff:ffff:ffff:fffe/64',
      ]),
    ).toBe('fd00:233::ffff:ffff:ffff:fffd');
    expect(
      highestFree('fd00:233::/64', '172.29.77.128/25', []),
    ).toBeUndefined();
  });

  it('names the gateway Docker would choose', () => {
    expect(firstHost('fd00:233::/64')).toBe('fd00:233::1');
    expect(firstHost('172.29.77.0/24')).toBe('172.29.77.1');
    expect(firstHost('172.29.77.5/24')).toBe('172.29.77.1');
    expect(firstHost('10.0.0.0/31')).toBeUndefined();
  });
});
