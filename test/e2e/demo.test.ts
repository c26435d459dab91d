/*
 * The README's first command, run as a user runs it: `bash scripts/demo.sh` from the repository
 * root, on a data directory of its own. What a user relies on: it says "demo: ready" and then the
 * backend (through the CLI, as the ready line says) and the UI answer; a second demo refuses at
 * once while the first holds the ports, leaving the first alone; SIGTERM stops the demo: Backstage
 * gone with every process it started, the ports free, the demo machines removed from the primary
 * engine, and the engines as they were before it (stopped if the demo started them, still up if
 * they were up). The times it takes are printed at the end.
 */
import {
  ChildProcess,
  execFile,
  execFileSync,
  spawn,
} from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEMO_LABEL,
  DEMO_MACHINES,
  demoSiteStatus,
  dockerFromHost,
} from '../../demo/site';
import { ENGINES, REPO_ROOT } from './backend';
import { seconds, sleep, until as waitUntil } from './until';

const ENGINE_NAMES = ['primary', 'recovery'] as const;
const PORTS = [7007, 3000];
/** The demo's own limit for Backstage to come up is 15 min (a cold UI build); a minute more for the set-up before it. */
const READY_TIMEOUT_MS = 16 * 60_000;
/** The demo site's services (catalog-info.yaml). */
const SERVICES = ['web', 'database', 'files', 'directory', 'dns'];
const HEALTH = 'http://127.0.0.1:7007/.backstage/health/v1/readiness';
const UI = 'http://localhost:3000/';

const timings: Record<string, number> = {};
/** `until`, asked every 250 ms unless said: the demo is watched as a user would. */
const until = <T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 250,
) => waitUntil(what, check, timeoutMs, everyMs);

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
) {
  return new Promise<{ status: number; stdout: string; stderr: string }>(ok =>
    execFile(file, args, { cwd: REPO_ROOT, env }, (error, stdout, stderr) =>
      ok({
        status: error ? ((error as { code?: number }).code ?? 1) : 0,
        stdout,
        stderr,
      }),
    ),
  );
}

const engineUp = async (name: string) =>
  (await run('bash', ['scripts/docker-engines.sh', 'status', name])).status ===
  0;

/** What listens on a TCP port, on any address (`ss` lines; empty when the port is free). */
const listeners = (port: number) =>
  execFileSync('ss', ['-Hltnp', `sport = :${port}`], {
    encoding: 'utf8',
  }).trim();

const status = async (url: string) => {
  try {
    const res = await fetch(url, {
      headers: { Accept: 'text/html' },
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch (e) {
    return `unreachable (${(e as Error).message})`;
  }
};

/** The processes alive now: pid, parent, process group, session. */
function processes() {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,pgid=,sid='], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .map(line => {
      const [pid, ppid, pgid, sid] = line.trim().split(/\s+/).map(Number);
      return { pid, ppid, pgid, sid };
    });
}

/** The sessions and process groups of a process and its descendants (Backstage runs in a session of its own). */
function familyOf(root: number) {
  const all = processes();
  const pids = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (pids.has(p.ppid) && !pids.has(p.pid)) {
        pids.add(p.pid);
        grew = true;
      }
    }
  }
  const family = all.filter(p => pids.has(p.pid));
  return {
    sessions: new Set(family.map(p => p.sid)),
    groups: new Set(family.map(p => p.pgid)),
  };
}

/**
 * SIGKILLs what is left of a demo: its own process group and every process in the sessions and
 * groups it had (the demo has a session of its own, detached, so none of them is the test's).
 */
function killFamily(family: ReturnType<typeof familyOf>) {
  for (const p of processes()) {
    if (
      p.pid === process.pid ||
      !(family.groups.has(p.pgid) || family.sessions.has(p.sid))
    )
      continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** The environment a user's shell gives the demo: the test runner's own variables left out. */
function userEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, RECOVERY_DATA_DIR: dataDir };
  for (const key of Object.keys(env)) {
    if (key.startsWith('VITEST') || key.startsWith('BACKSTAGE_TEST_'))
      delete env[key];
  }
  // The runner sets NODE_ENV=test; the demo's settings (its token, its listen host) are its defaults.
  for (const key of [
    'NODE_ENV',
    'TEST',
    'RECOVERY_TOKEN',
    'RECOVERY_URL',
    'RECOVERY_LISTEN_HOST',
  ])
    delete env[key];
  return env;
}

interface Demo {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive: () => boolean;
}

