import { TestDatabases } from '@backstage/backend-test-utils';
import { CaptureStore } from './CaptureStore';
import { migrate, migrationsDirectory } from './migrations';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const NAME = '20261221000000_capture_size_and_pause_warning.js';

describe.each(databases.eachSupportedId())(
  'capture sizes with their volumes on %s',
  databaseId => {
    it("adds, to captures stored before, their volumes' bytes, and takes them back going down", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      await knex.migrate.down({ directory, name: NAME });
      expect(
        await knex.schema.hasColumn('recovery_captures', 'pause_warning'),
      ).toBe(false);
      // Sized by its image only, as captures were: 3.4 MiB beside a 400 MB volume.
      const row = (id: string, runtime: object) => ({
        id,
        machine_ref: 'resource:default/files-01',
        engine: 'primary',
        container: 'files-01',
        image_id: 'sha256:1',
        size_bytes: 3_600_000,
        checksum: 'sha256:1',
        artifact: `${id}.tar`,
        runtime: JSON.stringify(runtime),
        adaptations: '[]',
        duration_ms: 12_494,
        created_at: new Date('2026-12-20T00:00:00.000Z'),
      });
      const volume = (sizeBytes: number) => ({
        destination: '/data',
        artifact: 'v.tar',
        checksum: 'sha256:2',
        sizeBytes,
      });
      await knex('recovery_captures').insert([
        row('with', {
          hostname: 'files-01',
          volumes: [volume(421_000_000), volume(5_000)],
        }),
        row('without', { hostname: 'files-01' }),
      ]);
      await migrate(knex);
      const sizes = async () =>
        Object.fromEntries(
          (await knex('recovery_captures').select('id', 'size_bytes')).map(
            r => [r.id, Number(r.size_bytes)],
          ),
        );
      expect(await sizes()).toEqual({
        with: 3_600_000 + 421_005_000,
        without: 3_600_000,
      });
      const [listed] = await new CaptureStore(knex).listCaptures(
        'resource:default/files-01',
        1,
      );
      expect(listed.pauseWarning).toBeUndefined();
      await knex.migrate.down({ directory, name: NAME });
      expect(await sizes()).toEqual({ with: 3_600_000, without: 3_600_000 });
    });
  },
);
