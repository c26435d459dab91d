import type Docker from 'dockerode';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import {
  ENGINE_ENDPOINT_COUNT_DEFECT,
  NETWORK_REMOVAL,
  removeLab,
} from './labTeardown';

const RUN = 'run-1';
const NETWORK = { Id: 'net-1', Name: `rr-${RUN}-prod` };
type Endpoints = Record<string, { Name: string }>;

/**
 * An engine holding one lab network with the run's container `web` (id c-web) on it, and
 * `others` (endpoints by key) besides. Removing `web` leaves its endpoint when `stale` (until a
 * forced disconnect by name, as a loaded engine does), for good when `stuck`. With `countOff`
 * the engine refuses the network's removal for good while listing no endpoint on it.
 * `containers` more of the run's machines (on the network too), each removal taking 10 ms.
 */
function engine({
  stale = false,
  stuck = false,
  countOff = false,
  containers = [] as string[],
  others = {} as Endpoints,
} = {}) {
  const calls = {
    removals: 0,
    disconnects: [] as string[],
    mostRemovingAtOnce: 0,
  };
  let removing = 0;
  let endpoints: Endpoints = { 'c-web': { Name: 'web' }, ...others };
  for (const name of containers) endpoints[`c-${name}`] = { Name: name };
  const refused = (status: number, message: string) =>
    Object.assign(new Error(message), { statusCode: status });
  const docker = {
    listContainers: async () =>
      ['web', ...containers].map(name => ({
        Id: `c-${name}`,
        Names: [`/${name}`],
        Labels: { [RUN_ID_LABEL]: RUN },
      })),
    listImages: async () => [],
    getContainer: (id: string) => ({
      remove: async () => {
        removing++;
        calls.mostRemovingAtOnce = Math.max(calls.mostRemovingAtOnce, removing);
        await new Promise(resolve => setTimeout(resolve, 10));
        removing--;
        if (id !== 'c-web' || (!stale && !stuck)) delete endpoints[id];
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
        if (countOff || Object.keys(endpoints).length > 0) {
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
    expect(calls).toEqual({
      removals: 1,
      disconnects: [],
      mostRemovingAtOnce: 1,
    });
  });

  it("forces off what is not the run's first: a container connected by hand, a gone container's endpoint", async () => {
    const { docker, calls } = engine({
      others: { 'c-debug': { Name: 'debug' }, 'ep-9f2c': { Name: 'old-web' } },
    });
    await expect(removeLab(docker, RUN)).resolves.toEqual({
      machines: ['web'],
      networks: [NETWORK.Name],
    });
    expect(calls).toEqual({
      removals: 1,
      disconnects: ['debug', 'old-web'],
      mostRemovingAtOnce: 1,
    });
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
    expect(calls).toEqual({
      removals: 3,
      disconnects: ['web'],
      mostRemovingAtOnce: 1,
    });
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

  it("removes the run's machines one at a time, where concurrent removals can leave the engine's endpoint count off", async () => {
    const { docker, calls } = engine({ containers: ['db', 'cache', 'dns'] });
    await expect(removeLab(docker, RUN)).resolves.toEqual({
      machines: ['cache', 'db', 'dns', 'web'],
      networks: [NETWORK.Name],
    });
    expect(calls.mostRemovingAtOnce).toBe(1);
  });

  it('names the engine defect when the engine refuses the removal for endpoints it does not list', async () => {
    vi.useFakeTimers();
    const { docker, calls } = engine({ countOff: true });
    const removal = removeLab(docker, RUN);
    removal.catch(() => {});
    await vi.runAllTimersAsync();
    await expect(removal).rejects.toThrow(
      `network ${NETWORK.Name} ${ENGINE_ENDPOINT_COUNT_DEFECT} after 30 s: error while removing network: network ${NETWORK.Name} id ${NETWORK.Id} has active endpoints`,
    );
    // What it could force off was none: there was nothing listed to name.
    expect(calls.disconnects).toEqual([]);
  });
});
