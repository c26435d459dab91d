import type { Entity } from '@backstage/catalog-model';
import type { NewRun, StoredCapture } from '../database/RecoveryStore';

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
