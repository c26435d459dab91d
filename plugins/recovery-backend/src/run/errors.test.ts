import { MiddlewareFactory } from '@backstage/backend-defaults/rootHttpRouter';
import { mockServices } from '@backstage/backend-test-utils';
import {
  CustomErrorBase,
  ResponseError,
  ServiceUnavailableError,
} from '@backstage/errors';
import {
  captureFailure,
  CaptureFailedError,
  hostBusy,
  keptFailover,
  machinesNotCaptured,
  missingDependencies,
  recoveryPointTooEarly,
} from '@backstage-recovery/plugin-recovery-common';
import {
  CaptureStoppedError,
  engineError,
} from '@backstage-recovery/plugin-recovery-node';
import express from 'express';
import request from 'supertest';
import {
  HostUnreachable,
  HypervisorHostBusyError,
  isHostUnreachable,
  KeptFailoverError,
  MachinesNotCapturedError,
  MissingDependenciesError,
  RecoveryPointTooEarlyError,
  RunConflictError,
} from './errors';

/** What Backstage's error handler answers for `error`: its status and body, as the API's callers get them. */
async function answerTo(error: Error) {
  const app = express();
  app.get('/fail', () => {
    throw error;
  });
  app.use(
    MiddlewareFactory.create({
      config: mockServices.rootConfig(),
      logger: mockServices.logger.mock(),
    }).error({ showStackTraces: false }),
  );
  const res = await request(app).get('/fail');
  // As the portal's and the CLI's RecoveryClient reads it.
  const thrown = await ResponseError.fromResponse(
    new Response(JSON.stringify(res.body), {
      status: res.status,
      headers: { 'Content-Type': 'application/json' },
    }),
  );
  return { status: res.status, error: res.body.error, thrown };
}

