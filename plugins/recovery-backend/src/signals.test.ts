import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { eventsServiceFactory } from '@backstage/plugin-events-node';
import {
  type RecoveryRun,
  recoverySignalChannel,
} from '@backstage-recovery/plugin-recovery-common';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { recoveryPlugin } from './plugin';
import { SIGNAL_COALESCE_MS } from './service/RecoverySignals';
import { captureAndPoll } from './testing/captureRequests';
import { FakeCaptureSource } from './testing/FakeCaptureSource';
import { FakeHost } from './testing/FakeHost';
import { providersModule } from './testing/providers';

const P = 'recovery.backstage-recovery.io/';
const machine = (name: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: {
    name,
    namespace: 'default',
    annotations: { [`${P}engine`]: 'primary', [`${P}container`]: name },
  },
  spec: { type: 'machine' },
});
const entities: Entity[] = [
  machine('infra-01'),
  // Two waves, booted one after the other.
  {
    ...machine('data-01'),
    relations: [{ type: 'dependsOn', targetRef: 'resource:default/infra-01' }],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'database', namespace: 'default' },
    spec: { type: 'service' },
    relations: [
      { type: 'dependsOn', targetRef: 'resource:default/infra-01' },
      { type: 'dependsOn', targetRef: 'resource:default/data-01' },
    ],
  },
];

/** A host whose restores take a while, as a real one's do: the run changes over a second or so. */
class SlowHost extends FakeHost {
  async restoreMachine(...args: Parameters<FakeHost['restoreMachine']>) {
    await new Promise(r => setTimeout(r, 400));
    return super.restoreMachine(...args);
  }
}

/** A message a websocket subscriber received, and when. */
interface Received {
  at: number;
  channel: string;
  message: Record<string, unknown>;
}

/**
 * A subscriber of the signals backend over its websocket, as the portal's SignalClient is: opened
 * without a token (the backend takes it for a guest), subscribed to `channels`. The signals
 * backend hooks the server's upgrades on the first request for one that reaches its router, which
 * is left unanswered: as the portal's client, it gives up on it after a second and connects again.
 */
async function subscribe(port: number, channels: string[]) {
  const open = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/api/signals`);
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error('signals websocket not opened within 1 s'));
      }, 1000);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(socket);
      };
      socket.onerror = () => {
        clearTimeout(timer);
        reject(new Error('signals websocket refused'));
      };
    });
  const socket = await open().catch(open);
  const received: Received[] = [];
  socket.onmessage = event => {
    const { channel, message } = JSON.parse(String(event.data));
    received.push({ at: Date.now(), channel, message });
  };
  for (const channel of channels)
    socket.send(JSON.stringify({ action: 'subscribe', channel }));
  return { received, close: () => socket.close() };
}

describe('recovery signals through the signals backend', () => {
  it("pushes to a websocket subscriber of an entity's channel each change of its capture request and run, coalesced, naming only which", async () => {
    const backend = await startTestBackend({
      features: [
        recoveryPlugin,
        import('@backstage/plugin-signals-backend'),
        // The events service signals go through, one for the whole backend (the mock's is per plugin).
        eventsServiceFactory,
        providersModule({
          captureSources: [new FakeCaptureSource()],
          hypervisorHosts: [
            new SlowHost({
              'resource:default/data-01': ['resource:default/infra-01'],
            }),
          ],
        }),
        catalogServiceMock.factory({ entities }),
        mockServices.rootConfig.factory({
          data: {
            recovery: {
              runs: {
                machineReadyTimeout: '2s',
                probeInterval: '100ms',
                minReadyTime: '100ms',
              },
            },
          },
        }),
      ],
    });
    const { server } = backend;
    const { port } = server.address() as AddressInfo;
    const database = recoverySignalChannel('component:default/database');
    const subscriber = await subscribe(port, [
      database,
      recoverySignalChannel('resource:default/infra-01'),
    ]);
    try {
      const captured = await captureAndPoll(server, {
        entityRef: 'component:default/database',
      });
      expect(captured.status).toBe('succeeded');

      const started = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: 'component:default/database' });
      expect(started.status).toBe(202);
      let run: RecoveryRun = started.body;
      for (let i = 0; i < 200 && !run.finishedAt; i++) {
        await new Promise(r => setTimeout(r, 50));
        run = (await request(server).get(`/api/recovery/runs/${run.id}`)).body;
      }
      expect(run.status).toBe('succeeded');
      // The run's own times, as recorded: no measure of the test's, which load would shift.
      const createdAt = Date.parse(run.createdAt);
      const finishedAt = Date.parse(run.finishedAt!);
      const { received } = subscriber;
      const ofRun = () =>
        received.filter(
          r => r.message.kind === 'run' && r.message.id === run.id,
        );
      // The last changes' signal, sent once they have been gathered: told once it ended.
      await vi.waitFor(
        () => expect(ofRun().at(-1)?.at).toBeGreaterThanOrEqual(finishedAt),
        { timeout: 10_000 },
      );

      // Only the entity's channel: nothing of the machines' (no run nor request of theirs).
      expect(new Set(received.map(r => r.channel))).toEqual(
        new Set([database]),
      );
      // Which record changed, nothing of it: the caller fetches it through the API.
      for (const { message } of received)
        expect(Object.keys(message).sort()).toEqual(['id', 'kind']);
      expect(received.map(r => r.message)).toContainEqual({
        kind: 'captureRequest',
        id: captured.requestId,
      });
      const told = ofRun();
      // Told as it went (its machines restored one after the other), not only once it ended.
      expect(told.length).toBeGreaterThanOrEqual(3);
      expect(told[0].at).toBeLessThan(finishedAt);
      // Coalesced: the run changed at each of its timeline lines (and machine phases, and
      // status), and pushed what changed within SIGNAL_COALESCE_MS once: the first push no
      // sooner than that after the run was created (a timer may fire a millisecond early).
      expect(told.length).toBeLessThan(run.steps.length);
      expect(told[0].at).toBeGreaterThanOrEqual(
        createdAt + SIGNAL_COALESCE_MS - 2,
      );
    } finally {
      subscriber.close();
      await backend.stop();
    }
  });
});
