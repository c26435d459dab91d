import {
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import type { ReadinessSummary } from '@backstage-recovery/plugin-recovery-common';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import request from 'supertest';
import { recoveryPlugin } from '../plugin';
import { componentEntity, machineEntity } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';
import { READINESS_PAGE_DEFAULT, READINESS_PAGE_MAX } from './readinessPaging';

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

/** One more service than a page holds unless asked: each on a machine of its own. */
const COUNT = READINESS_PAGE_DEFAULT + 1;
const names = Array.from(
  { length: COUNT },
  (_, i) => `svc-${String(i).padStart(3, '0')}`,
);
const entities = names.flatMap(name => [
  {
    ...machineEntity(`${name}-01`),
    relations: [
      { type: 'dependencyOf', targetRef: `component:default/${name}` },
    ],
  },
  componentEntity(name, [`resource:default/${name}-01`]),
]);

type Page = {
  items: ReadinessSummary[];
  totalItems: number;
  pageInfo: { nextCursor?: string };
};

describe('GET /readiness, a page at a time', () => {
  let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
  const get = async (query = '') =>
    request(server).get(`/api/recovery/readiness${query}`);

  beforeAll(async () => {
    const knex = await databases.init('SQLITE_3');
    ({ server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [new FakeCaptureSource()],
          hypervisorHosts: [new FakeHost({})],
        }),
        createServiceFactory({
          service: catalogServiceRef,
          deps: {},
          factory: () => catalogServiceMock({ entities }),
        }),
        mockServices.database.factory({ knex }),
      ],
    }));
  });

  it(`answers ${READINESS_PAGE_DEFAULT} entities unless asked, with the total and the cursor of the next page`, async () => {
    const first = await get();
    expect(first.status).toBe(200);
    const page: Page = first.body;
    expect(page.items).toHaveLength(READINESS_PAGE_DEFAULT);
    expect(page.totalItems).toBe(COUNT);
    expect(page.pageInfo.nextCursor).toEqual(expect.any(String));
    const last: Page = (
      await get(`?cursor=${encodeURIComponent(page.pageInfo.nextCursor!)}`)
    ).body;
    expect(last.items.map(i => i.entityRef)).toEqual([
      `component:default/${names.at(-1)}`,
    ]);
    expect(last).toMatchObject({ totalItems: COUNT, pageInfo: {} });
    expect(last.pageInfo.nextCursor).toBeUndefined();
  });

  it('splits the entities by ref: read page after page, each once, as one page of them all lists them', async () => {
    const all: Page = (await get(`?limit=${READINESS_PAGE_MAX}`)).body;
    expect(all.items).toHaveLength(COUNT);
    expect(all.pageInfo).toEqual({});
    const pages: Page[] = [];
    let cursor: string | undefined;
    do {
      const page: Page = (
        await get(
          `?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        )
      ).body;
      pages.push(page);
      cursor = page.pageInfo.nextCursor;
    } while (cursor);
    expect(pages).toHaveLength(Math.ceil(COUNT / 7));
    expect(pages.every(p => p.totalItems === COUNT)).toBe(true);
    const read = pages.flatMap(p => p.items.map(i => i.entityRef));
    expect(read).toEqual(names.map(n => `component:default/${n}`));
    expect([...read].sort()).toEqual(all.items.map(i => i.entityRef).sort());
  });

  it('refuses a limit out of range or given twice, and a cursor it did not answer, saying which', async () => {
    for (const query of [
      '?limit=0',
      `?limit=${READINESS_PAGE_MAX + 1}`,
      '?limit=1.5',
      '?limit=1&limit=2',
    ]) {
      const res = await get(query);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(
        new RegExp(
          `^Query parameter limit must be given once, an integer from 1 to ${READINESS_PAGE_MAX}, got `,
        ),
      );
    }
    for (const query of [
      '?cursor=',
      '?cursor=not-a-cursor',
      '?cursor=a&cursor=b',
    ]) {
      const res = await get(query);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(
        /^Query parameter cursor must be given once, a pageInfo.nextCursor of GET \/readiness, got /,
      );
    }
    expect((await get('?page=2')).status).toBe(400);
  });
});
