import { groupBy } from './groupBy';

describe('groupBy', () => {
  it('groups items of the same key in their order, the groups in the order each key first came', () => {
    const groups = groupBy(['b1', 'a1', 'b2', 'c1', 'a2'], s => s[0]);
    expect([...groups.keys()]).toEqual(['b', 'a', 'c']);
    expect([...groups.values()]).toEqual([['b1', 'b2'], ['a1', 'a2'], ['c1']]);
  });

  it('gives no group for no items', () => {
    expect(groupBy([], String).size).toBe(0);
  });
});
