import { act, screen, within } from '@testing-library/react';
import { EntityRecoveryCard, READINESS_RELOAD_MS } from './EntityRecoveryCard';
import { fakeRecoveryApi, makeReadiness } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

beforeEach(() => {
  vi.useFakeTimers({ shouldAdvanceTime: true });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('EntityRecoveryCard left open', () => {
  it('reloads readiness, so a capture that ages past the RPO is not still said near it, nor the entity ready', async () => {
    const fresh = makeReadiness();
    // The same capture of db, 23h 58m old when the page opened: near the RPO of a day, within it for
    // two more minutes. Past it, the backend says so, and no longer calls the entity ready.
    const aged = (ageSeconds: number) =>
      makeReadiness({
        captures: [{ ...fresh.captures[0], ageSeconds }],
      });
    let loads = 0;
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        ++loads === 1
          ? aged(24 * 3600 - 120)
          : {
              ...aged(24 * 3600 + 180),
              status: 'at-risk' as const,
              reasons: ['Capture of db is older than the RPO'],
            },
    });
    await renderWithApis(<EntityRecoveryCard />, { api });
    expect(await screen.findByText('Ready')).toBeInTheDocument();
    const captures = screen.getByRole('table', { name: 'Captures' });
    const dbRow = within(captures).getAllByRole('row')[1];
    expect(
      within(dbRow).getByRole('cell', { name: 'near RPO 1d' }),
    ).toBeInTheDocument();

    await act(() => vi.advanceTimersByTimeAsync(READINESS_RELOAD_MS));
    expect(api.getReadiness).toHaveBeenCalledTimes(2);
    expect(
      await within(screen.getByRole('table', { name: 'Captures' })).findByRole(
        'cell',
        { name: 'over RPO 1d' },
      ),
    ).toBeInTheDocument();
    expect(screen.getByText('At risk')).toBeInTheDocument();
    expect(
      screen.getByText('Capture of db is older than the RPO'),
    ).toBeInTheDocument();
  });
});
