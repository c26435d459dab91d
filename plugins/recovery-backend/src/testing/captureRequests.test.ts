import { pollCapture } from './captureRequests';

const ID = 'r-1';
const URL = `/captures/requests/${ID}`;
const accepted = {
  requestId: ID,
  entityRef: 'component:default/web',
  machineRefs: ['resource:default/web-01'],
  status: 'capturing',
  createdAt: '2026-01-01T00:00:00.000Z',
  captures: [],
};
const answer = (status: number, body: object, location?: string) => ({
  status,
  body,
  headers: location
    ? { location: `/api/recovery${location}` }
    : ({} as Record<string, string>),
});

describe('pollCapture', () => {
  it('answers a refusal at once as POST answered it, polling nothing', async () => {
    const get = vi.fn();
    const refusal = { error: { name: 'InputError', message: 'bad' } };
    await expect(
      pollCapture({ post: async () => answer(400, refusal), get }),
    ).resolves.toEqual({ status: 400, body: refusal });
    expect(get).not.toHaveBeenCalled();
  });

  it('polls the request at its Location until it has ended, and answers it as it ended', async () => {
    const polls = [
      accepted,
      { ...accepted, status: 'failed', statusCode: 503, error: { name: 'E' } },
    ];
    const get = vi.fn(async () => answer(200, polls.shift()!));
    await expect(
      pollCapture({ post: async () => answer(202, accepted, URL), get }),
    ).resolves.toMatchObject({ status: 'failed', statusCode: 503 });
    expect(get.mock.calls).toEqual([[URL], [URL]]);
  });

  it('fails naming the request and its last answer where it has not ended by the deadline', async () => {
    await expect(
      pollCapture(
        {
          post: async () => answer(202, accepted, URL),
          get: async () => answer(200, accepted),
        },
        100,
      ),
    ).rejects.toThrow(
      `capture request ${ID} did not end within 0.1 s; last answered ${JSON.stringify(accepted)}`,
    );
  });

  it('fails naming the poll where it is not answered 200, or the 202 has no Location of its request', async () => {
    const notFound = { error: { name: 'NotFoundError', message: 'gone' } };
    await expect(
      pollCapture({
        post: async () => answer(202, accepted, URL),
        get: async () => answer(404, notFound),
      }),
    ).rejects.toThrow(
      `GET ${URL} answered 404 ${JSON.stringify(notFound)}; last answered`,
    );
    await expect(
      pollCapture({
        post: async () => answer(202, accepted, '/captures/requests/r-2'),
        get: async () => answer(200, accepted),
      }),
    ).rejects.toThrow(
      `POST /captures accepted capture request ${ID} with Location /api/recovery/captures/requests/r-2, not /api/recovery${URL}`,
    );
  });
});
