import { subnetsOverlap } from './subnets';

describe('subnetsOverlap', () => {
  it.each([
    ['172.29.10.0/24', '172.29.10.0/24', true],
    ['172.29.0.0/16', '172.29.10.0/24', true],
    ['172.29.10.128/25', '172.29.10.0/24', true],
    ['172.29.10.5/24', '172.29.10.200/32', true], // host bits of a block are cleared
    ['172.29.10.0/25', '172.29.10.128/25', false],
    ['172.29.10.0/24', '172.29.11.0/24', false],
    ['0.0.0.0/0', '10.1.2.3/32', true],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(subnetsOverlap(a, b)).toBe(expected);
    expect(subnetsOverlap(b, a)).toBe(expected);
  });
  it.each([
    ['fd00::/64'],
    ['172.29.10.0'],
    ['172.29.10.0/33'],
    ['172.29.300.0/24'],
    ['172.29.10.0/ 24'],
    [''],
  ])('judges nothing of %j: false', bad => {
    expect(subnetsOverlap(bad, '172.29.10.0/24')).toBe(false);
  });
});
