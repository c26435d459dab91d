/**
 * `recovery analyze --half-life`: how far from the point in time of interest an initialization
 * weighs half, as the backend's `recovery.analysis.halfLife` says it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { runCli } from './testing/runCli';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recovery-half-life-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
const MIN = 60_000;
const T0 = Date.parse('2022-01-03T06:00:00Z');
const line = (time: number, machine: string, service: string) =>
  JSON.stringify({ time, machine, service });

/**
 * Two years of monthly boots in which `api` starts 10 min after `db` (it waits for it), then,
 * after a quiet half year, three recent boots in which `api` starts 2 min after `db` (sooner
 * than the kernel takes for a wait, whose peak is at 10 min). Weighed by the
 * default half-life (90 days), the recent boots outweigh the old ones, which show the dependency;
 * by a half-life of ten years, the old boots are the many they are.
 */
function history(): string {
  const lines: string[] = [];
  for (let b = 0; b < 25; b++) {
    const t = T0 + b * 30 * DAY;
    lines.push(line(t, 'db-01', 'db'), line(t + 10 * MIN, 'api-01', 'api'));
  }
  for (let b = 0; b < 3; b++) {
    const t = T0 + (24 * 30 + 200 + b * 7) * DAY;
    lines.push(line(t, 'db-01', 'db'), line(t + 2 * MIN, 'api-01', 'api'));
  }
  const p = join(dir, 'years.jsonl');
  writeFileSync(p, `${lines.join('\n')}\n`);
  return p;
}

const dependencies = (stdout: string) =>
  (
    JSON.parse(stdout).dependencies as Array<{
      service: string;
      dependsOn: string;
    }>
  ).map(d => `${d.service} → ${d.dependsOn}`);

describe('recovery analyze --half-life', () => {
  it('finds the dependency the old boots show with a long half-life only', async () => {
    const p = history();
    const byDefault = await runCli(['analyze', p, '--json']);
    expect(byDefault.status).toBe(0);
    expect(dependencies(byDefault.stdout)).toEqual([]);
    const long = await runCli(['analyze', p, '--json', '--half-life', '3650d']);
    expect(long.status).toBe(0);
    expect(dependencies(long.stdout)).toEqual(['api → db']);
    expect(JSON.parse(long.stdout).waves).toEqual([['db-01'], ['api-01']]);
    // The default, given, is the default.
    const given = await runCli(['analyze', p, '--json', '--half-life', '90d']);
    expect(given.stdout).toBe(byDefault.stdout);
  });

  it('names --half-life, not the backend setting, where the half-life leaves too few boots', async () => {
    const p = history();
    const at = '2024-07-25T06:02:00.000Z';
    const warning = (halfLife: string, boots: number) =>
      `the 28 boots of at least half the services in the history count as about ${boots} at the half-life of ${halfLife} (fewer than 20): those more than a half-life from the point in time of interest ${at} weigh little, and with so few, services that merely start earlier pass for dependencies and dependencies that are seldom the last to start go unseen, so the waves may miss or add machine waits; give a longer half-life (--half-life) or a point in time of interest among the boots (--at)`;
    const json = await runCli(['analyze', p, '--json']);
    expect(JSON.parse(json.stdout).warnings).toEqual([warning('90 d', 5)]);
    expect(json.stderr).toContain(`recovery: warning: ${warning('90 d', 5)}\n`);
    // The summary says it as it is, with the half-life given.
    const summary = await runCli(['analyze', p, '--half-life', '30d']);
    expect(summary.status).toBe(0);
    expect(summary.stdout).toContain(`\n  - ${warning('30 d', 3)}\n`);
    expect(summary.stdout).not.toContain('recovery.analysis.halfLife');
    // Long enough, the boots are enough: nothing to say.
    const long = await runCli(['analyze', p, '--json', '--half-life', '3650d']);
    expect(JSON.parse(long.stdout).warnings).toEqual([]);
  });

  it('words a half-life under a day as it is, where a point in time of interest far off is said', async () => {
    const far = await runCli([
      'analyze',
      history(),
      '--json',
      '--half-life',
      '6h',
      '--at',
      '2026-01-01T00:00:00Z',
    ]);
    expect(far.status).toBe(0);
    expect(JSON.parse(far.stdout).warnings).toContainEqual(
      expect.stringMatching(
        /^most services last initialized more than a half-life \(6 h\) away from the point in time of interest 2026-01-01T00:00:00\.000Z:.*, or an --at far from the history\?\)$/,
      ),
    );
  });

  it('takes durations as config reads them: days, hours, sums', async () => {
    const p = history();
    for (const halfLife of ['90d', '12h', '1d12h', '2160h', '1.5d', '45m'])
      expect(
        (await runCli(['analyze', p, '--half-life', halfLife])).status,
      ).toBe(0);
    // Two values: one would be ignored unsaid.
    expect(
      await runCli(['analyze', p, '--half-life', '30d', '--half-life', '90d']),
    ).toEqual({
      status: 2,
      stdout: '',
      stderr:
        "recovery: --half-life given twice ('30d', then '90d'): give it once\n",
    });
  });

  it.each([
    ['negative', '-30d'],
    ['unparsable', 'long'],
    ['in an unknown unit', '2w'],
    ['in years', '1y'],
    ['with an exponent', '1e3'],
    ['a bare number', '90'],
    ['empty', ''],
    ['with a unit first', 'd90'],
  ])(
    'refuses a half-life %s, naming the option and the value',
    async (_, value) => {
      expect(
        await runCli(['analyze', history(), '--half-life', value]),
      ).toEqual({
        status: 2,
        stdout: '',
        stderr: `recovery: --half-life: must be a duration such as 90d, 12h or 1d12h (units ms, s, m, h, d), got '${value}'\n`,
      });
    },
  );

  it.each(['0d', '0s', '0ms', '0h0m'])(
    'refuses a half-life of %s: no decay is no setting of the backend either',
    async value => {
      expect(
        await runCli(['analyze', history(), '--half-life', value]),
      ).toEqual({
        status: 2,
        stdout: '',
        stderr: `recovery: --half-life: must be longer than 0s (for next to no decay, one far longer than the history, such as 36500d), got '${value}'\n`,
      });
    },
  );

  it('says its default in the help', async () => {
    const help = await runCli(['analyze', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(
      /--half-life <duration> how far from the point in time of interest an initialization weighs half, as a duration such as 90d, 12h or 1d12h; longer than 0s \(default 90d\)/,
    );
  });
});
