import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { recoveryProvidersExtensionPoint } from '@backstage-recovery/plugin-recovery-node';
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
