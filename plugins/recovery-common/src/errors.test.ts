import { ConflictError, ResponseError } from '@backstage/errors';
import {
  busyWithRunId,
  CAPTURE_FAILED_ERROR_NAME,
  CaptureFailedError,
  captureFailure,
  ENGINE_FAILED_ERROR_NAME,
  HOST_BUSY_ERROR_NAME,
  hostBusy,
  isHostBusy,
  KEPT_FAILOVER_ERROR_NAME,
  keptFailover,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  machinesNotCaptured,
  MISSING_DEPENDENCIES_ERROR_NAME,
  missingDependencies,
  RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
  recoveryPointTooEarly,
  type ApiErrorAnswer,
} from './errors';
import { captureStoreAdvice } from './captureFailed';

/** A refusal as the portal's and the CLI's RecoveryClient throws it: Backstage's ResponseError of the backend's error body. */
const answered = (status: number, error: Record<string, unknown>) =>
  ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error,
        request: { method: 'POST', url: '/api/recovery/runs' },
        response: { statusCode: status },
      }),
      {
        status,
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );

/** The same answer held by a client of its own (the scheduler module's), not a ResponseError. */
const held = (
  statusCode: number,
  error: Record<string, unknown>,
): ApiErrorAnswer =>
  Object.assign(
    new Error(`POST /runs failed with ${statusCode}: ${error.message}`),
    { statusCode, body: { error } },
  );

const KEPT = {
  name: KEPT_FAILOVER_ERROR_NAME,
  message:
    'component:default/web cannot be test-recovered on dr now: failover r-9 of component:default/web keeps 3 containers there, ...',
  failover:
    'failover r-9 of component:default/web (succeeded at 2026-12-05T10:00:00.000Z)',
  host: 'dr',
  keeps: '3 containers and 1 network',
  holding: "production's subnet 172.29.10.0/24",
  remedy:
    'release it (POST /runs/r-9/release) once production no longer needs it',
  runId: 'r-9',
  entityRef: 'component:default/web',
  statusCode: 409,
};

describe("the API's error names", () => {
  it('are the names the backend puts in its answers (its OpenAPI description documents them)', () => {
    expect({
      HOST_BUSY_ERROR_NAME,
      MISSING_DEPENDENCIES_ERROR_NAME,
      KEPT_FAILOVER_ERROR_NAME,
      MACHINES_NOT_CAPTURED_ERROR_NAME,
      RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
      CAPTURE_FAILED_ERROR_NAME,
      ENGINE_FAILED_ERROR_NAME,
    }).toEqual({
      HOST_BUSY_ERROR_NAME: 'HypervisorHostBusyError',
      MISSING_DEPENDENCIES_ERROR_NAME: 'MissingDependenciesError',
      KEPT_FAILOVER_ERROR_NAME: 'KeptFailoverError',
      MACHINES_NOT_CAPTURED_ERROR_NAME: 'MachinesNotCapturedError',
      RECOVERY_POINT_TOO_EARLY_ERROR_NAME: 'RecoveryPointTooEarlyError',
      CAPTURE_FAILED_ERROR_NAME: 'CaptureFailedError',
      ENGINE_FAILED_ERROR_NAME: 'EngineFailedError',
    });
  });
});

