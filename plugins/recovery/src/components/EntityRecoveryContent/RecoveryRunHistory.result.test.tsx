import { screen, waitFor, within } from '@testing-library/react';
import { RecoveryRunHistory } from './EntityRecoveryContent';
import { fakeRecoveryApi, makeRun } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';
import { columnHeader } from '../../testUtils/table';

const WEB = 'component:default/web';

describe('RecoveryRunHistory, a long result', () => {
  it('keeps a long failure to two lines of a column wide enough to read, its whole text on hover', async () => {
    const message =
      "hypervisor host recovery cannot be reached: listing the lab of run bd8c6d0b-2010-4781-a9f2-734089108b32 failed: Docker engine 'recovery' is unreachable at /tmp/demowalk/run/recovery.sock (ENOENT): is it running, and may the backend use it?";
    const failed = makeRun('failed', {
      id: 'run-1',
      error: { message },
      machines: [],
    });
    const api = fakeRecoveryApi({
      listRunsPage: async () => ({ items: [failed], pageInfo: {} }),
    });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} />, {
      api,
      entity: null,
    });
    await waitFor(() => columnHeader('Result'));
    const table = columnHeader('Result').closest('table')!;
    const result = await within(table).findByTitle(message);
    expect(result).toHaveTextContent(message);
    // Two lines at most: at a laptop's width it ran to 40 lines of a few words.
    expect(
      getComputedStyle(result).getPropertyValue('-webkit-line-clamp'),
    ).toBe('2');
    expect(getComputedStyle(result).overflow).toBe('hidden');
    // Room to read them: the column is not squeezed to a word's width.
    expect(getComputedStyle(result.closest('td')!).minWidth).toBe('16em');
    // The time a run started stays on one line; its caption wraps, giving the result room.
    const start = screen.getByRole('button', { name: /UTC$/ });
    expect(getComputedStyle(start).whiteSpace).toBe('nowrap');
    expect(getComputedStyle(start.closest('td')!).whiteSpace).not.toBe(
      'nowrap',
    );
  });
});
