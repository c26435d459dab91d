/**
 * The CLI's commands against the real recovery backend plugin (in a test backend, over HTTP on a
 * real port), its hypervisor host and capture source played by the project's fakes.
 */
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from '../../../plugins/recovery-backend/src/plugin';
import { FakeCaptureSource } from '../../../plugins/recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../../plugins/recovery-backend/src/testing/FakeHost';
import {
  componentEntity,
  machineEntity,
} from '../../../plugins/recovery-backend/src/testing/entities';
import { providersModule } from '../../../plugins/recovery-backend/src/testing/providers';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runCli } from './testing/runCli';
import { ResponseError } from '@backstage/errors';
import {
  formatUtcTime,
  type Readiness,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  BackendError,
  backendClient,
  RemoteInputError,
  entityRefArg,
  followRun,
  formatOutcome,
  formatReadiness,
  formatStep,
  startRun,
} from './remote';

const P = 'recovery.backstage-recovery.io/';
const machine = (name: string, dependent: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: dependent }],
});
const service = (name: string, machineName: string): Entity => {
  const entity = componentEntity(name, [`resource:default/${machineName}`]);
  entity.metadata.annotations = { [`${P}probes`]: 'tcp:80' };
  return entity;
};

/** A port nothing listens on: one the system gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise(ok => server.close(ok));
  return port;
}

const cli = (...argv: string[]) => runCli(argv);

describe('recovery CLI against a backend', () => {
  let url: string;
  const token = mockCredentials.service.token();
  const as = (...argv: string[]) => [...argv, '--url', url, '--token', token];
  const host = new FakeHost({}, ['resource:default/crash-01']);

  beforeAll(async () => {
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [new FakeCaptureSource()],
          hypervisorHosts: [host],
        }),
        catalogServiceMock.factory({
          entities: [
            machine('web-01', 'component:default/web'),
            service('web', 'web-01'),
            machine('crash-01', 'component:default/broken'),
            service('broken', 'crash-01'),
            // Declares a dependency the catalog does not hold.
            machine('orders-01', 'component:default/orders'),
            {
              ...service('orders', 'orders-01'),
              relations: [
                { type: 'dependsOn', targetRef: 'resource:default/orders-01' },
                { type: 'dependsOn', targetRef: 'component:default/ledger' },
              ],
            },
          ],
        }),
        mockServices.rootConfig.factory({
          data: {
            recovery: {
              runs: {
                machineReadyTimeout: '2s',
                probeInterval: '1s',
                minReadyTime: '100ms',
              },
            },
          },
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it('lists readiness most at risk first, captures, runs a test recovery to its end, and reads one entity', async () => {
    const before = await cli(...as('readiness'));
    expect(before).toMatchObject({ status: 0, stderr: '' });
    // The status as the portal and the README say it; --json keeps the API's value.
    expect(before.stdout.split('\n')).toEqual([
      'not recoverable  component:default/broken  resource:default/crash-01 has never been captured',
      'not recoverable  component:default/orders  component:default/orders dependsOn component:default/ledger, which is not in the catalog: a recovery plan cannot include it',
      'not recoverable  component:default/web     resource:default/web-01 has never been captured',
      '',
    ]);
    expect(
      JSON.parse((await cli(...as('readiness', '--json'))).stdout).items.map(
        (i: { status: string }) => i.status,
      ),
    ).toEqual(['not-recoverable', 'not-recoverable', 'not-recoverable']);

    const captured = await cli(...as('capture', 'web'));
    expect(captured.status).toBe(0);
    expect(captured.stdout).toMatch(
      /^resource:default\/web-01 {2}capture \S+ {2}(\d+ bytes|\d+\.\d [KMG]iB) in \d+ ms(, production paused \d+ ms)? {2}\(1 of 1\)\n$/,
    );

    const run = await cli(...as('run', 'web', '--interval', '0.1'));
    expect(run).toMatchObject({ status: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^Run \S+ of component:default\/web started \(Ctrl-C stops following, not the run\)$/,
    );
    // Each step of the timeline once, in order, then the outcome.
    expect(lines.slice(1, -1).map(l => l.slice(10))).toEqual(
      expect.arrayContaining([
        'Test recovery of component:default/web on fake: 1 wave, 1 machine',
        'Wave 1: booting resource:default/web-01',
      ]),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^\d\d:\d\d:\d\d {2}resource:default\/web-01: Ready: restored in [\d.]+ s, verified [\d.]+ s after start$/,
      ),
    );
    expect(new Set(lines).size).toBe(lines.length);
    expect(lines.at(-1)).toMatch(
      /^Run \S+ of component:default\/web succeeded: 1 machine verified, measured RTO \d+(\.\d{1,3})?s$/,
    );

    const one = await cli(
      ...as('readiness', 'component:default/web', '--json'),
    );
    expect(one.status).toBe(0);
    const readiness = JSON.parse(one.stdout);
    expect(readiness).toMatchObject({
      entityRef: 'component:default/web',
      status: 'ready',
      lastRun: { status: 'succeeded' },
    });
    const text = await cli(...as('readiness', 'web'));
    expect(text.stdout).toMatch(/^component:default\/web: ready\n/);
    // The objectives as the card writes them (the defaults: 24h and 1h).
    expect(text.stdout).toContain('\nObjectives: RPO 1d · RTO 1h\n');
    expect(text.stdout).toMatch(/\n {2}resource:default\/web-01 {2}\d+s old\n/);
    expect(text.stdout).toMatch(
      /\nLast run: test succeeded at \S+, measured RTO \d+(\.\d{1,3})?s vs objective 1h\n/,
    );

    // A finished run, watched: its whole timeline and how it ended.
    const runId = readiness.lastRun.id;
    const watched = await cli(...as('watch', runId, '--json'));
    expect(watched.status).toBe(0);
    expect(JSON.parse(watched.stdout)).toMatchObject({
      id: runId,
      status: 'succeeded',
    });
  });

  it('runs to a recovery point, saying it, with the captures of then; refuses a malformed point before asking, and says which machines have none that old', async () => {
    const captureWeb = async () =>
      JSON.parse((await cli(...as('capture', 'web', '--json'))).stdout)
        .items[0] as { id: string; createdAt: string };
    const then = await captureWeb();
    const latest = await captureWeb();
    expect(Date.parse(latest.createdAt)).toBeGreaterThan(
      Date.parse(then.createdAt),
    );
    // The point as a person in another zone writes it: the backend answers it in UTC.
    const point = new Date(then.createdAt);
    const local = `${new Date(point.getTime() + 2 * 3_600_000).toISOString().replace('Z', '')}+02:00`;
    const run = await cli(
      ...as('run', 'web', '--recovery-point', local, '--interval', '0.1'),
    );
    expect(run).toMatchObject({ status: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^Run \\S+ of component:default/web to the recovery point ${then.createdAt} started \\(Ctrl-C stops following, not the run\\)$`,
      ),
    );
    // The step's time as the CLI writes times; its own lines keep the point to the millisecond.
    expect(lines).toContainEqual(
      expect.stringContaining(
        `Test recovery of component:default/web on fake: 1 wave, 1 machine, to the recovery point ${formatUtcTime(then.createdAt)}`,
      ),
    );
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^Run \\S+ of component:default/web to the recovery point ${then.createdAt} succeeded: 1 machine verified`,
      ),
    );
    const id = lines[0].split(' ')[1];
    const watched = JSON.parse(
      (await cli(...as('watch', id, '--json'))).stdout,
    );
    expect(watched).toMatchObject({
      recoveryPoint: then.createdAt,
      machines: [{ captureId: then.id, capturedAt: then.createdAt }],
    });

    expect(
      await cli(...as('run', 'web', '--recovery-point', '2026-11-02T01:00:00')),
    ).toEqual({
      status: 2,
      stdout: '',
      stderr:
        "recovery: --recovery-point: an ISO 8601 time with its zone, such as 2026-11-02T01:00:00Z or 2026-11-02T03:00:00+02:00, got '2026-11-02T01:00:00': " +
        'no zone: end it with Z (UTC) or an offset such as +02:00\n',
    });
    const early = await cli(
      ...as('run', 'web', '--recovery-point', '2000-01-01T00:00:00Z'),
    );
    expect(early).toMatchObject({ status: 3, stdout: '' });
    // The machine, its oldest kept capture, and that time again as the earliest point to give.
    expect(early.stderr).toMatch(
      new RegExp(
        '^recovery: no capture kept at or before the recovery point 2000-01-01T00:00:00.000Z of 1 machine of component:default/web:\\n' +
          '  resource:default/web-01  its oldest kept capture is of (\\S+Z)\\n' +
          '--recovery-point \\1 is the earliest every machine allows \\(recovery.captureStore.keepLast sets how many captures are kept\\); leave it out to restore the latest captures\\n$',
      ),
    );
  });

  it('exits 1 with the reason when the run fails, and leaves a detached run to the server', async () => {
    await cli(...as('capture', 'broken'));
    const failed = await cli(
      ...as('run', 'component:default/broken', '--interval', '0.1'),
    );
    expect(failed.status).toBe(1);
    const failedLines = failed.stdout.trimEnd().split('\n');
    expect(failedLines.at(-1)).toMatch(
      /^Run \S+ of component:default\/broken failed: .*resource:default\/crash-01.*exit(ed)? .*3/i,
    );
    // Before it, on stderr, what the failed machine's console said last.
    expect(failed.stderr).toBe(
      'Console of resource:default/crash-01 (1 line):\n  console of resource:default/crash-01\n',
    );
    expect(failed.stdout).not.toContain('console of resource:default/crash-01');

    const detached = await cli(...as('run', 'broken', '--detach', '--json'));
    expect(detached.status).toBe(0);
    const started = JSON.parse(detached.stdout);
    expect(started).toMatchObject({
      entityRef: 'component:default/broken',
      status: 'pending',
    });
    const watched = await cli(...as('watch', started.id, '--interval', '0.1'));
    expect(watched.status).toBe(1);
  });

  it('says what is wrong with the backend, the token or the input, and how to fix it', async () => {
    const closed = await closedPort();
    const refused = await cli(
      'readiness',
      '--url',
      `http://127.0.0.1:${closed}`,
      '--token',
      token,
    );
    expect(refused).toMatchObject({ status: 3, stdout: '' });
    expect(refused.stderr).toBe(
      `recovery: cannot reach the Backstage backend at http://127.0.0.1:${closed} (ECONNREFUSED): start it, or point --url or RECOVERY_URL at it\n`,
    );

    const badToken = await cli(
      'readiness',
      '--url',
      url,
      '--token',
      mockCredentials.user.invalidToken(),
    );
    expect(badToken.status).toBe(3);
    expect(badToken.stderr).toMatch(
      /^recovery: .+ \(401\): the backend refused the token \(a static token from backend\.auth\.externalAccess\)\n$/,
    );

    const unknown = await cli(...as('readiness', 'component:default/nope'));
    expect(unknown.status).toBe(3);
    expect(unknown.stderr).toMatch(
      /^recovery: .*component:default\/nope.* \(404\)\n$/,
    );
    // A machine named as a service is: its bare name read as a Component's, the 404 says how to name it.
    expect(await cli(...as('capture', 'web-01'))).toEqual({
      status: 3,
      stdout: '',
      stderr:
        "recovery: Entity component:default/web-01 not found in the catalog (404): a name without its kind is a Component's; for a machine, use resource:web-01\n",
    });
    expect(await cli(...as('plan', 'resource:web-01'))).toMatchObject({
      status: 0,
    });

    expect(await cli('readiness', '--url', 'ftp://x')).toMatchObject({
      status: 2,
      stderr: "recovery: --url: must be http or https, got 'ftp://x'\n",
    });
    expect(await cli('readiness', '--url', 'not a url')).toMatchObject({
      status: 2,
      stderr: expect.stringContaining("--url: not a URL: 'not a url'"),
    });
    expect(await cli(...as('readiness', 'component:/web'))).toMatchObject({
      status: 2,
      stderr: `recovery: not an entity ref: 'component:/web' (such as component:default/web, or web): Entity reference "component:/web" was not on the form [<kind>:][<namespace>/]<name>\n`,
    });
    // One the catalog's parser takes but the backend refuses: its 400, as the backend words it.
    const refusedRef = await cli(...as('readiness', 'a:b/c/d'));
    expect(refusedRef).toMatchObject({
      status: 3,
      stderr:
        'recovery: path: Entity reference "a:b/c/d" has an invalid name "c/d" (400)\n',
    });
    expect(await cli(...as('run', 'web', '--interval', '0'))).toMatchObject({
      status: 2,
      stderr: "recovery: --interval: seconds from 0.1 to 60, got '0'\n",
    });
  });

  it('names the dependencies a run would go without, and runs without them only when told to', async () => {
    await cli(...as('capture', 'orders'));
    const refused = await cli(...as('run', 'orders', '--interval', '0.1'));
    expect(refused).toMatchObject({ status: 3, stdout: '' });
    expect(refused.stderr).toBe(
      'recovery: component:default/orders cannot be recovered as the catalog declares it: component:default/orders dependsOn component:default/ledger, ' +
        'which is not in the catalog: a recovery plan cannot include it. Fix the catalog, or run with --accept-missing-dependencies to recover without what is missing\n',
    );
    const accepted = await cli(
      ...as(
        'run',
        'orders',
        '--accept-missing-dependencies',
        '--interval',
        '0.1',
      ),
    );
    expect(accepted).toMatchObject({ status: 0, stderr: '' });
    expect(accepted.stdout).toContain(
      'Catalog problem: component:default/orders dependsOn component:default/ledger',
    );
    expect(accepted.stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^Run \S+ of component:default\/orders succeeded: /,
    );
  });

  it('releases a finished failover, printing what it removed; refuses what is no finished failover, and a host out of reach, with 3', async () => {
    await cli(...as('capture', 'web'));
    const failover = JSON.parse(
      (
        await cli(
          ...as('run', 'web', '--failover', '--interval', '0.1', '--json'),
        )
      ).stdout,
    );
    expect(failover).toMatchObject({ mode: 'failover', status: 'succeeded' });
    const id: string = failover.id;
    try {
      // What its machines wrote since it started lives only in them: not released without --yes.
      const unconfirmed = await cli(...as('release', id));
      expect(unconfirmed).toEqual({
        status: 2,
        stdout: '',
        stderr:
          `recovery: failover ${id} of component:default/web has run production on fake since ${failover.startedAt}, on 1 machine: resource:default/web-01.\n` +
          `Releasing it removes them for good, and with them whatever they wrote since ${failover.startedAt}: no capture holds it (captures read primary machines only).\n` +
          `Copy that data back to production first (fail back), then release it: recovery release ${id} --yes\n`,
      });
      expect((await host.listLabResources(id)).machines).toHaveLength(1);

      const teardown = host.teardown.bind(host);
      host.teardown = async () => {
        throw new Error('connect ECONNREFUSED /var/run/docker.sock');
      };
      const unreachable = await cli(...as('release', id, '--yes')).finally(
        () => {
          host.teardown = teardown;
        },
      );
      expect(unreachable).toMatchObject({ status: 3, stdout: '' });
      expect(unreachable.stderr).toBe(
        `recovery: Hypervisor host 'fake' could not tear down what failover ${id} kept there: connect ECONNREFUSED /var/run/docker.sock. The failover is not released: release it again once the host answers (503)\n`,
      );

      const released = await cli(...as('release', id, '--yes'));
      expect(released).toEqual({
        status: 0,
        stdout: `Failover ${id} of component:default/web: Released by external:test-service: removed 1 container (${id}/resource:default/web-01) and 1 network (lab-${id}-prod) it kept on fake\n`,
        stderr: '',
      });
      // Again: nothing left to lose, so no --yes asked; still released.
      const again = await cli(...as('release', id, '--json'));
      expect(again.status).toBe(0);
      expect(JSON.parse(again.stdout).steps.at(-1).message).toBe(
        'Released by external:test-service: nothing of it was left on fake',
      );
    } finally {
      await host.teardown(id);
    }

    const test = JSON.parse(
      (await cli(...as('run', 'web', '--interval', '0.1', '--json'))).stdout,
    );
    const notFailover = await cli(...as('release', test.id));
    expect(notFailover).toMatchObject({ status: 3, stdout: '' });
    expect(notFailover.stderr).toBe(
      `recovery: Run ${test.id} is a test recovery, not a failover: only a failover's machines are kept on the host, and a test recovery's lab is torn down when it finishes (409)\n`,
    );
    expect(await cli(...as('release', 'no-such-run'))).toMatchObject({
      status: 3,
      stderr: 'recovery: Run no-such-run not found (404)\n',
    });
  });

  it('says a run a failover preempted was interrupted, not failed, with exit 4', async () => {
    await cli(...as('capture', 'web'));
    // The test run stays in its restore until the failover has preempted it.
    const restore = host.restoreMachine.bind(host);
    let held: (() => void) | undefined;
    let failoverId: string | undefined;
    host.restoreMachine = async (lab, capture) => {
      if (!held) await new Promise<void>(resolve => (held = resolve));
      return restore(lab, capture);
    };
    try {
      const test = JSON.parse(
        (await cli(...as('run', 'web', '--detach', '--json'))).stdout,
      );
      await vi.waitFor(() => expect(held).toBeDefined());
      const failover = JSON.parse(
        (
          await cli(
            ...as('run', 'web', '--failover', '--interval', '0.1', '--json'),
          )
        ).stdout,
      );
      failoverId = failover.id;
      expect(failover).toMatchObject({ mode: 'failover', status: 'succeeded' });

      const watched = await cli(...as('watch', test.id));
      expect(watched).toMatchObject({ status: 4, stderr: '' });
      const lines = watched.stdout.trimEnd().split('\n');
      expect(lines.at(-1)).toBe(
        `Run ${test.id} of component:default/web interrupted: preempted by failover ${failover.id}. It reached no result: run it again`,
      );
      // The machine it was restoring: cut off, as the run was, not failed.
      expect(lines).toContainEqual(
        expect.stringMatching(
          /^\d\d:\d\d:\d\d {2}resource:default\/web-01: interrupted, not verified$/,
        ),
      );
      // --json: the API's run as it is, with the same exit status.
      const json = await cli(...as('watch', test.id, '--json'));
      expect(json.status).toBe(4);
      expect(JSON.parse(json.stdout)).toMatchObject({
        id: test.id,
        status: 'interrupted',
        error: { message: `Interrupted: preempted by failover ${failover.id}` },
        machines: [
          { machineRef: 'resource:default/web-01', phase: 'interrupted' },
        ],
      });
    } finally {
      held?.();
      host.restoreMachine = restore;
      if (failoverId) await host.teardown(failoverId);
    }
  });

  it("reads a URL naming the plugin's own base path as the backend it is in", async () => {
    const expected = await cli(...as('readiness'));
    expect(expected.status).toBe(0);
    for (const plugin of [`${url}/api/recovery`, `${url}/api/recovery/`]) {
      expect(await cli('readiness', '--url', plugin, '--token', token)).toEqual(
        expected,
      );
    }
  });

  it('never echoes a password given in the URL', async () => {
    const withPassword = await cli(
      'readiness',
      '--url',
      'http://admin:s3cret@127.0.0.1:7007',
    );
    expect(withPassword).toMatchObject({
      status: 2,
      stderr:
        'recovery: --url: a user or password in the URL is not sent; pass a token with --token or RECOVERY_TOKEN\n',
    });
  });

  it('refuses to send the token over plain HTTP to another host than loopback, unless told to, then warns', () => {
    const clientFor = (
      to: string,
      withToken?: string,
      allowPlainHttp?: boolean,
      env: NodeJS.ProcessEnv = {},
    ) => backendClient({ url: to, token: withToken, allowPlainHttp }, env);
    for (const remote of [
      'http://backstage.example.com:7007',
      'http://10.0.0.5:7007',
      'HTTP://backstage.example.com:7007',
      // Asked of DNS, search domains appended: they may name another host.
      'http://x.localhost:7007',
      'http://localhost.:7007',
    ]) {
      expect(() => clientFor(remote, 't')).toThrow(
        new RemoteInputError(
          `--url: the token would go to ${remote} over plain HTTP, readable on the network: use https (on a network you trust, --allow-plain-http or RECOVERY_ALLOW_PLAIN_HTTP=1 sends it all the same)`,
        ),
      );
      expect(() =>
        clientFor(remote, undefined, undefined, { RECOVERY_TOKEN: 't' }),
      ).toThrow(RemoteInputError);
      expect(() =>
        clientFor(remote, 't', false, { RECOVERY_ALLOW_PLAIN_HTTP: '0' }),
      ).toThrow(RemoteInputError);
      // Told to: sent, with the warning.
      const warning = `the token goes to ${remote} over plain HTTP, readable on the network: use https`;
      expect(clientFor(remote, 't', true).warning).toBe(warning);
      expect(
        clientFor(remote, 't', false, { RECOVERY_ALLOW_PLAIN_HTTP: '1' })
          .warning,
      ).toBe(warning);
      // No token: nothing secret to read.
      expect(clientFor(remote).warning).toBeUndefined();
    }
    for (const safe of [
      'http://localhost:7007',
      'http://127.0.0.1:7007',
      'http://[::1]:7007',
      // As URL normalises them: [::1] and 127.0.0.1.
      'http://[0:0::1]:7007',
      'http://127.1:7007',
      'https://backstage.example.com',
    ]) {
      expect(clientFor(safe, 't').warning).toBeUndefined();
    }
  });

  it('exits 2 before any request where the token would go over plain HTTP; --allow-plain-http sends it, warned of', async () => {
    const remote = 'http://backstage.example.com:7007';
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED'), {
        code: 'ECONNREFUSED',
      }),
    });
    const fetched = vi.spyOn(globalThis, 'fetch').mockRejectedValue(refused);
    try {
      expect(
        await cli('readiness', '--url', remote, '--token', 'secret-t'),
      ).toEqual({
        status: 2,
        stdout: '',
        stderr: `recovery: --url: the token would go to ${remote} over plain HTTP, readable on the network: use https (on a network you trust, --allow-plain-http or RECOVERY_ALLOW_PLAIN_HTTP=1 sends it all the same)\n`,
      });
      expect(fetched).not.toHaveBeenCalled();

      const allowed = await cli(
        'readiness',
        '--url',
        remote,
        '--token',
        'secret-t',
        '--allow-plain-http',
      );
      expect(allowed).toMatchObject({
        status: 3,
        stderr: `recovery: warning: the token goes to ${remote} over plain HTTP, readable on the network: use https\nrecovery: cannot reach the Backstage backend at ${remote} (ECONNREFUSED): start it, or point --url or RECOVERY_URL at it\n`,
      });
      expect(fetched).toHaveBeenCalledTimes(1);
      const [input, init] = fetched.mock.calls[0];
      expect(String(input)).toMatch(/^http:\/\/backstage\.example\.com:7007\//);
      expect(new Headers(init?.headers).get('Authorization')).toBe(
        'Bearer secret-t',
      );
    } finally {
      fetched.mockRestore();
    }
  });

  it('reads short entity refs as the catalog does', () => {
    expect(entityRefArg('web')).toBe('component:default/web');
    expect(entityRefArg('system:shop')).toBe('system:default/shop');
    expect(entityRefArg('Resource:prod/db-01')).toBe('resource:prod/db-01');
  });
});

describe('following a run', () => {
  const run = (status: RecoveryRun['status']) =>
    ({
      id: 'run-1',
      entityRef: 'component:default/web',
      mode: 'test',
      status,
      steps: [],
      machines: [],
    }) as unknown as RecoveryRun;
  const unavailable = () =>
    ResponseError.fromResponse(
      new Response('', { status: 503, statusText: 'Service Unavailable' }),
    );
  /** A backend answering `answers` in turn (an error is thrown), then the last one for ever. */
  const backend = (...answers: Array<RecoveryRun | Error>) => ({
    asked: 0,
    async getRun() {
      const answer = answers[Math.min(this.asked++, answers.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });

  it('asks again while the backend restarts, says so once, and ends with how the run ended', async () => {
    const client = backend(
      new BackendError(
        'cannot reach the Backstage backend at http://b (ECONNREFUSED)',
      ),
      await unavailable(),
      run('failed'),
    );
    const retries: string[] = [];
    const done = await followRun(client, run('running'), {
      intervalMs: 10,
      onRetry: m => retries.push(m),
    });
    expect(done.status).toBe('failed');
    expect(client.asked).toBe(3);
    expect(retries).toEqual([
      'cannot reach the Backstage backend at http://b (ECONNREFUSED); still following run run-1, for up to 60 s',
    ]);
  });

  it("prints each step once, naming its machine, and each machine's phase as it moves on, in the order they happened", async () => {
    const WEB = 'resource:default/web-01';
    const t = (s: number) =>
      `2026-12-04T10:00:${String(s).padStart(2, '0')}.000Z`;
    const wave = {
      at: t(1),
      level: 'info' as const,
      message: `Wave 1: booting ${WEB}`,
    };
    // The restore's start as the backend words it, naming the capture: said once, not again as a phase.
    const restoring = {
      at: t(2),
      machineRef: WEB,
      level: 'info' as const,
      message: 'Restoring capture cap-1 of 2026-12-04 09:00:00 UTC',
    };
    const failure = {
      at: t(9),
      machineRef: WEB,
      level: 'error' as const,
      message: `${WEB} failed: probe tcp:80 did not answer`,
    };
    const looks = [
      {
        ...run('running'),
        steps: [wave, restoring],
        machines: [
          {
            machineRef: WEB,
            wave: 1,
            phase: 'restoring',
            restoreStartedAt: t(2),
          },
        ],
      },
      // Restored and started between two looks: only the phase it is in is said.
      {
        ...run('running'),
        steps: [wave, restoring],
        machines: [
          {
            machineRef: WEB,
            wave: 1,
            phase: 'verifying',
            restoreStartedAt: t(2),
            restoredAt: t(3),
            startedAt: t(4),
          },
        ],
      },
      {
        ...run('running'),
        steps: [wave, restoring],
        machines: [
          {
            machineRef: WEB,
            wave: 1,
            phase: 'verifying',
            restoreStartedAt: t(2),
            restoredAt: t(3),
            startedAt: t(4),
          },
        ],
      },
      {
        ...run('failed'),
        // The run's failure in the machine's words, as the backend records it: said once.
        steps: [
          wave,
          restoring,
          failure,
          { at: t(9), level: 'error' as const, message: failure.message },
          { at: t(10), level: 'info' as const, message: 'Lab torn down' },
        ],
        machines: [
          {
            machineRef: WEB,
            wave: 1,
            phase: 'failed',
            restoreStartedAt: t(2),
            restoredAt: t(3),
            startedAt: t(4),
            finishedAt: t(9),
          },
        ],
      },
    ] as RecoveryRun[];
    const lines: string[] = [];
    await followRun(backend(...looks.slice(1)), looks[0], {
      intervalMs: 1,
      onStep: line => lines.push(line),
    });
    expect(lines).toEqual([
      `10:00:01  Wave 1: booting ${WEB}`,
      `10:00:02  ${WEB}: Restoring capture cap-1 of 2026-12-04 09:00:00 UTC`,
      `10:00:04  ${WEB}: started, verifying`,
      `10:00:09  error: ${WEB} failed: probe tcp:80 did not answer`,
      '10:00:10  Lab torn down',
    ]);
    expect(
      formatStep({
        at: t(5),
        machineRef: WEB,
        level: 'info',
        message: 'Ready: restored in 0.6 s',
      }),
    ).toBe(`10:00:05  ${WEB}: Ready: restored in 0.6 s`);
  });

  it("leaves a run's failure as a whole to the outcome line, seen while its lab is torn down or not, and prints its other errors at its end", async () => {
    const t = (s: number) =>
      `2026-12-04T10:00:${String(s).padStart(2, '0')}.000Z`;
    const wave = {
      at: t(1),
      level: 'info' as const,
      message: 'Wave 1: booting resource:default/web-01',
    };
    const failure = {
      at: t(5),
      level: 'error' as const,
      message: 'Lab network could not be created: subnet 10.1.0.0/24 overlaps',
    };
    const tornDown = {
      at: t(7),
      level: 'info' as const,
      message: 'Lab torn down: removed 1 network',
    };
    const failed = {
      ...run('failed'),
      steps: [wave, failure, tornDown],
      error: { message: failure.message },
    } as RecoveryRun;
    // Looked at while its lab was being torn down, the failure recorded and the run not yet ended with it.
    const looks = [
      { ...run('running'), steps: [wave] },
      { ...run('running'), steps: [wave, failure] },
      failed,
    ] as RecoveryRun[];
    const lines: string[] = [];
    await followRun(backend(...looks.slice(1)), looks[0], {
      intervalMs: 1,
      onStep: line => lines.push(line),
    });
    expect(lines).toEqual([
      '10:00:01  Wave 1: booting resource:default/web-01',
      '10:00:07  Lab torn down: removed 1 network',
    ]);
    expect(formatOutcome(failed)).toBe(
      `Run run-1 of component:default/web failed: ${failure.message}`,
    );

    // A run error no outcome says (a run that succeeded, its teardown failed): held, with what came
    // after it, while the run is under way, then printed in order.
    const teardownFailed = {
      at: t(8),
      level: 'error' as const,
      message: 'Teardown failed: engine gone',
    };
    const later = {
      at: t(9),
      level: 'info' as const,
      message: 'Lab left for the cleanup task',
    };
    const succeeded = [
      { ...run('running'), steps: [wave, teardownFailed, later] },
      { ...run('succeeded'), steps: [wave, teardownFailed, later] },
    ] as RecoveryRun[];
    const printed: string[] = [];
    await followRun(backend(succeeded[1]), succeeded[0], {
      intervalMs: 1,
      onStep: line => printed.push(line),
    });
    expect(printed).toEqual([
      '10:00:01  Wave 1: booting resource:default/web-01',
      '10:00:08  error: Teardown failed: engine gone',
      '10:00:09  Lab left for the cleanup task',
    ]);
  });

  it('gives up once the backend stays away past its patience, and at once on a run gone', async () => {
    const away = backend(await unavailable());
    await expect(
      followRun(away, run('running'), { intervalMs: 10, patienceMs: 1_500 }),
    ).rejects.toMatchObject({ statusCode: 503 });
    expect(away.asked).toBeGreaterThanOrEqual(2);
    const gone = backend(
      await ResponseError.fromResponse(
        new Response(
          JSON.stringify({
            error: { name: 'NotFoundError', message: 'Run run-1 not found' },
          }),
          { status: 404, headers: { 'Content-Type': 'application/json' } },
        ),
      ),
    );
    await expect(
      followRun(gone, run('running'), { intervalMs: 10 }),
    ).rejects.toMatchObject({ statusCode: 404 });
    expect(gone.asked).toBe(1);
  });

  it('says the measured RTO as precisely as the steps that add up to it', () => {
    const recovered = {
      ...run('succeeded'),
      rtoSeconds: 2.621,
      machines: [{ machineRef: 'resource:default/web-01' }],
    } as RecoveryRun;
    // Not `3s` under a step that says the machine took 2.621 s.
    expect(formatOutcome(recovered)).toBe(
      'Run run-1 of component:default/web succeeded: 1 machine verified, measured RTO 2.621s',
    );
    expect(formatOutcome({ ...recovered, rtoSeconds: 252.104 })).toBe(
      'Run run-1 of component:default/web succeeded: 1 machine verified, measured RTO 4m 12.104s',
    );
  });

  it("writes the ISO times of the backend's steps and failures as it writes its own, as the portal does", () => {
    expect(
      formatStep({
        at: '2026-12-07T02:16:34.120Z',
        machineRef: 'resource:default/db-01',
        level: 'warning',
        message:
          'Restores its capture of 2026-12-06T01:00:00.549Z, 1d 1h old when the run was admitted, over the RPO of 1d',
      }),
    ).toBe(
      '02:16:34  resource:default/db-01: warning: Restores its capture of 2026-12-06 01:00:00 UTC, 1d 1h old when the run was admitted, over the RPO of 1d',
    );
    const failed = {
      ...run('failed'),
      error: {
        message:
          'resource:default/db-01 failed: it stopped at 2026-12-07T04:16:34+02:00 (exited with code 3)',
      },
    } as RecoveryRun;
    expect(formatOutcome(failed)).toBe(
      'Run run-1 of component:default/web failed: resource:default/db-01 failed: it stopped at 2026-12-07 02:16:34 UTC (exited with code 3)',
    );
    // A cancelled run's outcome, as its timeline's last step above it says the same time.
    const cancelled = {
      ...run('interrupted'),
      error: {
        message:
          'Interrupted: cancelled by user:default/dr at 2026-12-07T02:16:40.100Z',
        cancelledBy: 'user:default/dr',
      },
    } as RecoveryRun;
    expect(formatOutcome(cancelled)).toBe(
      'Run run-1 of component:default/web interrupted: cancelled by user:default/dr at 2026-12-07 02:16:40 UTC. It reached no result',
    );
  });
});

describe('starting a run', () => {
  it("falls back on the backend's words where a refusal for missing dependencies lists none", async () => {
    const message =
      'component:default/orders cannot be recovered as the catalog declares it: ledger is not in the catalog.';
    const refusal = await ResponseError.fromResponse(
      new Response(
        JSON.stringify({
          error: { name: 'MissingDependenciesError', message },
          response: { statusCode: 409 },
        }),
        {
          status: 409,
          headers: { 'Content-Type': 'application/json' },
        },
      ),
    );
    const client = {
      startRun: async () => Promise.reject(refusal),
    } as unknown as Parameters<typeof startRun>[0];
    await expect(startRun(client, 'component:default/orders')).rejects.toThrow(
      new BackendError(
        `${message} (recovery run --accept-missing-dependencies)`,
      ),
    );
  });
});

describe('readiness in words', () => {
  it('writes figures and statuses as the portal does, an age or RTO over its objective never as the objective itself', () => {
    const readiness = {
      entityRef: 'component:default/web',
      status: 'at-risk',
      reasons: [
        'resource:default/db-01 was last captured 1 d ago, over its RPO of 24 h',
      ],
      objectives: { rpoSeconds: 86400, rtoSeconds: 300 },
      position: { wave: 1, waitsFor: ['resource:default/db-01'] },
      captures: [
        {
          machineRef: 'resource:default/db-01',
          latest: { id: 'c1' },
          ageSeconds: 86440,
        },
        {
          machineRef: 'resource:default/web-01',
          latest: { id: 'c2' },
          ageSeconds: 3600,
        },
        { machineRef: 'resource:default/cache-01' },
      ],
      lastRun: {
        id: 'r1',
        entityRef: 'component:default/web',
        mode: 'test',
        status: 'succeeded',
        finishedAt: '2026-12-05T10:00:09.000Z',
        rtoSeconds: 300.4,
      },
    } as unknown as Readiness;
    expect(formatReadiness(readiness)).toBe(
      [
        'component:default/web: at risk',
        '  - resource:default/db-01 was last captured 1 d ago, over its RPO of 24 h',
        'Objectives: RPO 1d · RTO 5m',
        'Boot order: wave 2, after resource:default/db-01',
        'Captures:',
        '  resource:default/db-01  1d 0h 0m 40s old',
        '  resource:default/web-01  1h old',
        '  resource:default/cache-01  never captured',
        'Last run: test succeeded at 2026-12-05T10:00:09.000Z, measured RTO 5m 0.4s vs objective 5m (exceeded)',
        '',
      ].join('\n'),
    );
  });

  it("says the last run's measured RTO to the millisecond, as its steps and outcome do", () => {
    const readiness = {
      entityRef: 'component:default/web',
      status: 'ready',
      reasons: [],
      objectives: { rpoSeconds: 86400, rtoSeconds: 300 },
      captures: [],
      lastRun: {
        mode: 'test',
        status: 'succeeded',
        finishedAt: '2026-12-05T10:00:09.000Z',
        rtoSeconds: 2.621,
      },
    } as unknown as Readiness;
    expect(formatReadiness(readiness)).toContain(
      'Last run: test succeeded at 2026-12-05T10:00:09.000Z, measured RTO 2.621s vs objective 5m\n',
    );
  });
});
