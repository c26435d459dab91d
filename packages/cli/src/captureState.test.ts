/**
 * `recovery capture` against the real recovery backend plugin, where a machine was not serving
 * when captured: its capture is kept, and its line says the state and what it means.
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

describe('recovery capture, a machine not serving', () => {
  let url: string;
  const source = new FakeCaptureSource();
  source.machineStates.set('shop-01', { status: 'running', health: 'healthy' });
  source.machineStates.set('shop-02', {
    status: 'exited',
    exitCode: 137,
    since: '2026-12-06T00:59:00Z',
  });
  source.machineStates.set('shop-03', {
    status: 'running',
    health: 'unhealthy',
    failingStreak: 3,
    healthOutput: 'wget: server returned error: HTTP/1.1 503',
  });
  source.machineStates.set('shop-04', {
    status: 'running',
    health: 'starting',
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
            ...['shop-01', 'shop-02', 'shop-03', 'shop-04'].map(machine),
            componentEntity('shop', [
              'resource:default/shop-01',
              'resource:default/shop-02',
              'resource:default/shop-03',
              'resource:default/shop-04',
            ]),
          ],
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it("keeps every capture, says on each machine's line the state of one that was not serving, exits 0; JSON carries each state", async () => {
    const token = mockCredentials.service.token();
    const text = await cli('capture', 'shop', '--url', url, '--token', token);
    expect(text.status).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^resource:default\/shop-01 {2}capture \S+ .*\(1 of 4\)$/,
    );
    expect(lines[1]).toMatch(
      /^resource:default\/shop-02 {2}capture \S+ .*\(2 of 4\) {2}NOT SERVING when captured: exited \(code 137, since 2026-12-06T00:59:00Z\); kept, but readiness puts what it serves at risk until it is captured running and not unhealthy$/,
    );
    expect(lines[2]).toMatch(
      /\(3 of 4\) {2}NOT SERVING when captured: running but unhealthy \(3 failing health checks in a row; the last said: "wget: server returned error: HTTP\/1.1 503"\); kept, /,
    );
    expect(lines[3]).toMatch(
      /\(4 of 4\) {2}when captured: running, its health check not passed yet$/,
    );

    const asJson = await cli(
      'capture',
      'shop',
      '--json',
      '--url',
      url,
      '--token',
      token,
    );
    expect(asJson.status).toBe(0);
    expect(
      JSON.parse(asJson.stdout).items.map(
        (c: { machineState?: unknown }) => c.machineState,
      ),
    ).toEqual(
      ['shop-01', 'shop-02', 'shop-03', 'shop-04'].map(n =>
        source.machineStates.get(n),
      ),
    );

    // Readiness names the machine, its state and the capture's time.
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
          /^resource:default\/shop-02 was exited \(code 137, since 2026-12-06T00:59:00Z\) when captured at \S+: the capture holds a machine that was not serving; /,
        ),
        expect.stringMatching(
          /^resource:default\/shop-03 was running but unhealthy \(.*\) when captured at \S+: the capture holds a machine that was not serving; /,
        ),
      ]),
    );
    expect(reasons.some((r: string) => /shop-0[14] was/.test(r))).toBe(false);
  });
});

const cli = (...argv: string[]) => runCli(argv);
