import { screen, within } from '@testing-library/react';
import { RunDetails } from './RunDetails';
import { EntityRecoveryCard } from '../EntityRecoveryCard';
import {
  DB,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

describe('times inside the backend messages the portal shows', () => {
  it("writes an ISO time in a timeline step as the portal's other times, and the rest as it came", async () => {
    const run = makeRun('running');
    await renderWithApis(
      <RunDetails
        run={{
          ...run,
          steps: [
            {
              at: run.createdAt,
              machineRef: DB,
              level: 'info',
              message:
                'Restoring capture 1ac53c63-8c0b-4db7-91bc-ad4033136e9e of 2026-12-07T02:14:13.549Z',
            },
          ],
        }}
      />,
      { api: fakeRecoveryApi(), entity: null },
    );
    const timeline = screen.getByRole('table', { name: 'Timeline' });
    const [, step] = within(timeline).getAllByRole('row');
    expect(within(step).getAllByRole('cell')[2]).toHaveTextContent(
      /^Restoring capture 1ac53c63-8c0b-4db7-91bc-ad4033136e9e of 2026-12-07 02:14:13 UTC$/,
    );
  });

  it('writes an ISO time in a readiness reason as the card writes times', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          reasons: [
            'resource:default/db was running but unhealthy when captured at 2026-12-07T02:25:13.436Z: the capture holds a machine that was not serving',
          ],
        }),
    });
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
    const reasons = await screen.findByRole('list', { name: 'Reasons' });
    expect(reasons).toHaveTextContent(
      'resource:default/db was running but unhealthy when captured at 2026-12-07 02:25:13 UTC: the capture holds a machine that was not serving',
    );
  });
});