describe("the run's refusals", () => {
  it('are 409s of their own names, each with its parts, read by the guards of recovery-common', async () => {
    const busy = await answerTo(
      new HypervisorHostBusyError('dr', {
        runId: 'r-1',
        entityRef: 'system:default/site',
      }),
    );
    expect(busy).toMatchObject({
      status: 409,
      error: {
        name: 'HypervisorHostBusyError',
        message:
          "Hypervisor host 'dr' is busy with run r-1 of system:default/site",
        statusCode: 409,
        runId: 'r-1',
        entityRef: 'system:default/site',
      },
    });
    expect(hostBusy(busy.thrown)).toEqual({
      runId: 'r-1',
      entityRef: 'system:default/site',
    });
    expect(
      hostBusy((await answerTo(new HypervisorHostBusyError('dr'))).thrown),
    ).toEqual({});

    const missing = await answerTo(
      new MissingDependenciesError('component:default/web', [
        'component:default/queue is not in the catalog',
      ]),
    );
    expect(missing).toMatchObject({
      status: 409,
      error: {
        name: 'MissingDependenciesError',
        statusCode: 409,
        missing: ['component:default/queue is not in the catalog'],
      },
    });
    expect(missingDependencies(missing.thrown)).toEqual([
      'component:default/queue is not in the catalog',
    ]);

    const uncaptured = await answerTo(
      new MachinesNotCapturedError(['resource:default/web-01']),
    );
    expect(uncaptured).toMatchObject({
      status: 409,
      error: {
        name: 'MachinesNotCapturedError',
        statusCode: 409,
        neverCaptured: ['resource:default/web-01'],
      },
    });
    expect(machinesNotCaptured(uncaptured.thrown)).toEqual([
      'resource:default/web-01',
    ]);

    const kept = await answerTo(
      new KeptFailoverError(
        'component:default/web',
        'test',
        'failover r-9 of component:default/web',
        'dr',
        '3 containers',
        "production's subnet 10.1.0.0/24",
        'release it',
        { runId: 'r-9', entityRef: 'component:default/web' },
      ),
    );
    expect(kept).toMatchObject({
      status: 409,
      error: { name: 'KeptFailoverError', statusCode: 409 },
    });
    expect(keptFailover(kept.thrown)).toEqual({
      failover: 'failover r-9 of component:default/web',
      host: 'dr',
      keeps: '3 containers',
      holding: "production's subnet 10.1.0.0/24",
      remedy: 'release it',
      runId: 'r-9',
      entityRef: 'component:default/web',
    });

    const tooEarly = await answerTo(
      new RecoveryPointTooEarlyError('2026-11-02T00:00:00.000Z', [
        {
          machineRef: 'resource:default/web-01',
          oldestCaptureAt: '2026-11-02T06:00:00.000Z',
        },
      ]),
    );
    expect(tooEarly).toMatchObject({
      status: 409,
      error: { name: 'RecoveryPointTooEarlyError', statusCode: 409 },
    });
    expect(recoveryPointTooEarly(tooEarly.thrown)).toEqual({
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

  it("are @backstage/errors' custom errors of a 409 status, their names their own rather than a ConflictError's renamed", () => {
    for (const error of [
      new HypervisorHostBusyError('dr'),
      new MissingDependenciesError('component:default/web', []),
      new MachinesNotCapturedError([]),
      new RecoveryPointTooEarlyError('2026-11-02T00:00:00.000Z', []),
      new KeptFailoverError(
        'component:default/web',
        'failover',
        'an earlier failover',
        'dr',
        '1 container',
        'a machine',
        'release it',
      ),
    ]) {
      expect(error).toBeInstanceOf(RunConflictError);
      expect(error).toBeInstanceOf(CustomErrorBase);
      expect(error.statusCode).toBe(409);
      expect(error.name).toBe(error.constructor.name);
    }
  });
});

describe("providers' errors on the wire", () => {
  it('an engine out of reach answers 503 ServiceUnavailableError, one that answered with an error 502 EngineFailedError, each naming the engine', async () => {
    expect(
      await answerTo(
        engineError(
          "Docker engine 'primary' is unreachable",
          'primary',
          'unreachable',
        ),
      ),
    ).toMatchObject({
      status: 503,
      error: {
        name: 'ServiceUnavailableError',
        message: "Docker engine 'primary' is unreachable",
        statusCode: 503,
        engine: 'primary',
      },
    });
    expect(
      await answerTo(
        engineError(
          "Docker engine 'primary' answered HTTP 500",
          'primary',
          'answered',
        ),
      ),
    ).toMatchObject({
      status: 502,
      error: {
        name: 'EngineFailedError',
        message: "Docker engine 'primary' answered HTTP 500",
        statusCode: 502,
        engine: 'primary',
      },
    });
    expect(
      await answerTo(
        new CaptureStoppedError('stopped as the backend shuts down'),
      ),
    ).toMatchObject({
      status: 503,
      error: { name: 'ServiceUnavailableError', statusCode: 503 },
    });
  });

  it('a CaptureFailedError answers its status, read back by captureFailure', async () => {
    const failed = {
      machineRef: 'resource:default/web-01',
      kind: 'unreachable' as const,
      error: { name: 'ServiceUnavailableError', message: 'out of reach' },
    };
    const answer = await answerTo(
      new CaptureFailedError(
        'capture of component:default/web: 1 of 1 machines not captured',
        { failed: [failed], captures: [] },
      ),
    );
    expect(answer).toMatchObject({
      status: 503,
      error: { name: 'CaptureFailedError', statusCode: 503 },
    });
    expect(captureFailure(answer.thrown)).toEqual({
      failed: [failed],
      captures: [],
    });
  });
});

describe('isHostUnreachable', () => {
  it("takes a host's engine out of reach (a ServiceUnavailableError) for the host's failure, not an engine's error answer", () => {
    expect(
      isHostUnreachable(
        engineError("Docker engine 'dr' is unreachable", 'dr', 'unreachable'),
      ),
    ).toBe(true);
    expect(
      isHostUnreachable(
        new ServiceUnavailableError('the probe did not answer in time'),
      ),
    ).toBe(true);
    expect(
      isHostUnreachable(
        engineError("Docker engine 'dr' answered HTTP 500", 'dr', 'answered'),
      ),
    ).toBe(false);
    expect(
      isHostUnreachable(
        new HostUnreachable('hypervisor host dr cannot be reached'),
      ),
    ).toBe(false);
    expect(isHostUnreachable(undefined)).toBe(false);
  });

  it('goes by the class, not by a name an error was given', () => {
    expect(
      isHostUnreachable(
        Object.assign(new Error('renamed'), {
          name: 'ServiceUnavailableError',
        }),
      ),
    ).toBe(false);
  });
});
