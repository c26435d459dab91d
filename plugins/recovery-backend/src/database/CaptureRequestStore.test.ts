import { TestDatabases } from '@backstage/backend-test-utils';
import { CaptureRequestStore } from './CaptureRequestStore';
import { migrate } from './migrations';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'CaptureRequestStore on %s',
  databaseId => {
    const setUp = async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new CaptureRequestStore(knex);
      const accept = (requestId: string) =>
        store.insert({
          requestId,
          entityRef: 'component:default/web',
          machineRefs: ['resource:default/web-01'],
          createdAt: new Date().toISOString(),
        });
      const silence = (requestId: string, ms: number) =>
        knex('recovery_capture_requests')
          .where({ id: requestId })
          .update({ heard_at: new Date(Date.now() - ms) });
      return { store, accept, silence };
    };
    const failure = {
      statusCode: 503,
      error: { name: 'ServiceUnavailableError', message: 'interrupted' },
    };

    it('claims a request not heard from once, and its backend, back after all, ends it no more', async () => {
      const { store, accept, silence } = await setUp();
      await accept('r1');
      // Heard from: not claimed.
      expect(
        await store.claimStale('r1', 60_000, () => failure, new Date()),
      ).toBe(false);
      await silence('r1', 61_000);
      expect(
        await store.claimStale('r1', 60_000, () => failure, new Date()),
      ).toBe(true);
      expect(
        await store.claimStale('r1', 60_000, () => failure, new Date()),
      ).toBe(false);
      expect(await store.heartbeat('r1')).toBe(false);
      expect(await store.finish('r1', { captures: [] }, new Date())).toBe(
        false,
      );
      expect(await store.get('r1')).toMatchObject({
        status: 'failed',
        ...failure,
      });
    });

    it('ends a stale request succeeded, with its captures, where interrupted makes no failure of it', async () => {
      const { store, accept, silence } = await setUp();
      await accept('r1');
      const capture = {
        id: 'c1',
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: 'web-01',
        imageId: 'sha256:c1',
        sizeBytes: 1000,
        checksum: 'sha256:c1',
        adaptations: [],
        durationMs: 5,
        createdAt: new Date().toISOString(),
      };
      expect(await store.progress('r1', [capture])).toBe(true);
      await silence('r1', 61_000);
      expect(
        await store.claimStale('r1', 60_000, () => undefined, new Date()),
      ).toBe(true);
      const ended = await store.get('r1');
      expect(ended).toMatchObject({
        status: 'succeeded',
        captures: [capture],
      });
      expect(ended).not.toHaveProperty('error');
    });

    it('records the progress line of the capture under way with its numbers, reads a line recorded without them, and takes it away', async () => {
      const { store, accept } = await setUp();
      await accept('r1');
      const line = {
        machineRef: 'resource:default/web-01',
        message: 'Saving the image: 600.0 MiB of 1.0 GiB (58%) at 110.0 MiB/s',
        at: new Date().toISOString(),
        what: 'the image',
        doneBytes: 600 * 1024 * 1024,
        totalBytes: 1024 * 1024 * 1024,
        elapsedMs: 5_454.25,
      };
      expect(await store.progressLine('r1', line)).toBe(true);
      expect((await store.get('r1'))!.progress).toEqual(line);

      // A line recorded before the numbers were kept: its words only.
      const { what, doneBytes, totalBytes, elapsedMs, ...words } = line;
      expect(await store.progressLine('r1', words)).toBe(true);
      expect((await store.get('r1'))!.progress).toStrictEqual(words);

      expect(await store.progressLine('r1')).toBe(true);
      expect(await store.get('r1')).not.toHaveProperty('progress');
    });

    it('prunes the requests not heard from for the retention, ended or not, and keeps the others', async () => {
      const { store, accept, silence } = await setUp();
      for (const id of ['old-ended', 'old-orphan', 'recent']) await accept(id);
      await store.finish('old-ended', { captures: [] }, new Date());
      await silence('old-ended', 25 * 3_600_000);
      await silence('old-orphan', 25 * 3_600_000);
      expect(await store.prune(24 * 3_600_000)).toBe(2);
      expect(await store.get('old-ended')).toBeUndefined();
      expect(await store.get('old-orphan')).toBeUndefined();
      expect(await store.get('recent')).toMatchObject({ status: 'capturing' });
      expect(await store.get('no\0such')).toBeUndefined();
    });
  },
);
