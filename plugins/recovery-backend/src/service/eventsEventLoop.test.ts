/**
 * A large `POST /api/recovery/events` must not hold the backend's event loop: the SQLite driver
 * runs each statement synchronously and the parser is one loop, so a push of 50,000 lines once
 * stalled health checks and a running recovery's timing for seconds (a false RTO breach).
 */
import {
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { recoveryPlugin } from '../plugin';
import { providersModule } from '../testing/providers';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const LINES = 50_000;
/**
 * Longest stall allowed: a push of 50,000 lines held the loop 2–9 s before it was read and stored
 * in slices, and still some 400 ms read and stored whole; in slices, some tens of ms.
 */
const MAX_STALL_MS = 200;

/** `LINES` start events (about 5 MB), the day `day` of a year. */
function exportOf(day: number): string {
  const base = Date.UTC(2024, 0, 1) + day * 86_400_000;
  const lines: string[] = [];
  for (let i = 0; i < LINES; i++)
    lines.push(
      JSON.stringify({
        time: new Date(base + i * 1000).toISOString(),
        machine: `machine-${String(i % 200).padStart(4, '0')}`,
        service: `service-${String(i % 1000).padStart(5, '0')}`,
        type: i % 50 === 0 ? 'failure' : 'start',
      }),
    );
  return lines.join('\n');
}

/**
 * How long this thread has waited for a CPU it could have run on (ms): the load of the machine
 * running the test, none of the event loop's doing. Linux's scheduler statistics; none elsewhere.
 */
function waitedForCpuMs(): number {
  try {
    const [, waitingNs] = readFileSync('/proc/thread-self/schedstat', 'utf8')
      .split(' ')
      .map(Number);
    return waitingNs / 1e6;
  } catch {
    return 0;
  }
}

/**
 * The longest time the event loop ran no timer, from now until the returned function is called,
 * less what it waited for a CPU meanwhile: a loaded machine holds every timer as long, but only
 * the loop's own work (or blocking calls) is a stall of the backend's making.
 */
function stallMonitor(): () => number {
  let longest = 0;
  let last = performance.now() - waitedForCpuMs();
  const tick = () => {
    const now = performance.now() - waitedForCpuMs();
    longest = Math.max(longest, now - last);
    last = now;
  };
  const timer = setInterval(tick, 5);
  return () => {
    tick();
    clearInterval(timer);
    return longest;
  };
}

describe.each(databases.eachSupportedId())(
  'POST /events of 50,000 lines, %p',
  databaseId => {
    it('keeps the event loop serving while it parses and stores them, and stores all of a body or none of it', async () => {
      const knex = await databases.init(databaseId);
      const { server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({}),
          catalogServiceMock.factory({ entities: [] }),
          mockServices.database.factory({ knex }),
          mockServices.rootConfig.factory({
            data: { recovery: { events: { maxRequestSize: '10mb' } } },
          }),
        ],
      });
      const count = async () =>
        Number((await knex('recovery_events').count({ n: '*' }).first())!.n);

      const body = exportOf(0);
      const stalled = stallMonitor();
      const pushed = await request(server)
        .post('/api/recovery/events?source=large.jsonl')
        .set('content-type', 'text/plain')
        .send(body);
      const longest = stalled();
      expect(pushed.status).toBe(201);
      expect(pushed.body).toMatchObject({ received: LINES, stored: LINES });
      expect(await count()).toBe(LINES);
      expect(longest).toBeLessThan(MAX_STALL_MS);

      // A malformed last line refuses the whole body, its first 50,000 lines parsed in slices
      // before it: none of them is stored.
      const refused = await request(server)
        .post('/api/recovery/events?source=bad.jsonl')
        .set('content-type', 'text/plain')
        .send(
          `${exportOf(1)}\n{"time":"yesterday","machine":"m","service":"s"}`,
        );
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/^bad\.jsonl:50001: /);
      expect(await count()).toBe(LINES);
    });
  },
);
