import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { compileServiceMap } from '../../../plugins/recovery-node/src/analysis/mapping';
import { main } from './main';

// Counts the compilations of the engine's own module, which the analysis imports too.
vi.mock(
  '../../../plugins/recovery-node/src/analysis/mapping',
  async importOriginal => {
    const actual =
      await importOriginal<
        typeof import('../../../plugins/recovery-node/src/analysis/mapping')
      >();
    return { ...actual, compileServiceMap: vi.fn(actual.compileServiceMap) };
  },
);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recovery-cli-map-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('recovery analyze --map', () => {
  it('compiles the map once: the mapper that checks each line while reading also maps for the analysis', async () => {
    const data = join(dir, 'boots.jsonl');
    const lines = [];
    for (let boot = 0; boot < 6; boot++) {
      const t = boot * 86_400_000 + 1_700_000_000_000;
      lines.push(
        { time: t, machine: 'db-01', service: 'postgresql@15.service' },
        { time: t + 60_000, machine: 'app-01', service: 'shop-web.service' },
      );
    }
    writeFileSync(data, `${lines.map(l => JSON.stringify(l)).join('\n')}\n`);
    const map = join(dir, 'map.json');
    writeFileSync(
      map,
      JSON.stringify({
        services: {
          '/^postgresql@.*$/': 'database',
          'shop-web.service': 'shop',
        },
      }),
    );
    let stdout = '';
    const status = await main(['analyze', data, '--map', map, '--json'], {
      stdout: t => (stdout += t),
      stderr: () => {},
    });
    expect(status).toBe(0);
    expect(
      JSON.parse(stdout).services.map((s: { service: string }) => s.service),
    ).toEqual(['database', 'shop']);
    expect(compileServiceMap).toHaveBeenCalledTimes(1);
  });
});
