import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { artifactPath, imagePathComponent } from './captureNames';
import { DockerCaptureSource } from './DockerCaptureSource';

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

describe('artifactPath', () => {
  let dir: string;
  let store: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'artifact-path-'));
    store = join(dir, 'store');
    mkdirSync(store);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves a file of the capture store, as captures record it or by its full path', () => {
    expect(artifactPath(store, 'cap-1.tar')).toBe(join(store, 'cap-1.tar'));
    expect(artifactPath(store, join(store, 'cap-1.tar'))).toBe(
      join(store, 'cap-1.tar'),
    );
    expect(artifactPath(store, '..cap.tar')).toBe(join(store, '..cap.tar'));
  });

  it('refuses one outside the store, as a changed record could name: discard does not remove it', async () => {
    const outside = join(dir, 'precious');
    writeFileSync(outside, 'keep');
    for (const artifact of [outside, '../precious', 'a/../../precious', '']) {
      expect(() => artifactPath(store, artifact)).toThrow(
        `artifact ${JSON.stringify(artifact)} is not a file of the capture store ${store}: refused (a capture keeps its files there; a record naming another was not written by one)`,
      );
    }
    // Refused before any call to the engine.
    const source = new DockerCaptureSource('primary', {} as Docker, {
      storeDirectory: store,
    });
    await expect(
      source.discard({ captureId: 'cap-1', artifact: outside }),
    ).rejects.toThrow('is not a file of the capture store');
    await expect(
      source.discard({
        captureId: 'cap-1',
        artifact: 'cap-1.tar',
        volumes: [
          {
            destination: '/data',
            artifact: '../precious',
            checksum: 'sha256:x',
            sizeBytes: 4,
          },
        ],
      }),
    ).rejects.toThrow('is not a file of the capture store');
    expect(existsSync(outside)).toBe(true);
  });
});
