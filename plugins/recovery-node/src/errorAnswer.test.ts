import {
  AuthenticationError,
  ConflictError,
  CustomErrorBase,
  ForwardedError,
  InputError,
  NotAllowedError,
  NotFoundError,
  NotImplementedError,
  NotModifiedError,
  ServiceUnavailableError,
} from '@backstage/errors';
import { answerOf, httpStatusOf } from './errorAnswer';

/** A refusal that says its status itself, as the recovery services' named errors do. */
class HostBusy extends CustomErrorBase {
  name = 'HypervisorHostBusyError';
  readonly statusCode = 409;
  readonly runId = 'r1';
}

/** As pg-protocol throws a query's failure: its name is no status's, its details are the database's. */
class DatabaseError extends Error {
  readonly code = '42P01';
  constructor(message: string) {
    super(message);
    this.name = 'error';
  }
}

describe("httpStatusOf, as Backstage's error handler answers", () => {
  it.each([
    [new NotModifiedError('same'), 304],
    [new InputError('bad'), 400],
    [new AuthenticationError('who'), 401],
    [new NotAllowedError('no'), 403],
    [new NotFoundError('gone'), 404],
    [new ConflictError('busy'), 409],
    [new NotImplementedError('later'), 501],
    [new ServiceUnavailableError('down'), 503],
    [new TypeError('x is undefined'), 500],
  ])('answers %s with %i', (error, status) => {
    expect(httpStatusOf(error)).toBe(status);
  });

  it("reads a ForwardedError by its cause's name", () => {
    expect(
      httpStatusOf(new ForwardedError('failed', new NotFoundError('x'))),
    ).toBe(404);
  });

  it('takes the error’s own statusCode, then its status, over its name', () => {
    expect(
      httpStatusOf(
        Object.assign(new NotFoundError('gone'), { statusCode: 502 }),
      ),
    ).toBe(502);
    expect(
      httpStatusOf(Object.assign(new InputError('big'), { status: 413 })),
    ).toBe(413);
    expect(
      httpStatusOf(
        Object.assign(new Error('x'), { statusCode: 507, status: 400 }),
      ),
    ).toBe(507);
  });

  it('passes over a statusCode that is no HTTP status, to its name', () => {
    for (const statusCode of [0, 99, 600, 404.5, '404']) {
      expect(
        httpStatusOf(Object.assign(new ConflictError('busy'), { statusCode })),
      ).toBe(409);
    }
  });

  it('answers a database’s error, or something thrown that is no Error, with 500', () => {
    for (const thrown of [
      Object.assign(new DatabaseError('no such table'), { statusCode: 404 }),
      'a string',
      undefined,
      { statusCode: 404 },
    ]) {
      expect(httpStatusOf(thrown)).toBe(500);
    }
  });
});

describe("answerOf, as Backstage's error handler answers", () => {
  it('answers its status and its serialized body, without a stack', () => {
    expect(answerOf(new HostBusy('Hypervisor host h is busy'))).toEqual({
      statusCode: 409,
      body: {
        error: {
          name: 'HypervisorHostBusyError',
          message: 'Hypervisor host h is busy',
          statusCode: 409,
          runId: 'r1',
        },
      },
    });
  });

  it("answers no stack of a cause's either", () => {
    const answer = answerOf(
      new ForwardedError('capture failed', new ServiceUnavailableError('down')),
    );
    expect(answer.statusCode).toBe(503);
    expect(answer.body.error).toMatchObject({
      name: 'ServiceUnavailableError',
      cause: { name: 'ServiceUnavailableError', message: 'down' },
    });
    expect(answer.body.error.cause).not.toHaveProperty('stack');
  });

  it('hides, as a client is answered, a database’s error or something thrown that is no Error', () => {
    for (const thrown of [new DatabaseError('no such table t'), 'secret']) {
      expect(answerOf(thrown, { hideInternal: true })).toEqual({
        statusCode: 500,
        body: {
          error: { name: 'Error', message: 'An internal error occurred' },
        },
      });
    }
  });

  it('else keeps what they say, for the plugin’s own scheduled work to read', () => {
    expect(answerOf('a string')).toEqual({
      statusCode: 500,
      body: { error: { name: 'Error', message: 'a string' } },
    });
    expect(answerOf(new DatabaseError('no such table t'))).toEqual({
      statusCode: 500,
      body: {
        error: { name: 'error', message: 'no such table t', code: '42P01' },
      },
    });
  });
});
