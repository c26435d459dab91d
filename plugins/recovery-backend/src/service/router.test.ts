import { mockServices, startTestBackend, TestDatabases } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { JOURNALD_UNIT_STARTED } from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import request from 'supertest';
import { recoveryPlugin } from '../plugin';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const entities: Entity[] = [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'web', namespace: 'default' },
    spec: { type: 'service' },
    relations: [],
  },
];

const journald = (host: string, unit: string, realtimeUs: string, messageId = JOURNALD_UNIT_STARTED) =>
  JSON.stringify({ __REALTIME_TIMESTAMP: realtimeUs, _HOSTNAME: host, MESSAGE_ID: messageId, UNIT: unit, MESSAGE: `Started ${unit}.` });

describe.each(databases.eachSupportedId())('recovery router on %p', databaseId => {
  let knex: Knex;
  let server: Awaited<ReturnType<typeof startTestBackend>>['server'];

  beforeAll(async () => {
    knex = await databases.init(databaseId);
    ({ server } = await startTestBackend({
      features: [
        recoveryPlugin,
        catalogServiceMock.factory({ entities }),
        mockServices.database.factory({ knex }),
      ],
    }));
  });

  it('stores journald and docker events with sub-millisecond times, rounded to the ms', async () => {
    // journald counts µs and docker ns: neither is a whole number of ms here.
    const body = [journald('db-01', 'postgresql.service', '1700000000123457'), journald('db-01', 'nginx.service', '1700000000124500')].join('\n');
    const pushed = await request(server).post('/api/recovery/events').send(body);
    expect(pushed.status).toBe(201);
    expect(pushed.body).toMatchObject({ format: 'journald', received: 2, stored: 2 });

    const docker = JSON.stringify({
      Type: 'container',
      Action: 'start',
      Actor: { Attributes: { name: 'cache' } },
      timeNano: 1_700_000_000_999_600_123,
    });
    const streamed = await request(server).post('/api/recovery/events?format=docker').send(docker);
    expect(streamed.status).toBe(201);
    expect(streamed.body).toMatchObject({ received: 1, stored: 1 });

    const rows = await knex('recovery_events').select('service', 'time').orderBy('time');
    expect(rows.map(r => [r.service, Number(r.time)])).toEqual([
      ['postgresql.service', 1_700_000_000_123],
      ['nginx.service', 1_700_000_000_125],
      ['cache', 1_700_000_001_000],
    ]);
    // Sent again, the rounded times match what is stored: nothing new.
    const again = await request(server).post('/api/recovery/events').send(body);
    expect(again.body).toMatchObject({ received: 2, stored: 0, duplicates: 2 });
  });

  it('answers a malformed entity ref with 400 naming the field', async () => {
    const cases: Array<[request.Test, string]> = [
      [request(server).post('/api/recovery/captures').send({ entityRef: 'component:' }), 'entityRef: Entity reference "component:" was not on the form'],
      [request(server).post('/api/recovery/runs').send({ entityRef: '/web' }), 'entityRef: Entity reference "/web" was not on the form'],
      [request(server).post('/api/recovery/analysis').send({ entityRef: ':web' }), 'entityRef: Entity reference ":web" was not on the form'],
      [request(server).get('/api/recovery/captures?machineRef=resource%3A'), 'machineRef: Entity reference "resource:" was not on the form'],
      [request(server).get('/api/recovery/runs?entityRef=default%2F'), 'entityRef: Entity reference "default/" was not on the form'],
      [request(server).get('/api/recovery/runs?entityRef=a&entityRef=b'), 'Query parameter entityRef must be given once'],
    ];
    for (const [req, message] of cases) {
      const res = await req;
      expect({ status: res.status, message: res.body.error?.message }).toEqual({
        status: 400,
        message: expect.stringContaining(message),
      });
    }
  });

  it('says where the lines went when a body has no initialization events', async () => {
    const skipped = await request(server)
      .post('/api/recovery/events?lenient=true&source=boot.jsonl')
      .send(['{"time": "yesterday", "machine": "m", "service": "s"}', 'not json', '', '{"time": 1, "machine": "m", "service": "s", "event": "stop"}'].join('\n'));
    expect(skipped.status).toBe(400);
    expect(skipped.body.error.message).toBe(
      'boot.jsonl: no initialization events in 3 lines (formats: jsonl, journald, docker); ' +
        '3 skipped as malformed, 0 ignored as not initialization events; retry without lenient=true to see the first malformed line',
    );

    const noise = await request(server)
      .post('/api/recovery/events')
      .send([journald('db-01', 'x.service', '1700000000000000', 'other'), '{"__REALTIME_TIMESTAMP": "1", "MESSAGE": "hello"}'].join('\n'));
    expect(noise.status).toBe(400);
    expect(noise.body.error.message).toBe(
      'request body: no initialization events in 2 lines (formats: jsonl, journald, docker); 0 skipped as malformed, 2 ignored as not initialization events',
    );
  });
});