describe.each([
  ['a ResponseError (the RecoveryClient)', answered],
  [
    "another client's answer (ApiErrorAnswer)",
    async (status: number, error: Record<string, unknown>) =>
      held(status, error),
  ],
])('the guards of the API errors, reading %s', (_, refusal) => {
  it('hostBusy: the run holding the host, each part where the body names it', async () => {
    const busy = await refusal(409, {
      name: HOST_BUSY_ERROR_NAME,
      message:
        "Hypervisor host 'dr' is busy with run r-1 of system:default/site",
      runId: 'r-1',
      entityRef: 'system:default/site',
    });
    expect(hostBusy(busy)).toEqual({
      runId: 'r-1',
      entityRef: 'system:default/site',
    });
    expect(isHostBusy(busy)).toBe(true);
    expect(busyWithRunId(busy)).toBe('r-1');
    // A run the caller may not see: busy all the same, with no run to follow.
    const hidden = await refusal(409, {
      name: HOST_BUSY_ERROR_NAME,
      message: "Hypervisor host 'dr' is busy with another run",
    });
    expect(hostBusy(hidden)).toEqual({});
    expect(isHostBusy(hidden)).toBe(true);
    expect(busyWithRunId(hidden)).toBeUndefined();
  });

  it('missingDependencies: the problems named, or none where the body lists none', async () => {
    expect(
      missingDependencies(
        await refusal(409, {
          name: MISSING_DEPENDENCIES_ERROR_NAME,
          message: 'm',
          missing: ['component:default/queue is not in the catalog', 7],
        }),
      ),
    ).toEqual(['component:default/queue is not in the catalog']);
    expect(
      missingDependencies(
        await refusal(409, {
          name: MISSING_DEPENDENCIES_ERROR_NAME,
          message: 'm',
        }),
      ),
    ).toEqual([]);
  });

  it('machinesNotCaptured: the machines never captured', async () => {
    const refused = await refusal(409, {
      name: MACHINES_NOT_CAPTURED_ERROR_NAME,
      message: 'No capture of resource:default/web-01 yet',
      neverCaptured: ['resource:default/web-01'],
    });
    expect(machinesNotCaptured(refused)).toEqual(['resource:default/web-01']);
    expect(
      machinesNotCaptured(
        await refusal(409, {
          name: MACHINES_NOT_CAPTURED_ERROR_NAME,
          message: 'No capture',
        }),
      ),
    ).toEqual([]);
  });

  it('keptFailover: the parts of its message, and the failover where the caller may see it', async () => {
    const { name, message, statusCode, ...parts } = KEPT;
    expect(keptFailover(await refusal(409, KEPT))).toEqual(parts);
    const { runId, entityRef, ...unnamed } = KEPT;
    expect(
      keptFailover(
        await refusal(409, { ...unnamed, failover: 'an earlier failover' }),
      ),
    ).toEqual({
      ...parts,
      runId: undefined,
      entityRef: undefined,
      failover: 'an earlier failover',
    });
    expect(
      keptFailover(
        await refusal(409, { ...unnamed, failover: 'an earlier failover' }),
      ),
    ).not.toHaveProperty('runId');
    // Without its parts (a body from elsewhere), none: its message is said as it is.
    expect(keptFailover(await refusal(409, { name, message }))).toBeUndefined();
  });

  it('recoveryPointTooEarly: the machines and the earliest point they allow', async () => {
    const refused = await refusal(409, {
      name: RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
      message: 'No capture kept at or before the recovery point …',
      recoveryPoint: '2026-11-02T00:00:00.000Z',
      machines: [
        {
          machineRef: 'resource:default/web-01',
          oldestCaptureAt: '2026-11-02T06:00:00.000Z',
        },
      ],
      neverCaptured: [],
      earliestRecoveryPoint: '2026-11-02T06:00:00.000Z',
    });
    expect(recoveryPointTooEarly(refused)).toEqual({
      recoveryPoint: '2026-11-02T00:00:00.000Z',
      machines: [
        {
          machineRef: 'resource:default/web-01',
          oldestCaptureAt: '2026-11-02T06:00:00.000Z',
        },
      ],
      neverCaptured: [],
      earliestRecoveryPoint: '2026-11-02T06:00:00.000Z',
    });
  });

  it('captureFailure: each machine not captured, with its kind', async () => {
    const failed = await refusal(503, {
      name: CAPTURE_FAILED_ERROR_NAME,
      message:
        'capture of component:default/web: 1 of 2 machines not captured: ...',
      statusCode: 503,
      failed: [
        {
          machineRef: 'resource:default/web-01',
          kind: 'unreachable',
          error: {
            name: 'ServiceUnavailableError',
            message: "engine 'primary' is unreachable",
          },
        },
      ],
      captures: [],
    });
    expect(captureFailure(failed)).toEqual({
      failed: [
        {
          machineRef: 'resource:default/web-01',
          kind: 'unreachable',
          error: {
            name: 'ServiceUnavailableError',
            message: "engine 'primary' is unreachable",
          },
        },
      ],
      captures: [],
    });
  });

  it('captureFailure: a machine failed on the capture store is of kind store, said so or (a backend from before kinds) by its name; all so, a 507', async () => {
    const store = {
      name: 'CaptureStoreError',
      message:
        'capture of resource:default/web-01 could not write to the capture store /captures (ENOSPC)',
    };
    const body = (kind?: string) => ({
      name: CAPTURE_FAILED_ERROR_NAME,
      message:
        'capture of component:default/web: 2 of 2 machines not captured: ...',
      statusCode: 507,
      failed: ['web-01', 'data-01'].map(m => ({
        machineRef: `resource:default/${m}`,
        ...(kind && { kind }),
        error: store,
      })),
      captures: [],
    });
    for (const kind of ['store', undefined]) {
      expect(
        captureFailure(await refusal(507, body(kind)))!.failed.map(f => f.kind),
      ).toEqual(['store', 'store']);
    }
    const failure = new CaptureFailedError('2 machines not captured', {
      failed: captureFailure(await refusal(507, body('store')))!.failed,
      captures: [],
    });
    expect(failure.statusCode).toBe(507);
    expect(captureStoreAdvice(failure)).toBe(
      'the capture store could not take any of the 2 captures (full, over its quota, or not writable): make room in it (or mend it), then capture again',
    );
    // One on the store, one an engine's failure: a 502, and no word of the store for both.
    const mixed = {
      failed: [
        failure.failed[0],
        {
          machineRef: 'resource:default/data-01',
          kind: 'failed' as const,
          error: { name: 'EngineFailedError', message: 'HTTP 500' },
        },
      ],
      captures: [],
    };
    expect(new CaptureFailedError('', mixed).statusCode).toBe(502);
    expect(captureStoreAdvice(mixed)).toBeUndefined();
  });

  it('each reads its own error only: another name, another status, or no answer at all is none', async () => {
    const guards = [
      hostBusy,
      missingDependencies,
      machinesNotCaptured,
      keptFailover,
      recoveryPointTooEarly,
      captureFailure,
    ];
    const others = [
      await refusal(409, {
        name: 'ConflictError',
        message: 'No capture of resource:default/web-01 yet',
      }),
      await refusal(403, {
        name: 'NotAllowedError',
        message: 'Missing permission recovery.run.create',
      }),
      await refusal(502, {
        name: ENGINE_FAILED_ERROR_NAME,
        message: "engine 'primary' answered HTTP 500",
      }),
      new ConflictError('a 409 of this process, not an answer of the API'),
      new Error('plain'),
      'a string',
      undefined,
    ];
    for (const guard of guards)
      for (const other of others) expect(guard(other)).toBeUndefined();
    // A 409 name at another status is not that refusal either.
    for (const [guard, name] of [
      [hostBusy, HOST_BUSY_ERROR_NAME],
      [missingDependencies, MISSING_DEPENDENCIES_ERROR_NAME],
      [machinesNotCaptured, MACHINES_NOT_CAPTURED_ERROR_NAME],
      [keptFailover, KEPT_FAILOVER_ERROR_NAME],
    ] as const) {
      expect(guard(await refusal(500, { ...KEPT, name }))).toBeUndefined();
    }
    // Each refusal is its own guard's alone.
    const busy = await refusal(409, {
      name: HOST_BUSY_ERROR_NAME,
      message: 'busy',
      neverCaptured: ['x'],
      missing: ['y'],
    });
    expect(machinesNotCaptured(busy)).toBeUndefined();
    expect(missingDependencies(busy)).toBeUndefined();
    expect(
      isHostBusy(
        await refusal(409, {
          name: MACHINES_NOT_CAPTURED_ERROR_NAME,
          message: 'never captured',
        }),
      ),
    ).toBe(false);
  });
});
