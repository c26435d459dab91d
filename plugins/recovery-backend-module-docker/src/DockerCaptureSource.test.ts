import { memoryInUseOf } from './DockerCaptureSource';

describe('memoryInUseOf', () => {
  const MiB = 1024 ** 2;

  it('counts what docker stats counts on cgroup v2: the usage without the inactive file cache', () => {
    expect(memoryInUseOf({ usage: 50 * MiB, stats: { inactive_file: 8 * MiB, active_file: 2 * MiB } })).toBe(42 * MiB);
  });

  it("on cgroup v1, leaves out the hierarchy's inactive file cache (total_), not only the cgroup's own", () => {
    // A machine with cgroups of its own (systemd inside): most of its cache is in them.
    expect(memoryInUseOf({ usage: 50 * MiB, stats: { inactive_file: 1 * MiB, total_inactive_file: 30 * MiB } })).toBe(20 * MiB);
  });

  it('says the usage, not nothing, where the cache figure is not below it', () => {
    expect(memoryInUseOf({ usage: 10 * MiB, stats: { inactive_file: 12 * MiB } })).toBe(10 * MiB);
    expect(memoryInUseOf({ usage: 10 * MiB, stats: { total_inactive_file: 10 * MiB, inactive_file: 4 * MiB } })).toBe(6 * MiB);
  });

  it('is undefined where the engine keeps no figures', () => {
    expect(memoryInUseOf(undefined)).toBeUndefined();
    expect(memoryInUseOf({})).toBeUndefined();
    expect(memoryInUseOf({ usage: 0, stats: {} })).toBeUndefined();
    expect(memoryInUseOf({ usage: 7 * MiB })).toBe(7 * MiB);
  });
});
