/**
 * `recovery capture` against the real recovery backend plugin, where a machine's restart policy
 * restarted it over and over since its previous capture, though it ran when captured: its line
 * warns of the crash loop, and readiness names it.
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
  relations: [{ type: 'dependencyOf', targetRef: 'component:default/shop' }],
});

describe('recovery capture, a machine restarted over and over since its previous capture', () => {
  let url: string;
  const source = new FakeCaptureSource();
  const running = (restartCount: number) => ({
    status: 'running' as const,
    restartCount,
    since: '2026-12-06T00:59:00Z',
  });

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
            machine('shop-01'),
            componentEntity('shop', ['resource:default/shop-01']),
          ],
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it("says on the machine's line how many times it restarted since, and readiness names it", async () => {
    const token = mockCredentials.service.token();
    const capture = () =>
      cli('capture', 'shop', '--url', url, '--token', token);
    source.machineStates.set('shop-01', running(1));
    const first = await capture();
    expect(first.status).toBe(0);
    expect(first.stdout).not.toMatch(/WARNING/);
    const firstId = /capture (\S+) /.exec(first.stdout)![1];

    source.machineStates.set('shop-01', running(13));
    const second = await capture();
    expect(second.status).toBe(0);
    expect(second.stdout.trimEnd()).toMatch(
      new RegExp(
        `^resource:default/shop-01 {2}capture \\S+ .*\\(1 of 1\\) {2}WARNING restarted 12 times by its restart policy since its previous capture \\(${firstId} of ${UTC_TIME}\\), running when captured: a crash loop, whose capture may hold the machine between two crashes$`,
      ),
    );

    const readiness = await cli(
      'readiness',
      'shop',
      '--json',
      '--url',
      url,
      '--token',
      token,
    );
    const { reasons, status } = JSON.parse(readiness.stdout);
    expect(status).not.toBe('ready');
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^Latest capture of resource:default\/shop-01 \(capture \S+ of \S+\): the machine was restarted 12 times by its restart policy since its previous capture /,
        ),
      ]),
    );
    // In words, the backend's ISO times read as the CLI writes its own (and the portal the same).
    const words = await cli(
      'readiness',
      'shop',
      '--url',
      url,
      '--token',
      token,
    );
    expect(words.stdout).toMatch(
      new RegExp(
        `\\n {2}- Latest capture of resource:default/shop-01 \\(capture \\S+ of ${UTC_TIME}\\): the machine was restarted 12 times by its restart policy since its previous capture \\(${firstId} of ${UTC_TIME}\\)`,
      ),
    );
    expect(words.stdout).not.toMatch(/\dT\d/);
  });
});

const cli = (...argv: string[]) => runCli(argv);
/** A time as the CLI writes one, `2026-12-07 02:14:13 UTC`, as a pattern. */
const UTC_TIME = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC';
