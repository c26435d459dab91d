/**
 * `recovery run --accept-cycles` against the real recovery backend plugin: a dependsOn cycle
 * between two systems' services refuses the run, naming the option; with it, the run goes ahead
 * and its timeline names the dependency it did not wait for.
 */
import {
  mockCredentials,
  mockServices,
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

const WEB = 'component:default/web';
const DNS = 'component:default/dns';
const WALK = 'component:default/walk-writer';
const machine = (name: string, dependent: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: dependent }],
});
const service = (name: string, system: string, dependsOn: string[]): Entity => {
  const entity = componentEntity(name, dependsOn);
  return { ...entity, spec: { ...entity.spec, system } };
};

const cli = (...argv: string[]) => runCli(argv);

describe('recovery run --accept-cycles', () => {
  let url: string;
  const token = mockCredentials.service.token();
  const as = (...argv: string[]) => [...argv, '--url', url, '--token', token];

  beforeAll(async () => {
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [new FakeCaptureSource()],
          hypervisorHosts: [new FakeHost({})],
        }),
        catalogServiceMock.factory({
          entities: [
            service('web', 'demo-site', ['resource:default/web-01', DNS]),
            service('dns', 'demo-site', ['resource:default/infra-01', WALK]),
            service('walk-writer', 'walk-sys', [
              'resource:default/walk-01',
              DNS,
            ]),
            machine('web-01', WEB),
            machine('infra-01', DNS),
            machine('walk-01', WALK),
          ],
        }),
        mockServices.rootConfig.factory({
          data: {
            recovery: {
              runs: {
                machineReadyTimeout: '2s',
                probeInterval: '1s',
                minReadyTime: '100ms',
              },
            },
          },
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it('refuses a run over the cycle naming --accept-cycles, and runs with it, saying what it did not wait for', async () => {
    for (const m of ['web-01', 'infra-01', 'walk-01'])
      expect(
        (await cli(...as('capture', `resource:default/${m}`))).status,
      ).toBe(0);

    const refused = await cli(
      ...as('run', 'web', '--failover', '--interval', '0.1'),
    );
    expect(refused).toMatchObject({ status: 3, stdout: '' });
    expect(refused.stderr).toBe(
      `recovery: ${WEB} cannot be recovered as the catalog declares it: Dependency cycle between services: ${DNS} -> ${WALK} -> ${DNS}: ` +
        'no boot order satisfies it; remove one of these dependsOn. ' +
        `Fix the catalog, or run with --accept-cycles to recover all the same, booting ${WALK} without waiting for ${DNS}\n`,
    );

    const accepted = await cli(
      ...as('run', 'web', '--failover', '--accept-cycles', '--interval', '0.1'),
    );
    expect(accepted).toMatchObject({ status: 0, stderr: '' });
    expect(accepted.stdout).toContain(
      `Catalog problem: Booted ${WALK} without waiting for ${DNS}: dependency cycle between services: ${DNS} -> ${WALK} -> ${DNS}; ` +
        `of its dependencies that cross systems, ${WALK} -> ${DNS} (system:default/walk-sys to system:default/demo-site) is the last by ref (started accepting cycles)`,
    );
  });
});
