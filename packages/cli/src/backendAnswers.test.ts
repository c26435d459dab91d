/**
 * The backend commands against answers a real backend, or what stands in front of it, gives: the
 * backend's own refusals, a gateway's HTML pages, a redirect, the app's page where the API was
 * meant, a connection broken mid-answer. A small HTTP server plays them.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from './testing/runCli';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const json = (res: ServerResponse, status: number, body: unknown) =>
  res
    .writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' })
    .end(JSON.stringify(body));
/** An error as Backstage's error handler writes it. */
const backendError = (
  res: ServerResponse,
  status: number,
  name: string,
  message: string,
  more: object = {},
) =>
  json(res, status, {
    error: { name, message, ...more },
    request: { method: 'POST', url: '/api/recovery/runs' },
    response: { statusCode: status },
  });
const run = (status: string) => ({
  id: 'run-1',
  entityRef: 'component:default/web',
  mode: 'test',
  status,
  steps:
    status === 'running'
      ? []
      : [
          {
            at: '2026-12-05T10:00:09.000Z',
            level: 'info',
            message: 'Lab torn down',
          },
        ],
  machines: [],
  createdAt: '2026-12-05T10:00:00.000Z',
  ...(status === 'succeeded' && { rtoSeconds: 9 }),
});
const NGINX_503 =
  '<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n' +
  `<hr><center>nginx</center>\r\n${'<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n'.repeat(6)}</body>\r\n</html>\r\n`;

