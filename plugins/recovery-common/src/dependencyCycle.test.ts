import { ResponseError } from '@backstage/errors';
import {
  DEPENDENCY_CYCLE_ERROR_NAME,
  dependencyCycle,
  MISSING_DEPENDENCIES_ERROR_NAME,
} from './errors';

const answer = (status: number, error: Record<string, unknown>) =>
  ResponseError.fromResponse(
    new Response(JSON.stringify({ error, response: { statusCode: status } }), {
      status,
      headers: { 'Content-Type': 'application/json' },
    }),
  );

describe('dependencyCycle', () => {
  it('reads the cycle and the edges a run would drop, only from a 409 DependencyCycleError', async () => {
    const cycle = 'Dependency cycle between services: a -> b -> a';
    expect(
      dependencyCycle(
        await answer(409, {
          name: DEPENDENCY_CYCLE_ERROR_NAME,
          message: `${cycle}. A run can go ahead all the same`,
          cycle,
          wouldDrop: [{ from: 'b', waitsFor: 'a' }, { from: 7 }],
        }),
      ),
    ).toEqual({ cycle, wouldDrop: [{ from: 'b', waitsFor: 'a' }] });
    // Without its parts, the message says it.
    expect(
      dependencyCycle(
        await answer(409, { name: DEPENDENCY_CYCLE_ERROR_NAME, message: 'm' }),
      ),
    ).toEqual({ cycle: 'm', wouldDrop: [] });
    // Of another status, the name alone is not enough.
    expect(
      dependencyCycle(
        await answer(400, { name: DEPENDENCY_CYCLE_ERROR_NAME, message: 'm' }),
      ),
    ).toBeUndefined();
    expect(
      dependencyCycle(
        await answer(409, { name: 'ConflictError', message: 'm' }),
      ),
    ).toBeUndefined();
    expect(
      dependencyCycle(
        await answer(409, {
          name: MISSING_DEPENDENCIES_ERROR_NAME,
          message: 'm',
        }),
      ),
    ).toBeUndefined();
  });
});
