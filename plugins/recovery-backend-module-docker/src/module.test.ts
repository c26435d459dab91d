import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { recoveryProvidersExtensionPoint } from '@backstage-recovery/plugin-recovery-node';
import { DockerCaptureSource } from './DockerCaptureSource';
import { recoveryModuleDocker } from './module';

describe('recoveryModuleDocker', () => {
  it('registers capture and event sources per primary engine and hosts per hypervisor engine', async () => {
    const captureSources: string[] = [];
    const hosts: string[] = [];
    const eventSources: string[] = [];
    await startTestBackend({
      extensionPoints: [
        [
          recoveryProvidersExtensionPoint,
          {
            addCaptureSource: (s: { engineId: string }) => captureSources.push(s.engineId),
            addHypervisorHost: (h: { id: string }) => hosts.push(h.id),
            addEventSource: (s: { id: string }) => eventSources.push(s.id),
          },
        ],
      ],
      features: [
        recoveryModuleDocker,
        mockServices.rootConfig.factory({
          data: {
            recovery: {
              captureStore: { directory: '/tmp/recovery-captures-unused' },
              docker: {
                engines: [
                  { id: 'primary', socketPath: '/run/none/primary.sock', role: 'primary' },
                  { id: 'recovery', socketPath: '/run/none/recovery.sock', role: 'hypervisor' },
                  { id: 'lab', host: 'docker.example', port: 2376, protocol: 'https', role: 'both' },
                ],
              },
            },
          },
        }),
      ],
    });
    expect(captureSources).toEqual(['primary', 'lab']);
    expect(hosts).toEqual(['recovery', 'lab']);
    expect(eventSources).toEqual(['docker:primary', 'docker:lab']);
  });
});

describe('recoveryModuleDocker at backend shutdown', () => {
  it('stops the captures under way on each primary engine, so none leaves production paused', async () => {
    const sources: DockerCaptureSource[] = [];
    const backend = await startTestBackend({
      extensionPoints: [
        [
          recoveryProvidersExtensionPoint,
          {
            addCaptureSource: (s: DockerCaptureSource) => sources.push(s),
            addHypervisorHost: () => {},
            addEventSource: () => {},
          },
        ],
      ],
      features: [
        recoveryModuleDocker,
        mockServices.rootConfig.factory({
          data: {
            recovery: {
              captureStore: { directory: '/tmp/recovery-captures-unused' },
              docker: {
                engines: [
                  { id: 'primary', socketPath: '/run/none/primary.sock', role: 'primary' },
                  { id: 'lab', socketPath: '/run/none/lab.sock', role: 'both' },
                ],
              },
            },
          },
        }),
      ],
    });
    const stops = sources.map(source => vi.spyOn(source, 'stopCaptures'));
    expect(sources.map(s => s.engineId)).toEqual(['primary', 'lab']);
    await backend.stop();
    for (const stop of stops) expect(stop).toHaveBeenCalledOnce();
  });
});
