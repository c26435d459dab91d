/*
 * The main path end to end, on real Docker engines: the demo site runs on the primary
 * engine; the real backend (real catalog reading catalog-info.yaml, SQLite) captures it and
 * test-recovers `web` on the recovery engine, in dependency order; then the same machines
 * booted in reverse must fail verification. Nothing labelled with a run id may remain.
 */
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildDemoImage,
  dockerFromHost,
  startDemoSite,
  stopDemoSite,
} from '../../demo/site';
import {
  capture,
  demoRecoveryConfig,
  ENGINES,
  REPO_ROOT,
  RunningBackend,
  startBackend,
  waitForRun,
  expectEnginesReachable,
} from './backend';

const primary = dockerFromHost(ENGINES.primary);
const recoveryHost = dockerFromHost(ENGINES.recovery);
const timings: Record<string, number> = {};
async function timed<T>(stage: string, work: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await work();
  } finally {
    timings[stage] = Date.now() - t0;
  }
}

async function labelled(runId: string) {
  const filters = JSON.stringify({ label: [`${RUN_ID_LABEL}=${runId}`] });
  const [containers, networks] = await Promise.all([
    recoveryHost.listContainers({ all: true, filters }),
    recoveryHost.listNetworks({ filters }),
  ]);
  return {
    containers: containers.map(c => c.Names[0]),
    networks: networks.map(n => n.Name),
  };
}

const at = (iso?: string) => Date.parse(iso!);

