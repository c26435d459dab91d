import type { Entity } from '@backstage/catalog-model';
import {
  misplacedMachineAnnotations,
  readMachine,
  readObjectives,
  readProbes,
} from './entityMapping';

const P = 'recovery.backstage-recovery.io/';
const entity = (
  kind: string,
  annotations: Record<string, string>,
  spec: object = {},
): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name: 'x', namespace: 'default', annotations },
  spec,
});

describe('entity mapping', () => {
  it('reads where a machine lives', () => {
    const { locator, problems } = readMachine(
      entity('Resource', {
        [`${P}engine`]: 'primary',
        [`${P}container`]: 'web-01',
      }),
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
      entity('Resource', {
        [`${P}engine`]: 'primary',
        [`${P}container`]: 'no spaces',
      }),
    );
    expect(bad.problems[0].message).toContain(
      '"no spaces" is not a valid container name',
    );
  });

  it('names engine and container put on an entity that is no machine, and where they belong', () => {
    const at = { [`${P}engine`]: 'primary', [`${P}container`]: 'db-01' };
    expect(
      misplacedMachineAnnotations(entity('Component', at, { type: 'service' })),
    ).toEqual([
      {
        entityRef: 'component:default/x',
        annotation: `${P}engine`,
        message: `component:default/x is a Component of type service, not a machine: ${P}engine "primary" is read only on a machine Resource (spec.type: machine), so it is ignored here; move it to the machine Resource component:default/x runs on (its dependsOn)`,
      },
      {
        entityRef: 'component:default/x',
        annotation: `${P}container`,
        message: `component:default/x is a Component of type service, not a machine: ${P}container "db-01" is read only on a machine Resource (spec.type: machine), so it is ignored here; move it to the machine Resource component:default/x runs on (its dependsOn)`,
      },
    ]);
    // A machine typed otherwise may be meant: say so.
    expect(
      misplacedMachineAnnotations(
        entity('Resource', { [`${P}container`]: 'db-01' }, { type: 'vm' }),
      ).map(p => p.message),
    ).toEqual([
      `resource:default/x is a Resource of type vm, not a machine: ${P}container "db-01" is read only on a machine Resource (spec.type: machine), so it is ignored here; move it to the machine Resource resource:default/x runs on (its dependsOn), or, if resource:default/x is itself a machine, set its spec.type to machine`,
    ]);
    expect(
      misplacedMachineAnnotations(
        entity('System', { [`${P}engine`]: 'primary' }),
      )[0].message,
    ).toMatch(
      /^system:default\/x is a System, not a machine: .* move it to the machine Resource it describes$/,
    );
    expect(
      misplacedMachineAnnotations(
        entity('Component', { [`${P}probes`]: 'tcp:80' }),
      ),
    ).toEqual([]);
  });

  it('parses probes and names the bad one', () => {
    const { probes, problems } = readProbes(
      entity('Component', {
        [`${P}probes`]: 'tcp:53, http:80/healthz, tcp:99999, udp:53',
      }),
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
    const { probes, problems } = readProbes(
      entity('Component', {
        [`${P}probes`]: ' HTTP:80/Healthz , Tcp:53, tcp:1 tcp:2',
      }),
    );
    expect(probes).toEqual([
      { kind: 'http', port: 80, path: '/Healthz' },
      { kind: 'tcp', port: 53 },
    ]);
    expect(problems.map(p => p.message)).toEqual([
      `component:default/x: probe "tcp:1 tcp:2" in ${P}probes is not valid (probes are separated by commas); expected tcp:PORT or http:PORT/PATH, separated by commas`,
    ]);
  });

  it('probes a probe named twice once, and says what is wrong with a probe as people get it wrong', () => {
    const { probes, problems } = readProbes(
      entity('Component', {
        [`${P}probes`]:
          'tcp:80, TCP:80, http:80, http:80/, http:80/health?x=1, tcp:0, tcp:70000, https:443/, http://web:80/, tcp:80/x, tcp:53; tcp:54, http:80/a b',
      }),
    );
    expect(probes).toEqual([
      { kind: 'tcp', port: 80 },
      { kind: 'http', port: 80, path: '/' },
      { kind: 'http', port: 80, path: '/health?x=1' },
    ]);
    const why = (item: string) =>
      problems
        .find(p => p.message.includes(`probe "${item}"`))
        ?.message.split(' is not valid')[1]
        .split(';')[0];
    expect(
      [
        'tcp:0',
        'tcp:70000',
        'https:443/',
        'http://web:80/',
        'tcp:80/x',
        'tcp:53; tcp:54',
        'http:80/a b',
      ].map(why),
    ).toEqual([
      ' (port 0 is not between 1 and 65535)',
      ' (port 70000 is not between 1 and 65535)',
      ' (there are no https probes: tcp:443 checks that the port answers)',
      " (a port and path, not a URL: the lab probes each of the service's machines)",
      ' (a tcp probe takes no path)',
      ' (probes are separated by commas)',
      '',
    ]);
    expect(
      problems.every(
        p =>
          p.entityRef === 'component:default/x' &&
          p.annotation === `${P}probes`,
      ),
    ).toBe(true);
  });

  it('reads objectives with defaults and reports bad durations', () => {
    const defaults = { rpoSeconds: 86400, rtoSeconds: 3600 };
    expect(
      readObjectives(entity('Component', { [`${P}rpo`]: '4h' }), defaults),
    ).toEqual({
      rpoSeconds: 14400,
      rtoSeconds: 3600,
      problems: [],
    });
    const bad = readObjectives(
      entity('Component', { [`${P}rto`]: 'soon' }),
      defaults,
    );
    expect(bad.rtoSeconds).toBe(3600);
    expect(bad.problems[0]).toMatchObject({
      annotation: `${P}rto`,
      message: expect.stringContaining('"soon" is not a duration'),
    });
  });

  it('reads objectives as people write them, and says what is wrong with those it cannot, and what applies meanwhile', () => {
    const defaults = { rpoSeconds: 86400, rtoSeconds: 3600 };
    const rto = (text: string) =>
      readObjectives(entity('Component', { [`${P}rto`]: text }), defaults);
    expect(
      ['1h30m', '1.5h', ' 15m ', '90s'].map(t => rto(t).rtoSeconds),
    ).toEqual([5400, 5400, 900, 90]);
    const cases: Array<[string, string]> = [
      ['0', 'is no time at all: an objective must be longer than 0s'],
      ['0s', 'is no time at all: an objective must be longer than 0s'],
      ['-5m', 'is negative: an objective must be longer than 0s'],
      ['', 'is empty: set a duration such as 30m, 4h or 1d, or remove it'],
      ['   ', 'is empty: set a duration such as 30m, 4h or 1d, or remove it'],
      ['30', 'has no unit: add one, e.g. 30m or 30h (units ms, s, m, h, d)'],
      ['1H', 'is not a duration: units are lower case (1h)'],
      [
        '1h 30m',
        'is not a duration such as 30m, 4h, 1d or 1h30m (a number and a unit: ms, s, m, h or d, no spaces)',
      ],
      [
        '90 min',
        'is not a duration such as 30m, 4h, 1d or 1h30m (a number and a unit: ms, s, m, h or d, no spaces)',
      ],
      [
        'PT1H',
        'is not a duration such as 30m, 4h, 1d or 1h30m (a number and a unit: ms, s, m, h or d, no spaces)',
      ],
      // Written out, its digits read as Infinity, which an answer's JSON would carry as null.
      [
        `${'9'.repeat(400)}d`,
        'is not a duration such as 30m, 4h, 1d or 1h30m (a number and a unit: ms, s, m, h or d, no spaces)',
      ],
    ];
    for (const [text, why] of cases) {
      const read = rto(text);
      expect(read.rtoSeconds).toBe(3600);
      expect(read.problems).toEqual([
        {
          entityRef: 'component:default/x',
          annotation: `${P}rto`,
          message: `component:default/x: ${P}rto "${text}" ${why}; until it is mended, the site's default of 60 min applies`,
        },
      ]);
    }
  });
});
