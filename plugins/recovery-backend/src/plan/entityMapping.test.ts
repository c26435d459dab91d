import type { Entity } from '@backstage/catalog-model';
import { readMachine, readObjectives, readProbes } from './entityMapping';

const P = 'recovery.backstage-recovery.io/';
const entity = (kind: string, annotations: Record<string, string>, spec: object = {}): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name: 'x', namespace: 'default', annotations },
  spec,
});

describe('entity mapping', () => {
  it('reads where a machine lives', () => {
    const { locator, problems } = readMachine(
      entity('Resource', { [`${P}engine`]: 'primary', [`${P}container`]: 'web-01' }),
    );
    expect(problems).toEqual([]);
    expect(locator).toEqual({
      machineRef: 'resource:default/x',
      engine: 'primary',
      container: 'web-01',
    });
  });

  it('names each missing or bad machine annotation', () => {
    const missing = readMachine(entity('Resource', {}));
    expect(missing.locator).toBeUndefined();
    expect(missing.problems.map(p => p.annotation)).toEqual([
      `${P}engine`,
      `${P}container`,
    ]);
    const bad = readMachine(
      entity('Resource', { [`${P}engine`]: 'primary', [`${P}container`]: 'no spaces' }),
    );
    expect(bad.problems[0].message).toContain('"no spaces" is not a valid container name');
  });

  it('parses probes and names the bad one', () => {
    const { probes, problems } = readProbes(
      entity('Component', { [`${P}probes`]: 'tcp:53, http:80/healthz, tcp:99999, udp:53' }),
    );
    expect(probes).toEqual([
      { kind: 'tcp', port: 53 },
      { kind: 'http', port: 80, path: '/healthz' },
    ]);
    expect(problems.map(p => p.message)).toEqual([
      expect.stringContaining('probe "tcp:99999"'),
      expect.stringContaining('probe "udp:53"'),
    ]);
    expect(problems[0].annotation).toBe(`${P}probes`);
  });

  it('reads the probe kind in any case, and says how probes are separated', () => {
    const { probes, problems } = readProbes(entity('Component', { [`${P}probes`]: ' HTTP:80/Healthz , Tcp:53, tcp:1 tcp:2' }));
    expect(probes).toEqual([
      { kind: 'http', port: 80, path: '/Healthz' },
      { kind: 'tcp', port: 53 },
    ]);
    expect(problems.map(p => p.message)).toEqual([
      `component:default/x: probe "tcp:1 tcp:2" in ${P}probes is not valid; expected tcp:PORT or http:PORT/PATH, separated by commas`,
    ]);
  });

  it('reads objectives with defaults and reports bad durations', () => {
    const defaults = { rpoSeconds: 86400, rtoSeconds: 3600 };
    expect(readObjectives(entity('Component', { [`${P}rpo`]: '4h' }), defaults)).toEqual({
      rpoSeconds: 14400,
      rtoSeconds: 3600,
      problems: [],
    });
    const bad = readObjectives(entity('Component', { [`${P}rto`]: 'soon' }), defaults);
    expect(bad.rtoSeconds).toBe(3600);
    expect(bad.problems[0]).toMatchObject({
      annotation: `${P}rto`,
      message: expect.stringContaining('"soon" is not a duration'),
    });
  });
});
