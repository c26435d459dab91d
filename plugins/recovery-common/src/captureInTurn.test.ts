import type { Capture, PlanResponse, Readiness } from './types';
import { CaptureFailedError, DEPENDENCY_CYCLE_ERROR_NAME } from './errors';
import {
  captureInTurn,
  nothingToCapture,
  type CaptureProgress,
} from './captureInTurn';

const capture = (machineRef: string) =>
  ({ id: `c-${machineRef}`, machineRef }) as Capture;

function api(failOn?: string) {
  const asked: Array<[string, string | undefined]> = [];
  return {
    asked,
    getBootPlan: async () =>
      ({
        waves: [
          ['resource:default/infra-01'],
          ['resource:default/data-01', 'resource:default/files-01'],
        ],
      }) as PlanResponse,
    captureNow: async (entityRef: string, machineRef?: string) => {
      asked.push([entityRef, machineRef]);
      if (machineRef === failOn)
        throw new Error(`capture of ${machineRef} failed: engine gone`);
      return [capture(machineRef!)];
    },
    getReadiness: async () =>
      ({ plan: { machines: [] }, captures: [] }) as unknown as Readiness,
  };
}

/** As the backend answers GET /plan while a dependency cycle stops the plan (a ResponseError). */
const CYCLE =
  'Dependency cycle: component:default/web -> component:default/db -> component:default/web';
const cycle = Object.assign(new Error(CYCLE), {
  statusCode: 409,
  body: {
    error: {
      name: DEPENDENCY_CYCLE_ERROR_NAME,
      message: CYCLE,
      cycle: CYCLE,
      wouldDrop: [],
    },
  },
});

