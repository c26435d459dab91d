import request from 'supertest';

type Server = Parameters<typeof request>[0];

/**
 * A capture as `POST /captures` answered it before captures were polled: its refusal where it
 * refuses it at once, else its capture request polled until it ends, as a 201 `{ items }` or the
 * status and `{ error, response }` it failed with.
 */
export async function captureAndPoll(
  server: Server,
  body: object,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const posted = await request(server)
    .post('/api/recovery/captures')
    .set(headers)
    .send(body);
  if (posted.status !== 202) return posted;
  let state = posted.body;
  while (state.status === 'capturing') {
    await new Promise(resolve => setTimeout(resolve, 10));
    const polled = await request(server)
      .get(`/api/recovery/captures/requests/${posted.body.requestId}`)
      .set(headers);
    if (polled.status !== 200) return polled;
    state = polled.body;
  }
  return state.status === 'succeeded'
    ? { status: 201, body: { items: state.captures } }
    : {
        status: state.statusCode,
        body: {
          error: state.error,
          response: { statusCode: state.statusCode },
        },
      };
}
