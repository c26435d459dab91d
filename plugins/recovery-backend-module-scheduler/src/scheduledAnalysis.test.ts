/**
 * The scheduled dependency analysis against the real recovery backend plugin: the module
 * schedules it by the cron in config, and each run stores every system's analysis, which the
 * API then serves as that system's latest.
 */
import type { Entity } from '@backstage/catalog-model';
import request from 'supertest';
import {
  componentEntity,
  machineEntity,
} from '../../recovery-backend/src/testing/entities';
import { startSchedulerBackend } from './testing/schedulerBackend';

/** A system of `parts` (component names), each on its machine `<name>-01`. */
function system(name: string, parts: string[]): Entity[] {
  return [
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: { name, namespace: 'default' },
      spec: {},
      relations: parts.map(p => ({
        type: 'hasPart',
        targetRef: `component:default/${p}`,
      })),
    },
    ...parts.flatMap(p => [
      {
        ...machineEntity(`${p}-01`),
        relations: [
          { type: 'dependencyOf', targetRef: `component:default/${p}` },
        ],
      },
      {
        ...componentEntity(p, [`resource:default/${p}-01`]),
        spec: { type: 'service', system: name },
        relations: [
          { type: 'dependsOn', targetRef: `resource:default/${p}-01` },
          { type: 'partOf', targetRef: `system:default/${name}` },
        ],
      },
    ]),
  ];
}

describe('scheduled dependency analysis', () => {
  it("runs by the cron in config and stores each system's analysis, the latest of which the API serves", async () => {
    const { server, logger, task } = await startSchedulerBackend({
      entities: [
        ...system('shop', ['db', 'web']),
        ...system('fresh', ['cache']),
      ],
      config: {
        recovery: {
          schedules: {
            analysis: {
              frequency: { cron: '15 3 * * *' },
              timeout: { minutes: 10 },
            },
          },
        },
      },
    });

    const analysis = task('recovery-analysis');
    expect({
      frequency: analysis.frequency,
      timeout: analysis.timeout,
    }).toEqual({ frequency: { cron: '15 3 * * *' }, timeout: { minutes: 10 } });

    // 30 boots of the shop, a day apart: web starts 8 minutes after db.
    const day0 = Date.UTC(2026, 10, 1);
    const lines = Array.from({ length: 30 }, (_, i) => [
      { time: day0 + i * 86_400_000, machine: 'db-01', service: 'db' },
      {
        time: day0 + i * 86_400_000 + 8 * 60_000,
        machine: 'web-01',
        service: 'web',
      },
    ]).flat();
    const pushed = await request(server)
      .post('/api/recovery/events')
      .send(lines.map(l => JSON.stringify(l)).join('\n'));
    expect(pushed.status).toBe(201);
    expect(
      (await request(server).get('/api/recovery/analysis/system/default/shop'))
        .status,
    ).toBe(404);

    await analysis.fn(new AbortController().signal);
    const first = await request(server).get(
      '/api/recovery/analysis/system/default/shop',
    );
    expect(first.status).toBe(200);
    expect(first.body.result.dependencies).toEqual([
      expect.objectContaining({ service: 'web', dependsOn: 'db' }),
    ]);
    const plan = await request(server).get(
      '/api/recovery/plan/system/default/shop',
    );
    expect(plan.body.waves).toEqual([
      ['resource:default/db-01'],
      ['resource:default/web-01'],
    ]);
    // The system with no events yet is skipped, named once: in the task's summary.
    const logged: string[] = logger.info.mock.calls.map((c: unknown[]) =>
      String(c[0]),
    );
    expect(
      logged.filter(line => line.includes('system:default/fresh')),
    ).toEqual([
      'Dependency analysis: 1 systems analysed, 1 skipped (no initialization events of their services yet: system:default/fresh), 0 failed',
    ]);

    // Each run stores a new analysis, served as the latest.
    await analysis.fn(new AbortController().signal);
    const second = await request(server).get(
      '/api/recovery/analysis/system/default/shop',
    );
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.body.createdAt >= first.body.createdAt).toBe(true);
  });
});
