import { imagePathComponent } from './captureNames';

// An image path component: lowercase alphanumerics joined by `.`, `_`, `__` or dashes.
const VALID = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

describe('imagePathComponent', () => {
  it('keeps a name that is a valid image path component as it is', () => {
    for (const name of ['web-01', 'db.primary', 'a_b', 'a__b', 'a--b'])
      expect(imagePathComponent(name)).toBe(name);
  });

  it('makes any container name a valid one, readable, with a hash of the name', () => {
    for (const name of [
      'odd_.x',
      'web-',
      'a..b',
      'db.-1',
      'UPPER_-x',
      '_',
      'A',
    ])
      expect(imagePathComponent(name)).toMatch(VALID);
    expect(imagePathComponent('UPPER_-x')).toMatch(/^upper-x-[0-9a-f]{8}$/);
    expect(imagePathComponent('x'.repeat(300)).length).toBeLessThanOrEqual(100);
  });

  it('keeps apart names alike once lowercased and trimmed', () => {
    const names = ['Web', 'web-', 'WEB', 'web.', 'web'];
    expect(new Set(names.map(imagePathComponent)).size).toBe(names.length);
  });
});
