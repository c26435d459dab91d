import { cleanup, screen } from '@testing-library/react';
import { RecoveryClient } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from '../EntityRecoveryCard';
import { RecoveryOverviewPage } from '../RecoveryOverviewPage';
import { renderWithApis } from '../../testUtils/render';

// A backend (or the proxy before it) that answers an error, read by the real client: each page
// says what could not be loaded, the status and the backend's own message, never the body.

/** A proxy's error page, long enough that showing it would bury the card. */
const HTML_PAGE = `<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.25.3</center>${'<!-- padding -->'.repeat(40)}</body></html>`;

const answers = {
  /** As Backstage's error handler answers. */
  backstageJson: () =>
    new Response(
      JSON.stringify({
        error: {
          name: 'Error',
          message: 'relation "recovery_runs" does not exist',
          stack: 'Error: relation ...\n    at Pool.query',
        },
        request: { method: 'GET', url: '/api/recovery/readiness' },
        response: { statusCode: 500 },
      }),
      {
        status: 500,
        statusText: 'Internal Server Error',
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
      },
    ),
  htmlPage: () =>
    new Response(HTML_PAGE, {
      status: 502,
      statusText: 'Bad Gateway',
      headers: { 'Content-Type': 'text/html' },
    }),
  /** A Backstage error body a proxy passed on as text: read all the same. */
  jsonAsText: () =>
    new Response(
      JSON.stringify({
        error: { name: 'Error', message: 'catalog unreachable' },
        response: { statusCode: 503 },
      }),
      { status: 503, statusText: 'Service Unavailable' },
    ),
};

function client(answer: () => Response | Promise<Response>) {
  return new RecoveryClient({
    discoveryApi: { getBaseUrl: async () => 'http://backstage/api/recovery' },
    fetchApi: { fetch: async () => answer() },
  });
}

const offline = () => Promise.reject(new TypeError('Failed to fetch'));

const pages = [
  {
    page: 'the entity card',
    element: <EntityRecoveryCard pollIntervalMs={60_000} />,
    what: 'readiness',
  },
  {
    page: 'the overview page',
    element: <RecoveryOverviewPage />,
    what: 'the overview',
  },
];

/** Nothing of the raw body shows: no markup, no JSON, no stack. */
function expectNoBodyShown() {
  const text = document.body.textContent ?? '';
  expect(text).not.toMatch(
    /<html|<!DOCTYPE|nginx|"error"|statusCode|Pool\.query/,
  );
}

afterEach(cleanup);

describe.each(pages)('$page, when loading fails', ({ element, what }) => {
  const load = (answer: () => Response | Promise<Response>) =>
    renderWithApis(element, { api: client(answer) });
  const said = () => screen.findByTestId('load-error', undefined, LOADED);

  it("says the status and the backend's message of a Backstage error body", async () => {
    await load(answers.backstageJson);
    expect(await said()).toHaveTextContent(
      `Could not load ${what} (500 Internal Server Error): relation "recovery_runs" does not exist`,
    );
    expectNoBodyShown();
    expect(
      screen.getByRole('button', { name: `Retry loading ${what}` }),
    ).toBeInTheDocument();
  });

  it('says the status of an HTML page, and that it was not JSON, without showing it', async () => {
    await load(answers.htmlPage);
    expect(await said()).toHaveTextContent(
      new RegExp(
        `^Could not load ${what} \\(502 Bad Gateway\\): the answer was not JSON \\(an HTML page of \\d+ characters, not shown\\)$`,
      ),
    );
    expectNoBodyShown();
  });

  it("reads the backend's message from a Backstage error body sent as text", async () => {
    await load(answers.jsonAsText);
    expect(await said()).toHaveTextContent(
      `Could not load ${what} (503 Service Unavailable): catalog unreachable`,
    );
    expectNoBodyShown();
  });

  it('says what could not be loaded, with no status, where fetch rejects (no answer at all)', async () => {
    await load(offline);
    expect(await said()).toHaveTextContent(
      new RegExp(`^Could not load ${what}: Failed to fetch$`),
    );
  });
});

/** The pages' first render in a file is slow under load. */
const LOADED = { timeout: 10_000 };
