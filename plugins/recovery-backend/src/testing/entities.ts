import type { Entity } from '@backstage/catalog-model';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import type { StoredCapture } from '../database/CaptureStore';
import type { NewRun, RunStore } from '../database/RunStore';

const P = 'recovery.backstage-recovery.io/';

/** A machine of the primary Docker engine, as the catalog holds it. */
export const machineEntity = (name: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: {
    name,
    namespace: 'default',
    annotations: { [`${P}engine`]: 'primary', [`${P}container`]: name },
  },
  spec: { type: 'machine' },
});

/** A service component with its dependsOn relations. */
export const componentEntity = (name: string, dependsOn: string[]): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name, namespace: 'default' },
  spec: { type: 'service' },
  relations: dependsOn.map(targetRef => ({ type: 'dependsOn', targetRef })),
});

/** A capture of a machine of the primary engine, as the store keeps it: taken now, on network `prod`. */
export const storedCapture = (machine: string): StoredCapture => ({
  id: `cap-${machine}`,
  machineRef: `resource:default/${machine}`,
  engine: 'primary',
  container: machine,
  imageId: 'sha256:1',
  sizeBytes: 1,
  checksum: 'sha256:1',
  artifact: `/captures/${machine}.tar`,
  runtime: {
    hostname: machine,
    networks: [{ name: 'prod', aliases: [] }],
    env: [],
    exposedPorts: [],
    labels: {},
  },
  adaptations: [],
  durationMs: 1,
  createdAt: new Date().toISOString(),
});

/** A capture of `machineRef` taken at `createdAt`. */
export const captureOf = (
  id: string,
  machineRef: string,
  createdAt: string,
): StoredCapture => ({
  ...storedCapture(machineRef.split('/')[1]),
  id,
  machineRef,
  createdAt,
});

/** A test run of `entityRef` booting `machineRefs` (one wave each) on a host of its own, to `recoveryPoint` where given. */
export const testRunOf = (
  entityRef: string,
  id: string,
  machineRefs: string[],
  recoveryPoint?: string,
): NewRun => ({
  id,
  entityRef,
  mode: 'test',
  trigger: 'user',
  hypervisorHost: `host-${id}`,
  plan: { entityRef, waves: machineRefs.map(m => [m]), machines: [] },
  options: {},
  ...(recoveryPoint !== undefined && { recoveryPoint }),
  machines: machineRefs.map((machineRef, wave) => ({ machineRef, wave })),
});

/** The boot plan of `web`: infra-01, then web-01. */
export const webPlan: BootPlan = {
  entityRef: 'component:default/web',
  waves: [['resource:default/infra-01'], ['resource:default/web-01']],
  machines: [],
};

/** A capture of `machineRef` taken at `createdAt`, with all a capture records: its address on `prod`, an adaptation, a pause. */
export const fullCaptureOf = (
  id: string,
  machineRef: string,
  createdAt: string,
): StoredCapture => ({
  id,
  machineRef,
  engine: 'primary',
  container: machineRef.split('/')[1],
  imageId: `sha256:${id}`,
  sizeBytes: 5_000_000_000,
  checksum: `sha256:${id}`,
  artifact: `/captures/${id}.tar`,
  runtime: {
    hostname: 'web-01',
    networks: [
      {
        name: 'prod',
        subnet: '172.29.10.0/24',
        ipv4Address: '172.29.10.30',
        aliases: ['web'],
      },
    ],
    env: [],
    exposedPorts: ['80/tcp'],
    labels: {},
  },
  adaptations: ['dropped host port binding 8080->80/tcp'],
  durationMs: 1234,
  pausedMs: 321,
  createdAt,
});

/** A test run of one machine on `hypervisorHost`, as admitRun takes it. */
export const admission = (
  id: string,
  machineRef: string,
  hypervisorHost: string,
) => ({
  id,
  entityRef: 'component:default/admit',
  mode: 'test' as const,
  trigger: 'user' as const,
  hypervisorHost,
  plan: {
    entityRef: 'component:default/admit',
    waves: [[machineRef]],
    machines: [],
  },
  options: {},
  machines: [{ machineRef, wave: 0 }],
});

/** A scheduled test run of `id`'s own entity that booted `machineRefs`, created at `at`, ended with `status` (running: not ended). */
export const finishRun = async (
  store: RunStore,
  id: string,
  at: string,
  machineRefs: string[],
  status: 'succeeded' | 'failed' | 'running' = 'succeeded',
) => {
  await store.insertRun(
    {
      id,
      entityRef: `component:default/${id}`,
      mode: 'test',
      trigger: 'schedule',
      hypervisorHost: 'recovery',
      plan: webPlan,
      options: {},
      machines: machineRefs.map((machineRef, wave) => ({
        machineRef,
        wave,
      })),
    },
    new Date(at),
  );
  await store.updateRun(id, { status: 'running' });
  if (status !== 'running')
    await store.updateRun(id, {
      status,
      rtoSeconds: status === 'succeeded' ? 30 : undefined,
    });
};
