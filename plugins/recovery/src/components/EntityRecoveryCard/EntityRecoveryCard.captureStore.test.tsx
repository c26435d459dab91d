import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { DB, fakeRecoveryApi, WEB } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

/** As the client throws the backend's 507 for a machine: its words in the body. */
const storeFull = (machineRef: string) =>
  Object.assign(new Error('Request failed with 507 Insufficient Storage'), {
    statusCode: 507,
    body: {
      error: {
        name: 'CaptureStoreError',
        message: `capture of ${machineRef} failed; caused by CaptureStoreError: could not write to the capture store /captures (ENOSPC: no space left on device)`,
      },
    },
  });

describe('EntityRecoveryCard, a capture the capture store could not take', () => {
  it('says once, after the machines, that the store needs room where every machine failed on it', async () => {
    const api = fakeRecoveryApi();
    api.captureNow.mockImplementation(async (_entityRef, machineRef) => {
      throw storeFull(machineRef!);
    });
    renderCard(api);
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    const alert = await screen.findByText(
      /^Capture failed: 2 machines not captured/,
    );
    expect(alert.textContent).toBe(
      'Capture failed: 2 machines not captured: ' +
        `${storeFull(DB).body.error.message}; ${storeFull(WEB).body.error.message}: ` +
        'the capture store could not take any of the 2 captures (full, over its quota, or not writable): make room in it (or mend it), then capture again',
    );
  });

  it('says nothing of the store for all where a machine failed otherwise', async () => {
    const api = fakeRecoveryApi();
    api.captureNow.mockImplementation(async (_entityRef, machineRef) => {
      if (machineRef === DB) throw storeFull(DB);
      throw Object.assign(new Error('Request failed with 502 Bad Gateway'), {
        statusCode: 502,
        body: {
          error: {
            name: 'EngineFailedError',
            message: `capture of ${WEB} failed; caused by EngineFailedError: engine primary answered HTTP 500`,
          },
        },
      });
    });
    renderCard(api);
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    const alert = await screen.findByText(
      /^Capture failed: 2 machines not captured/,
    );
    expect(alert.textContent).not.toContain('make room');
  });
});
