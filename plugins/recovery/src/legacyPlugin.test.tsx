import { screen } from '@testing-library/react';
import { Route, Routes } from 'react-router-dom';
import {
  mockApis,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/test-utils';
import {
  catalogApiRef,
  EntityProvider,
  entityRouteRef,
} from '@backstage/plugin-catalog-react';
import { catalogApiMock } from '@backstage/plugin-catalog-react/testUtils';
import { permissionApiRef } from '@backstage/plugin-permission-react';
import type { ConfigApi } from '@backstage/frontend-plugin-api';
import {
  EntityRecoveryCard,
  EntityRecoveryContent,
  recoveryApiRef,
  recoveryPlugin,
  RecoveryOverviewPage,
} from './index';
import { rootRouteRef } from './routes';
import {
  makeReadiness,
  makeReadinessSummary,
  makeRun,
  webEntity,
} from './testUtils/fixtures';

const BACKEND = 'http://backstage.test';
/** An extension's component is loaded lazily, the first time slowly under a loaded test run. */
const LOADED = { timeout: 20_000 };
const WEB_READINESS = `${BACKEND}/api/recovery/readiness/component/default/web`;

/** The recovery backend, behind the test app's fetch API (which calls the global fetch). */
function answerAsTheBackend() {
  return vi
    .spyOn(globalThis, 'fetch')
    .mockImplementation(async (input: RequestInfo | URL) => {
      const url = new URL(String(input));
      const json = (body: unknown) =>
        new Response(JSON.stringify(body), {
          headers: { 'content-type': 'application/json' },
        });
      if (`${url.origin}${url.pathname}` === WEB_READINESS)
        return json(makeReadiness({ status: 'ready' }));
      if (url.pathname === '/api/recovery/readiness')
        return json({ items: [makeReadinessSummary({ status: 'ready' })] });
      if (url.pathname === '/api/recovery/runs')
        return json({ items: [], pageInfo: {} });
      if (url.pathname === '/api/recovery/runs/run-1')
        return json(makeRun('succeeded'));
      return new Response('{}', { status: 404 });
    });
}

/**
 * Renders in a legacy test app, which registers the APIs of the plugins it finds in the element
 * tree, and only the permission and catalog APIs by hand: not the recovery API.
 */
function renderInLegacyApp(element: JSX.Element, route: string) {
  return renderInTestApp(
    <TestApiProvider
      apis={[
        [permissionApiRef, mockApis.permission()],
        [catalogApiRef, catalogApiMock({ entities: [webEntity] })],
      ]}
    >
      {element}
    </TestApiProvider>,
    {
      routeEntries: [route],
      mountedRoutes: {
        '/catalog/:namespace/:kind/:name': entityRouteRef,
        // Where the app mounts RecoveryOverviewPage: the card and the tab link runs to their pages.
        '/recovery': rootRouteRef,
      },
      // Shown rather than thrown: what an extension's error boundary caught.
      components: {
        ErrorBoundaryFallback: ({ error }) => <p>Caught: {error.message}</p>,
      },
    },
  );
}

describe('recovery plugin (legacy frontend system)', () => {
  beforeEach(() => {
    // The legacy test app reads no app-config (and takes none): the config it reads is one of
    // these readers, whose backend.baseUrl its discovery API builds the backend's URLs from.
    const reader: ConfigApi = Object.getPrototypeOf(mockApis.config());
    const getString = reader.getString;
    vi.spyOn(reader, 'getString').mockImplementation(function backendAt(
      this: ConfigApi,
      key: string,
    ) {
      return key === 'backend.baseUrl' ? BACKEND : getString.call(this, key);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('is plugin recovery, providing the API client from discovery and fetch', () => {
    expect(recoveryPlugin.getId()).toBe('recovery');
    const [factory] = [...recoveryPlugin.getApis()];
    expect(factory.api).toBe(recoveryApiRef);
    expect(Object.keys(factory.deps).sort()).toEqual([
      'discoveryApi',
      'fetchApi',
    ]);
  });

  it("renders the card with the plugin's own API client, asking the backend the app discovers", async () => {
    const fetch = answerAsTheBackend();
    await renderInLegacyApp(
      <EntityProvider entity={webEntity}>
        <EntityRecoveryCard pollIntervalMs={10} />
      </EntityProvider>,
      '/',
    );
    expect(
      await screen.findByText('Recovery readiness', {}, LOADED),
    ).toBeInTheDocument();
    expect(await screen.findByText('Ready')).toBeInTheDocument();
    expect(fetch.mock.calls.map(([url]) => String(url))).toContain(
      WEB_READINESS,
    );
  });

  it('renders the Recovery tab mounted on an entity route', async () => {
    answerAsTheBackend();
    await renderInLegacyApp(
      <EntityProvider entity={webEntity}>
        <Routes>
          <Route path="/recovery" element={<EntityRecoveryContent />} />
        </Routes>
      </EntityProvider>,
      '/recovery',
    );
    expect(
      await screen.findByText('Recovery runs', {}, LOADED),
    ).toBeInTheDocument();
    expect(await screen.findByText('Ready')).toBeInTheDocument();
  });

  it('renders the overview page mounted at /recovery, with its own header', async () => {
    const fetch = answerAsTheBackend();
    await renderInLegacyApp(
      // As FlatRoutes mounts it: its run pages are under it.
      <Routes>
        <Route path="/recovery/*" element={<RecoveryOverviewPage />} />
      </Routes>,
      '/recovery',
    );
    expect(
      await screen.findByRole('heading', { name: 'Recovery' }, LOADED),
    ).toBeInTheDocument();
    expect(await screen.findByText('Readiness by risk')).toBeInTheDocument();
    await vi.waitFor(() =>
      expect(
        fetch.mock.calls.some(([url]) =>
          String(url).startsWith(`${BACKEND}/api/recovery/readiness`),
        ),
      ).toBe(true),
    );
  });

  it("renders a run's page under the overview page, with a header that leads back to it", async () => {
    const fetch = answerAsTheBackend();
    await renderInLegacyApp(
      <Routes>
        <Route path="/recovery/*" element={<RecoveryOverviewPage />} />
      </Routes>,
      '/recovery/runs/run-1',
    );
    expect(
      await screen.findByRole(
        'heading',
        { name: 'Test recovery of web' },
        LOADED,
      ),
    ).toBeInTheDocument();
    expect(screen.getByRole('heading', { name: 'Run run-1' })).toBeVisible();
    expect(screen.getByRole('link', { name: 'Recovery' })).toHaveAttribute(
      'href',
      '/recovery',
    );
    expect(screen.getByText('Recovery succeeded')).toBeInTheDocument();
    expect(fetch.mock.calls.map(([url]) => String(url))).toContain(
      `${BACKEND}/api/recovery/runs/run-1`,
    );
  });
});
