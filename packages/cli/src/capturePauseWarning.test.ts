/**
 * `recovery capture` against the real recovery backend plugin, where a capture's pause took more
 * than half its limit: the capture is kept, and its line and its JSON carry the warning.
 */
import {
  mockCredentials,
  startTestBackend,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from '../../../plugins/recovery-backend/src/plugin';
import { FakeCaptureSource } from '../../../plugins/recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../../plugins/recovery-backend/src/testing/FakeHost';
import {
  componentEntity,
  machineEntity,
} from '../../../plugins/recovery-backend/src/testing/entities';
import { providersModule } from '../../../plugins/recovery-backend/src/testing/providers';
import { runCli } from './testing/runCli';

const machine = (name: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: 'component:default/files' }],
});

const WARNING =
  'pause 3m 10s of the 5m limit (recovery.docker.maxCapturePause): the volumes (9.1 GiB) are copied while it is paused, growing it ~1 s per 49.0 MiB; past ~14.4 GiB of volumes no capture of it fits, and the next capture may be refused';

describe('recovery capture, a pause near its limit', () => {
  let url: string;
  const source = new FakeCaptureSource();
  source.pauseWarnings.set('files-02', WARNING);

  beforeAll(async () => {
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [source],
          hypervisorHosts: [new FakeHost({})],
        }),
        catalogServiceMock.factory({
          entities: [
            machine('files-01'),
            machine('files-02'),
            componentEntity('files', [
              'resource:default/files-01',
              'resource:default/files-02',
            ]),
          ],
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it("says the warning on the machine's line, exits 0; the API keeps it with the capture", async () => {
    const token = mockCredentials.service.token();
    const text = await cli('capture', 'files', '--url', url, '--token', token);
    expect(text.status).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/\(1 of 2\)$/);
    expect(lines[1]).toMatch(/^resource:default\/files-02 {2}capture \S+ /);
    expect(lines[1].endsWith(`(2 of 2)  WARNING ${WARNING}`)).toBe(true);

    const asJson = await cli(
      'capture',
      'files',
      '--json',
      '--url',
      url,
      '--token',
      token,
    );
    expect(
      JSON.parse(asJson.stdout).items.map(
        (c: { pauseWarning?: string }) => c.pauseWarning,
      ),
    ).toEqual([undefined, WARNING]);
    // Read back from the capture store, as the portal reads it.
    const listed = await fetch(
      `${url}/api/recovery/captures?machineRef=${encodeURIComponent('resource:default/files-02')}`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(listed.status).toBe(200);
    const body = await listed.json();
    expect(body.items[0].pauseWarning).toBe(WARNING);
  });
});

const cli = (...argv: string[]) => runCli(argv);
