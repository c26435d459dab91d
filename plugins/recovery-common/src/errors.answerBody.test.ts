import { ResponseError } from '@backstage/errors';
import { couldNot, errorMessage } from './errors';

const answered = (
  body: string,
  status: number,
  statusText: string,
  type?: string,
) =>
  ResponseError.fromResponse(
    new Response(body, {
      status,
      statusText,
      ...(type && { headers: { 'Content-Type': type } }),
    }),
  );

describe('errorMessage and couldNot of an answer whose body is not a Backstage error', () => {
  it("says an HTML page's status and that it was not JSON, never the page", async () => {
    const page = `<html><body><h1>502 Bad Gateway</h1>${' '.repeat(300)}</body></html>`;
    const error = await answered(page, 502, 'Bad Gateway', 'text/html');
    expect(errorMessage(error)).toBe(
      `the answer was not JSON (an HTML page of ${page.trim().length} characters, not shown)`,
    );
    expect(couldNot('load readiness', error)).toBe(
      `Could not load readiness (502 Bad Gateway): the answer was not JSON (an HTML page of ${page.trim().length} characters, not shown)`,
    );
  });

  it("reads the backend's message from a Backstage error body sent without its content type", async () => {
    const error = await answered(
      JSON.stringify({ error: { name: 'Error', message: 'database is down' } }),
      500,
      'Internal Server Error',
    );
    expect(errorMessage(error)).toBe('database is down');
    expect(couldNot('load the run history', error)).toBe(
      'Could not load the run history (500 Internal Server Error): database is down',
    );
  });

  it("says a proxy's one line as it is, and a status without its text", async () => {
    const error = await answered('upstream connect error', 503, '');
    expect(couldNot('load the overview', error)).toBe(
      'Could not load the overview (503): upstream connect error',
    );
  });

  it('says an error that got no answer without a status', () => {
    expect(couldNot('load readiness', new Error('Service Unavailable'))).toBe(
      'Could not load readiness: Service Unavailable',
    );
  });
});