describe('test recovery of the demo site', () => {
  let dataDir: string;
  let backend: RunningBackend;
  const runIds: string[] = [];

  beforeAll(async () => {
    await expectEnginesReachable({ primary, recovery: recoveryHost });
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-e2e-'));
    await timed('build demo image', () =>
      buildDemoImage(primary, { force: true }),
    );
    await timed('start demo site', () =>
      startDemoSite(primary, { recreate: true }),
    );
    backend = await timed('start backend', () =>
      startBackend({
        dataDir,
        config: demoRecoveryConfig(dataDir, { allowTestHooks: true }),
      }),
    );
  });

  afterAll(async () => {
    await backend?.stop();
    await stopDemoSite(primary).catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    console.log(
      `e2e stage timings (ms):\n${Object.entries(timings)
        .map(([stage, ms]) => `  ${stage}: ${ms}`)
        .join('\n')}`,
    );
  });

  it('captures the machines web needs', async () => {
    const captured = await timed('capture 3 machines', () =>
      capture(backend, { entityRef: 'component:default/web' }),
    );
    expect({ status: captured.status, error: captured.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(captured.captures.map(c => c.machineRef)).toEqual([
      'resource:default/infra-01',
      'resource:default/data-01',
      'resource:default/web-01',
    ]);
    for (const taken of captured.captures) {
      expect(taken.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(taken.sizeBytes).toBeGreaterThan(0);
    }
  });

  it('recovers web on the hypervisor host in dependency order, verified and torn down', async () => {
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: 'component:default/web',
    });
    expect(started.status).toBe(202);
    runIds.push(started.body.id);
    const run = await timed('test recovery of web', () =>
      waitForRun(backend, started.body.id),
    );
    expect({ status: run.status, error: run.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });

    const m = Object.fromEntries(
      run.machines.map(x => [x.machineRef.split('/')[1], x]),
    );
    expect(run.machines.every(x => x.phase === 'ready')).toBe(true);
    expect(at(m['infra-01'].readyAt)).toBeLessThanOrEqual(
      at(m['data-01'].startedAt),
    );
    expect(at(m['data-01'].readyAt)).toBeLessThanOrEqual(
      at(m['web-01'].startedAt),
    );
    expect(run.rtoSeconds).toBeGreaterThan(0);
    for (const [name, x] of Object.entries(m)) {
      timings[`  ${name} restore`] = at(x.restoredAt) - at(x.restoreStartedAt);
      timings[`  ${name} start`] = at(x.startedAt) - at(x.restoredAt);
      timings[`  ${name} ready after start`] = at(x.readyAt) - at(x.startedAt);
    }
    timings['measured RTO'] = run.rtoSeconds! * 1000;
    expect(run.steps.map(s => s.message)).toContainEqual(
      expect.stringMatching(/^Lab torn down/),
    );
    // The room it needed on the engine, against the engine's own free disk, read before the lab.
    expect(run.steps.map(s => s.message)).toContainEqual(
      expect.stringMatching(
        /^Room on recovery: restoring the 3 captures takes [\d.]+ [KM]iB, [\d.]+ [MGT]iB free in recovery:\//,
      ),
    );

    const readiness = await backend.api(
      'GET',
      '/readiness/component/default/web',
    );
    expect(readiness.body).toMatchObject({
      lastRun: { id: run.id, status: 'succeeded' },
      position: {
        wave: 2,
        machines: ['resource:default/web-01'],
        waitsFor: ['resource:default/data-01'],
      },
    });
  });

  it('shows the same readiness through the recovery CLI, and follows a run there to its end', async () => {
    const cli = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>(
        resolvePromise => {
          execFile(
            process.execPath,
            [
              join(REPO_ROOT, 'packages/cli/bin/recovery'),
              ...args,
              '--url',
              backend.baseUrl,
              '--token',
              backend.token,
            ],
            { cwd: REPO_ROOT },
            (error, stdout, stderr) =>
              resolvePromise({
                status: error ? ((error as { code?: number }).code ?? 1) : 0,
                stdout,
                stderr,
              }),
          );
        },
      );
    const shown = await cli('readiness', 'web', '--json');
    expect(shown).toMatchObject({ status: 0, stderr: '' });
    // The same answer, but for the ages, which move on by the second between the two reads.
    const ageless = (text: string) =>
      JSON.parse(text, (key, value) =>
        key === 'ageSeconds' ? undefined : value,
      );
    const api = (await backend.api('GET', '/readiness/component/default/web'))
      .body;
    expect(ageless(shown.stdout)).toEqual(ageless(JSON.stringify(api)));

    // A machine a request, each said as it is taken, in the plan's order.
    const captured = await timed('capture of web through the CLI', () =>
      cli('capture', 'web'),
    );
    expect(captured).toMatchObject({ status: 0, stderr: '' });
    expect(
      captured.stdout
        .trimEnd()
        .split('\n')
        .map(line =>
          /^(\S+) {2}capture .* \((\d) of (\d)\)$/.exec(line)?.slice(1),
        ),
    ).toEqual([
      ['resource:default/infra-01', '1', '3'],
      ['resource:default/data-01', '2', '3'],
      ['resource:default/web-01', '3', '3'],
    ]);

    const followed = await timed('test recovery of web through the CLI', () =>
      cli('run', 'web', '--interval', '0.5'),
    );
    expect(followed).toMatchObject({ status: 0, stderr: '' });
    const lines = followed.stdout.trimEnd().split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^\d\d:\d\d:\d\d {2}Wave 3: booting resource:default\/web-01$/,
      ),
    );
    expect(lines.at(-1)).toMatch(
      /^Run (\S+) of component:default\/web succeeded: 3 machines verified, measured RTO (\d+[dhm] )*\d+(\.\d{1,3})?[dhms]$/,
    );
    runIds.push(/^Run (\S+) /.exec(lines.at(-1)!)![1]);
  });

  it('fails verification when the same machines boot in reverse order', async () => {
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: 'component:default/web',
      options: { reverseBootOrder: true },
    });
    expect(started.status).toBe(202);
    runIds.push(started.body.id);
    const run = await timed('reversed test recovery', () =>
      waitForRun(backend, started.body.id),
    );
    expect(run.status).toBe('failed');
    expect(run.error?.machineRef).toBe('resource:default/web-01');
    expect(run.error?.message).toMatch(/^resource:default\/web-01 failed: /);
    const web = run.machines.find(
      x => x.machineRef === 'resource:default/web-01',
    )!;
    expect(web.phase).toBe('failed');
    expect(web.logTail).toBeTruthy();
    // Nothing after the failed machine was started, and the run says so.
    expect(run.machines.filter(x => x.phase === 'waiting')).toEqual([]);
    expect(
      run.machines
        .filter(x => x.phase === 'skipped')
        .map(x => x.machineRef)
        .sort(),
    ).toEqual(['resource:default/data-01', 'resource:default/infra-01']);
  });

  it('cancels a test recovery mid-wave: it stops booting at once and its lab is gone', async () => {
    // Booted in reverse, web-01 (wave 1) waits for its dependencies until machineReadyTimeout (40 s).
    const started = await backend.api<RecoveryRun>('POST', '/runs', {
      entityRef: 'component:default/web',
      options: { reverseBootOrder: true },
    });
    expect(started.status).toBe(202);
    const id = started.body.id;
    runIds.push(id);
    await vi.waitFor(
      async () => {
        const { body } = await backend.api<RecoveryRun>('GET', `/runs/${id}`);
        expect(
          body.machines.find(m => m.machineRef === 'resource:default/web-01')
            ?.phase,
        ).toBe('verifying');
      },
      { timeout: 30_000, interval: 200 },
    );
    expect((await labelled(id)).containers).toHaveLength(1);
    const cancelledAt = Date.now();
    const cancel = await backend.api<RecoveryRun>('POST', `/runs/${id}/cancel`);
    expect(cancel.status).toBe(202);
    const run = await timed('cancelled test recovery', () =>
      waitForRun(backend, id),
    );
    // Well within the 40 s web-01 had left to wait: cancelled, not timed out.
    expect(Date.now() - cancelledAt).toBeLessThan(20_000);
    expect(run.status).toBe('interrupted');
    expect(run.error).toEqual({
      message: expect.stringMatching(/^Interrupted: cancelled by \S+ at /),
      cancelledBy: expect.any(String),
    });
    expect(run.machines.map(m => m.phase).sort()).toEqual([
      'interrupted',
      'skipped',
      'skipped',
    ]);
    expect(await labelled(id)).toEqual({ containers: [], networks: [] });
  });

  it('leaves nothing labelled with any of its run ids on the hypervisor host', async () => {
    expect(runIds).toHaveLength(4);
    for (const runId of runIds) {
      expect(await labelled(runId)).toEqual({ containers: [], networks: [] });
    }
  });
});
