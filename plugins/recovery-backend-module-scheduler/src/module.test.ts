/**
 * The module with the real recovery backend plugin: it receives the plugin's tasks API through
 * recoveryTasksExtensionPoint, and its tasks reach the plugin's services in-process, not over HTTP.
 */
import { createBackendModule } from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryTasksExtensionPoint } from '@backstage-recovery/plugin-recovery-node';
import { recoveryPlugin } from '../../recovery-backend/src/plugin';
import { recordingAuditor } from '../../recovery-backend/src/testing/auditor';
import { FakeCaptureSource } from '../../recovery-backend/src/testing/FakeCaptureSource';
import {
  componentEntity,
  machineEntity,
} from '../../recovery-backend/src/testing/entities';
import { providersModule } from '../../recovery-backend/src/testing/providers';
import { tasksModule } from '../../recovery-backend/src/testing/tasksModule';
import { startSchedulerBackend } from './testing/schedulerBackend';

const machine = (name: string): Entity => {
  const entity = machineEntity(name);
  entity.metadata.annotations = {
    ...entity.metadata.annotations,
    'recovery.backstage-recovery.io/engine': 'primary',
  };
  return entity;
};

describe('the scheduler module on the recovery plugin', () => {
  it("captures every machine through the plugin's own services, as the plugin, with no HTTP call", async () => {
    const source = new FakeCaptureSource();
    const auditor = recordingAuditor();
    const { module, tasks } = tasksModule();
    const { task, logger } = await startSchedulerBackend({
      entities: [machine('db-01'), machine('web-01')],
      features: [
        providersModule({ captureSources: [source] }),
        module,
        // Any look-up of the plugin's URL would be a call over HTTP.
        mockServices.discovery.mock({
          getBaseUrl: async () => {
            throw new Error('the scheduler looked the recovery plugin up');
          },
        }).factory,
        mockServices.auditor.mock({ createEvent: auditor.createEvent }).factory,
      ],
    });

    await task('recovery-capture').fn(new AbortController().signal);

    expect([...source.captured].sort()).toEqual(['db-01', 'web-01']);
    expect(logger.info).toHaveBeenCalledWith(
      'Scheduled capture: 2 captured, 0 failed',
    );
    // The plugin's services stored them: its API reads them back.
    for (const ref of ['resource:default/db-01', 'resource:default/web-01'])
      expect(await tasks().latestCapture(ref)).toMatchObject({
        machineRef: ref,
      });
    // Audited as the routes audit a capture, with no request: the plugin asked itself.
    expect(
      auditor.events.map(({ eventId, severityLevel, meta, request }) => ({
        eventId,
        severityLevel,
        meta,
        request,
      })),
    ).toEqual(
      ['db-01', 'web-01'].map(name => ({
        eventId: 'capture-create',
        severityLevel: 'medium',
        meta: {
          entityRef: `resource:default/${name}`,
          machineRef: `resource:default/${name}`,
        },
        request: undefined,
      })),
    );
  });

  it('lists the catalog a page at a time, as a catalog of many entities must be read: never every match at once', async () => {
    const source = new FakeCaptureSource();
    // web runs on web-01 and opted out of the nightly check: the check lists it to leave it out.
    const web: Entity = {
      ...componentEntity('web', ['resource:default/web-01']),
      metadata: {
        name: 'web',
        namespace: 'default',
        annotations: {
          'recovery.backstage-recovery.io/nightly-check': 'false',
        },
      },
    };
    // The scheduler's catalog refuses a list of every match at once (startSchedulerBackend).
    const { task, logger } = await startSchedulerBackend({
      entities: [
        machine('db-01'),
        {
          ...machine('web-01'),
          relations: [
            { type: 'dependencyOf', targetRef: 'component:default/web' },
          ],
        },
        web,
      ],
      features: [providersModule({ captureSources: [source] })],
    });

    await task('recovery-capture').fn(new AbortController().signal);
    expect([...source.captured].sort()).toEqual(['db-01', 'web-01']);
    expect(logger.info).toHaveBeenCalledWith(
      'Scheduled capture: 2 captured, 0 failed',
    );

    // web left out, not failed for want of a host: its opt-out was listed.
    await task('recovery-nightly-check').fn(new AbortController().signal);
    expect(logger.info).toHaveBeenCalledWith(
      'Nightly readiness check: 0 entities checked by no run: 0 recovered',
    );
  });

  it("reports a module that fails as it connects as that module's startup failure, not the plugin's", async () => {
    const failing = createBackendModule({
      pluginId: 'recovery',
      moduleId: 'failing',
      register(env) {
        env.registerInit({
          deps: { tasks: recoveryTasksExtensionPoint },
          async init({ tasks }) {
            tasks.connect(async () => {
              throw new Error('no schedule for this');
            });
          },
        });
      },
    });
    const features = [
      recoveryPlugin,
      failing,
      catalogServiceMock.factory({ entities: [] }),
    ];
    await expect(startTestBackend({ features })).rejects.toThrow(
      "Module 'failing' for plugin 'recovery' startup failed; caused by Error: Failed to connect to the recovery tasks API; caused by Error: no schedule for this",
    );
    // Allowed to fail, it leaves the plugin serving.
    const { server } = await startTestBackend({
      features: [
        ...features,
        mockServices.rootConfig.factory({
          data: {
            backend: {
              startup: {
                plugins: {
                  recovery: {
                    modules: {
                      failing: { onPluginModuleBootFailure: 'continue' },
                    },
                  },
                },
              },
            },
          },
        }),
      ],
    });
    const health = await fetch(
      `http://127.0.0.1:${server.port()}/api/recovery/health`,
    );
    expect(health.status).toBe(200);
  });
});
