import { MiddlewareFactory } from '@backstage/backend-defaults/rootHttpRouter';
import { mockServices } from '@backstage/backend-test-utils';
import {
  ConflictError,
  CustomErrorBase,
  ForwardedError,
  InputError,
  NotAllowedError,
  NotFoundError,
  NotModifiedError,
  ServiceUnavailableError,
} from '@backstage/errors';
import { answerOf } from '@backstage-recovery/plugin-recovery-node';

class HostBusy extends CustomErrorBase {
  name = 'HypervisorHostBusyError';
  readonly statusCode = 409;
  readonly runId = 'r1';
}

class DatabaseError extends Error {}

/** What Backstage's own error handler answers `error` with, as the router's routes are answered. */
function handled(error: unknown): { statusCode: number; body: unknown } {
  const answer = { statusCode: 0, body: undefined as unknown };
  const res = {
    headersSent: false,
    status(code: number) {
      answer.statusCode = code;
      return res;
    },
    json(body: { error: unknown }) {
      answer.body = { error: body.error };
    },
  };
  MiddlewareFactory.create({
    config: mockServices.rootConfig(),
    logger: mockServices.logger.mock(),
  }).error({ showStackTraces: false })(
    error,
    { method: 'GET', url: '/captures' } as never,
    res as never,
    () => {},
  );
  return answer;
}

describe("answerOf, against Backstage's error handler", () => {
  it.each([
    ['a named error', new NotAllowedError('no')],
    ['one of 304', new NotModifiedError('same')],
    ['a service error saying its status', new HostBusy('busy')],
    ['a ForwardedError', new ForwardedError('failed', new NotFoundError('x'))],
    [
      'a ForwardedError of a status of its own',
      Object.assign(new ForwardedError('failed', new ConflictError('x')), {
        statusCode: 502,
      }),
    ],
    [
      'a status over a name',
      Object.assign(new InputError('big'), { status: 413 }),
    ],
    [
      'a statusCode that is no HTTP status',
      Object.assign(new ServiceUnavailableError('down'), { statusCode: 600 }),
    ],
    ['an unnamed error', new TypeError('x is undefined')],
  ])('answers %s as the handler does', (_, error) => {
    expect(answerOf(error)).toEqual(handled(error));
  });

  it.each([
    ['a database error', new DatabaseError('no such table')],
    ['a string', 'secret'],
    ['nothing', undefined],
  ])('hides %s as the handler does, but for its log id', (_, thrown) => {
    const answer = handled(thrown) as {
      statusCode: number;
      body: { error: { message: string } };
    };
    answer.body.error.message = answer.body.error.message.replace(
      / logId=\w+$/,
      '',
    );
    expect(answerOf(thrown, { hideInternal: true })).toEqual(answer);
  });
});
