import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ResponseError } from '@backstage/errors';
import {
  DEPENDENCY_CYCLE_ERROR_NAME,
  MISSING_DEPENDENCIES_ERROR_NAME,
  RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  conflictError,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const DNS = 'component:default/dns';
const WALK = 'component:default/walk-writer';
const CYCLE = `Dependency cycle between services: ${DNS} -> ${WALK} -> ${DNS}: no boot order satisfies it; remove one of these dependsOn`;

/** The backend's refusal of a start over a dependency cycle the catalog declares. */
const cycleRefusal = () =>
  ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: {
          name: DEPENDENCY_CYCLE_ERROR_NAME,
          message: `${CYCLE}. A run can go ahead all the same`,
          cycle: CYCLE,
          wouldDrop: [{ from: WALK, waitsFor: DNS }],
        },
        response: { statusCode: 409 },
      }),
      {
        status: 409,
        statusText: 'Conflict',
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );

function renderCard(options: { api: Partial<RecoveryApi> }) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, options);
}

async function pressRunTestRecovery() {
  const button = await screen.findByRole('button', {
    name: 'Run test recovery',
  });
  await waitFor(() => expect(button).toBeEnabled());
  await userEvent.click(button);
}

/** The alert holding `text`. */
const alertOf = async (text: RegExp) =>
  (await screen.findByText(text)).closest('[role="alert"]') as HTMLElement;

describe('EntityRecoveryCard, a start refused for a dependency cycle', () => {
  it('names the cycle and what a run would not wait for, and runs anyway when asked', async () => {
    // As readiness says an entity over a cycle: no plan, not recoverable, and the plan a run
    // accepting the cycle would boot, which the card starts from.
    const { plan } = makeReadiness();
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'not-recoverable',
          reasons: [`${CYCLE}. A run can go ahead all the same`],
          plan: undefined,
          cyclePlan: plan,
        }),
    });
    api.startRun.mockImplementation(async request => {
      if (request.acceptCycles) return makeRun('pending');
      throw await cycleRefusal();
    });
    await renderCard({ api });
    await pressRunTestRecovery();
    const alert = await alertOf(/can go ahead all the same, booting/);
    expect(alert).toHaveTextContent(
      `${CYCLE}. A test recovery can go ahead all the same, booting walk-writer without waiting for dns: its timeline names each dependency it did not wait for.`,
    );
    expect(screen.queryByText(/Could not start the test recovery/)).toBeNull();
    await userEvent.click(
      within(alert).getByRole('button', { name: 'Run anyway' }),
    );
    await waitFor(() =>
      expect(api.startRun).toHaveBeenLastCalledWith({
        entityRef: 'component:default/web',
        mode: 'test',
        acceptCycles: true,
      }),
    );
    await waitFor(() =>
      expect(
        screen.queryByText(/can go ahead all the same, booting/),
      ).toBeNull(),
    );
    expect(api.startRun.mock.calls[0]).toEqual([
      { entityRef: 'component:default/web', mode: 'test' },
    ]);
  });

  it('keeps the cycle accepted when the start is then refused for missing dependencies, and accepts both', async () => {
    const problem = `${WALK} dependsOn component:default/ledger, which is not in the catalog: a recovery plan cannot include it`;
    const api = fakeRecoveryApi();
    api.startRun.mockImplementation(async request => {
      if (!request.acceptCycles) throw await cycleRefusal();
      if (!request.acceptMissingDependencies)
        throw await conflictError(`cannot be recovered: ${problem}`, {
          name: MISSING_DEPENDENCIES_ERROR_NAME,
          missing: [problem],
        });
      return makeRun('pending');
    });
    await renderCard({ api });
    await pressRunTestRecovery();
    await userEvent.click(
      within(await alertOf(/can go ahead all the same, booting/)).getByRole(
        'button',
        { name: 'Run anyway' },
      ),
    );
    const missing = await alertOf(
      /The catalog declares dependencies the boot plan cannot include/,
    );
    expect(screen.queryByText(/can go ahead all the same, booting/)).toBeNull();
    await userEvent.click(
      within(missing).getByRole('button', { name: 'Run without them' }),
    );
    await waitFor(() =>
      expect(api.startRun).toHaveBeenLastCalledWith({
        entityRef: 'component:default/web',
        mode: 'test',
        acceptMissingDependencies: true,
        acceptCycles: true,
      }),
    );
    expect(api.startRun).toHaveBeenCalledTimes(3);
  });
});