describe('recovery against what a backend, or what stands in front of it, answers', () => {
  let server: Server;
  let url: string;
  let handle: Handler;
  let requests: string[];

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      handle(req, res);
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    requests = [];
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
  });

  const cli = (...argv: string[]) =>
    runCli([...argv, '--url', url, '--token', 't']);

  it('refuses, exit 2 and before any request, a second entity, run or option value it would silently leave out', async () => {
    handle = (_req, res) => json(res, 201, run('succeeded'));
    for (const [argv, command] of [
      [['run', 'web', 'api'], 'run'],
      [['capture', 'web', 'api'], 'capture'],
      [['readiness', 'web', 'api'], 'readiness'],
      [['watch', 'run-1', 'run-2'], 'watch'],
      [['release', 'run-1', 'run-2'], 'release'],
      [['runs', 'web', 'api'], 'runs'],
      [['show-run', 'run-1', 'run-2'], 'show-run'],
      [['captures', 'web', 'api'], 'captures'],
      [['plan', 'web', 'api'], 'plan'],
    ] as const) {
      expect(await cli(...argv)).toEqual({
        status: 2,
        stdout: '',
        stderr: `error: too many arguments for '${command}'. Expected 1 argument but got 2.\n`,
      });
    }
    // An option given twice: one value would be ignored unsaid. A token is not echoed.
    expect(await cli('run', 'web', '--token', 's3cret')).toEqual({
      status: 2,
      stdout: '',
      stderr: 'recovery: --token given twice: give it once\n',
    });
    expect(
      await cli('watch', 'run-1', '--interval', '5', '--interval', '0.5'),
    ).toEqual({
      status: 2,
      stdout: '',
      stderr:
        "recovery: --interval given twice ('5', then '0.5'): give it once\n",
    });
    expect(
      await cli('runs', 'web', '--status', 'failed', '--status', 'running'),
    ).toEqual({
      status: 2,
      stdout: '',
      stderr:
        "recovery: --status given twice ('failed', then 'running'): give it once\n",
    });
    // A --limit or --status that does not read, or an entity and a machine: refused unasked.
    for (const argv of [
      ['runs', 'web', '--limit', '0'],
      ['runs', '--limit', '-1'],
      ['runs', 'web', '--status', 'done'],
      ['captures', '--machine', 'web-01', '--limit', '501'],
      ['captures', 'web', '--machine', 'web-01'],
      ['captures', '--machine', ':'],
    ])
      expect(await cli(...argv)).toMatchObject({ status: 2, stdout: '' });
    expect(requests).toEqual([]);
  });

  it("says the backend's own refusals with their status, exit 3: a token, a permission, an entity, a failover kept on the host", async () => {
    handle = (_req, res) =>
      backendError(res, 401, 'AuthenticationError', 'Illegal token');
    expect(await cli('run', 'web')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        'recovery: Illegal token (401): the backend refused the token (a static token from backend.auth.externalAccess)\n',
    });
    handle = (_req, res) =>
      backendError(
        res,
        403,
        'NotAllowedError',
        'Missing permission recovery.run.failover on component:default/web',
      );
    expect(await cli('run', 'web', '--failover')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        'recovery: Missing permission recovery.run.failover on component:default/web (403)\n',
    });
    handle = (_req, res) =>
      backendError(
        res,
        404,
        'NotFoundError',
        'No entity component:default/nope in the catalog',
      );
    expect(await cli('readiness', 'nope')).toMatchObject({
      status: 3,
      stderr:
        "recovery: No entity component:default/nope in the catalog (404): a name without its kind is a Component's; for a machine, use resource:nope\n",
    });
    const kept =
      'component:default/web cannot be test-recovered on dr-host now: failover run-0 of component:default/web (succeeded at 2026-12-04T10:00:00.000Z) keeps 1 container there, ' +
      'serving production with machine resource:default/web-01; release failover run-0 (recovery release run-0, or POST /runs/run-0/release) and start the run again';
    handle = (_req, res) =>
      backendError(res, 409, 'KeptFailoverError', kept, {
        failover: 'failover run-0',
        host: 'dr-host',
      });
    expect(await cli('run', 'web')).toEqual({
      status: 3,
      stdout: '',
      stderr: `recovery: ${kept} (409)\n`,
    });
  });

  it("says a recovery point earlier than machines' kept captures a machine a line, with the earliest point to give: exit 3", async () => {
    const body = {
      recoveryPoint: '2026-12-01T00:00:00.000Z',
      machines: [
        {
          machineRef: 'resource:default/db-01',
          oldestCaptureAt: '2026-12-03T01:00:00.000Z',
        },
        {
          machineRef: 'resource:default/web-01',
          oldestCaptureAt: '2026-12-03T01:00:02.000Z',
        },
      ],
      neverCaptured: [],
      earliestRecoveryPoint: '2026-12-03T01:00:02.000Z',
    };
    handle = (_req, res) =>
      backendError(
        res,
        409,
        'RecoveryPointTooEarlyError',
        'No capture kept at or before the recovery point …',
        body,
      );
    expect(
      await cli('run', 'web', '--recovery-point', '2026-12-01T01:00:00+01:00'),
    ).toEqual({
      status: 3,
      stdout: '',
      stderr:
        'recovery: no capture kept at or before the recovery point 2026-12-01T00:00:00.000Z of 2 machines of component:default/web:\n' +
        '  resource:default/db-01   its oldest kept capture is of 2026-12-03T01:00:00.000Z\n' +
        '  resource:default/web-01  its oldest kept capture is of 2026-12-03T01:00:02.000Z\n' +
        '--recovery-point 2026-12-03T01:00:02.000Z is the earliest every machine allows (recovery.captureStore.keepLast sets how many captures are kept); ' +
        'leave it out to restore the latest captures\n',
    });
    // A machine never captured: said apart, and no point offered.
    handle = (_req, res) =>
      backendError(
        res,
        409,
        'RecoveryPointTooEarlyError',
        'No capture kept at or before the recovery point …',
        {
          ...body,
          machines: body.machines.slice(0, 1),
          neverCaptured: ['resource:default/web-01'],
          earliestRecoveryPoint: undefined,
        },
      );
    expect(
      (await cli('run', 'web', '--recovery-point', '2026-12-01T00:00:00Z'))
        .stderr,
    ).toBe(
      'recovery: no capture kept at or before the recovery point 2026-12-01T00:00:00.000Z of 2 machines of component:default/web:\n' +
        '  resource:default/db-01   its oldest kept capture is of 2026-12-03T01:00:00.000Z\n' +
        '  resource:default/web-01  never captured\n' +
        'capture resource:default/web-01 first (recovery capture component:default/web): no recovery point can restore it until then\n',
    );
  });

  it("shortens a gateway's or proxy's HTML error page to a line, saying the status once, and tells a backend without the plugin", async () => {
    handle = (_req, res) =>
      res
        .writeHead(503, 'Service Unavailable', { 'Content-Type': 'text/html' })
        .end(NGINX_503);
    expect(await cli('run', 'web')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        'recovery: Request failed with status 503 Service Unavailable (text/html: "503 Service Temporarily Unavailable nginx")\n',
    });
    handle = (_req, res) =>
      res
        .writeHead(404, { 'Content-Type': 'text/html; charset=utf-8' })
        .end(
          '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot GET /api/recovery/readiness</pre>\n</body>\n</html>\n',
        );
    // Express's own page, as the app's dev server (--url http://localhost:3000) answers: no Backstage
    // backend gives one (its last middleware answers an empty 404).
    expect(await cli('readiness')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        `recovery: ${url} answered GET /api/recovery/readiness with 404 Not Found and a page (text/html: "Cannot GET /api/recovery/readiness"), as no Backstage backend does: ` +
        'most likely the app (port 3000) or another web server; point --url or RECOVERY_URL at the Backstage backend (by default http://localhost:7007)\n',
    });
    // Backstage's own answer for a plugin it does not have: an empty 404.
    handle = (_req, res) => res.writeHead(404).end();
    expect(await cli('readiness')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        'recovery: Request failed with status 404 Not Found: is the recovery plugin installed in that backend?\n',
    });
    // The plugin's own 404, in Backstage's error body: its words and status, no guess.
    handle = (_req, res) =>
      backendError(res, 404, 'NotFoundError', 'Run run-9 not found');
    expect(await cli('watch', 'run-9')).toEqual({
      status: 3,
      stdout: '',
      stderr: 'recovery: Run run-9 not found (404)\n',
    });
  });

  it("keeps a path prefix before /api, and reads a URL ending in the plugin's base path as the backend it is in", async () => {
    handle = (_req, res) => json(res, 200, { items: [] });
    for (const given of [
      `${url}/prefix`,
      `${url}/prefix/api/recovery`,
      `${url}/prefix/api/recovery/`,
    ]) {
      requests = [];
      expect(
        await runCli(['readiness', '--url', given, '--token', 't']),
      ).toMatchObject({ status: 0, stderr: '' });
      expect(requests).toEqual(['GET /prefix/api/recovery/readiness']);
    }
  });

  it('names a redirect and where it leads, following none (the token would go with it): exit 3', async () => {
    handle = (req, res) =>
      res
        .writeHead(301, { Location: `https://backstage.example.com${req.url}` })
        .end();
    expect(await cli('run', 'web')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        `recovery: the Backstage backend at ${url} redirects POST /api/recovery/runs (301 Moved Permanently) to https://backstage.example.com/api/recovery/runs: ` +
        'redirects are not followed, the token would go with them; point --url or RECOVERY_URL at the address the backend answers on\n',
    });
    expect(requests).toEqual(['POST /api/recovery/runs']);
  });

  it('calls an answer that is not JSON a refusal (exit 3, not 1 as a failed run), naming what came instead', async () => {
    // The app's own page, where --url names the frontend (port 3000) instead of the backend.
    handle = (_req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'text/html' })
        .end(
          '<!DOCTYPE html><html><head><title>Backstage</title><script>x()</script></head><body><div id="root"></div></body></html>',
        );
    expect(await cli('run', 'web')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        `recovery: the answer to POST /api/recovery/runs from ${url} is not valid JSON (200, text/html: "Backstage"): ` +
        'is --url the Backstage backend (such as http://localhost:7007), not the app or a proxy in front of it?\n',
    });
    handle = (_req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end('{"items": [{"entityRef": "component:default/w');
    expect(await cli('readiness', '--json')).toEqual({
      status: 3,
      stdout: '',
      stderr: `recovery: the answer to GET /api/recovery/readiness from ${url} is not valid JSON (200, application/json: "{\\"items\\": [{\\"entityRef\\": \\"component:default/w"): cut short on its way?\n`,
    });
  });

  it('tells a start whose answer the connection lost from a backend out of reach: the run may have started', async () => {
    // The backend restarting, or a proxy cutting the connection, once the request is in.
    handle = req => req.socket.destroy();
    expect(await cli('run', 'web')).toEqual({
      status: 3,
      stdout: '',
      stderr:
        `recovery: the connection to the Backstage backend at ${url} broke before it answered POST /api/recovery/runs (ECONNRESET): ` +
        "it may have started the run all the same; look (recovery readiness, or the entity's Recovery tab) before asking again\n",
    });
    expect(await cli('release', 'run-1', '--yes')).toMatchObject({
      status: 3,
      stderr: expect.stringContaining(
        'POST /api/recovery/runs/run-1/release (ECONNRESET): it may have released the failover all the same;',
      ),
    });
    expect(await cli('readiness')).toEqual({
      status: 3,
      stdout: '',
      stderr: `recovery: the connection to the Backstage backend at ${url} broke before it answered GET /api/recovery/readiness (ECONNRESET)\n`,
    });
  });

  it('says a run the shutdown of its backend interrupted as interrupted, with its reason, exit 4 (no result, neither 0 nor 1)', async () => {
    const interrupted = {
      ...run('interrupted'),
      steps: [
        {
          at: '2026-12-05T10:00:05.000Z',
          level: 'error',
          message: 'Interrupted: the backend is shutting down',
        },
      ],
      error: { message: 'Interrupted: the backend is shutting down' },
    };
    let looks = 0;
    handle = (req, res) =>
      req.method === 'POST'
        ? json(res, 201, run('running'))
        : json(res, 200, ++looks < 2 ? run('running') : interrupted);
    expect(await cli('run', 'web', '--interval', '0.1')).toEqual({
      status: 4,
      stdout:
        // The interruption recorded in its timeline is said once, by the outcome line.
        'Run run-1 of component:default/web started (Ctrl-C stops following, not the run)\n' +
        'Run run-1 of component:default/web interrupted: the backend is shutting down. It reached no result: run it again\n',
      stderr: '',
    });
    expect(await cli('watch', 'run-1', '--json')).toEqual({
      status: 4,
      stdout: `${JSON.stringify(interrupted)}\n`,
      stderr: '',
    });
    // A failure that merely mentions an interruption is a failure.
    const failed = {
      ...run('failed'),
      error: {
        machineRef: 'resource:default/web-01',
        message: 'resource:default/web-01 failed: Interrupted: by a signal',
      },
    };
    handle = (_req, res) => json(res, 200, failed);
    expect(await cli('watch', 'run-1')).toMatchObject({
      status: 1,
      stdout: expect.stringMatching(
        /failed: resource:default\/web-01 failed: Interrupted: by a signal\n$/,
      ),
    });
    // Only the status says interrupted: a failure in words that start as an interruption's (a
    // host's own) is a failed recovery, exit 1.
    handle = (_req, res) =>
      json(res, 200, {
        ...run('failed'),
        error: { message: 'Interrupted: the engine restarted the lab' },
      });
    expect(await cli('watch', 'run-1')).toEqual({
      status: 1,
      stdout:
        '10:00:09  Lab torn down\n' +
        'Run run-1 of component:default/web failed: Interrupted: the engine restarted the lab\n',
      stderr: '',
    });
  });

  it("follows a run through a gateway's page and a connection reset mid-answer, saying so once in a line, to how it ended", async () => {
    let looks = 0;
    handle = (req, res) => {
      if (req.method === 'POST') return json(res, 201, run('running'));
      looks++;
      // A deploy: the gateway's page, then the old backend going with the connection half answered.
      if (looks === 1)
        return res
          .writeHead(503, { 'Content-Type': 'text/html' })
          .end(NGINX_503);
      if (looks === 2) {
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'Content-Length': '500',
        });
        res.write('{"id": "run-1", "status": "runn');
        return void setTimeout(() => req.socket.destroy(), 20);
      }
      return json(res, 200, run(looks < 4 ? 'running' : 'succeeded'));
    };
    const followed = await cli('run', 'web', '--interval', '0.1');
    expect(followed).toEqual({
      status: 0,
      stdout:
        'Run run-1 of component:default/web started (Ctrl-C stops following, not the run)\n' +
        '10:00:09  Lab torn down\n' +
        'Run run-1 of component:default/web succeeded: 0 machines verified, measured RTO 9s\n',
      stderr:
        'recovery: Request failed with status 503 Service Unavailable (text/html: "503 Service Temporarily Unavailable nginx"); still following run run-1, for up to 60 s\n',
    });
    expect(looks).toBe(4);
  });

  it('says an answer it cannot read as such, exit 3 (not 1, a failed recovery), with the run going on and how to follow it again', async () => {
    let looks = 0;
    // A backend of another version: the run's answer without its steps.
    const stepless: Partial<ReturnType<typeof run>> = run('running');
    delete stepless.steps;
    handle = (req, res) =>
      req.method === 'POST'
        ? json(res, 201, run('running'))
        : (looks++, json(res, 200, stepless));
    const followed = await cli('run', 'web', '--interval', '0.1');
    expect(followed).toMatchObject({
      status: 3,
      stdout:
        'Run run-1 of component:default/web started (Ctrl-C stops following, not the run)\n',
    });
    expect(looks).toBe(1);
    expect(followed.stderr.split('\n')[0]).toBe(
      "recovery: the CLI could not read the backend's answer, or hit an internal error (TypeError: Cannot read properties of undefined (reading 'map')): " +
        'this says nothing of run run-1, which goes on on the server; recovery watch run-1 follows it again',
    );
    // The stack, for a bug report.
    expect(followed.stderr).toMatch(/\n {4}at /);
    expect(await cli('watch', 'run-1')).toMatchObject({
      status: 3,
      stderr: expect.stringContaining(
        'which goes on on the server; recovery watch run-1 follows it again',
      ),
    });
    // The run's start answered with what is no run: one may have been started all the same.
    handle = (_req, res) => json(res, 201, null);
    expect(await cli('run', 'web')).toMatchObject({
      status: 3,
      stderr: expect.stringMatching(
        /^recovery: the CLI could not read the backend's answer, or hit an internal error \(TypeError: .*\): a run may have started all the same; look \(recovery readiness/,
      ),
    });
  });

  it('prints the console tail of the machine a run failed at on stderr before its outcome, bounded and cleaned, not with --json nor for a run that failed as a whole', async () => {
    const web = 'resource:default/web-01';
    const tail = [
      ...Array.from({ length: 14 }, (_, i) => `boot line ${i + 1}`),
      '\x1b[31mservice=database failed: dependency nosuch not ready within 20s (unknown service)\x1b[0m',
      '',
    ].join('\n');
    const failed = {
      ...run('failed'),
      error: {
        machineRef: web,
        probe: 'tcp:5432',
        message: `${web} failed: no answer within 20s`,
      },
      machines: [
        {
          machineRef: web,
          wave: 0,
          phase: 'failed',
          message: 'no answer within 20s',
          probe: 'tcp:5432',
          logTail: tail,
        },
      ],
    };
    handle = (_req, res) => json(res, 200, failed);
    const watched = await cli('watch', 'run-1');
    // The console is a diagnostic (stderr); stdout keeps the steps and, last, the outcome.
    expect(watched).toEqual({
      status: 1,
      stdout:
        '10:00:09  Lab torn down\n' +
        `Run run-1 of component:default/web failed: ${web} failed: no answer within 20s\n`,
      stderr: [
        `Console of ${web} (last 10 of 15 lines):\n`,
        ...[6, 7, 8, 9, 10, 11, 12, 13, 14].map(i => `  boot line ${i}\n`),
        '  service=database failed: dependency nosuch not ready within 20s (unknown service)\n',
      ].join(''),
    });
    expect(await cli('watch', 'run-1', '--json')).toEqual({
      status: 1,
      stdout: `${JSON.stringify(failed)}\n`,
      stderr: '',
    });
    // A host outage fails the machine booting with its words; the run's error names none, and its
    // console (had one been kept) is not what failed.
    const outage = {
      ...failed,
      error: {
        message: `hypervisor host fake stopped answering while ${web} was booting: connect ECONNREFUSED`,
      },
    };
    handle = (_req, res) => json(res, 200, outage);
    expect(await cli('watch', 'run-1')).toEqual({
      status: 1,
      stdout: `10:00:09  Lab torn down\nRun run-1 of component:default/web failed: ${outage.error.message}\n`,
      stderr: '',
    });
  });

  it("says where the backend withheld the failed machine's console, and which permission shows it, in watch and show-run", async () => {
    const web = 'resource:default/web-01';
    // As the backend answers a caller without recovery.run.logs.read on the machine.
    const failed = {
      ...run('failed'),
      error: {
        machineRef: web,
        message: `${web} failed: no answer within 20s`,
      },
      machines: [
        {
          machineRef: web,
          wave: 0,
          phase: 'failed',
          message: 'no answer within 20s',
          logTailWithheld: true,
        },
      ],
    };
    handle = (_req, res) => json(res, 200, failed);
    const withheld = `Console of ${web} withheld: reading it needs the recovery.run.logs.read permission on ${web}`;
    expect((await cli('watch', 'run-1')).stderr).toBe(`${withheld}\n`);
    expect((await cli('show-run', 'run-1')).stdout).toContain(
      `\n\n${withheld}\n\nRun run-1 of component:default/web failed`,
    );
  });
});
