import express from 'express';
import request from 'supertest';
import { jsonOnly } from './requests';

/** A route reading its body through jsonOnly, answering what it read (or its refusal). */
function app() {
  const server = express();
  server.post('/analysis', jsonOnly('1kb'), (req, res) => {
    res.json({ body: req.body });
  });
  server.use(
    (
      error: { statusCode?: number; status?: number; message: string },
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      res
        .status(error.statusCode ?? error.status ?? 500)
        .json({ message: error.message });
    },
  );
  return server;
}

/** POST /analysis with `body` sent as text in `type`. */
const post = (type: string, body: string) =>
  request(app()).post('/analysis').set('Content-Type', type).send(body);

const SHOP = '{"systemRef":"system:default/shop"}';

describe('jsonOnly', () => {
  it('reads a JSON body, whatever its charset', async () => {
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
    ]) {
      const answer = await post(type, SHOP);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        body: { systemRef: 'system:default/shop' },
      });
    }
  });

  it('refuses a body of another content type with a 415, rather than read it as none', async () => {
    // fetch sends a string body as text/plain; curl -d as a form.
    for (const type of [
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
    ]) {
      const answer = await post(type, SHOP);
      expect(answer.status).toBe(415);
      expect(answer.body).toEqual({
        message: `Request body must be JSON (Content-Type: application/json), got ${type}`,
      });
    }
  });

  it('takes a POST with no body, as fetch sends one (Content-Length: 0, no type)', async () => {
    const answer = await request(app())
      .post('/analysis')
      .set('Content-Length', '0');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ body: {} });
    expect((await request(app()).post('/analysis')).status).toBe(200);
  });

  it('leaves the parser’s own refusals to it', async () => {
    expect((await post('application/json', '{"systemRef":')).status).toBe(400);
    const tooLarge = JSON.stringify({ note: 'x'.repeat(2048) });
    expect((await post('application/json', tooLarge)).status).toBe(413);
  });
});
