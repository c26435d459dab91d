import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { NETWORK_REMOVAL, removeLab } from './labTeardown';

const RUN = 'run-1';
const NETWORK = { Id: 'net-1', Name: `rr-${RUN}-prod` };
type Endpoints = Record<string, { Name: string }>;

/**
 * An engine holding one lab network with the run's container `web` (id c-web) on it, and
 * `others` (endpoints by key) besides. Removing `web` leaves its endpoint when `stale` (until a
 * forced disconnect by name, as a loaded engine does), for good when `stuck`.
 */
function engine({
  stale = false,
  stuck = false,
  others = {} as Endpoints,
} = {}) {
  const calls = { removals: 0, disconnects: [] as string[] };
  let endpoints: Endpoints = { 'c-web': { Name: 'web' }, ...others };
  const refused = (status: number, message: string) =>
    Object.assign(new Error(message), { statusCode: status });
  const docker = {
    listContainers: async () => [
      { Id: 'c-web', Names: ['/web'], Labels: { [RUN_ID_LABEL]: RUN } },
    ],
    listImages: async () => [],
    getContainer: () => ({
      remove: async () => {
        if (!stale && !stuck) delete endpoints['c-web'];
      },
    }),
    listNetworks: async () => [NETWORK],
    listVolumes: async () => ({ Volumes: [] }),
    getNetwork: (id: string) => ({
      inspect: async () => ({ Id: id, Containers: endpoints }),
      disconnect: async ({
        Container,
        Force,
      }: {
        Container: string;
        Force?: boolean;
      }) => {
        calls.disconnects.push(Container);
        const key = Object.keys(endpoints).find(
          k => endpoints[k].Name === Container || k === Container,
        );
        if (!key || !Force)
          throw refused(
            404,
            `container ${Container} is not connected to the network`,
          );
        if (!stuck)
          endpoints = Object.fromEntries(
            Object.entries(endpoints).filter(([k]) => k !== key),
          );
      },
      remove: async () => {
        calls.removals++;
        if (Object.keys(endpoints).length > 0) {
          throw refused(
            403,
            `error while removing network: network ${NETWORK.Name} id ${id} has active endpoints`,
          );
        }
      },
    }),
  };
  return { docker: docker as unknown as Docker, calls };
}

describe('removeLab', () => {
  afterEach(() => vi.useRealTimers());

  it('removes the lab network at once when nothing is left on it', async () => {
    const { docker, calls } = engine();
    await expect(removeLab(docker, RUN)).resolves.toEqual({
      machines: ['web'],
      networks: [NETWORK.Name],
    });
    expect(calls).toEqual({ removals: 1, disconnects: [] });
  });

  it("forces off what is not the run's first: a container connected by hand, a gone container's endpoint", async () => {
    const { docker, calls } = engine({
      others: { 'c-debug': { Name: 'debug' }, 'ep-9f2c': { Name: 'old-web' } },
    });
    await expect(removeLab(docker, RUN)).resolves.toEqual({
      machines: ['web'],
      networks: [NETWORK.Name],
    });
    expect(calls).toEqual({ removals: 1, disconnects: ['debug', 'old-web'] });
  });

  it("forces off the run's own endpoint that outlived its container, once a first wait did not free it", async () => {
    vi.useFakeTimers();
    const { docker, calls } = engine({ stale: true });
    const removal = removeLab(docker, RUN);
    await vi.runAllTimersAsync();
    await expect(removal).resolves.toEqual({
      machines: ['web'],
      networks: [NETWORK.Name],
    });
    expect(calls).toEqual({ removals: 3, disconnects: ['web'] });
  });

  it('gives up after its bound, naming the network and the endpoint still on it', async () => {
    vi.useFakeTimers();
    const { docker, calls } = engine({ stuck: true });
    const started = Date.now();
    const removal = removeLab(docker, RUN);
    // It fails while the timers run: handled now, not to be reported unhandled.
    removal.catch(() => {});
    await vi.runAllTimersAsync();
    await expect(removal).rejects.toThrow(
      `network ${NETWORK.Name} still has endpoints web after 30 s: error while removing network: network ${NETWORK.Name} id ${NETWORK.Id} has active endpoints`,
    );
    expect(Date.now() - started).toBeLessThanOrEqual(NETWORK_REMOVAL.timeoutMs);
    expect(Date.now() - started).toBeGreaterThan(
      NETWORK_REMOVAL.timeoutMs - NETWORK_REMOVAL.maxDelayMs,
    );
    expect(calls.removals).toBeGreaterThan(10);
  });
});
