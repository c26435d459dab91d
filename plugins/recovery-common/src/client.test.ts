import { ResponseError } from '@backstage/errors';
import type { PlanResponse } from './types';
import { RecoveryClient } from './client';
import {
  busyWithRunId,
  CaptureFailedError,
  captureFailure,
  errorMessage,
  isHostBusy,
} from './errors';

function setup(respond: (url: string, init?: RequestInit) => Response) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetchApi = {
    fetch: async (input: any, init?: RequestInit) => {
      const url = String(input);
      calls.push({ url, init });
      return respond(url, init);
    },
  };
  const discoveryApi = {
    getBaseUrl: vi.fn(async (id: string) => `http://backstage.test/api/${id}`),
  };
  const client = new RecoveryClient({ discoveryApi, fetchApi });
  return { client, calls, discoveryApi };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });

describe('RecoveryClient', () => {
  it('reads readiness and plans by split entity ref', async () => {
    const { client, calls, discoveryApi } = setup(url =>
      json({ entityRef: 'x', url }),
    );
    await client.getReadiness('component:default/web');
    await client.getBootPlan('System:prod/shop');
    await client.getReadiness('component:default/a b');
    expect(discoveryApi.getBaseUrl).toHaveBeenCalledWith('recovery');
    expect(calls.map(c => c.url)).toEqual([
      'http://backstage.test/api/recovery/readiness/component/default/web',
      'http://backstage.test/api/recovery/plan/system/prod/shop',
      'http://backstage.test/api/recovery/readiness/component/default/a%20b',
    ]);
    expect(calls[0].init).toBeUndefined();
  });

  it('unwraps list responses', async () => {
    const { client, calls } = setup(() => json({ items: [{ id: 'r1' }] }));
    expect(await client.listReadiness()).toEqual([{ id: 'r1' }]);
    expect(
      await client.listRuns({ entityRef: 'component:default/web', limit: 5 }),
    ).toEqual([{ id: 'r1' }]);
    expect(await client.listRuns({})).toEqual([{ id: 'r1' }]);
    expect(await client.listRuns({ active: true })).toEqual([{ id: 'r1' }]);
    expect(await client.listCaptures('resource:default/web-01')).toEqual([
      { id: 'r1' },
    ]);
    expect(await client.listCaptures('resource:default/web 01', 500)).toEqual([
      { id: 'r1' },
    ]);
    expect(calls.map(c => c.url)).toEqual([
      'http://backstage.test/api/recovery/readiness',
      'http://backstage.test/api/recovery/runs?entityRef=component%3Adefault%2Fweb&limit=5',
      'http://backstage.test/api/recovery/runs',
      'http://backstage.test/api/recovery/runs?active=true',
      'http://backstage.test/api/recovery/captures?machineRef=resource%3Adefault%2Fweb-01',
      'http://backstage.test/api/recovery/captures?machineRef=resource%3Adefault%2Fweb+01&limit=500',
    ]);
  });

  it('reads one page of runs or captures after the cursor given, with where the next starts', async () => {
    const page = { items: [{ id: 'r1' }], pageInfo: { nextCursor: 'c/2 b' } };
    const { client, calls } = setup(() => json({ ...page, totalItems: 7 }));
    // The next page of a history: the runs after the cursor of the one before.
    expect(
      await client.listRunsPage({
        entityRef: 'component:default/web',
        limit: 5,
        cursor: 'c/1 a',
      }),
    ).toEqual({ ...page, totalItems: 7 });
    expect(
      await client.listCapturesPage('resource:default/web-01', {
        limit: 2,
        cursor: 'c/1 a',
      }),
    ).toEqual({ ...page, totalItems: 7 });
    expect(calls.map(c => c.url)).toEqual([
      'http://backstage.test/api/recovery/runs?entityRef=component%3Adefault%2Fweb&limit=5&cursor=c%2F1+a',
      'http://backstage.test/api/recovery/captures?machineRef=resource%3Adefault%2Fweb-01&limit=2&cursor=c%2F1+a',
    ]);
  });

  it('reads every page of the readiness, most at risk first, and one page as asked', async () => {
    const item = (entityRef: string, status: string) => ({ entityRef, status });
    const { client, calls } = setup(url => {
      const cursor = new URL(url).searchParams.get('cursor');
      if (!cursor)
        return json({
          items: [item('component:default/a', 'ready')],
          totalItems: 3,
          pageInfo: { nextCursor: 'c1' },
        });
      if (cursor === 'c1')
        return json({
          // Read a moment later: a's readiness changed meanwhile, and is taken as last read.
          items: [
            item('component:default/b', 'not-recoverable'),
            item('component:default/a', 'at-risk'),
          ],
          totalItems: 3,
          pageInfo: { nextCursor: 'c2' },
        });
      return json({
        items: [item('component:default/c', 'at-risk')],
        totalItems: 3,
        pageInfo: {},
      });
    });
    expect(await client.listReadiness()).toEqual([
      item('component:default/b', 'not-recoverable'),
      item('component:default/a', 'at-risk'),
      item('component:default/c', 'at-risk'),
    ]);
    expect(calls.map(c => c.url)).toEqual([
      'http://backstage.test/api/recovery/readiness',
      'http://backstage.test/api/recovery/readiness?limit=500&cursor=c1',
      'http://backstage.test/api/recovery/readiness?limit=500&cursor=c2',
    ]);
    expect(
      await client.listReadinessPage({
        includePlan: true,
        limit: 20,
        cursor: 'c2',
      }),
    ).toEqual({
      items: [item('component:default/c', 'at-risk')],
      totalItems: 3,
      pageInfo: {},
    });
    expect(calls.at(-1)!.url).toBe(
      'http://backstage.test/api/recovery/readiness?include=plan&limit=20&cursor=c2',
    );
  });

  it('posts runs and captures as JSON', async () => {
    const { client, calls } = setup(url =>
      url.endsWith('/captures')
        ? json(
            {
              requestId: 'req-1',
              entityRef: 'component:default/web',
              machineRefs: ['resource:default/web-01'],
              status: 'succeeded',
              createdAt: '2026-12-22T00:00:00.000Z',
              captures: [{ id: 'cap-1' }],
            },
            202,
          )
        : json({ id: 'run-1', status: 'pending' }, 202),
    );
    const run = await client.startRun({
      entityRef: 'component:default/web',
      mode: 'test',
    });
    expect(run).toEqual({ id: 'run-1', status: 'pending' });
    expect(await client.captureNow('component:default/web')).toEqual([
      { id: 'cap-1' },
    ]);
    expect(calls[0].url).toBe('http://backstage.test/api/recovery/runs');
    expect(calls[0].init?.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init?.body))).toEqual({
      entityRef: 'component:default/web',
      mode: 'test',
    });
    expect(new Headers(calls[0].init?.headers).get('content-type')).toBe(
      'application/json',
    );
    expect(calls[1].url).toBe('http://backstage.test/api/recovery/captures');
    expect(JSON.parse(String(calls[1].init?.body))).toEqual({
      entityRef: 'component:default/web',
    });
    await client.captureNow('component:default/web', 'resource:default/web-01');
    expect(JSON.parse(String(calls[2].init?.body))).toEqual({
      entityRef: 'component:default/web',
      machineRef: 'resource:default/web-01',
    });
  });

  it('returns the plan as GET /plan answers it: with its problems and disagreements', async () => {
    const body: PlanResponse = {
      entityRef: 'component:default/web',
      waves: [['resource:default/web-1']],
      machines: [],
      problems: [
        {
          entityRef: 'resource:default/web-1',
          annotation: 'recovery.backstage-recovery.io/container',
          message: 'Machine web-1 has no container annotation',
        },
      ],
      disagreements: {
        inferredNotDeclared: [],
        declaredNotObserved: [
          {
            service: 'component:default/web',
            dependsOn: 'component:default/cache',
          },
        ],
      },
    };
    const { client } = setup(() => json(body));
    const plan = await client.getBootPlan('component:default/web');
    expect(plan.problems[0].message).toBe(
      'Machine web-1 has no container annotation',
    );
    expect(plan.disagreements?.declaredNotObserved).toEqual([
      {
        service: 'component:default/web',
        dependsOn: 'component:default/cache',
      },
    ]);
    expect(plan).toEqual(body);
  });

  it('gets one run by id', async () => {
    const { client, calls } = setup(() => json({ id: 'run/1' }));
    await client.getRun('run/1');
    expect(calls[0].url).toBe(
      'http://backstage.test/api/recovery/runs/run%2F1',
    );
  });

  it('cancels a run by id with an empty JSON body, answering the run as the backend recorded it', async () => {
    const { client, calls } = setup(() =>
      json({ id: 'run/1', status: 'running' }, 202),
    );
    expect(await client.cancelRun('run/1')).toEqual({
      id: 'run/1',
      status: 'running',
    });
    expect(calls[0].url).toBe(
      'http://backstage.test/api/recovery/runs/run%2F1/cancel',
    );
    expect(calls[0].init?.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init?.body))).toEqual({});
  });

  it('turns error responses into ResponseErrors carrying the server message', async () => {
    const { client } = setup(() =>
      json(
        {
          error: {
            name: 'NotAllowedError',
            message: 'Missing permission recovery.run.create',
          },
          request: { method: 'POST', url: '/api/recovery/runs' },
          response: { statusCode: 403 },
        },
        403,
      ),
    );
    const error = await client
      .startRun({ entityRef: 'component:default/web' })
      .catch(e => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect(error.statusCode).toBe(403);
    expect(error.message).toContain('403');
    expect(error.body.error.message).toBe(
      'Missing permission recovery.run.create',
    );
    expect(error.cause.name).toBe('NotAllowedError');
    expect(errorMessage(error)).toBe('Missing permission recovery.run.create');
    expect(errorMessage(new Error('plain'))).toBe('plain');
  });

  it('reports non-JSON errors with their status', async () => {
    const { client } = setup(
      () =>
        new Response('upstream down', {
          status: 502,
          statusText: 'Bad Gateway',
        }),
    );
    const error = await client.getRun('run-1').catch(e => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect(error.statusCode).toBe(502);
    expect(error.message).toMatch(/502/);
  });

  it('tells a busy host from other refusals, and reads the run it is busy with from the error body', async () => {
    const refused = (status: number, error: Record<string, string>) =>
      // As Backstage's error handler answers: the error, and the status again.
      setup(() => json({ error, response: { statusCode: status } }, status))
        .client.startRun({ entityRef: 'component:default/web' })
        .catch(e => e);
    const busy = await refused(409, {
      name: 'HypervisorHostBusyError',
      message:
        "Hypervisor host 'recovery-1' is busy with run 3f2c9a1e of system:default/demo-site",
      runId: '3f2c9a1e',
      entityRef: 'system:default/demo-site',
    });
    expect(isHostBusy(busy)).toBe(true);
    expect(busyWithRunId(busy)).toBe('3f2c9a1e');

    // An older backend's body, without the run: still busy by its name, but no run to follow.
    const unnamed = await refused(409, {
      name: 'HypervisorHostBusyError',
      message: 'recovery-1 is occupied',
    });
    expect(isHostBusy(unnamed)).toBe(true);
    expect(busyWithRunId(unnamed)).toBeUndefined();

    const uncaptured = await refused(409, {
      name: 'ConflictError',
      message:
        'No capture of resource:default/web-1 yet: capture first (POST /captures)',
    });
    expect(isHostBusy(uncaptured)).toBe(false);
    expect(busyWithRunId(uncaptured)).toBeUndefined();
  });

  it("reads an entity's capture where machines failed from the error body, as captureInTurn throws it", async () => {
    const kept = {
      id: 'c-1',
      machineRef: 'resource:default/mixed-01',
      createdAt: '2026-12-05T10:00:00.000Z',
    };
    const body = {
      name: 'CaptureFailedError',
      message:
        'capture of component:default/mixed: 2 of 3 machines not captured: ...',
      statusCode: 502,
      failed: [
        {
          machineRef: 'resource:default/broken-01',
          kind: 'failed',
          error: {
            name: 'EngineFailedError',
            message: 'engine broken answered HTTP 500',
          },
        },
        // As a backend from before kinds wrote it: the kind from its error.
        {
          machineRef: 'resource:default/unplugged-01',
          error: {
            name: 'ServiceUnavailableError',
            message: 'engine unplugged is unreachable',
          },
        },
        {
          machineRef: 'resource:default/held-01',
          error: { name: 'ConflictError', message: 'capture c-1 is under way' },
        },
      ],
      captures: [kept],
    };
    const { client } = setup(() =>
      json({ error: body, response: { statusCode: 502 } }, 502),
    );
    const error = await client
      .captureNow('component:default/mixed')
      .catch(e => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect(captureFailure(error)).toEqual({
      failed: [
        {
          machineRef: 'resource:default/broken-01',
          kind: 'failed',
          error: {
            name: 'EngineFailedError',
            message: 'engine broken answered HTTP 500',
          },
        },
        {
          machineRef: 'resource:default/unplugged-01',
          kind: 'unreachable',
          error: {
            name: 'ServiceUnavailableError',
            message: 'engine unplugged is unreachable',
          },
        },
        {
          machineRef: 'resource:default/held-01',
          kind: 'busy',
          error: { name: 'ConflictError', message: 'capture c-1 is under way' },
        },
      ],
      captures: [kept],
    });
    // The same, thrown by a capture machine by machine; any other error is none.
    const inTurn = new CaptureFailedError('1 machine not captured: ...', {
      failed: [
        {
          machineRef: 'resource:default/a',
          kind: 'busy',
          error: { name: 'ConflictError', message: 'under way' },
        },
      ],
      captures: [],
    });
    expect(inTurn).toMatchObject({
      name: 'CaptureFailedError',
      statusCode: 409,
    });
    expect(captureFailure(inTurn)).toBe(inTurn);
    const other = await setup(() =>
      json(
        {
          error: { name: 'EngineFailedError', message: 'engine broken' },
          response: { statusCode: 502 },
        },
        502,
      ),
    )
      .client.captureNow('component:default/web', 'resource:default/web-01')
      .catch(e => e);
    expect(captureFailure(other)).toBeUndefined();
    expect(captureFailure(new Error('plain'))).toBeUndefined();
  });
});
