/**
 * The README's offline example: `npx recovery analyze demo/boots.jsonl` learns the demo site's
 * true boot order from the sample history (written by demo/boots.ts from the demo's own machines).
 */
import { resolve } from 'node:path';
import { DEMO_MACHINES } from '../../../demo/site';
import { runCli } from './testing/runCli';

const SAMPLE = resolve(__dirname, '../../../demo/boots.jsonl');

describe('the demo sample boot history', () => {
  it("yields the demo's true order through the CLI, infra-01, data-01, web-01, a wave each, every service after what it needs", async () => {
    const { status, stdout, stderr } = await runCli([
      'analyze',
      SAMPLE,
      '--json',
    ]);
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const result = JSON.parse(stdout);
    // DEMO_MACHINES is the site in production boot order.
    const machines = DEMO_MACHINES.map(m => m.name);
    expect(machines).toEqual(['infra-01', 'data-01', 'web-01']);
    expect(result.machineOrder).toEqual(machines);
    expect(result.waves).toEqual(machines.map(m => [m]));
    const services = DEMO_MACHINES.flatMap(m => m.services);
    expect([...result.serviceOrder].sort()).toEqual(
      services.map(s => s.name).sort(),
    );
    for (const s of services) {
      for (const needed of s.dependsOn)
        expect(result.serviceOrder.indexOf(needed)).toBeLessThan(
          result.serviceOrder.indexOf(s.name),
        );
    }
    // What it concludes is true: each dependency found is one the demo's services have.
    const truth = new Set(
      services.flatMap(s => s.dependsOn.map(d => `${s.name} → ${d}`)),
    );
    expect(result.dependencies.length).toBeGreaterThan(0);
    for (const d of result.dependencies)
      expect(truth).toContain(`${d.service} → ${d.dependsOn}`);
    expect(result.warnings).toEqual([]);
  });

  it('prints the summary the README quotes', async () => {
    const { status, stdout } = await runCli(['analyze', SAMPLE]);
    expect(status).toBe(0);
    expect(stdout).toContain(
      'Boot waves (machines in a wave can boot in parallel):\n  1. infra-01\n  2. data-01\n  3. web-01\n',
    );
    expect(stdout).toContain('\nMachine order: infra-01, data-01, web-01\n');
    expect(stdout).toContain(
      '\nService order: dns, database, directory, files, web\n',
    );
  });
});
