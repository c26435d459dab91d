import { useState } from 'react';
import { act, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Entity } from '@backstage/catalog-model';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import type {
  Capture,
  Readiness,
  RecoveryApi,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from '../EntityRecoveryCard';
import { EntityRecoveryContent } from './EntityRecoveryContent';
import {
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
  webEntity,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const WEB_REF = 'component:default/web';
const BILLING_REF = 'component:default/billing';
const billingEntity: Entity = {
  ...webEntity,
  metadata: { name: 'billing', namespace: 'default' },
};
const billingReadiness = (overrides: Partial<Readiness> = {}) =>
  makeReadiness({
    entityRef: BILLING_REF,
    status: 'at-risk',
    reasons: ['Capture of billing-1 is 30h old'],
    ...overrides,
  });

/** A promise settled by the test, for a request still in flight when the page moves on. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Renders `element` on web's page, as Backstage does: one element under an entity context
 * that changes when the user navigates, so the card stays mounted. `moveTo` navigates.
 */
async function renderOnEntityPage(
  element: JSX.Element,
  api: Partial<RecoveryApi>,
) {
  let show!: (entity: Entity) => void;
  const EntityPage = () => {
    const [entity, setEntity] = useState<Entity>(webEntity);
    show = setEntity;
    return <EntityProvider entity={entity}>{element}</EntityProvider>;
  };
  await renderWithApis(<EntityPage />, { api, entity: null });
  return { moveTo: (entity: Entity) => act(() => show(entity)) };
}

describe('EntityRecoveryCard across entity navigation', () => {
  it("shows none of the previous entity's run, start error or capture failure", async () => {
    let starts = 0;
    const api = fakeRecoveryApi({
      getReadiness: async ref =>
        ref === BILLING_REF ? billingReadiness() : makeReadiness(),
      listRuns: async () => [],
      startRun: async () => {
        starts += 1;
        if (starts === 1) return makeRun('pending');
        throw new Error('engine unreachable');
      },
      getRun: async () => makeRun('failed'),
      captureNow: async () => {
        throw new Error('disk full');
      },
    });
    const { moveTo } = await renderOnEntityPage(
      <EntityRecoveryCard pollIntervalMs={10} />,
      api,
    );

    // On web's page: a failed run, a refused start and a failed capture.
    const runButton = await screen.findByRole('button', {
      name: /run test recovery/i,
    });
    await waitFor(() => expect(runButton).toBeEnabled());
    await userEvent.click(runButton);
    expect(await screen.findByText('Recovery failed')).toBeInTheDocument();
    await waitFor(() => expect(runButton).toBeEnabled());
    await userEvent.click(runButton);
    expect(
      await screen.findByText(
        'Could not start the test recovery: engine unreachable',
      ),
    ).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: /capture now/i }));
    expect(
      await screen.findByText('Capture failed: disk full'),
    ).toBeInTheDocument();

    await moveTo(billingEntity);

    expect(
      await screen.findByText('Capture of billing-1 is 30h old'),
    ).toBeInTheDocument();
    expect(api.getReadiness).toHaveBeenLastCalledWith(BILLING_REF);
    expect(screen.queryByText('Recovery failed')).toBeNull();
    expect(screen.queryByRole('region', { name: /^Test recovery/ })).toBeNull();
    expect(screen.queryByText(/Could not start the test recovery/)).toBeNull();
    expect(screen.queryByText(/Capture failed/)).toBeNull();
    await waitFor(() =>
      expect(
        screen.getByRole('button', { name: 'Run test recovery' }),
      ).toBeEnabled(),
    );
  });

  it('drops a start and a capture of the previous entity that answer after the page moved on', async () => {
    const start = deferred<RecoveryRun>();
    const capture = deferred<Capture[]>();
    const onRunChange = vi.fn();
    const api = fakeRecoveryApi({
      getReadiness: async ref =>
        ref === BILLING_REF ? billingReadiness() : makeReadiness(),
      listRuns: async () => [],
      startRun: () => start.promise,
      captureNow: () => capture.promise,
      getRun: async () => makeRun('running'),
    });
    const { moveTo } = await renderOnEntityPage(
      <EntityRecoveryCard pollIntervalMs={10} onRunChange={onRunChange} />,
      api,
    );
    const runButton = await screen.findByRole('button', {
      name: /run test recovery/i,
    });
    await waitFor(() => expect(runButton).toBeEnabled());
    await userEvent.click(runButton);
    await userEvent.click(screen.getByRole('button', { name: /capture now/i }));
    expect(
      await screen.findByRole('button', { name: 'Capturing db (1 of 2)…' }),
    ).toBeDisabled();

    await moveTo(billingEntity);
    await screen.findByText('Capture of billing-1 is 30h old');
    // Web's run is admitted and its capture fails only now.
    await act(async () => {
      start.resolve(makeRun('pending'));
      capture.reject(new Error('disk full'));
      await new Promise(r => setTimeout(r, 100));
    });

    expect(onRunChange).not.toHaveBeenCalled();
    expect(api.getRun).not.toHaveBeenCalled();
    expect(screen.queryByRole('region', { name: /^Test recovery/ })).toBeNull();
    expect(screen.queryByText(/Capture failed/)).toBeNull();
    // Billing's buttons are its own: neither starting nor capturing.
    await waitFor(() =>
      expect(
        screen.getByRole('button', { name: 'Run test recovery' }),
      ).toBeEnabled(),
    );
    expect(screen.getByRole('button', { name: 'Capture now' })).toBeEnabled();
  });
});

describe('EntityRecoveryContent across entity navigation', () => {
  it("measures the new entity's runs against its own RTO objective, not the previous one's", async () => {
    const billing = deferred<Readiness>();
    const api = fakeRecoveryApi({
      getReadiness: ref =>
        ref === BILLING_REF
          ? billing.promise
          : Promise.resolve(makeReadiness()),
      listRuns: async ({ entityRef, active }) => {
        if (active) return [];
        return entityRef === BILLING_REF
          ? [makeRun('succeeded', { id: 'run-b', entityRef: BILLING_REF })]
          : [makeRun('succeeded', { id: 'run-w', entityRef: WEB_REF })];
      },
    });
    const { moveTo } = await renderOnEntityPage(
      <EntityRecoveryContent pollIntervalMs={10} />,
      api,
    );
    const outcome = () =>
      screen
        .getByText('Recovery succeeded')
        .closest('[role="alert"]') as HTMLElement;

    expect(await screen.findByText('Run run-w')).toBeInTheDocument();
    await waitFor(() => expect(outcome()).toHaveTextContent('(objective 15m)'));

    await moveTo(billingEntity);
    expect(await screen.findByText('Run run-b')).toBeInTheDocument();
    // Billing's objective is not known yet: web's is not used in its place.
    expect(outcome()).toHaveTextContent(
      '2 machines recovered; measured RTO 4m 12s.',
    );
    expect(outcome()).not.toHaveTextContent(/objective/);

    await act(async () =>
      billing.resolve(
        billingReadiness({
          objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
        }),
      ),
    );
    await waitFor(() => expect(outcome()).toHaveTextContent('(objective 1h)'));
  });
});
