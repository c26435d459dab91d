/**
 * `recovery cancel RUN` against the real recovery backend plugin (in a test backend, over HTTP on
 * a real port), its hypervisor host played by the project's fake.
 */
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
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

describe('recovery cancel', () => {
  let url: string;
  const token = mockCredentials.service.token();
  const as = (...argv: string[]) => [...argv, '--url', url, '--token', token];
  // The engine never says how web-01 is: a test recovery of web holds the host until cancelled.
  const host = new FakeHost({});
  host.inspectMachine = () => new Promise<never>(() => {});

  beforeAll(async () => {
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [new FakeCaptureSource()],
          hypervisorHosts: [host],
        }),
        catalogServiceMock.factory({
          entities: [
            {
              ...machineEntity('web-01'),
              relations: [
                { type: 'dependencyOf', targetRef: 'component:default/web' },
              ],
            },
            componentEntity('web', ['resource:default/web-01']),
          ],
        }),
        mockServices.rootConfig.factory({
          data: { recovery: { runs: { machineReadyTimeout: '10m' } } },
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it('cancels a running test recovery and follows it until its lab is gone: exit 0; a finished run is refused with 3', async () => {
    expect((await runCli(as('capture', 'web'))).status).toBe(0);
    const started = await runCli(as('run', 'web', '--detach', '--json'));
    const id: string = JSON.parse(started.stdout).id;
    await vi.waitFor(
      async () =>
        expect(
          JSON.parse((await runCli(as('show-run', id, '--json'))).stdout)
            .machines[0].phase,
        ).toBe('verifying'),
      { timeout: 10_000, interval: 50 },
    );

    const cancelled = await runCli(as('cancel', id, '--interval', '0.1'));
    expect(cancelled).toMatchObject({ status: 0, stderr: '' });
    const lines = cancelled.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `Cancelling run ${id} of component:default/web: it stops booting and tears its lab down (Ctrl-C stops following, not the cancel)`,
    );
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^Run ${id} of component:default/web interrupted: cancelled by external:test-service at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\. It reached no result$`,
      ),
    );
    expect(await host.listLabResources(id)).toEqual({
      machines: [],
      networks: [],
    });

    expect(await runCli(as('cancel', id))).toEqual({
      status: 3,
      stdout: '',
      stderr: `recovery: Run ${id} has already finished (interrupted): there is nothing to cancel (409)\n`,
    });
  });
});
