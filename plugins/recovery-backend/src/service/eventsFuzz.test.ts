/**
 * Fuzzing `POST /api/recovery/events` with the mutated exports the CLI's fuzz test reads
 * (packages/cli/src/testing/eventFuzz.ts): every body is stored (201) or refused with a 400 naming
 * its line (or, none of its records an event, the body); never a 500. Where the CLI stops at a
 * line, the endpoint names the same line; where the CLI's analysis ran, the endpoint stored the
 * events. FUZZ_SEED and FUZZ_CASES change the run; a failure prints each failing case's seed.
 */
import { MiddlewareFactory } from '@backstage/backend-defaults/rootHttpRouter';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import express from 'express';
import { tmpdir } from 'os';
import { join } from 'path';
import request from 'supertest';
import {
  describeCase,
  fuzzCase,
} from '../../../../packages/cli/src/testing/eventFuzz';
import { runCli } from '../../../../packages/cli/src/testing/runCli';
import { EventStore } from '../database/EventStore';
import { migrate } from '../database/migrations';
import { RecoveryAuthorizer } from './RecoveryAuthorizer';
import { createRouter, RouterOptions } from './router';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const CASES = Number(process.env.FUZZ_CASES ?? 300);
const CONTENT_TYPES = [
  'text/plain',
  'application/json',
  'application/x-ndjson',
  'text/plain; charset=utf-8',
  'application/octet-stream',
  undefined,
];

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recovery-events-fuzz-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The router on a migrated database, with only what POST /events uses. */
async function eventsApp(databaseId: Parameters<typeof databases.init>[0]) {
  const knex = await databases.init(databaseId);
  await migrate(knex);
  const app = express();
  const options = {
    httpAuth: mockServices.httpAuth(),
    authorizer: new RecoveryAuthorizer(mockServices.permissions()),
    auditor: mockServices.auditor.mock(),
    events: new EventStore(knex),
    maxEventsRequestSize: '10mb',
  };
  app.use(await createRouter(options as unknown as RouterOptions));
  app.use(
    MiddlewareFactory.create({
      config: mockServices.rootConfig(),
      logger: mockServices.logger.mock(),
    }).error({ showStackTraces: false }),
  );
  return app;
}

describe.each(databases.eachSupportedId())(
  'POST /events on fuzzed exports, %p',
  databaseId => {
    it('refuses with a 400 naming the line, not a 500, what the fuzzing found: a value nested 10,000 deep, an exitCode that is an object', async () => {
      const app = await eventsApp(databaseId);
      const start = JSON.stringify({
        time: '2024-05-01T10:00:00Z',
        machine: 'm',
        service: 'a',
      });
      const deep = await request(app)
        .post('/events?source=deep.jsonl')
        .set('content-type', 'text/plain')
        .send(
          `${start}\n{"time":${'['.repeat(10_000)}${']'.repeat(10_000)},"machine":"m","service":"b"}\n`,
        );
      expect(deep.status).toBe(400);
      expect(deep.body.error.message).toBe(
        "deep.jsonl:2: 'time' must be epoch milliseconds or ISO 8601 with a zone, got an array ([[[… nested too deep to show)",
      );
      const die = JSON.stringify({
        Type: 'container',
        Action: 'die',
        Actor: { Attributes: { name: 'b', exitCode: { toString: 1 } } },
        timeNano: '1714557660000000000',
      });
      const exit = await request(app)
        .post('/events?source=docker.json')
        .set('content-type', 'text/plain')
        .send(`${die}\n`);
      expect(exit.status).toBe(400);
      expect(exit.body.error.message).toBe(
        `docker.json:1: 'exitCode' must be the container's exit status, got an object ({"toString":1})`,
      );
    });

    it(`answers 201, or 400 naming the line, as the CLI reads the body (seed ${SEED}, ${CASES} cases)`, async () => {
      const app = await eventsApp(databaseId);

      const failures: string[] = [];
      const tally = { stored: 0, lineError: 0, noEvents: 0 };
      for (let i = 0; i < CASES && failures.length < 20; i++) {
        const c = fuzzCase(SEED + i);
        const [file] = c.files;
        const source = file.name;
        const fail = (problem: string) =>
          failures.push(`${problem}\n  ${describeCase(c)}`);
        const post = (lenient: boolean) => {
          const req = request(app).post(
            `/events?source=${source}${c.forced ? `&format=${c.forced}` : ''}${lenient ? '&lenient=true' : ''}`,
          );
          const type = CONTENT_TYPES[i % CONTENT_TYPES.length];
          // As the bytes are: superagent would write a Buffer sent as application/json as JSON.
          return (type ? req.set('content-type', type) : req)
            .serialize(body => body)
            .send(file.data);
        };
        const lines = file.data.toString('utf8').split('\n').length;
        /** The line a 400 names (0: the body as a whole), else a problem. */
        const refusal = (res: request.Response): number | string => {
          if (res.status !== 400)
            return `status ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`;
          const message: string = res.body?.error?.message ?? '';
          if (message.startsWith(`${source}: no initialization events in `))
            return 0;
          const at = message.match(/^(.+?):(\d+): (.{10,})$/s);
          if (!at || at[1] !== source)
            return `a 400 naming no line: ${message.slice(0, 300)}`;
          const line = Number(at[2]);
          return line >= 1 && line <= lines
            ? line
            : `a 400 naming line ${line} of ${lines}: ${message.slice(0, 300)}`;
        };

        const t = Date.now();
        const strict = await post(false);
        // Milliseconds a body; seconds are a hang in the making (one that blocks for good never answers).
        if (Date.now() - t > 5_000)
          fail(`the answer took ${Date.now() - t} ms`);
        let line: number | undefined;
        if (strict.status !== 201) {
          const r = refusal(strict);
          if (typeof r === 'string') {
            fail(`strict: ${r}`);
            continue;
          }
          line = r;
        }
        tally[
          line === undefined ? 'stored' : line === 0 ? 'noEvents' : 'lineError'
        ]++;
        const lenient = await post(true);
        if (lenient.status !== 201 && refusal(lenient) !== 0)
          fail(
            `lenient: ${lenient.status} ${JSON.stringify(lenient.body).slice(0, 300)}`,
          );

        // The CLI reads the same bytes to the same verdict.
        const path = join(dir, source);
        writeFileSync(path, file.data);
        const cli = await runCli([
          'analyze',
          path,
          '--json',
          ...(c.forced ? ['--format', c.forced] : []),
        ]);
        rmSync(path);
        const cliLine = cli.stderr.match(/^recovery: .+?:(\d+): /)?.[1];
        // Only the endpoint refuses events dated past its clock: the CLI's analysis is offline, and warns.
        const future = / after it was received \(/.test(
          strict.body?.error?.message ?? '',
        );
        if (cli.status === 0 && strict.status !== 201 && !future)
          fail(
            `the CLI analysed what the endpoint refused: ${strict.body?.error?.message}`,
          );
        if (cliLine !== undefined && Number(cliLine) !== line && !future)
          fail(
            `the CLI stops at line ${cliLine}, the endpoint ${line === undefined ? 'stored it' : `at ${line}`}: ${cli.stderr}`,
          );
      }
      // eslint-disable-next-line no-console
      if (failures.length === 0)
        console.log(
          `POST /events: ${CASES} fuzzed bodies (seed ${SEED}): ${JSON.stringify(tally)}`,
        );
      expect(
        failures,
        `seed ${SEED}: ${failures.length} failing case(s)\n${failures.join('\n\n')}`,
      ).toEqual([]);
    }, 120_000);
  },
);