function startDemo(env: NodeJS.ProcessEnv): Demo {
  let output = '';
  // A process group of its own, as a terminal gives a command; killed whole in afterAll.
  const child = spawn('bash', ['scripts/demo.sh'], {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', d => (output += d));
  child.stderr!.on('data', d => (output += d));
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>(ok => child.on('exit', (code, signal) => ok({ code, signal })));
  return {
    child,
    output: () => output,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
}

const primary = dockerFromHost(ENGINES.primary);
// The demo's machines by their own label's value: every container of the demo image carries the
// image's (`image`), those other tests run on the same engine at the same time too.
const demoContainers = async () =>
  (
    await primary.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`${DEMO_LABEL}=machine`] }),
    })
  ).map(c => c.Names[0]);

describe('the demo (scripts/demo.sh), as a user runs it', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  const upBefore: Record<string, boolean> = {};
  let demo: Demo | undefined;
  let ready = false;
  /** Sessions and groups of the demo's processes while it ran (Backstage's included), for the checks after it stops and for clean-up. */
  let family: ReturnType<typeof familyOf> | undefined;
  let stoppedCleanly = false;
  let cliOutput = '';
  const t0 = Date.now();

  beforeAll(async () => {
    for (const port of PORTS) {
      const holder = listeners(port);
      if (holder)
        throw new Error(
          `port ${port} is in use before the test (the demo would refuse to start): ${holder}`,
        );
    }
    for (const name of ENGINE_NAMES) upBefore[name] = await engineUp(name);
    dataDir = mkdtempSync(join(tmpdir(), 'recovery-demo-e2e-'));
    env = userEnv(dataDir);
  });

  afterAll(async () => {
    if (demo?.alive()) {
      family = familyOf(demo.child.pid!);
      // As a user would: a SIGTERM, with the demo's own stop (up to a minute for Backstage) given its time.
      process.kill(demo.child.pid!, 'SIGTERM');
      await Promise.race([demo.exited, sleep(90_000)]);
    }
    if (demo && !stoppedCleanly) {
      // Whatever is left of the demo and of Backstage's own session goes, even when a check failed.
      killFamily({
        sessions: new Set(family?.sessions),
        groups: new Set([demo.child.pid!, ...(family?.groups ?? [])]),
      });
      // What the demo's own stop does, in case it could not: its machines removed, the engines it started stopped.
      if (await engineUp('primary')) {
        await run(process.execPath, [
          '-r',
          require.resolve('@backstage/cli/config/nodeTransform.cjs'),
          'demo/cli.ts',
          'down',
        ]);
      }
      const started = ENGINE_NAMES.filter(n => !upBefore[n]);
      if (started.length)
        await run('bash', ['scripts/docker-engines.sh', 'stop', ...started]);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    timings['whole test'] = Date.now() - t0;
    console.log(
      `demo e2e (engines ${ENGINE_NAMES.map(n => `${n} ${upBefore[n] ? 'up' : 'down'}`).join(', ')} before it), seconds:\n${Object.entries(
        timings,
      )
        .map(([stage, ms]) => `  ${stage}: ${seconds(ms)}`)
        .join('\n')}\nnpx recovery readiness, at "demo: ready":\n${cliOutput}`,
    );
  });

  it(
    'says "demo: ready" once Backstage is up, and the backend and the UI answer',
    async () => {
      const spawned = Date.now();
      demo = startDemo(env);
      const d = demo;
      await until(
        'the line "demo: ready"',
        async () => {
          if (!d.alive())
            throw new Error(
              `the demo exited before it was ready:\n${d.output().slice(-6000)}`,
            );
          return /^demo: ready/m.test(d.output());
        },
        READY_TIMEOUT_MS,
        50,
      ).catch(e => {
        throw new Error(`${(e as Error).message}\n${d.output().slice(-6000)}`);
      });
      timings['demo: ready, after spawn'] = Date.now() - spawned;
      ready = true;
      family = familyOf(d.child.pid!);

      expect(d.output()).toMatch(
        /^demo: ready — http:\/\/localhost:3000 \(backend http:\/\/127\.0\.0\.1:7007\); the CLI: export RECOVERY_TOKEN=demo-recovery-cli; npx recovery readiness$/m,
      );
      // At once, as a script waiting for the line would ask: the demo's entities are there to read.
      const listed = await fetch(
        'http://127.0.0.1:7007/api/recovery/readiness',
        {
          headers: { Authorization: 'Bearer demo-recovery-cli' },
        },
      ).then(async res => ({
        status: res.status,
        refs: ((await res.json()).items ?? []).map(
          (i: { entityRef: string }) => i.entityRef,
        ),
      }));
      expect(listed).toEqual({
        status: 200,
        refs: expect.arrayContaining(
          SERVICES.map(s => `component:default/${s}`),
        ),
      });
      expect(await status(HEALTH)).toBe(200);
      expect(await status(UI)).toBe(200);
      // Loopback only (README): nothing of the demo listens on another address.
      for (const port of PORTS) {
        for (const line of listeners(port).split('\n'))
          expect(line).toMatch(
            / (127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+ /,
          );
      }

      // The command the ready line gives, as a user types it.
      const t = Date.now();
      const cli = await run('npx', ['recovery', 'readiness'], {
        ...env,
        RECOVERY_TOKEN: 'demo-recovery-cli',
      });
      timings['npx recovery readiness'] = Date.now() - t;
      cliOutput = cli.stdout;
      expect({ status: cli.status, stderr: cli.stderr }).toEqual({
        status: 0,
        stderr: '',
      });
      // Every service of the demo site, each on a line of its own (a first start has no capture yet).
      for (const service of SERVICES) {
        expect(cli.stdout).toMatch(
          new RegExp(`^\\S.*\\s component:default/${service}(\\s|$)`, 'm'),
        );
      }

      // The demo site runs on the primary engine.
      const site = await demoSiteStatus(primary);
      expect(site.map(m => [m.name, m.running])).toEqual(
        DEMO_MACHINES.map(m => [m.name, true]),
      );
    },
    READY_TIMEOUT_MS + 120_000,
  );

  it('refuses a second demo at once, naming the port in use, and leaves the first alone', async () => {
    expect(ready).toBe(true);
    const t = Date.now();
    const second = startDemo(env);
    const ended = await Promise.race([
      second.exited,
      sleep(30_000).then(() => undefined),
    ]);
    timings['second demo refused in'] = Date.now() - t;
    // Still running: killed outright, Backstage's session too (its own stop would remove the first's machines).
    if (!ended) killFamily(familyOf(second.child.pid!));
    expect(ended, second.output()).toBeDefined();
    expect(ended!.code).not.toBe(0);
    expect(second.output()).toMatch(/^demo: port 7007 is in use/m);
    // It stopped before anything: no set-up, no stop of its own.
    expect(second.output()).not.toMatch(/demo: stopping|setup:|engine /);

    // The first still runs, and still answers.
    expect(demo!.alive()).toBe(true);
    expect(demo!.output()).not.toMatch(/^demo: stopping/m);
    expect(await status(HEALTH)).toBe(200);
    expect(await status(UI)).toBe(200);
    const site = await demoSiteStatus(primary);
    expect(site.map(m => [m.name, m.running])).toEqual(
      DEMO_MACHINES.map(m => [m.name, true]),
    );
    for (const name of ENGINE_NAMES) expect(await engineUp(name)).toBe(true);
  });

  it('stops on SIGTERM: Backstage gone, ports free, demo machines removed, engines as they were', async () => {
    expect(ready).toBe(true);
    const d = demo!;
    family = familyOf(d.child.pid!);
    const t = Date.now();
    process.kill(d.child.pid!, 'SIGTERM');
    // Its stop waits up to 60 s for Backstage's session, then removes the machines and stops engines.
    const ended = await Promise.race([
      d.exited,
      sleep(120_000).then(() => undefined),
    ]);
    timings['exit after SIGTERM'] = Date.now() - t;
    expect(
      ended,
      `the demo did not exit within 120 s of SIGTERM:\n${d.output().slice(-4000)}`,
    ).toBeDefined();
    expect(d.output()).toMatch(/^demo: stopping$/m);
    // It handled the signal itself (its trap's exit status), rather than being killed by it.
    expect(ended!.signal).toBeNull();
    expect(ended!.code).not.toBe(0);

    // Nothing of it keeps running: not the script's group, not Backstage's session.
    expect(
      processes().filter(
        p => family!.sessions.has(p.sid) || family!.groups.has(p.pgid),
      ),
    ).toEqual([]);

    await until(
      'ports 7007 and 3000 free',
      async () => PORTS.every(p => listeners(p) === ''),
      10_000,
    );
    timings['ports free after SIGTERM'] = Date.now() - t;

    for (const name of ENGINE_NAMES)
      expect({ name, up: await engineUp(name) }).toEqual({
        name,
        up: upBefore[name],
      });

    // The demo machines are gone from the primary engine; if the demo stopped that engine, it is asked again.
    if (upBefore.primary) {
      expect(await demoContainers()).toEqual([]);
    } else {
      expect(
        (await run('bash', ['scripts/docker-engines.sh', 'start', 'primary']))
          .status,
      ).toBe(0);
      try {
        expect(await demoContainers()).toEqual([]);
      } finally {
        await run('bash', ['scripts/docker-engines.sh', 'stop', 'primary']);
      }
    }
    stoppedCleanly = true;
  });
});
