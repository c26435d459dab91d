import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { recoveryProvidersExtensionPoint } from '@backstage-recovery/plugin-recovery-node';
import { DockerCaptureSource } from './DockerCaptureSource';
import { recoveryModuleDocker } from './module';

/** The module in a backend with these engines configured, handing what it registers to `providers`. */
function startModule(
  engines: Array<Record<string, string | number>>,
  providers: {
    addCaptureSource?: (s: DockerCaptureSource) => void;
    addHypervisorHost?: (h: { id: string }) => void;
    addEventSource?: (s: { id: string }) => void;
  },
) {
  return startTestBackend({
    extensionPoints: [
      [
        recoveryProvidersExtensionPoint,
        {
          addCaptureSource: () => {},
          addHypervisorHost: () => {},
          addEventSource: () => {},
          ...providers,
        },
      ],
    ],
    features: [
      recoveryModuleDocker,
      mockServices.rootConfig.factory({
        data: {
          recovery: {
            captureStore: { directory: '/tmp/recovery-captures-unused' },
            docker: { engines },
          },
        },
      }),
    ],
  });
}

describe('recoveryModuleDocker', () => {
  it('registers capture and event sources per primary engine and hosts per hypervisor engine', async () => {
    const captureSources: string[] = [];
    const hosts: string[] = [];
    const eventSources: string[] = [];
    await startModule(
      [
        {
          id: 'primary',
          socketPath: '/run/none/primary.sock',
          role: 'primary',
        },
        {
          id: 'recovery',
          socketPath: '/run/none/recovery.sock',
          role: 'hypervisor',
        },
        {
          id: 'lab',
          host: 'docker.example',
          port: 2376,
          protocol: 'https',
          role: 'both',
        },
      ],
      {
        addCaptureSource: s => captureSources.push(s.engineId),
        addHypervisorHost: h => hosts.push(h.id),
        addEventSource: s => eventSources.push(s.id),
      },
    );
    expect(captureSources).toEqual(['primary', 'lab']);
    expect(hosts).toEqual(['recovery', 'lab']);
    expect(eventSources).toEqual(['docker:primary', 'docker:lab']);
  });
});

describe('recoveryModuleDocker at backend shutdown', () => {
  it('stops the captures under way on each primary engine, so none leaves production paused', async () => {
    const sources: DockerCaptureSource[] = [];
    const backend = await startModule(
      [
        {
          id: 'primary',
          socketPath: '/run/none/primary.sock',
          role: 'primary',
        },
        { id: 'lab', socketPath: '/run/none/lab.sock', role: 'both' },
      ],
      { addCaptureSource: s => sources.push(s) },
    );
    const stops = sources.map(source => vi.spyOn(source, 'stopCaptures'));
    expect(sources.map(s => s.engineId)).toEqual(['primary', 'lab']);
    await backend.stop();
    for (const stop of stops) expect(stop).toHaveBeenCalledOnce();
  });
});
