/**
 * `recovery plan` and `recovery show-run` against the real recovery backend plugin, of a service
 * with a job machine (an init that runs to completion, annotated as a job): the plan says it is
 * one, and a run's record says it completed rather than that it is ready.
 */
import {
  mockCredentials,
  startTestBackend,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { MachineHandle } from '@backstage-recovery/plugin-recovery-node';
import { recoveryPlugin } from '../../../plugins/recovery-backend/src/plugin';
import { FakeCaptureSource } from '../../../plugins/recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../../plugins/recovery-backend/src/testing/FakeHost';
import {
  componentEntity,
  machineEntity,
} from '../../../plugins/recovery-backend/src/testing/entities';
import { providersModule } from '../../../plugins/recovery-backend/src/testing/providers';
import { runCli } from './testing/runCli';

const P = 'recovery.backstage-recovery.io/';
const INIT = 'resource:default/init-01';
const SHOP = 'resource:default/shop-01';

const machine = (name: string, annotations: Record<string, string> = {}) => {
  const entity = machineEntity(name);
  return {
    ...entity,
    metadata: {
      ...entity.metadata,
      annotations: { ...entity.metadata.annotations, ...annotations },
    },
    relations: [{ type: 'dependencyOf', targetRef: 'component:default/shop' }],
  } as Entity;
};

/** A host on which init-01 does its work and exits with code 0 as soon as it starts. */
class InitExitsHost extends FakeHost {
  async startMachine(machineHandle: MachineHandle) {
    await super.startMachine(machineHandle);
    if (machineHandle.machineRef === INIT) this.exit(machineHandle.id, 0);
  }
}

describe('recovery plan and show-run, a service with a job machine', () => {
  let url: string;
  const source = new FakeCaptureSource();

  beforeAll(async () => {
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [source],
          hypervisorHosts: [new InitExitsHost({})],
        }),
        catalogServiceMock.factory({
          entities: [
            machine('init-01', { [`${P}job`]: 'true' }),
            machine('shop-01'),
            componentEntity('shop', [INIT, SHOP]),
          ],
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it('says which machine is a job in the plan, and that it completed in the run', async () => {
    const token = mockCredentials.service.token();
    const cli = (...argv: string[]) =>
      runCli([...argv, '--url', url, '--token', token]);

    const plan = await cli('plan', 'shop');
    expect(plan).toMatchObject({ status: 0, stderr: '' });
    const lines = plan.stdout.split('\n');
    expect(lines).toContainEqual(
      `  ${INIT}  job: ready once it exits 0; runs component:default/shop`,
    );
    expect(lines).toContainEqual(`  ${SHOP}  runs component:default/shop`);

    source.machineStates.set('init-01', {
      status: 'exited',
      exitCode: 0,
      since: '2026-12-06T00:59:00Z',
    });
    expect((await cli('capture', 'shop')).status).toBe(0);
    const run = await cli('run', 'shop', '--interval', '0.1');
    expect(run.status).toBe(0);
    const runId = /^Run (\S+) of /.exec(run.stdout)![1];

    const record = await cli('show-run', runId);
    expect(record.status).toBe(0);
    const rows = record.stdout
      .split('\n')
      .filter(l => /^\d+ +resource:/.test(l))
      .map(l => l.split(/ {2,}/));
    expect(rows.map(([, ref, phase]) => [ref, phase])).toEqual([
      [INIT, 'completed'],
      [SHOP, 'ready'],
    ]);
    expect(rows[0].at(-1)).toBe('job: ready once it exits 0');
    expect(rows[1].join(' ')).not.toContain('job');
  });
});
