import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Route, Routes } from 'react-router-dom';
import { ResponseError } from '@backstage/errors';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { Router } from '../Router';
import { RunPage } from './RunPage';
import { RecoveryRunHistory } from '../EntityRecoveryContent/EntityRecoveryContent';
import { fakeRecoveryApi, makeRun } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

/** The plugin's pages as an app mounts them, at `/recovery`, opened at `path`. */
function renderAt(path: string, api: Partial<RecoveryApi>) {
  return renderWithApis(
    <Routes>
      <Route path="/recovery/*" element={<Router />} />
    </Routes>,
    { api, entity: null, routeEntries: [path] },
  );
}

/** The backend's answer for a run it does not have or does not show the caller (AuthorizedRunService.get). */
const notFound = (runId: string) =>
  ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: { name: 'NotFoundError', message: `Run ${runId} not found` },
        response: { statusCode: 404 },
      }),
      {
        status: 404,
        statusText: 'Not Found',
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );

/** A page loaded lazily, the first time slowly under a loaded test run. */
const LOADED = { timeout: 20_000 };

describe('a run page', () => {
  it('shows the run at its own address: what it was of, linked, its machines wave by wave and its timeline', async () => {
    const api = fakeRecoveryApi({
      getRun: async id => makeRun('succeeded', { id }),
    });
    await renderAt('/recovery/runs/run-5', api);

    expect(
      await screen.findByRole('heading', { name: 'Test recovery of web' }),
    ).toBeInTheDocument();
    expect(api.getRun).toHaveBeenCalledWith('run-5');
    expect(screen.getByRole('link', { name: 'web' })).toHaveAttribute(
      'href',
      '/catalog/default/component/web',
    );
    expect(screen.getByText('On hypervisor host recovery-1')).toBeVisible();
    expect(screen.getByText('Recovery succeeded')).toBeInTheDocument();
    expect(screen.getByTestId('run-machine-db')).toHaveTextContent('wave 1');
    expect(screen.getByTestId('run-machine-web-1')).toHaveTextContent('wave 2');
    expect(
      within(screen.getByRole('table', { name: 'Timeline' })).getByText(
        'Test lab torn down',
      ),
    ).toBeInTheDocument();
    // Its id is not a link to the page it is on.
    expect(screen.getByText(/^test run run-5/)).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: 'run-5' })).toBeNull();
  });

  it('follows a run in progress until it has finished', async () => {
    let polls = 0;
    const api = fakeRecoveryApi({
      getRun: async () =>
        ++polls < 3 ? makeRun('running') : makeRun('succeeded'),
    });
    // Polled every 100 ms here: the page's 1 s, shortened.
    await renderWithApis(
      <Routes>
        <Route path="/recovery/*" element={<TestRouter />} />
      </Routes>,
      { api, entity: null, routeEntries: ['/recovery/runs/run-1'] },
    );

    expect(
      await screen.findByText(/Test recovery in progress on/),
    ).toHaveTextContent('wave 2 of 2 — 1 of 2 machines ready');
    expect(
      await screen.findByText('Recovery succeeded', undefined, {
        timeout: 5_000,
      }),
    ).toBeInTheDocument();
    const calls = api.getRun.mock.calls.length;
    expect(calls).toBeGreaterThanOrEqual(3);
    // Over, it is not asked for again.
    await new Promise(resolve => setTimeout(resolve, 300));
    expect(api.getRun).toHaveBeenCalledTimes(calls);
  });

  it('says so of a run the backend does not know, or does not show the caller, linking the overview', async () => {
    const api = fakeRecoveryApi({
      getRun: async id => {
        throw await notFound(id);
      },
    });
    await renderAt('/recovery/runs/nope', api);

    const said = await screen.findByTestId('run-not-found');
    expect(said).toHaveTextContent(
      'No run nope: there is none by that id, or it is of an entity the catalog does not show you.',
    );
    expect(
      within(said).getByRole('link', { name: 'overview' }),
    ).toHaveAttribute('href', '/recovery');
    expect(screen.queryByRole('button', { name: /Retry/ })).toBeNull();
  });

  it('says why a run could not be loaded otherwise, and loads it again on Retry', async () => {
    let loads = 0;
    const api = fakeRecoveryApi({
      getRun: async id => {
        loads += 1;
        if (loads === 1) throw new Error('Service Unavailable');
        return makeRun('succeeded', { id });
      },
    });
    await renderAt('/recovery/runs/run-1', api);

    expect(
      await screen.findByText('Could not load run run-1: Service Unavailable'),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('run-not-found')).toBeNull();
    await userEvent.click(
      screen.getByRole('button', { name: 'Retry loading run run-1' }),
    );
    expect(await screen.findByText('Recovery succeeded')).toBeInTheDocument();
  });
});

describe('links to a run page', () => {
  it("from a row of an entity's run history, which opens the run's page", async () => {
    const older = {
      ...makeRun('failed', { id: '3f9c2a1b-7d4e-4c1a-9b2e-5a6f7c8d9e0f' }),
      createdAt: '2024-04-30T10:00:00.000Z',
    };
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('succeeded', { id: 'run-2' }), older],
      getRun: async id => (id === older.id ? older : makeRun('succeeded')),
    });
    await renderWithApis(
      <Routes>
        <Route
          path="/catalog/:namespace/:kind/:name/recovery"
          element={<RecoveryRunHistory entityRef="component:default/web" />}
        />
        <Route path="/recovery/*" element={<Router />} />
      </Routes>,
      {
        api,
        entity: null,
        routeEntries: ['/catalog/default/component/web/recovery'],
      },
    );

    // A UUID by its first 8 characters, the whole of it on hover and in the address.
    const link = await screen.findByRole('link', { name: '3f9c2a1b' });
    expect(link).toHaveAttribute('href', `/recovery/runs/${older.id}`);
    expect(link).toHaveAttribute('title', `Run ${older.id}`);
    const row = link.closest('tr')!;
    expect(row).toHaveTextContent('Failed');

    // The table renders its rows anew once after the first time: a link found then may be gone.
    await waitFor(async () => {
      const again = screen.queryByRole('link', { name: '3f9c2a1b' });
      if (again) await userEvent.click(again);
      expect(
        screen.getByRole('heading', { name: 'Test recovery of web' }),
      ).toBeInTheDocument();
    }, LOADED);
    expect(api.getRun).toHaveBeenCalledWith(older.id);
    expect(screen.getByText('Recovery failed')).toBeInTheDocument();
    expect(screen.queryByText('Recovery runs')).toBeNull();
  });
});

/** The plugin's pages, the run page polling every 100 ms. */
const TestRouter = () => (
  <Routes>
    <Route path="/runs/:runId" element={<RunPageFast />} />
  </Routes>
);
const RunPageFast = () => <RunPage pollIntervalMs={100} />;