describe('captureInTurn', () => {
  it("captures the plan's machines one request each, in wave order, telling each start and each capture", async () => {
    const backend = api();
    const heard: string[] = [];
    const captures = await captureInTurn(backend, 'component:default/web', {
      start: (machineRef, index, total) =>
        heard.push(`start ${machineRef} ${index + 1}/${total}`),
      captured: ({ capture: taken, done, total }: CaptureProgress) =>
        heard.push(`captured ${taken.machineRef} ${done}/${total}`),
    });
    expect(backend.asked).toEqual([
      ['component:default/web', 'resource:default/infra-01'],
      ['component:default/web', 'resource:default/data-01'],
      ['component:default/web', 'resource:default/files-01'],
    ]);
    expect(captures.map(c => c.id)).toEqual([
      'c-resource:default/infra-01',
      'c-resource:default/data-01',
      'c-resource:default/files-01',
    ]);
    expect(heard).toEqual([
      'start resource:default/infra-01 1/3',
      'captured resource:default/infra-01 1/3',
      'start resource:default/data-01 2/3',
      'captured resource:default/data-01 2/3',
      'start resource:default/files-01 3/3',
      'captured resource:default/files-01 3/3',
    ]);
  });

  it('goes on past machines the backend answers failed, and names each failure at the end', async () => {
    const backend = api();
    const failing = new Map<string, number>([
      ['resource:default/infra-01', 502],
    ]);
    const captureNow = backend.captureNow;
    backend.captureNow = async (entityRef: string, machineRef?: string) => {
      const statusCode = failing.get(machineRef!);
      if (statusCode === undefined) return captureNow(entityRef, machineRef);
      backend.asked.push([entityRef, machineRef]);
      const message = `capture of ${machineRef} failed; caused by NotFoundError: no container on engine primary`;
      // As the client throws it: its own words, the backend's in the body.
      throw Object.assign(new Error(`Request failed with ${statusCode}`), {
        statusCode,
        body: { error: { message } },
      });
    };
    const captured: string[] = [];
    const one = await captureInTurn(backend, 'component:default/web', {
      captured: p => captured.push(p.capture.machineRef),
    }).catch(e => e);
    // The one failure as the backend answered it; the machines after it captured all the same.
    expect(one).toMatchObject({
      statusCode: 502,
      message: 'Request failed with 502',
    });
    expect(captured).toEqual([
      'resource:default/data-01',
      'resource:default/files-01',
    ]);

    failing.set('resource:default/files-01', 503);
    const two = await captureInTurn(backend, 'component:default/web').catch(
      e => e,
    );
    expect(two).toBeInstanceOf(CaptureFailedError);
    expect(two).toMatchObject({
      name: 'CaptureFailedError',
      statusCode: 502,
      message:
        '2 machines not captured: capture of resource:default/infra-01 failed; caused by NotFoundError: no container on engine primary; ' +
        'capture of resource:default/files-01 failed; caused by NotFoundError: no container on engine primary (captured, and kept: resource:default/data-01)',
      // The shape the backend's CaptureFailedError body has: each machine, its kind, the backend's words.
      failed: [
        {
          machineRef: 'resource:default/infra-01',
          kind: 'failed',
          error: {
            name: 'Error',
            message:
              'capture of resource:default/infra-01 failed; caused by NotFoundError: no container on engine primary',
          },
        },
        {
          machineRef: 'resource:default/files-01',
          kind: 'unreachable',
          error: {
            name: 'Error',
            message:
              'capture of resource:default/files-01 failed; caused by NotFoundError: no container on engine primary',
          },
        },
      ],
    });
    expect(two.captures.map((c: Capture) => c.machineRef)).toEqual([
      'resource:default/data-01',
    ]);
    failing.set('resource:default/infra-01', 503);
    expect(
      (await captureInTurn(backend, 'component:default/web').catch(e => e))
        .statusCode,
    ).toBe(503);
  });

  it('answers 507 where every machine not captured failed on the capture store, and says what to do once for all', async () => {
    const backend = api();
    const captureNow = backend.captureNow;
    const full = new Set([
      'resource:default/infra-01',
      'resource:default/files-01',
    ]);
    // Set further down; read by the stub from the first request on.
    let broken: string | undefined = undefined;
    backend.captureNow = async (entityRef: string, machineRef?: string) => {
      const status = full.has(machineRef!)
        ? 507
        : machineRef === broken
          ? 502
          : undefined;
      if (status === undefined) return captureNow(entityRef, machineRef);
      const message = `capture of ${machineRef} failed; caused by CaptureStoreError: no space left on device in /captures`;
      throw Object.assign(new Error(`Request failed with ${status}`), {
        statusCode: status,
        body: {
          error: {
            name: status === 507 ? 'CaptureStoreError' : 'EngineFailedError',
            message,
          },
        },
      });
    };
    const failed = await captureInTurn(backend, 'component:default/web').catch(
      e => e,
    );
    expect(failed).toBeInstanceOf(CaptureFailedError);
    expect(failed.statusCode).toBe(507);
    expect(failed.failed.map((f: { kind: string }) => f.kind)).toEqual([
      'store',
      'store',
    ]);
    expect(failed.message).toBe(
      '2 machines not captured: capture of resource:default/infra-01 failed; caused by CaptureStoreError: no space left on device in /captures; ' +
        'capture of resource:default/files-01 failed; caused by CaptureStoreError: no space left on device in /captures (captured, and kept: resource:default/data-01): ' +
        'the capture store could not take any of the 2 captures (full, over its quota, or not writable): make room in it (or mend it), then capture again',
    );
    // Another machine failing otherwise: a 502, its engine to look at too; no word for all.
    full.delete('resource:default/files-01');
    broken = 'resource:default/files-01';
    const mixed = await captureInTurn(backend, 'component:default/web').catch(
      e => e,
    );
    expect(mixed.statusCode).toBe(502);
    expect(mixed.message).not.toContain('make room');
  });

  it('stops at a machine whose request got no answer (no HTTP status), after telling those captured before it', async () => {
    const backend = api('resource:default/data-01');
    const captured: string[] = [];
    await expect(
      captureInTurn(backend, 'component:default/web', {
        captured: p => captured.push(p.capture.machineRef),
      }),
    ).rejects.toThrow(
      'capture of resource:default/data-01 failed: engine gone',
    );
    expect(captured).toEqual(['resource:default/infra-01']);
    expect(backend.asked.map(([, m]) => m)).toEqual([
      'resource:default/infra-01',
      'resource:default/data-01',
    ]);
  });

  it('leaves a machine another capture is taking (a 409) to it, captures the others, and names it at the end as a 409', async () => {
    const backend = api();
    const busy = Object.assign(
      new Error(
        'capture of resource:default/data-01 refused: it is being captured since 2026-12-05T10:00:00.000Z',
      ),
      { statusCode: 409 },
    );
    const captureNow = backend.captureNow;
    backend.captureNow = async (entityRef: string, machineRef?: string) => {
      if (machineRef === 'resource:default/data-01') {
        backend.asked.push([entityRef, machineRef]);
        throw busy;
      }
      return captureNow(entityRef, machineRef);
    };
    const captured: string[] = [];
    const refusal = captureInTurn(backend, 'component:default/web', {
      captured: p =>
        captured.push(`${p.capture.machineRef} ${p.done}/${p.total}`),
    });
    await expect(refusal).rejects.toMatchObject({
      name: 'ConflictError',
      message:
        'capture of resource:default/data-01 refused: it is being captured since 2026-12-05T10:00:00.000Z (captured, and kept: resource:default/infra-01, resource:default/files-01)',
    });
    expect(backend.asked.map(([, m]) => m)).toEqual([
      'resource:default/infra-01',
      'resource:default/data-01',
      'resource:default/files-01',
    ]);
    expect(captured).toEqual([
      'resource:default/infra-01 1/3',
      'resource:default/files-01 3/3',
    ]);
  });

  it('names a machine another capture is taking among the failures, by its machine and kind, as the backend does', async () => {
    const backend = api();
    const captureNow = backend.captureNow;
    backend.captureNow = async (entityRef: string, machineRef?: string) => {
      if (machineRef === 'resource:default/infra-01') {
        const message = `capture of ${machineRef} refused: it is being captured since 2026-12-05T10:00:00.000Z`;
        throw Object.assign(new Error('Request failed with 409'), {
          statusCode: 409,
          body: { error: { name: 'ConflictError', message } },
        });
      }
      if (machineRef === 'resource:default/data-01') {
        const message = `capture of ${machineRef} failed; caused by ServiceUnavailableError: engine primary is unreachable`;
        throw Object.assign(new Error('Request failed with 503'), {
          statusCode: 503,
          body: { error: { name: 'ServiceUnavailableError', message } },
        });
      }
      return captureNow(entityRef, machineRef);
    };
    const failure = await captureInTurn(backend, 'component:default/web').catch(
      e => e,
    );
    expect(failure).toBeInstanceOf(CaptureFailedError);
    expect({
      name: failure.name,
      statusCode: failure.statusCode,
      message: failure.message,
      failed: failure.failed,
    }).toEqual({
      name: 'CaptureFailedError',
      // Not every machine is out of reach (one is being captured): a 502, as the backend answers it.
      statusCode: 502,
      message:
        '2 machines not captured: capture of resource:default/data-01 failed; caused by ServiceUnavailableError: engine primary is unreachable; ' +
        'capture of resource:default/infra-01 refused: it is being captured since 2026-12-05T10:00:00.000Z (captured, and kept: resource:default/files-01)',
      failed: [
        {
          machineRef: 'resource:default/data-01',
          kind: 'unreachable',
          error: {
            name: 'ServiceUnavailableError',
            message:
              'capture of resource:default/data-01 failed; caused by ServiceUnavailableError: engine primary is unreachable',
          },
        },
        {
          machineRef: 'resource:default/infra-01',
          kind: 'busy',
          error: {
            name: 'ConflictError',
            message:
              'capture of resource:default/infra-01 refused: it is being captured since 2026-12-05T10:00:00.000Z',
          },
        },
      ],
    });
    expect(failure.captures.map((c: Capture) => c.machineRef)).toEqual([
      'resource:default/files-01',
    ]);
  });

  it('takes the machines readiness lists where a dependency cycle stops the plan: a cycle stops recoveries, not captures', async () => {
    const backend = api();
    backend.getBootPlan = async () => {
      throw cycle;
    };
    backend.getReadiness = async () =>
      ({
        plan: undefined,
        captures: [
          { machineRef: 'resource:default/db-01' },
          { machineRef: 'resource:default/web-01' },
        ],
      }) as unknown as Readiness;
    await captureInTurn(backend, 'component:default/web');
    expect(backend.asked.map(([, m]) => m)).toEqual([
      'resource:default/db-01',
      'resource:default/web-01',
    ]);

    // The caller that holds them already passes them; another refusal of the plan stands.
    const given = api();
    await captureInTurn(given, 'component:default/web', {
      machines: ['resource:default/web-01'],
    });
    expect(given.asked.map(([, m]) => m)).toEqual(['resource:default/web-01']);
    const refused = api();
    const gone = Object.assign(new Error('entity not found'), {
      statusCode: 404,
    });
    // A conflict that is no cycle (the name tells them apart) stands too.
    const conflict = Object.assign(new Error('conflict'), {
      statusCode: 409,
      body: { error: { name: 'ConflictError', message: 'conflict' } },
    });
    for (const error of [gone, conflict]) {
      refused.getBootPlan = async () => {
        throw error;
      };
      await expect(
        captureInTurn(refused, 'component:default/web'),
      ).rejects.toBe(error);
    }
  });

  it('words the refusal of an entity on no machine once, for POST /captures and the CLI alike', () => {
    expect(nothingToCapture('component:default/lonely')).toBe(
      'component:default/lonely runs on no machine, so there is nothing to capture: add dependsOn relations to machine Resources',
    );
  });
});
