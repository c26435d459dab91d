/**
 * `recovery capture` against the real recovery backend plugin, where a machine of the plan cannot
 * be captured: what was captured before it is kept, and said.
 */
import {
  mockCredentials,
  startTestBackend,
} from '@backstage/backend-test-utils';
import {
  CaptureStoreError,
  engineError,
  type MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from '../../../plugins/recovery-backend/src/plugin';
import {
  FakeCaptureSource,
  GatedCaptureSource,
} from '../../../plugins/recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../../plugins/recovery-backend/src/testing/FakeHost';
import {
  componentEntity,
  machineEntity,
} from '../../../plugins/recovery-backend/src/testing/entities';
import { providersModule } from '../../../plugins/recovery-backend/src/testing/providers';
import { main } from './main';
import { runCli } from './testing/runCli';

const P = 'recovery.backstage-recovery.io/';
const machine = (name: string, engine = 'primary', of = 'pay'): Entity => {
  const entity = machineEntity(name);
  entity.metadata.annotations = {
    ...entity.metadata.annotations,
    [`${P}engine`]: engine,
  };
  return {
    ...entity,
    relations: [{ type: 'dependencyOf', targetRef: `component:default/${of}` }],
  };
};

const cli = (...argv: string[]) => runCli(argv);

/** An engine that fails every capture, as the Docker module says it: `answered` with an error (502), or `unreachable` (503). */
class FailingEngine extends FakeCaptureSource {
  constructor(
    engineId: string,
    private readonly failure: 'answered' | 'unreachable',
  ) {
    super(engineId);
  }

  async capture(m: MachineLocator): Promise<never> {
    const cause =
      this.failure === 'answered'
        ? 'answered HTTP 500: commit failed'
        : 'is unreachable at 10.0.0.9:2376 (ECONNREFUSED)';
    throw engineError(
      `capture of ${m.machineRef} (container ${m.container}) failed while committing the image: Docker engine '${this.engineId}' ${cause}`,
      this.engineId,
      this.failure,
    );
  }
}

/** An engine whose captures the capture store cannot take, as the Docker module says it (507). */
class FullStore extends FakeCaptureSource {
  async capture(m: MachineLocator): Promise<never> {
    throw new CaptureStoreError(
      `capture of ${m.machineRef} could not write to the capture store /captures (ENOSPC: no space left on device, write): unpaused, nothing kept`,
      '/captures',
    );
  }
}

/** Another capture under way of the machine on engine `held`. */
const held = new GatedCaptureSource('held');
held.gated.add('shop-02');

describe('recovery capture, a machine failing', () => {
  let url: string;

  beforeAll(async () => {
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [
            new FakeCaptureSource(),
            held,
            new FailingEngine('broken', 'answered'),
            new FailingEngine('down', 'unreachable'),
            new FullStore('full'),
          ],
          hypervisorHosts: [new FakeHost({})],
        }),
        catalogServiceMock.factory({
          entities: [
            machine('pay-01'),
            // On an engine no capture source serves: its capture fails.
            machine('pay-02', 'gone'),
            componentEntity('pay', [
              'resource:default/pay-01',
              'resource:default/pay-02',
            ]),
            componentEntity('lonely', []),
            machine('shop-01', 'primary', 'shop'),
            machine('shop-02', 'held', 'shop'),
            machine('shop-03', 'primary', 'shop'),
            componentEntity('shop', [
              'resource:default/shop-01',
              'resource:default/shop-02',
              'resource:default/shop-03',
            ]),
            machine('cart-01', 'primary', 'cart'),
            machine('cart-02', 'broken', 'cart'),
            componentEntity('cart', [
              'resource:default/cart-01',
              'resource:default/cart-02',
            ]),
            machine('mall-01', 'broken', 'mall'),
            machine('mall-02', 'primary', 'mall'),
            machine('mall-03', 'down', 'mall'),
            componentEntity('mall', [
              'resource:default/mall-01',
              'resource:default/mall-02',
              'resource:default/mall-03',
            ]),
            machine('depot-01', 'full', 'depot'),
            machine('depot-02', 'primary', 'depot'),
            machine('depot-03', 'full', 'depot'),
            componentEntity('depot', [
              'resource:default/depot-01',
              'resource:default/depot-02',
              'resource:default/depot-03',
            ]),
            machine('till-01', 'down', 'till'),
            componentEntity('till', ['resource:default/till-01']),
          ],
        }),
      ],
    });
    url = `http://127.0.0.1:${server.port()}`;
  });

  it('prints, as JSON too, the captures taken before the machine that failed, and exits 3', async () => {
    const argv = [
      'capture',
      'pay',
      '--url',
      url,
      '--token',
      mockCredentials.service.token(),
    ];
    const text = await cli(...argv);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(
      /^resource:default\/pay-01 {2}capture \S+ .*\(1 of 2\)\n$/,
    );
    expect(text.stderr).toContain('capture of resource:default/pay-02 failed');

    const asJson = await cli(...argv, '--json');
    expect(asJson.status).toBe(3);
    expect(
      JSON.parse(asJson.stdout).items.map(
        (c: { machineRef: string }) => c.machineRef,
      ),
    ).toEqual(['resource:default/pay-01']);
    expect(asJson.stderr).toContain(
      'capture of resource:default/pay-02 failed',
    );
  });

  it('waits for the machine another request is capturing, says so, and counts that capture as its own', async () => {
    const token = mockCredentials.service.token();
    // The capture under way, as the scheduled capture or a portal click would start it.
    const other = fetch(`${url}/api/recovery/captures`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ entityRef: 'resource:default/shop-02' }),
    });
    await vi.waitFor(() => expect(held.waiting.has('shop-02')).toBe(true));
    let stdout = '';
    let stderr = '';
    const status = main(['capture', 'shop', '--url', url, '--token', token], {
      stdout: t => void (stdout += t),
      stderr: t => void (stderr += t),
    });
    // Let the other capture end only once this one waits for it.
    await vi.waitFor(
      () =>
        expect(stdout).toMatch(
          /resource:default\/shop-02: Waiting for capture request \S+, which is capturing resource:default\/shop-02/,
        ),
      { timeout: 20_000, interval: 50 },
    );
    held.letThrough();
    expect({ status: await status, stderr }).toEqual({ status: 0, stderr: '' });
    const accepted = (await (await other).json()) as { requestId: string };
    const request = (await (
      await fetch(
        `${url}/api/recovery/captures/requests/${accepted.requestId}`,
        {
          headers: { authorization: `Bearer ${token}` },
        },
      )
    ).json()) as { status: string; captures: Array<{ id: string }> };
    expect(request.status).toBe('succeeded');
    const captured = stdout
      .split('\n')
      .filter(line => /^resource:default\/shop-0\d {2}capture /.test(line));
    expect(captured.map(line => line.split(' ')[0])).toEqual([
      'resource:default/shop-01',
      'resource:default/shop-02',
      'resource:default/shop-03',
    ]);
    // shop-02's is the other request's capture, not a second one.
    expect(captured[1]).toContain(`capture ${request.captures[0].id}`);
  });

  it("says an engine's failure (502, 503) as the backend words it, in a line, and exits 3: not a crash, nor a capture under way", async () => {
    const token = mockCredentials.service.token();
    const broken = await cli('capture', 'cart', '--url', url, '--token', token);
    expect(broken.status).toBe(3);
    expect(broken.stdout).toMatch(
      /^resource:default\/cart-01 {2}capture \S+ .*\(1 of 2\)\n$/,
    );
    expect(broken.stderr).toBe(
      "recovery: capture of resource:default/cart-02 failed; caused by EngineFailedError: capture of resource:default/cart-02 (container cart-02) failed while committing the image: Docker engine 'broken' answered HTTP 500: commit failed (502)\n",
    );
    const down = await cli('capture', 'till', '--url', url, '--token', token);
    expect(down).toEqual({
      status: 3,
      stdout: '',
      stderr:
        "recovery: capture of resource:default/till-01 failed; caused by ServiceUnavailableError: capture of resource:default/till-01 (container till-01) failed while committing the image: Docker engine 'down' is unreachable at 10.0.0.9:2376 (ECONNREFUSED) (503)\n",
    });
  });

  it('goes on past machines whose capture fails, then names each failure and exits 3', async () => {
    const token = mockCredentials.service.token();
    const text = await cli('capture', 'mall', '--url', url, '--token', token);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(
      /^resource:default\/mall-02 {2}capture \S+ .*\(2 of 3\)\n$/,
    );
    expect(text.stderr).toBe(
      'recovery: 2 machines not captured: ' +
        "capture of resource:default/mall-01 failed; caused by EngineFailedError: capture of resource:default/mall-01 (container mall-01) failed while committing the image: Docker engine 'broken' answered HTTP 500: commit failed; " +
        "capture of resource:default/mall-03 failed; caused by ServiceUnavailableError: capture of resource:default/mall-03 (container mall-03) failed while committing the image: Docker engine 'down' is unreachable at 10.0.0.9:2376 (ECONNREFUSED) " +
        '(captured, and kept: resource:default/mall-02)\n',
    );
    const asJson = await cli(
      'capture',
      'mall',
      '--json',
      '--url',
      url,
      '--token',
      token,
    );
    expect(asJson.status).toBe(3);
    expect(
      JSON.parse(asJson.stdout).items.map(
        (c: { machineRef: string }) => c.machineRef,
      ),
    ).toEqual(['resource:default/mall-02']);
  });

  it('says, once for all, that the capture store is to make room in where every machine not captured failed on it', async () => {
    const token = mockCredentials.service.token();
    const text = await cli('capture', 'depot', '--url', url, '--token', token);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(
      /^resource:default\/depot-02 {2}capture \S+ .*\(2 of 3\)\n$/,
    );
    expect(text.stderr).toBe(
      'recovery: 2 machines not captured: ' +
        'capture of resource:default/depot-01 failed; caused by CaptureStoreError: capture of resource:default/depot-01 could not write to the capture store /captures (ENOSPC: no space left on device, write): unpaused, nothing kept; ' +
        'capture of resource:default/depot-03 failed; caused by CaptureStoreError: capture of resource:default/depot-03 could not write to the capture store /captures (ENOSPC: no space left on device, write): unpaused, nothing kept ' +
        '(captured, and kept: resource:default/depot-02): ' +
        'the capture store could not take any of the 2 captures (full, over its quota, or not writable): make room in it (or mend it), then capture again\n',
    );
  });

  it('refuses, exit 3, to capture an entity that needs no machines, rather than succeed having captured nothing', async () => {
    for (const json of [[], ['--json']]) {
      const none = await cli(
        'capture',
        'lonely',
        ...json,
        '--url',
        url,
        '--token',
        mockCredentials.service.token(),
      );
      expect(none).toEqual({
        status: 3,
        stdout: '',
        stderr:
          'recovery: component:default/lonely runs on no machine, so there is nothing to capture: add dependsOn relations to machine Resources\n',
      });
    }
  });
});
