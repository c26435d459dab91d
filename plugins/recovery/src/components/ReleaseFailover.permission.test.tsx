// In a file of its own: usePermission caches decisions per module (see renderWithApis).
import { screen } from '@testing-library/react';
import { RunDetails } from './RunDetails';
import { fakeRecoveryApi, makeRun } from '../testUtils/fixtures';
import { renderWithApis } from '../testUtils/render';

it('keeps the release of a failover off, saying why, without the failover permission on its entity', async () => {
  const failover = makeRun('succeeded', { id: 'fo-1', mode: 'failover' });
  await renderWithApis(<RunDetails run={failover} />, {
    api: fakeRecoveryApi(),
    entity: null,
    allow: permission => permission !== 'recovery.run.failover',
  });
  expect(await screen.findByText(/^You are not allowed to release this failover \(recovery\.run\.failover on .+\)$/)).toBeInTheDocument();
  expect(screen.getByRole('button', { name: 'Release failover machines' })).toBeDisabled();
});
