/**
 * `recovery capture` while a large copy is under way: the capture request's progress, as polls
 * find it, said as a run's timeline says its progress lines: each new line once (the backend paces
 * them; polls come faster than its lines, so a second throttle here dropped lines it said).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from './testing/runCli';

const MACHINE = 'resource:default/db-01';
const line = (at: string, message: string) => ({
  machineRef: MACHINE,
  message,
  at,
});
const FIRST = line(
  '2026-12-22T00:00:02.000Z',
  'Archiving volume /data (machine paused): 24.0 MiB so far at 12.0 MiB/s',
);
const SECOND = line(
  '2026-12-22T00:00:04.000Z',
  'Archiving volume /data (machine paused): 48.0 MiB so far at 12.0 MiB/s',
);
const THIRD = line(
  '2026-12-22T00:00:06.000Z',
  'Saved the image: 1.1 GiB in 9.8 s (114.9 MiB/s)',
);

describe('recovery capture, a capture saying its progress', () => {
  let server: Server;
  let url: string;
  let polls = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const json = (status: number, body: unknown) =>
        res
          .writeHead(status, { 'Content-Type': 'application/json' })
          .end(JSON.stringify(body));
      if (req.url === '/api/recovery/plan/component/default/db')
        return json(200, { waves: [[MACHINE]], problems: [] });
      const request = {
        requestId: 'q1',
        entityRef: 'component:default/db',
        machineRefs: [MACHINE],
        createdAt: '2026-12-22T00:00:00.000Z',
      };
      if (req.url === '/api/recovery/captures')
        return json(202, { ...request, status: 'capturing', captures: [] });
      if (req.url === '/api/recovery/captures/requests/q1') {
        // The client polls after 0.1, 0.3, 0.7, 1.5 and 2.5 s: no line yet, the first line, the
        // same again (not said twice), a newer one polled 0.8 s after it, then another.
        const progress = [undefined, FIRST, FIRST, SECOND, THIRD][polls++];
        if (polls <= 5)
          return json(200, {
            ...request,
            status: 'capturing',
            captures: [],
            ...(progress && { progress }),
          });
        return json(200, {
          ...request,
          status: 'succeeded',
          captures: [
            {
              id: 'c1',
              machineRef: MACHINE,
              sizeBytes: 2048,
              durationMs: 3000,
            },
          ],
        });
      }
      return json(404, { error: { name: 'NotFoundError', message: req.url } });
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
  });

  beforeEach(() => {
    polls = 0;
  });

  it('prints each new progress line once, in the timeline wording', async () => {
    const captured = await runCli(['capture', 'db', '--url', url]);
    expect(captured).toMatchObject({ status: 0, stderr: '' });
    expect(captured.stdout).toBe(
      [
        `00:00:02  ${MACHINE}: ${FIRST.message}`,
        `00:00:04  ${MACHINE}: ${SECOND.message}`,
        `00:00:06  ${MACHINE}: ${THIRD.message}`,
        `${MACHINE}  capture c1  2.0 KiB in 3000 ms  (1 of 1)`,
        '',
      ].join('\n'),
    );
  }, 10_000);

  it('prints none with --json: its output is the captures alone', async () => {
    const captured = await runCli(['capture', 'db', '--url', url, '--json']);
    expect(captured).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(captured.stdout)).toEqual({
      items: [expect.objectContaining({ id: 'c1' })],
    });
  }, 10_000);
});
